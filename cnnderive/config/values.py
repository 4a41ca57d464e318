"""Exact numbers from the config, and the seeded short decimals for what it leaves out."""

from __future__ import annotations

import re
import zlib
from fractions import Fraction

import numpy as np

from ..errors import ConfigError


def exact(value: object, path: tuple) -> Fraction:
    """A config number (int, decimal text, "1/3" string) as an exact Fraction."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a number, found {str(value).lower()}", path)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        exponent = re.search(r"[eE]\s*[+-]?0*(\d+)", value)
        if exponent and (len(exponent.group(1)) > 3 or int(exponent.group(1)) > 300):
            raise ConfigError(f"number {value!r} is out of range (exponent above 300)", path)
        try:
            number = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            pass
        else:
            if abs(number.numerator) < 10**100 and number.denominator < 10**100:
                return number
            raise ConfigError(f"number {value!r} is too large or too precise", path)
    shown = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else repr(str(value)[:40])
    raise ConfigError(f'expected a number (integer, decimal or fraction like "1/3"), found {shown}', path)


_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> int:
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def seeded_integers(seed: int, name: str, count: int, low: int, high: int) -> list[int]:
    """`count` integers in [low, high], fixed by (seed, name) on every machine and version.

    Each tensor gets its own stream, so leaving out one tensor never changes another.
    """
    base = _splitmix64((seed & _MASK) ^ (zlib.crc32(name.encode()) << 32))
    span = high - low + 1
    state = np.uint64(base) + np.arange(count, dtype=np.uint64)  # wraps modulo 2**64, as _MASK does
    state += np.uint64(0x9E3779B97F4A7C15)
    state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    state ^= state >> np.uint64(31)
    return (low + (state % np.uint64(span)).astype(np.int64)).tolist()


def seeded_input(seed: int, count: int) -> list[Fraction]:
    """Input values: one decimal in [0, 1]."""
    tenths = [Fraction(k, 10) for k in range(11)]
    return [tenths[k] for k in seeded_integers(seed, "input", count, 0, 10)]


def seeded_parameter(seed: int, name: str, count: int, fan_in: int) -> list[Fraction]:
    """Weights and biases: at most two decimals within PyTorch's bound 1/sqrt(fan_in)."""
    limit = max(1, int(100 / fan_in**0.5))
    while limit > 1 and Fraction(limit, 100) ** 2 * fan_in > 1:
        limit -= 1
    hundredths = {k: Fraction(k, 100) for k in range(-limit, limit + 1)}
    return [hundredths[k] for k in seeded_integers(seed, name, count, -limit, limit)]
