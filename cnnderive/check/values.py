"""Numbers in `check`: reading a hand-computed value, and comparing it with the right one."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import sympy

from ..derivation.floats import (
    PRECISIONS,
    IntervalOps,
    fraction_double,
    interval_double,
    is_exact_zero,
    sympy_interval,
)
from ..errors import UserError
from ..maths.numbers import as_fraction


def parse_value(text: str) -> tuple[Fraction, bool]:
    """A hand-computed value: decimal, fraction or scientific notation, exact; True when written as a fraction."""
    cleaned = text.strip().replace("−", "-").replace(" ", "")
    if len(cleaned) > 100:
        raise UserError("the value is too long: give one number", field="--value")
    if re.search(r"[eE][+-]?0*\d{3,}", cleaned):  # Fraction("1e999999999") would build that power
        raise UserError(
            f"{text!r}: the exponent is too large; give the value as a decimal or a fraction", field="--value"
        )
    try:
        parts = [Fraction(part) for part in cleaned.split("/")]  # 1.1/2 is allowed too
        if len(parts) > 2 or (len(parts) == 2 and "-" in cleaned.split("/")[1]):
            raise ValueError(cleaned)
        value = parts[0] / parts[1] if len(parts) == 2 else parts[0]
    except (ValueError, ZeroDivisionError):
        raise UserError(
            f"{text!r} is not a number: give a decimal like -0.55 or a fraction like -11/20 "
            "(for a formula, use --expr)",
            field="--value",
        ) from None
    if max(abs(value.numerator), value.denominator) > 10**60:
        raise UserError(f"{text!r}: the number is too large or too precise", field="--value")
    return value, "/" in cleaned


def exact_rational(value: object) -> Fraction | None:
    """The right value as a Fraction when it is exactly rational: held as one (int, Fraction, SymPy
    Rational), or an expression with exp in it proven to be 0 (-0.1192 + 0.1192 is 0, not float noise)."""
    exact = as_fraction(value)
    if exact is None and isinstance(value, sympy.Basic) and is_exact_zero(value):
        return Fraction(0)
    return exact


def close(given: Fraction, right, tol: float, exact: bool) -> bool:
    """Within the relative tolerance (absolute 1e-12 near 0); equal, when compared exactly."""
    rational = _rational(right)
    if exact and rational is not None:
        return given == rational
    if rational is not None:
        diff, scale = abs(given - rational), abs(rational)
        return diff <= Fraction(str(tol)) * scale or diff <= _NEAR_ZERO
    if isinstance(right, float):  # inf or nan: a float pass that left the float64 range
        return False

    def within(ops: IntervalOps) -> bool | None:  # None: not certain at this precision
        value = _interval(right, ops)
        diff = abs(ops.convert(given) - value)
        relative, absolute = diff <= ops.convert(Fraction(str(tol))) * abs(value), diff <= ops.convert(_NEAR_ZERO)
        if relative or absolute:
            return True
        return False if relative is False and absolute is False else None

    return _rising(within, on_the_boundary=True)


def relative_error(given: Fraction, right) -> float | None:
    """|given - right| / |right| as the nearest double; None when the right value is 0 (there is no
    relative error), not finite, or when the error is below the smallest double but not 0."""
    rational = _rational(right)
    if rational is not None:
        return None if rational == 0 else fraction_double(abs(given - rational) / abs(rational))
    if isinstance(right, float):
        return None

    def error(ops: IntervalOps) -> float | None:
        value = _interval(right, ops)
        if not _certainly_nonzero(value):
            return None
        return interval_double(abs(ops.convert(given) - value) / abs(value))

    found = _rising(error, on_the_boundary=None)
    return found or None  # 0.0 here is an underflow: the right value is not rational, so not the given one


def _same_number(a, b) -> bool:
    """Equal exactly (rationals), or to 12 digits (anything else)."""
    ra, rb = as_fraction(a), as_fraction(b)
    if ra is not None and rb is not None:
        return ra == rb
    if any(isinstance(v, float) and not math.isfinite(v) for v in (a, b)):
        return a == b  # the same infinity; never nan

    def same(ops: IntervalOps) -> bool | None:
        x, y = _interval(a, ops), _interval(b, ops)
        return abs(x - y) <= ops.convert(_NEAR_ZERO) * (1 + abs(x) + abs(y))

    return _rising(same, on_the_boundary=True)


_NEAR_ZERO = Fraction(1, 10**12)


def _rational(value: object) -> Fraction | None:
    """An exact rational value, or a finite float taken as the exact number it holds."""
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) else None
    return exact_rational(value)


def _interval(value: object, ops: IntervalOps):
    """An interval surely holding a number given as int, Fraction, float or SymPy number."""
    exact = as_fraction(value)
    if exact is not None:
        return ops.convert(exact)
    if isinstance(value, float):
        return ops.convert(Fraction(value))
    return sympy_interval(value, ops)


def _certainly_nonzero(value) -> bool:
    low, high = value._mpi_
    return bool(low[1] and high[1] and low[0] == high[0])  # both ends non-zero, of one sign


def _rising(question, on_the_boundary):
    """The first certain answer (not None) of question(ops) at rising precision; `on_the_boundary` when
    even the highest precision leaves it open (the value is then within 2^-2400 of the boundary)."""
    for bits in PRECISIONS:
        answer = question(IntervalOps(bits))
        if answer is not None:
            return answer
    return on_the_boundary
