"""Closed forms as functions of the inputs and parameters: values at points, identity, nearby points.

The target and the config's kinks (ReLU masks, max-pool winners) stay fixed. A point gives values
to the inputs and parameters; every intermediate then follows from the layers' own forward rules,
exactly (fractions) on a rational network and to 60 digits (mpmath) otherwise. Two formulas are
the same function when they agree at the config's numbers and at random nearby points. A point
that `check` quotes to the student is one where the kinks would be decided as here: it never
crosses a kink. check/numbers.py evaluates, bounded; check/term_by_term.py compares term by term.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import mpmath
import numpy as np
import sympy

from ..maths.ops import RationalOps
from .numbers import DIGITS, MpOps, Number, Point, _evaluate, _mp, _negated, _raw, _real, _sympy_number

MAX_NEARBY_TRIALS = 100  # inputs and parameters moved one at a time to find where two formulas differ
LEAVES = ("input", "weight", "bias")  # what a point moves; the target stays


@dataclass(frozen=True)
class Nearby:
    """A point near the config's numbers where two formulas differ, on this side of every kink; or,
    when they differ only across one (`across_kink`), where that is, without values: there the
    chain rule of this config is not the gradient, so no value from there is quoted."""

    changes: tuple[tuple[sympy.Symbol, object, object], ...]  # (symbol, value here, value there)
    yours: object
    right: object
    across_kink: bool = False
    exact_kink: bool = False  # the config itself sits on a kink (a ReLU input exactly 0, a max-pool tie)


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
            out, crosses = arrays["input"], False
            for layer, kinks in zip(network.layers, network.kinks):
                params = {p: arrays[f"{layer.name}.{p}"] for p in network.params[layer.name]}
                crosses = crosses or (bool(changes) and not _same_kinks(layer.decide(out), kinks))
                out = arrays[f"{layer.name}.output"] = layer.forward(out, params, kinks, ops)
            arrays["loss"] = np.array(network.loss.value(out, arrays["target"], ops), dtype=object)
            symbols = self.symbolic.arrays
            return Point(
                {
                    symbol: _raw(value)
                    for name, array in arrays.items()
                    for symbol, value in zip(symbols[name].flat, np.asarray(array, dtype=object).flat)
                },
                crosses_kink=crosses,
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
        """One input or parameter moved by ±1/10 (then ±1/100, or all of them by 1/10) so that the two
        formulas differ, at a point where every kink is decided as here (else the right formula, with
        this config's masks, is not the gradient there); failing that, where they differ across a kink."""
        across = None
        for change in self._trials():
            point = self.at(change)
            if point.crosses_kink and across is not None:
                continue
            if not self.equal(self.number(given, point), self.number(right, point)):
                if not point.crosses_kink:
                    return self._nearby(change, point, given, right)
                across = change
        if across is None:
            return None
        return Nearby(self._changes(across), None, None, across_kink=True, exact_kink=self.exact_kink)

    def _trials(self):
        leaves = self._leaves_in_order()[:MAX_NEARBY_TRIALS]
        for step in (Fraction(1, 10), Fraction(1, 100)):
            for symbol, value in leaves:
                yield {symbol: value + step}
                yield {symbol: value - step}
        yield {s: v + Fraction(1, 10) for s, v in self.leaves.items()}

    def _changes(self, change: dict) -> tuple:
        changes = tuple((s, _sympy_number(self.leaves[s]), _sympy_number(v)) for s, v in change.items())
        return changes if len(changes) == 1 else ()

    def _nearby(self, change: dict, point: Point, given: sympy.Expr, right: sympy.Expr) -> Nearby:
        yours, right_value = self.number(given, point), self.number(right, point)
        return Nearby(self._changes(change), _sympy_number(yours), _sympy_number(right_value))

    @cached_property
    def exact_kink(self) -> bool:
        """True when a ReLU input is exactly 0 or a max-pool window tied at the config's numbers."""
        network, values = self.network, self.network.rational_values
        for layer, x in zip(network.layers, values):
            if layer.kind in ("relu", "leaky_relu") and any(v == 0 for v in np.asarray(x, dtype=object).flat):
                return True
            if layer.kind == "maxpool2d" and layer.ties(x):
                return True
        return False

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


def _same_kinks(here, there) -> bool:
    """The same kink decisions (None, a ReLU mask, max-pool (rows, cols) winners)."""
    if here is None or there is None:
        return here is None and there is None
    if isinstance(here, tuple):
        return len(here) == len(there) and all(_same_kinks(a, b) for a, b in zip(here, there))
    return bool(np.array_equal(np.asarray(here), np.asarray(there)))
