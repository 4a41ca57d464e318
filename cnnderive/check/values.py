"""Numbers in `check`: reading a hand-computed value, and comparing it with the right one."""

from __future__ import annotations

import re
from fractions import Fraction

import sympy

from ..errors import UserError
from ..maths.numbers import as_fraction
from .compare import DIGITS


def parse_value(text: str) -> tuple[Fraction, bool]:
    """A hand-computed value: decimal, fraction or scientific notation, exact; True when written as a fraction."""
    cleaned = text.strip().replace("−", "-").replace(" ", "")
    if len(cleaned) > 100:
        raise UserError("the value is too long: give one number", field="--value")
    if re.search(r"[eE][+-]?0*\d{3,}", cleaned):  # Fraction("1e999999999") would build that power
        raise UserError(f"{text!r}: the exponent is too large; give the value as a decimal or a fraction", field="--value")
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


def _float(value) -> sympy.Float:
    exact = as_fraction(value)
    if exact is not None:
        return sympy.Float(sympy.Rational(exact.numerator, exact.denominator), DIGITS)
    return sympy.Float(sympy.N(sympy.sympify(value), DIGITS), DIGITS)


def close(given: Fraction, right, tol: float, exact: bool) -> bool:
    """Within the relative tolerance (absolute 1e-12 near 0); equal, when compared exactly."""
    rational = as_fraction(right)
    if exact and rational is not None:
        return given == rational
    if rational is not None:
        diff, scale = abs(given - rational), abs(rational)
        return diff <= Fraction(str(tol)) * scale or diff <= Fraction(1, 10**12)
    right_float = _float(right)
    diff = abs(_float(given) - right_float)
    return bool(diff <= tol * abs(right_float) or diff <= sympy.Float("1e-12"))


def relative_error(given: Fraction, right) -> float | None:
    right_float = _float(right)
    if right_float == 0:
        return None
    return float(abs(_float(given) - right_float) / abs(right_float))


def _same_number(a, b) -> bool:
    """Equal exactly (rationals), or to 12 digits (anything else)."""
    ra, rb = as_fraction(a), as_fraction(b)
    if ra is not None and rb is not None:
        return ra == rb
    fa, fb = _float(a), _float(b)
    return bool(abs(fa - fb) <= sympy.Float("1e-12") * max(1, abs(fa), abs(fb)))
