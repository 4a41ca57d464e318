"""Closed forms as functions of the inputs and parameters: values at points, identity, term by term.

The target and the config's kinks (ReLU masks, max-pool winners) stay fixed. A point gives values
to the inputs and parameters; every intermediate then follows from the layers' own forward rules,
exactly (fractions) on a rational network and to 60 digits (mpmath) otherwise. Two formulas are
the same function when they agree at the config's numbers and at random nearby points.

All of it is bounded, whatever formula a student types: a formula is evaluated node by node,
exactly while its fractions stay small and at a fixed 60 digits after that (never SymPy's N,
which raises its precision until it is sure and so never ends on exp(exp(exp(100)))); a value
beyond 10^±10,000 is a UserError; nothing is expanded before its size is estimated.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import mpmath
import numpy as np
import sympy

from ..derivation.budget import tree_size
from ..errors import UserError
from ..maths.ops import RationalOps

DIGITS = 60  # working precision where values are not rational
MAX_EXACT_BITS = 4_000  # a fraction that would grow beyond this is carried on at 60 digits
MAX_MAGNITUDE = 10_000  # values up to 10^10000
MAX_EXP_ARGUMENT = 23_000  # exp(23,000) is about 10^10,000
MAX_COMPARED_TERMS = 2_000  # expanded forms compared term by term up to this size ...
MAX_COEFFICIENT_BITS = 10_000  # ... with coefficients up to this size
MAX_COMPARED_NODES = 5_000  # a formula bigger than this is not taken apart (factor_terms takes seconds)
MAX_NEARBY_TRIALS = 100  # inputs and parameters moved one at a time to find where two formulas differ
LEAVES = ("input", "weight", "bias")  # what a point moves; the target stays

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
class Nearby:
    """A point near the config's numbers where two formulas differ."""

    changes: tuple[tuple[sympy.Symbol, object, object], ...]  # (symbol, value here, value there)
    yours: object
    right: object


@dataclass(frozen=True)
class Comparison:
    """Two formulas term by term, after taking out the factors they share."""

    common: sympy.Expr  # the shared factor (1 when there is none)
    missing: tuple[tuple[sympy.Expr, object], ...]  # (monomial, right coefficient)
    extra: tuple[tuple[sympy.Expr, object], ...]  # (monomial, your coefficient)
    wrong: tuple[tuple[sympy.Expr, object, object], ...]  # (monomial, yours, right)
    matching: int
    skipped: str | None = None  # why there is no comparison (too many terms)


@dataclass(frozen=True)
class Point:
    """Every symbol's value at one point, and the values of the expressions evaluated there so far."""

    values: dict[sympy.Symbol, Fraction | mpmath.mpf]
    memo: dict[sympy.Basic, Number] = field(default_factory=dict)


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


