"""A hand-computed decimal that is the right value rounded: right to the digits it gives."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext

from ..maths.numbers import as_fraction

_DECIMAL = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")


def rounded_match(text: str, right: object) -> int | None:
    """How many significant digits `text` gives, when the right value rounds to exactly it; else None.

    `right` is the exact value (a rational) or its float. Both usual roundings of a tie count.
    """
    cleaned = text.strip().replace("−", "-").replace(" ", "")
    if not _DECIMAL.fullmatch(cleaned):
        return None
    given = Decimal(cleaned)
    digits = len(given.as_tuple().digits)
    if given == 0 or digits > 30:
        return None
    exact = as_fraction(right)
    with localcontext() as context:
        context.prec = 60
        value = Decimal(exact.numerator) / Decimal(exact.denominator) if exact is not None else Decimal(float(right))
        for rounding in (ROUND_HALF_EVEN, ROUND_HALF_UP):
            context.prec, context.rounding = digits, rounding
            if +value == given:
                return digits
    return None
