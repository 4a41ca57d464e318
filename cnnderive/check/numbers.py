"""Numbers in `check --expr`: a formula evaluated node by node at a point, bounded whatever it is.

A formula is evaluated exactly while its fractions stay small and at a fixed 60 digits after that
(never SymPy's N, which raises its precision until it is sure and so never ends on
exp(exp(exp(100)))); a value beyond 10^±10,000 is a UserError (TooLarge). MpOps runs the layers'
forward rules at 60 digits where a network has exp, log or tanh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import numpy as np
import sympy

from ..errors import UserError

DIGITS = 60  # working precision where values are not rational
MAX_EXACT_BITS = 4_000  # a fraction that would grow beyond this is carried on at 60 digits
MAX_MAGNITUDE = 10_000  # values up to 10^10000
MAX_EXP_ARGUMENT = 23_000  # exp(23,000) is about 10^10,000

Number = Fraction | mpmath.mpf | mpmath.mpc | None  # None: undefined (a division by zero)
_MAGNITUDE_BITS = math.ceil(MAX_MAGNITUDE * math.log2(10))

# max and min as a student writes them, never evaluated symbolically: SymPy's Max compares its
# arguments with each other (50 names take seconds); they are evaluated here, on numbers
MAXIMUM = sympy.Function("max", real=True)
MINIMUM = sympy.Function("min", real=True)


class TooLarge(UserError):
    """A value beyond what check works with: one line, exit 2."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: too large to work with (check works with values up to 10^±{MAX_MAGNITUDE:,})", field="--expr"
        )


@dataclass(frozen=True)
class Point:
    """Every symbol's value at one point, and the values of the expressions evaluated there so far."""

    values: dict[sympy.Symbol, Fraction | mpmath.mpf]
    memo: dict[sympy.Basic, Number] = field(default_factory=dict)
    crosses_kink: bool = False  # a ReLU mask or a max-pool choice would be decided otherwise here


class MpOps:
    """60-digit mpmath numbers: the forward rules at a point of a network with exp, log or tanh."""

    name = "mpmath"
    exact = False

    def array(self, values: np.ndarray) -> np.ndarray:
        return _map(values, _mp)

    def const(self, q) -> mpmath.mpf:
        return _mp(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.exp)

    def log(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.log)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.tanh)


def _map(values: np.ndarray, f) -> np.ndarray:
    out = np.empty(np.shape(values), dtype=object)
    out.flat[:] = [f(v) for v in np.asarray(values, dtype=object).flat]
    return out


def check_exp_argument(argument: sympy.Expr, constants: dict[sympy.Symbol, Fraction]) -> None:
    """TooLarge when the argument is a constant beyond ±23,000 (with `constants` for symbols that stand
    for numbers): SymPy itself never ends on exp(exp(10^40)) + 1, as it evaluates the constant to
    compare it, so this is asked before exp is built."""
    if argument.free_symbols <= constants.keys():
        with mpmath.workdps(DIGITS):
            value = _evaluate(argument, Point(constants))
            if value is not None:
                _exp(value)


def _evaluate(expr: sympy.Basic, point: Point) -> Number:
    """One node after its arguments, each node once per point (closed forms share their subtrees)."""
    memo = point.memo
    if expr in memo:
        return memo[expr]
    if expr.is_Symbol:
        if expr not in point.values:
            raise ValueError(f"{expr} has no value: it is not an element of this network")
        value = point.values[expr]
    elif expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
    elif expr.is_Float:
        value = mpmath.mpf(expr)
    elif expr in _CONSTANTS:
        value = _CONSTANTS[expr]()
    else:
        args = [_evaluate(arg, point) for arg in expr.args]
        rule = _RULES.get(expr.func) or _RULES.get(type(expr))
        if rule is None:
            raise TypeError(f"check cannot evaluate {type(expr).__name__} (in {str(expr)[:80]})")
        value = None if any(arg is None for arg in args) else rule(*args)
    memo[expr] = value
    return value


def _bits(q: Fraction) -> int:
    return q.numerator.bit_length() + q.denominator.bit_length()


def _mp(value: Number):
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    return value


def _bounded(value: Number) -> Number:
    """The value, or TooLarge when it is beyond 10^10000."""
    if isinstance(value, (mpmath.mpf, mpmath.mpc)) and mpmath.mag(value) > _MAGNITUDE_BITS:
        raise TooLarge("a value in the formula is beyond 10^10000")
    return value


def _sum(*values: Number) -> Number:
    total: Number = Fraction(0)
    for value in values:
        if isinstance(total, Fraction) and isinstance(value, Fraction):
            total += value
            if _bits(total) <= MAX_EXACT_BITS:
                continue
        total = _bounded(_mp(total) + _mp(value))
    return total


