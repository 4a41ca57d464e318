"""Numbers a + b·√c with rational a, b, c: the exact values just after batch norm.

Batch norm divides by √(σ² + ε), which is rarely rational; per channel every output is then
β + γ(x - μ)·√c with c = 1/(σ² + ε). ReLU and max-pool after it only compare numbers of one
channel, so their kinks stay decidable exactly: the sign of a + b√c is that of a and b when they
agree, else the sign of the one with the larger square (a² against b²c). Mixing channels (a conv
or linear after it) leaves this form: `NotRational`, and later kinks are decided on intervals.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .ops import NotRational, RationalOps, _map, _rational_sqrt


def _sign(q: Fraction) -> int:
    return (q > 0) - (q < 0)


def _sign_of(a, b, c) -> int:
    """The sign of a + b√c: that of a and b when they agree, else of the one with the larger square (a² vs b²c)."""
    sa, sb = _sign(a), _sign(b)
    if sa == 0 or sa == sb:
        return sb
    if sb == 0:
        return sa
    return sa if a * a > b * b * c else sb


class Surd:
    """a + b·√c exactly (c > 0 not the square of a rational, b ≠ 0); rational results are Fractions."""

    __slots__ = ("a", "b", "c")

    def __init__(self, a: Fraction | int, b: Fraction | int, c: Fraction | int) -> None:
        self.a, self.b, self.c = a, b, c  # rationals (Fraction or int), kept as given: this runs per element

    @staticmethod
    def make(a: Fraction, b: Fraction, c: Fraction) -> Fraction | Surd:
        return Fraction(a) if b == 0 else Surd(a, b, c)

    def _parts(self, other: object) -> tuple[Fraction, Fraction]:
        """other as (a', b') over the same √c; NotRational when it has another root."""
        if isinstance(other, Surd):
            if other.c != self.c:
                raise NotRational("sums of square roots of different numbers")
            return other.a, other.b
        if isinstance(other, (Fraction, int)):
            return Fraction(other), Fraction(0)
        raise NotRational(f"a surd with {type(other).__name__}")

    def __add__(self, other: object) -> Fraction | Surd:
        a, b = self._parts(other)
        return Surd.make(self.a + a, self.b + b, self.c)

    __radd__ = __add__

    def __neg__(self) -> Surd:
        return Surd(-self.a, -self.b, self.c)

    def __sub__(self, other: object) -> Fraction | Surd:
        a, b = self._parts(other)
        return Surd.make(self.a - a, self.b - b, self.c)

    def __rsub__(self, other: object) -> Fraction | Surd:
        return (-self) + other

    def __mul__(self, other: object) -> Fraction | Surd:
        a, b = self._parts(other)
        return Surd.make(self.a * a + self.b * b * self.c, self.a * b + self.b * a, self.c)

    __rmul__ = __mul__

    def inverse(self) -> Fraction | Surd:
        norm = self.a * self.a - self.b * self.b * self.c  # ≠ 0: c is not a rational square
        return Surd.make(self.a / norm, -self.b / norm, self.c)

    def __truediv__(self, other: object) -> Fraction | Surd:
        return self * (other.inverse() if isinstance(other, Surd) else 1 / Fraction(other))

    def __rtruediv__(self, other: object) -> Fraction | Surd:
        return self.inverse() * other

    def sign(self) -> int:
        """-1, 0 or 1, exactly."""
        return _sign_of(self.a, self.b, self.c)

    def _compare(self, other: object) -> int:
        if isinstance(other, Surd) and other.c == self.c:  # the common case, without a new Surd
            return _sign_of(self.a - other.a, self.b - other.b, self.c)
        if isinstance(other, (int, Fraction)):
            return _sign_of(self.a - other, self.b, self.c)
        difference = self - other
        return difference.sign() if isinstance(difference, Surd) else _sign(difference)

    def __gt__(self, other: object) -> bool:
        return self._compare(other) > 0

    def __ge__(self, other: object) -> bool:
        return self._compare(other) >= 0

    def __lt__(self, other: object) -> bool:
        return self._compare(other) < 0

    def __le__(self, other: object) -> bool:
        return self._compare(other) <= 0

    def __eq__(self, other: object) -> bool:
        try:
            return self._compare(other) == 0
        except NotRational:
            return False

    def __hash__(self) -> int:
        return hash((self.a, self.b, self.c))

    def __float__(self) -> float:
        return float(self.a) + float(self.b) * math.sqrt(self.c)

    def interval(self, ctx) -> object:
        """This number as an mpmath interval of ctx's precision (outward rounded)."""
        return ctx.mpf(self.a.numerator) / self.a.denominator + (
            ctx.mpf(self.b.numerator) / self.b.denominator
        ) * ctx.sqrt(ctx.mpf(self.c.numerator) / self.c.denominator)

    def __repr__(self) -> str:
        return f"Surd({self.a} + {self.b}·√{self.c})"


def _surd_sqrt(value: object) -> Fraction | Surd:
    if isinstance(value, Surd):
        raise NotRational("square root of a surd")
    try:
        return _rational_sqrt(value)
    except NotRational:
        if Fraction(value) < 0:
            raise
        return Surd(0, 1, Fraction(value))


class SurdOps(RationalOps):
    """Fractions, and a + b√c where a square root leaves them: kinks after batch norm, decided exactly."""

    name = "surd"

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return _map(np.asarray(x, dtype=object), _surd_sqrt)