class Evaluator:
    """Any expression over the network's symbols as a number: at the config's numbers or at a nearby point."""

    def __init__(self, symbolic, points: int = 3, seed: int = 2016) -> None:
        self.symbolic = symbolic
        self.network = symbolic.network
        self.exact = self.network.is_rational()
        self.points, self.seed = points, seed
        self.tensors = symbolic.derivation.tensors
        self.leaves: dict[sympy.Symbol, Fraction] = {}
        for tensor in self.tensors.values():
            if tensor.role in LEAVES:
                array = self._array(tensor)
                for index in tensor.indices():
                    self.leaves[symbolic.symbol(tensor, index)] = Fraction(array[index])

    def _array(self, tensor) -> np.ndarray:
        if tensor.role == "input":
            return self.network.input
        return self.network.parameter(tensor.name)

    @cached_property
    def base(self) -> Point:
        return self.at({})

    @cached_property
    def random(self) -> list[Point]:
        rng = random.Random(self.seed)
        return [
            self.at({s: v + Fraction(rng.randint(-1000, 1000), 10007) for s, v in self.leaves.items()})
            for _ in range(self.points)
        ]

    def at(self, changes: dict[sympy.Symbol, Fraction]) -> Point:
        """Every symbol's value when some inputs and parameters take other values (kinks kept)."""
        network, ops = self.network, RationalOps() if self.exact else MpOps()
        arrays = {name: np.array(self._array(t), dtype=object) for name, t in self.tensors.items() if t.role in LEAVES}
        for symbol, value in changes.items():
            tensor, index = self.symbolic.owner[symbol]
            arrays[tensor.name][index] = value
        with mpmath.workdps(DIGITS):
            arrays = {name: ops.array(array) for name, array in arrays.items()}
            arrays["target"] = ops.array(np.array(network.target, dtype=object))
            out = arrays["input"]
            for layer, kinks in zip(network.layers, network.kinks):
                params = {p: arrays[f"{layer.name}.{p}"] for p in network.params[layer.name]}
                out = arrays[f"{layer.name}.output"] = layer.forward(out, params, kinks, ops)
            arrays["loss"] = np.array(network.loss.value(out, arrays["target"], ops), dtype=object)
            symbols = self.symbolic.arrays
            return Point(
                {
                    symbol: _raw(value)
                    for name, array in arrays.items()
                    for symbol, value in zip(symbols[name].flat, np.asarray(array, dtype=object).flat)
                }
            )

    def number(self, expr, point: Point) -> Number:
        """The value of an expression at a point: a fraction while exact and small, else 60 mpmath digits."""
        with mpmath.workdps(DIGITS):
            return _evaluate(sympy.sympify(expr), point)

    def value(self, expr, point: Point) -> sympy.Expr:
        """The value as a SymPy number (Rational, Float, a complex number, or nan where undefined)."""
        return _sympy_number(self.number(expr, point))

    def equal(self, a, b) -> bool:
        """Equal exactly (fractions) or to 40 of the 60 digits; never equal when either is undefined or complex."""
        a, b = _raw(a), _raw(b)
        if not (_real(a) and _real(b)):
            return False
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return a == b
        with mpmath.workdps(DIGITS):
            a, b = _mp(a), _mp(b)
            return bool(abs(a - b) <= mpmath.mpf("1e-40") * max(1, abs(a), abs(b)))

    def identical(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        """The same function of the inputs and parameters: equal here and at the random nearby points."""
        return all(self.equal(self.number(a, p), self.number(b, p)) for p in [self.base, *self.random])

    def same_function(self, a: sympy.Expr, b: sympy.Expr, sign: int = 1) -> bool:
        """a equals sign * b at the random nearby points (enough to tell factors apart)."""
        return all(self.equal(self.number(a, p), _negated(self.number(b, p), sign)) for p in self.random)

    def nearby(self, given: sympy.Expr, right: sympy.Expr) -> Nearby | None:
        """One input or parameter moved by 1/10 (or all of them) so that the two formulas differ."""
        step = Fraction(1, 10)
        trials = [{s: v + step} for s, v in self._leaves_in_order()[:MAX_NEARBY_TRIALS]]
        trials.append({s: v + step for s, v in self.leaves.items()})
        for change in trials:
            point = self.at(change)
            yours, right_value = self.number(given, point), self.number(right, point)
            if not self.equal(yours, right_value):
                changes = tuple((s, _sympy_number(self.leaves[s]), _sympy_number(v)) for s, v in change.items())
                return Nearby(changes if len(changes) == 1 else (), _sympy_number(yours), _sympy_number(right_value))
        return None

    def _leaves_in_order(self):
        """Parameters first (the layer nearest the output first), then the inputs."""
        leaves = list(self.leaves.items())
        params = [(s, v) for s, v in leaves if not s.name.startswith("input")]
        inputs = [(s, v) for s, v in leaves if s.name.startswith("input")]
        return params[::-1] + inputs

    @cached_property
    def polynomial_forms(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Intermediates defined by polynomials, replaced down to the leaves; softmax, sigmoid, tanh kept."""
        forms: dict[sympy.Symbol, sympy.Expr] = {}
        loss = self.symbolic.arrays["loss"][()]
        for symbol, rule in self.symbolic.definitions.items():
            replaced = rule.xreplace(forms)
            if symbol != loss and not replaced.has(sympy.exp, sympy.log, sympy.tanh):
                forms[symbol] = replaced
        return forms


# -- numbers -----------------------------------------------------------------------------------


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


# -- term by term ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """An upper estimate of an expanded form: its terms, the bits of its largest coefficient, and the
    terms that expand makes inside function arguments and denominators on the way (`work`)."""

    terms: int
    bits: int
    work: int = 0

    def too_big(self) -> bool:
        return self.terms + self.work > MAX_COMPARED_TERMS or self.bits > MAX_COEFFICIENT_BITS


_TOO_BIG = Size(MAX_COMPARED_TERMS + 1, MAX_COEFFICIENT_BITS + 1)


def expansion_size(expr: sympy.Basic, forms: dict, memo: dict) -> Size:
    """What sympy.expand(expr.xreplace(forms)) would give at most, without building it."""
    if expr in memo:
        return memo[expr]
    if expr.is_Symbol and expr in forms:
        size = expansion_size(forms[expr], forms, memo)
    elif expr.is_Rational:
        size = Size(1, int(expr.p).bit_length() + int(expr.q).bit_length())
    elif not expr.args:
        size = Size(1, 0)
    else:
        parts = [expansion_size(arg, forms, memo) for arg in expr.args]
        work = sum(p.work for p in parts)
        if any(part.too_big() for part in parts):
            size = _TOO_BIG
        elif expr.is_Add:
            size = Size(sum(p.terms for p in parts), max(p.bits for p in parts) + len(parts).bit_length(), work)
        elif expr.is_Mul:
            terms = 1
            for part in parts:
                terms = min(terms * part.terms, MAX_COMPARED_TERMS + 1)
            size = Size(terms, sum(p.bits for p in parts), work)
        elif expr.is_Pow and expr.exp.is_Rational:
            size = _power_size(parts[0], expr.exp)
        else:  # a function is one factor, its arguments expanded inside it
            size = Size(1, 0, work + sum(p.terms for p in parts))
    size = _TOO_BIG if size.too_big() else size
    memo[expr] = size
    return size


def _power_size(base: Size, exponent: sympy.Rational) -> Size:
    """(a + b)^n expands to (terms)^n terms; a denominator or a root is expanded inside the power."""
    n = abs(int(exponent.p)) // int(exponent.q)
    if base.terms > 1 and n * math.log2(base.terms) > math.log2(MAX_COMPARED_TERMS + 1):
        return _TOO_BIG
    expanded = Size(base.terms**n, base.bits * n + n * base.terms.bit_length(), base.work)
    if exponent.is_Integer and exponent > 0:
        return expanded
    inside = max(expanded.terms, base.terms)
    return Size(expanded.terms if exponent > 0 else 1, expanded.bits if exponent > 0 else 0, base.work + inside)


def compare_terms(ev: Evaluator, given: sympy.Expr, right: sympy.Expr) -> Comparison:
    """Take out the factors both formulas share, expand the rest and compare them term by term."""
    if tree_size(given, MAX_COMPARED_NODES) > MAX_COMPARED_NODES:
        reason = f"your formula has more than {MAX_COMPARED_NODES:,} parts"
        return Comparison(sympy.Integer(1), (), (), (), 0, reason)
    given_coeff, given_factors = _factors(given)
    right_coeff, right_factors = _factors(right)
    right_values = [[ev.number(f, p) for p in ev.random] for f in right_factors]
    common: list[sympy.Expr] = []
    rest: list[sympy.Expr] = []
    for factor in given_factors:
        values = [ev.number(factor, p) for p in ev.random]
        match, sign = _matching(ev, values, right_values)
        if match is None:
            rest.append(factor)
            continue
        given_coeff *= sign
        common.append(right_factors.pop(match))
        right_values.pop(match)
    if given_coeff == right_coeff and common:
        common.insert(0, right_coeff)
        given_coeff = right_coeff = sympy.Integer(1)
    yours = sympy.sympify(given_coeff * sympy.Mul(*rest))
    theirs = sympy.sympify(right_coeff * sympy.Mul(*right_factors))
    shared = sympy.Mul(*common, evaluate=False) if common else sympy.Integer(1)
    defined = ev.symbolic.definitions
    forms: dict = {}
    if not {s for s in yours.free_symbols if s in defined} <= {s for s in theirs.free_symbols if s in defined}:
        forms = ev.polynomial_forms  # other intermediates than the chain rule's: compare over the leaves
    memo: dict = {}
    if expansion_size(yours, forms, memo).too_big() or expansion_size(theirs, forms, memo).too_big():
        reason = (
            f"the expanded forms would have more than {MAX_COMPARED_TERMS:,} terms "
            f"(or coefficients of more than {MAX_COEFFICIENT_BITS:,} bits)"
        )
        return Comparison(shared, (), (), (), 0, reason)
    mine, good = _coefficients(yours.xreplace(forms)), _coefficients(theirs.xreplace(forms))
    missing = tuple((m, c) for m, c in good.items() if m not in mine)
    extra = tuple((m, c) for m, c in mine.items() if m not in good)
    wrong = tuple((m, mine[m], c) for m, c in good.items() if m in mine and mine[m] != c)
    matching = sum(1 for m, c in good.items() if m in mine and mine[m] == c)
    return Comparison(shared, missing, extra, wrong, matching)


def _matching(ev: Evaluator, values: list, candidates: list[list]) -> tuple[int | None, int]:
    """The first candidate equal to the values, or to minus the values, and which sign it took."""
    for sign in (1, -1):
        for k, theirs in enumerate(candidates):
            if all(ev.equal(a, _negated(b, sign)) for a, b in zip(values, theirs)):
                return k, sign
    return None, 1


def _factors(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Expr]]:
    """The numeric coefficient and the other factors (a power counted as repeated factors)."""
    coeff, factors = sympy.factor_terms(sympy.sympify(expr)).as_coeff_mul()
    flat = []
    for factor in factors:
        if factor.is_Pow and factor.exp.is_Integer and 0 < factor.exp <= 8:
            flat += [factor.base] * int(factor.exp)
        else:
            flat.append(factor)
    return coeff, flat


def _coefficients(expr: sympy.Expr) -> dict[sympy.Expr, object]:
    expanded = sympy.expand(expr)
    if expanded == 0:
        return {}
    return {m: c for m, c in expanded.as_coefficients_dict().items() if c != 0}
