"""Number tracks: the same layer rules run on floats, exact fractions or SymPy objects.

A layer's forward and backward rules are written once with NumPy array operations;
an `Ops` object supplies what differs between tracks (constants, exp, log, tanh, and
sqrt, and optionally a faster tensordot: see `tensordot` below).
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

import numpy as np

from .numbers import as_fraction


class NotRational(Exception):
    """Raised by the rational track when a rule leaves the rationals (exp, log, tanh)."""


class FloatOps:
    """float64, as PyTorch computes."""

    name = "float"
    exact = False

    def array(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) if values.dtype != object else _to_float(values)

    def tensordot(self, a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
        out = np.tensordot(a, b, axes)
        return out if plus is None else out + plus

    def const(self, q: Fraction | int) -> float:
        return float(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(x)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(np.asarray(x, dtype=np.float64))


def _to_float(values: np.ndarray) -> np.ndarray:
    """Each exact number as the nearest double (in bulk when they share a small denominator)."""
    scaled = integer_scaled(values)
    if scaled is not None:
        numerators, denominator, largest = scaled
        if largest < 2**53 and denominator < 2**53:
            # both exact in float64, and IEEE division rounds correctly: the nearest double to n/d
            return numerators.astype(np.float64) / float(denominator)
    return np.array([_nearest_double(v) for v in values.flat], dtype=np.float64).reshape(values.shape)


def _nearest_double(value: object) -> float:
    """float(value), or an infinity of its sign when it is beyond the float64 range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class RationalOps:
    """Exact fractions, used to decide kinks (ReLU at 0, max-pool ties) exactly."""

    name = "rational"
    exact = True

    def array(self, values: np.ndarray) -> np.ndarray:
        return values

    def const(self, q: Fraction | int) -> Fraction:
        return Fraction(q)

    def tensordot(self, a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
        return exact_tensordot(a, b, axes, plus)

    def exp(self, x: np.ndarray) -> np.ndarray:
        raise NotRational("exp")

    log = tanh = exp

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        """The square root where it is rational (a fraction of two perfect squares); else NotRational."""
        return _map(np.asarray(x, dtype=object), _rational_sqrt)


def _rational_sqrt(value: object) -> Fraction:
    q = Fraction(value)
    if q < 0:
        raise NotRational("sqrt of a negative number")
    top, bottom = math.isqrt(q.numerator), math.isqrt(q.denominator)
    if top * top != q.numerator or bottom * bottom != q.denominator:
        raise NotRational("sqrt")
    return Fraction(top, bottom)


class IntervalOps:
    """Intervals that surely hold the exact value, at `bits` of binary precision (mpmath's interval
    arithmetic rounds outward): a sign is certain once the interval leaves 0. Used to decide kinks
    past exp and tanh, where fractions cannot go."""

    name = "interval"
    exact = False

    def __init__(self, bits: int) -> None:
        from mpmath.ctx_iv import MPIntervalContext

        self.bits = bits
        self.ctx = MPIntervalContext()  # its own context: the precision is not mpmath's global one
        self.ctx.prec = bits

    def convert(self, value: object) -> object:
        """One number as an interval: a rational exactly enclosed, an interval as it is."""
        exact = as_fraction(value)
        if exact is None:
            return value if hasattr(value, "_mpi_") else self.ctx.mpf(value)
        return self.ctx.mpf(exact.numerator) / exact.denominator

    def array(self, values: np.ndarray) -> np.ndarray:
        return _map(np.asarray(values, dtype=object), self.convert)

    def const(self, q: Fraction | int) -> object:
        return self.convert(Fraction(q))

    def exp(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self.ctx.exp)

    def log(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self.ctx.log)

    def log1p(self, x: np.ndarray) -> np.ndarray:
        """log(1 + x), tight also where x is far below 2^-bits."""
        return _map(x, self.ctx.log1p)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self.tanh_one)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self.ctx.sqrt)

    def tanh_one(self, z):
        # tanh z = 1 - 2 / (exp(2z) + 1): z occurs once, so the interval stays tight
        return 1 - 2 / (self.ctx.exp(2 * z) + 1)


class SympyOps:
    """Exact SymPy numbers or symbolic expressions: what is printed."""

    name = "sympy"
    exact = True

    def __init__(self) -> None:
        import sympy

        self._sympy = sympy

    def array(self, values: np.ndarray) -> np.ndarray:
        return _map(values, self._convert)

    def _convert(self, value: object) -> object:
        if isinstance(value, Fraction):
            return self._sympy.Rational(value.numerator, value.denominator)
        return self._sympy.sympify(value) if isinstance(value, (int, float)) else value

    def const(self, q: Fraction | int) -> object:
        return self._convert(Fraction(q))

    def tensordot(self, a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
        out = np.tensordot(a, b, axes)
        return out if plus is None else out + plus

    def exp(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.exp)

    def log(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.log)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.tanh)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.sqrt)