def _product(*values: Number) -> Number:
    total: Number = Fraction(1)
    for value in values:
        if (
            isinstance(total, Fraction)
            and isinstance(value, Fraction)
            and _bits(total) + _bits(value) <= MAX_EXACT_BITS
        ):
            total *= value
        else:
            total = _bounded(_mp(total) * _mp(value))
    return total


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, Fraction) and exponent.denominator == 2 and isinstance(base, Fraction) and base > 0:
        root = _exact_sqrt(base)
        if root is not None:
            base, exponent = root, Fraction(exponent.numerator)
    if base == 0:
        if isinstance(exponent, Fraction) and exponent == 0:
            return Fraction(1)
        return None if mpmath.re(_mp(exponent)) < 0 else Fraction(0)
    whole = isinstance(exponent, Fraction) and exponent.denominator == 1
    if whole and isinstance(base, Fraction) and _bits(base) * abs(exponent.numerator) <= MAX_EXACT_BITS:
        return base**exponent.numerator
    base, exponent = _mp(base), _mp(exponent)
    if abs(mpmath.mag(base)) * abs(exponent) > 2 * _MAGNITUDE_BITS:
        raise TooLarge(f"a power with exponent {mpmath.nstr(exponent, 6)} in the formula")
    return _bounded(base ** (int(exponent) if whole else exponent))


def _exact_sqrt(q: Fraction) -> Fraction | None:
    num, den = math.isqrt(q.numerator), math.isqrt(q.denominator)
    return Fraction(num, den) if num * num == q.numerator and den * den == q.denominator else None


def _exp(x: Number) -> Number:
    if x == 0:
        return Fraction(1)
    if abs(mpmath.re(_mp(x))) > MAX_EXP_ARGUMENT:
        raise TooLarge(f"exp of {mpmath.nstr(mpmath.re(_mp(x)), 6)} in the formula (beyond exp(±{MAX_EXP_ARGUMENT:,}))")
    return mpmath.exp(_mp(x))


def _log(x: Number) -> Number:
    if x == 0:
        return None
    return Fraction(0) if x == 1 else mpmath.log(_mp(x))


def _tanh(x: Number) -> Number:
    return Fraction(0) if x == 0 else mpmath.tanh(_mp(x))


def _extreme(pick):
    def rule(*args: Number) -> Number:
        if not all(_real(arg) for arg in args):
            return None
        if all(isinstance(arg, Fraction) for arg in args):
            return pick(args)
        return pick(_mp(arg) for arg in args)

    return rule


_RULES = {
    sympy.Add: _sum,
    sympy.Mul: _product,
    sympy.Pow: _power,
    sympy.exp: _exp,
    sympy.log: _log,
    sympy.tanh: _tanh,
    sympy.Abs: lambda x: abs(x),
    MAXIMUM: _extreme(max),
    sympy.Max: _extreme(max),
    MINIMUM: _extreme(min),
    sympy.Min: _extreme(min),
}
_CONSTANTS = {
    sympy.E: lambda: +mpmath.e,
    sympy.pi: lambda: +mpmath.pi,
    sympy.I: lambda: mpmath.mpc(0, 1),
    sympy.nan: lambda: None,
    sympy.zoo: lambda: None,
    sympy.oo: lambda: None,
    -sympy.oo: lambda: None,
}


def _real(value: Number) -> bool:
    return isinstance(value, (Fraction, mpmath.mpf))


def _negated(value: Number, sign: int) -> Number:
    return value if sign == 1 or value is None else -value


def _raw(value) -> Number:
    """A number of any kind (Fraction, int, mpmath, SymPy) as Fraction or mpmath; None when undefined."""
    if isinstance(value, (Fraction, mpmath.mpf, mpmath.mpc)) or value is None:
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return mpmath.mpf(value)
    value = sympy.sympify(value)
    if not value.is_number:
        return None
    with mpmath.workdps(DIGITS):
        return _evaluate(value, Point({}))


def _sympy_number(value: Number) -> sympy.Expr:
    """A value for the printers: exact when it is a fraction that a float can show, else a 60-digit Float."""
    if value is None:
        return sympy.nan
    if isinstance(value, Fraction):
        if abs(value.numerator.bit_length() - value.denominator.bit_length()) < 1_000:
            return sympy.Rational(value.numerator, value.denominator)
        value = _mp(value)
    if isinstance(value, mpmath.mpc):
        real, imaginary = sympy.Float(value.real, DIGITS), sympy.Float(value.imag, DIGITS)
        return real if value.imag == 0 else real + sympy.I * imaginary
    return sympy.Float(value, DIGITS)
