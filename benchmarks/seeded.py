"""The numbers a config leaves out, drawn from its seed exactly as cnnderive draws them.

A copy of cnnderive/numbers.py's draw (splitmix64 per tensor), kept separate so that the
comparison scripts in benchmarks/ do not import cnnderive.
"""

from __future__ import annotations

import zlib

_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> int:
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def integers(seed: int, name: str, count: int, low: int, high: int) -> list[int]:
    base = _splitmix64((seed & _MASK) ^ (zlib.crc32(name.encode()) << 32))
    return [low + _splitmix64(base + k) % (high - low + 1) for k in range(count)]


def input_tenths(seed: int, count: int) -> list[int]:
    """Inputs: k/10 with k in [0, 10]."""
    return integers(seed, "input", count, 0, 10)


def parameter_hundredths(seed: int, name: str, count: int, fan_in: int) -> list[int]:
    """Weights and biases: k/100 with |k/100| <= 1/sqrt(fan_in)."""
    limit = max(1, int(100 / fan_in**0.5))
    while limit > 1 and limit * limit * fan_in > 100 * 100:
        limit -= 1
    return integers(seed, name, count, -limit, limit)