def _map(values: np.ndarray, f) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [f(v) for v in values.flat]
    return out


def object_array(items: list, shape: tuple) -> np.ndarray:
    """An object array of the given shape, filled row-major from `items`."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


def tensordot(ops, a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
    """np.tensordot(a, b, axes) (+ plus, broadcast) on the track of `ops`.

    An Ops class may supply `tensordot(a, b, axes, plus)` to do this faster than NumPy's object
    arithmetic (RationalOps does); the numbers must be the same.
    """
    method = getattr(ops, "tensordot", None)
    if method is not None:
        return method(a, b, axes, plus)
    out = np.tensordot(a, b, axes)
    return out if plus is None else out + plus


# --- exact arithmetic in bulk: fractions as integer numerators over one common denominator

_EXACT_TYPES = {Fraction, int}


def integer_scaled(values: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """(numerators, d, max |numerator|) with values == numerators / d, or None if not all rational.

    The numerators are an int64 array when they fit, else an object array of Python ints.
    """
    flat = values.ravel().tolist()
    if not flat:
        return np.zeros(values.shape, dtype=np.int64), 1, 0
    if not set(map(type, flat)) <= _EXACT_TYPES:
        return None
    numerators = list(map(_NUMERATOR, flat))
    denominators = list(map(_DENOMINATOR, flat))
    distinct = set(denominators)
    common = math.lcm(*distinct)
    largest = max(max(numerators), -min(numerators))
    if len(distinct) == 1:
        scaled = np.array(numerators, dtype=np.int64 if largest < 2**63 else object)
    elif common < 2**62 and largest < 2**62 // common:  # n * (common // d) fits in int64
        scaled = np.array(numerators, dtype=np.int64) * (common // np.array(denominators, dtype=np.int64))
        largest = int(np.abs(scaled).max())
    else:
        scaled = np.array([n * (common // d) for n, d in zip(numerators, denominators)], dtype=object)
        largest = max(abs(n) for n in scaled.tolist())
        if largest < 2**63:
            scaled = scaled.astype(np.int64)
    return scaled.reshape(values.shape), common, largest


_NUMERATOR = operator.attrgetter("numerator")
_DENOMINATOR = operator.attrgetter("denominator")


def from_scaled(numerators: np.ndarray, denominator: int) -> np.ndarray:
    """The object array of Fractions numerators / denominator."""
    flat = numerators.ravel().tolist()
    out = np.empty(len(flat), dtype=object)
    out[:] = [Fraction(n, denominator) for n in flat]
    return out.reshape(numerators.shape)


def _contracted(a: np.ndarray, b: np.ndarray, axes) -> int:
    """How many products each output element of np.tensordot(a, b, axes) sums."""
    if isinstance(axes, int):
        axes_a = list(range(a.ndim - axes, a.ndim))
    else:
        axes_a = axes[0] if isinstance(axes[0], (list, tuple)) else [axes[0]]
    count = 1
    for axis in axes_a:
        count *= a.shape[axis]
    return count


def exact_tensordot(a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
    """np.tensordot(a, b, axes) (+ plus) of arrays of Fractions, exactly, in integer arithmetic.

    Each operand becomes integer numerators over one common denominator; the integers are
    contracted with float64 BLAS when every partial sum stays below 2**53 (so float64 is exact),
    else with int64 when it stays below 2**63, else with Python integers; `plus` is added on the
    integers too, and each output element becomes a Fraction once. Anything that is not a
    Fraction or int falls back to NumPy's object arithmetic: the same numbers either way.
    """
    scaled_a = integer_scaled(a)
    scaled_b = integer_scaled(b) if scaled_a is not None else None
    scaled_plus = integer_scaled(np.asarray(plus)) if plus is not None and scaled_b is not None else None
    if scaled_b is None or (plus is not None and scaled_plus is None):
        out = np.tensordot(a, b, axes)
        return out if plus is None else out + plus
    (na, da, ma), (nb, db, mb) = scaled_a, scaled_b
    bound = _contracted(a, b, axes) * max(ma, 1) * max(mb, 1)  # >= every |partial sum| and every |numerator|
    if bound < 2**53:
        products = np.tensordot(na.astype(np.float64), nb.astype(np.float64), axes).astype(np.int64)
    elif bound < 2**63:
        products = np.tensordot(na.astype(np.int64), nb.astype(np.int64), axes)
    else:
        products = np.tensordot(na.astype(object), nb.astype(object), axes)
    denominator = da * db
    if scaled_plus is not None:
        np_, dp, mp = scaled_plus
        common = math.lcm(denominator, dp)
        fp, fd = common // denominator, common // dp
        if bound * fp + max(mp, 1) * fd < 2**63 and products.dtype != object:  # then fp and fd fit too
            products = products * fp + np_.astype(np.int64) * fd
        else:
            products = products.astype(object) * fp + np_.astype(object) * fd
        denominator = common
    return from_scaled(products, denominator)
