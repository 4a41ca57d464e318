"""Exact-number helpers shared by the maths and the printers."""

from __future__ import annotations

from fractions import Fraction
from numbers import Integral


def as_fraction(value: object) -> Fraction | None:
    """The value as a Fraction when it is a rational number held exactly (int, Fraction, SymPy
    Rational), else None (a float, or an irrational SymPy expression)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Integral) and not isinstance(value, bool):  # int and NumPy's integers
        return Fraction(int(value))
    if getattr(value, "is_Rational", False):
        return Fraction(int(value.p), int(value.q))
    return None


def terminates(denominator: int) -> bool:
    """True when a fraction with this denominator has a finite decimal expansion."""
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    return denominator == 1
