"""Closed forms as functions of the inputs and parameters: values at points, identity, term by term.

The target and the config's kinks (ReLU masks, max-pool winners) stay fixed. A point gives values
to the inputs and parameters; every intermediate then follows from the layers' own forward rules,
exactly (fractions) on a rational network and to 60 digits (mpmath) otherwise. Two formulas are
the same function when they agree at the config's numbers and at random nearby points.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import mpmath
import numpy as np
import sympy

from ..derivation.symbolic import Symbolic, expanded_terms
from ..maths.ops import RationalOps

DIGITS = 60  # working precision where values are not rational
MAX_COMPARED_TERMS = 2_000  # expanded forms compared term by term up to this size
LEAVES = ("input", "weight", "bias")  # what a point moves; the target stays


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


class MpOps:
    """60-digit mpmath numbers: the forward rules at a point of a network with exp, log or tanh."""

    name = "mpmath"
    exact = False

    def array(self, values: np.ndarray) -> np.ndarray:
        return _map(values, _mpf)

    def const(self, q) -> mpmath.mpf:
        return _mpf(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.exp)

    def log(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.log)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return _map(x, mpmath.tanh)


def _mpf(value) -> mpmath.mpf:
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    return mpmath.mpf(value)


def _map(values: np.ndarray, f) -> np.ndarray:
    out = np.empty(np.shape(values), dtype=object)
    out.flat[:] = [f(v) for v in np.asarray(values, dtype=object).flat]
    return out


def _sympy_number(value) -> sympy.Expr:
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, mpmath.mpf):
        return sympy.Float(value, DIGITS)
    return sympy.sympify(value)


class Evaluator:
    """Any expression over the network's symbols as a number: at the config's numbers or at a nearby point."""

    def __init__(self, symbolic: Symbolic, points: int = 3, seed: int = 2016) -> None:
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
    def base(self) -> dict[sympy.Symbol, object]:
        return self.at({})

    @cached_property
    def random(self) -> list[dict[sympy.Symbol, object]]:
        rng = random.Random(self.seed)
        return [
            self.at({s: v + Fraction(rng.randint(-1000, 1000), 10007) for s, v in self.leaves.items()})
            for _ in range(self.points)
        ]

    def at(self, changes: dict[sympy.Symbol, Fraction]) -> dict[sympy.Symbol, object]:
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
            return {
                symbol: _sympy_number(value)
                for name, array in arrays.items()
                for symbol, value in zip(symbols[name].flat, np.asarray(array, dtype=object).flat)
            }

    def value(self, expr: sympy.Expr, values: dict) -> object:
        result = sympy.sympify(expr).xreplace(values)
        if not self.exact and not result.is_Rational:
            result = sympy.N(result, DIGITS)
        return result

    def equal(self, a, b) -> bool:
        """Equal exactly (rationals) or to 40 of the 60 digits; never equal when either is undefined."""
        if not (_finite(a) and _finite(b)):
            return False
        difference = sympy.sympify(a - b)
        if difference.is_Rational:
            return difference == 0
        scale = max(1, abs(sympy.N(a, DIGITS)), abs(sympy.N(b, DIGITS)))
        return bool(abs(sympy.N(difference, DIGITS)) <= sympy.Float("1e-40") * scale)

    def identical(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        """The same function of the inputs and parameters: equal here and at the random nearby points."""
        return all(self.equal(self.value(a, p), self.value(b, p)) for p in [self.base, *self.random])

    def same_function(self, a: sympy.Expr, b: sympy.Expr, sign: int = 1) -> bool:
        """a equals sign * b at the random nearby points (enough to tell factors apart)."""
        return all(self.equal(self.value(a, p), sign * self.value(b, p)) for p in self.random)

    def nearby(self, given: sympy.Expr, right: sympy.Expr) -> Nearby | None:
        """One input or parameter moved by 1/10 (or all of them) so that the two formulas differ."""
        step = Fraction(1, 10)
        trials = [{s: v + step} for s, v in self._leaves_in_order()]
        trials.append({s: v + step for s, v in self.leaves.items()})
        for change in trials:
            values = self.at(change)
            yours, right_value = self.value(given, values), self.value(right, values)
            if not self.equal(yours, right_value):
                changes = tuple((s, _sympy_number(self.leaves[s]), _sympy_number(v)) for s, v in change.items())
                return Nearby(changes if len(changes) == 1 else (), yours, right_value)
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


def _finite(value) -> bool:
    value = sympy.sympify(value)
    return bool(value.is_number and value.is_finite is not False and value.is_extended_real is not False)


# -- term by term ------------------------------------------------------------------------------


def compare_terms(ev: Evaluator, given: sympy.Expr, right: sympy.Expr) -> Comparison:
    """Take out the factors both formulas share, expand the rest and compare them term by term."""
    given_coeff, given_factors = _factors(given)
    right_coeff, right_factors = _factors(right)
    common: list[sympy.Expr] = []
    rest: list[sympy.Expr] = []
    for factor in given_factors:
        match = next((k for k, f in enumerate(right_factors) if ev.same_function(factor, f)), None)
        if match is None:
            match = next((k for k, f in enumerate(right_factors) if ev.same_function(factor, f, -1)), None)
            if match is None:
                rest.append(factor)
                continue
            given_coeff = -given_coeff
        common.append(right_factors.pop(match))
    if given_coeff == right_coeff and common:
        common.insert(0, right_coeff)
        given_coeff = right_coeff = sympy.Integer(1)
    yours = given_coeff * sympy.Mul(*rest)
    theirs = right_coeff * sympy.Mul(*right_factors)
    shared = sympy.Mul(*common, evaluate=False) if common else sympy.Integer(1)
    defined = ev.symbolic.definitions
    used = {s for s in sympy.sympify(yours).free_symbols if s in defined}
    if not used <= {s for s in sympy.sympify(theirs).free_symbols if s in defined}:
        # other intermediates than the chain rule's: compare over the leaves (softmax, sigmoid, tanh kept)
        forms = ev.polynomial_forms
        yours, theirs = sympy.sympify(yours).xreplace(forms), sympy.sympify(theirs).xreplace(forms)
    size = max(expanded_terms(yours), expanded_terms(theirs))
    if size > MAX_COMPARED_TERMS:
        reason = f"the expanded forms would have about {size:,} terms (limit {MAX_COMPARED_TERMS:,})"
        return Comparison(shared, (), (), (), 0, reason)
    mine, good = _coefficients(yours), _coefficients(theirs)
    missing = tuple((m, c) for m, c in good.items() if m not in mine)
    extra = tuple((m, c) for m, c in mine.items() if m not in good)
    wrong = tuple((m, mine[m], c) for m, c in good.items() if m in mine and mine[m] != c)
    matching = sum(1 for m, c in good.items() if m in mine and mine[m] == c)
    return Comparison(shared, missing, extra, wrong, matching)


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
