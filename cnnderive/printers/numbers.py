"""The one way numbers are shown, in the terminal and in LaTeX alike.

A value is shown exactly where that is short (2, 1.1, -0.05, 1/3), else rounded to DIGITS
significant digits; a rational value with a terminating decimal can also be written out in full.
JSON does not use this: it gives every value as the nearest double.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

from ..maths.numbers import as_fraction, terminates

DIGITS = 4  # significant digits of a value that is not shown exactly
MAX_PLACES = 6  # a terminating fraction with more decimal places is shown as p/q (or rounded)
MAX_FRACTION = 7  # characters of p/q beyond which the value is rounded instead
FULL_DIGITS = 15  # significant digits up to which a terminating decimal is written out in full


def exact_decimal(q: Fraction, max_places: int = MAX_PLACES) -> str | None:
    """11/10 -> '1.1', -1/20 -> '-0.05'; None when the decimal does not end within max_places."""
    den, twos, fives = q.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    places = max(twos, fives)
    if den != 1 or places > max_places:
        return None
    digits = str(abs(q.numerator) * 10**places // q.denominator).rjust(places + 1, "0")
    sign = "-" if q < 0 else ""
    if not places:
        return sign + digits
    return sign + digits[:-places] + "." + digits[-places:].rstrip("0")


def full_decimal(q: Fraction) -> str | None:
    """A terminating fraction written out in full ('0.0123'), or None when it does not terminate soon."""
    if not terminates(q.denominator):
        return None
    text = rounded(q, FULL_DIGITS)
    return text if Fraction(text) == q else None


def rounded(value: object, digits: int = DIGITS) -> str:
    """A value to `digits` significant digits: 0.125, -1.5e-06; exact rationals beyond float64 too."""
    q = as_fraction(value)
    if q is not None:
        if q == 0:
            return "0"
        if not 1e-300 < abs(q) < 1e300:  # outside float64: round the exact value with Decimal
            with localcontext() as context:
                context.prec = digits
                text = f"{+(Decimal(q.numerator) / Decimal(q.denominator)):e}".replace("E", "e")
            mantissa, exponent = text.split("e")
            mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
            return f"{mantissa}e{int(exponent):+03d}"
        number = float(q)
    else:
        number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    text = f"{number:.{digits}g}"
    return text if "e" in text or "." not in text else text.rstrip("0").rstrip(".")


def shown(value: object, approx: float | None = None) -> tuple[str, bool]:
    """(text, exact): '1.1' exact, '1/3' exact, '0.2143' rounded (from `approx` when given: cheaper)."""
    q = as_fraction(value)
    if q is not None:
        text = exact_decimal(q)
        if text is not None:
            return text, True
        text = f"{q.numerator}/{q.denominator}"
        if len(text) <= MAX_FRACTION:
            return text, True
        return rounded(q), False
    number = value if approx is None else approx
    if isinstance(number, float) and number == 0:  # a zero of the float pass is a decided kink: exact
        return "0", True
    return rounded(number), False


def shown_decimal(value: object, approx: float | None = None) -> tuple[str, bool]:
    """(text, exact) like `shown`, but never p/q: a value whose decimal does not end soon is rounded.

    For a tensor shown with ≈: one rounded entry makes every entry a decimal, so fractions and
    rounded decimals are never mixed in one matrix.
    """
    text, exact = shown(value, approx)
    if exact and "/" in text:
        return rounded(as_fraction(value)), False
    return text, exact
