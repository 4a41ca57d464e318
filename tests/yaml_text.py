"""Writing test networks as YAML text: exact short decimals, flow style."""

from fractions import Fraction

import numpy as np


def number_text(q: Fraction) -> str:
    """A short decimal as YAML text (the values drawn below always terminate)."""
    sign = "-" if q < 0 else ""
    q = abs(q)
    whole, rest = divmod(q.numerator, q.denominator)
    digits = ""
    while rest and len(digits) < 30:
        rest *= 10
        digit, rest = divmod(rest, q.denominator)
        digits += str(digit)
    assert rest == 0, q
    return f"{sign}{whole}" + (f".{digits}" if digits else "")


def to_yaml(value) -> str:
    """Flow-style YAML (JSON-like), with Fractions written as exact decimals."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {to_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_yaml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        return number_text(value)
    if isinstance(value, np.ndarray):
        return to_yaml(value.tolist())
    return str(value)
