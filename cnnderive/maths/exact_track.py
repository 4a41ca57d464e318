"""Exact values of single elements of a network's layer inputs, past exp and tanh: the slow, sure
route of kinks.KinkJudge. Each element is built from only what it depends on, as a SymPy form or
as an interval enclosure at a given precision, and kept."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from .ops import IntervalOps, RationalOps, SympyOps

SYMPY_TERM_LIMIT = 20_000  # terms of SymPy forms built in all, past the fractions (about a second)

ParamsOn = Callable[[object, object], dict]  # (layer, ops) -> that layer's parameters on the ops' track


class ExactTrack:
    """Exact values of single elements of the layer inputs from `start` on, each built from only what
    it depends on, and kept: SymPy forms (up to SYMPY_TERM_LIMIT terms in all) and enclosures at
    each precision asked for.

    Through a rational layer (linear, conv, pooling, flatten, ReLU: affine once its kinks are fixed)
    an element is offset + sum of coefficient * input element, read off exactly by running the layer
    on Affine forms; through an element-wise one (tanh, sigmoid) it is that function of its own
    input element; any other layer (softmax) is run on its whole input.
    """

    def __init__(self, layers: list, params_on: ParamsOn, start: int, start_values: np.ndarray, kinks: list) -> None:
        self._layers, self._params_on, self.start = layers, params_on, start
        self._start_values, self._kinks = start_values, kinks
        self._ops: dict[object, object] = {}
        self._values: dict[tuple, object] = {}  # (track key, position, index) -> value
        self._affine: dict[int, np.ndarray] = {}  # layer -> its outputs as Affine forms of its input
        self._rows: dict[tuple, tuple[list, Fraction]] = {}  # (layer, index) -> (terms, offset)
        self._wholes: dict[tuple, np.ndarray] = {}  # (track key, layer) -> output of a layer run whole
        self._sympy_terms = SYMPY_TERM_LIMIT

    def element(self, key: object, position: int, index: tuple[int, ...]) -> object | None:
        """One element of layer `position`'s input: its SymPy form (key "sympy"; None once the forms
        grow too big) or its enclosure at `key` bits."""
        try:
            return self._element(key, position, index)
        except _TooBig:
            return None

    def constant(self, key: object, q: Fraction) -> object:
        """The number q on the track `key`."""
        return self._track(key).const(q)

    def _track(self, key: object):
        if key not in self._ops:
            self._ops[key] = SympyOps() if key == "sympy" else IntervalOps(key)
        return self._ops[key]

    def _element(self, key: object, position: int, index: tuple[int, ...]) -> object:
        if (key, position, index) in self._values:
            return self._values[key, position, index]
        ops, k = self._track(key), position - 1
        if position == self.start:
            value = ops.const(Fraction(self._start_values[index]))
        elif self._layers[k].rational:
            terms, offset = self._row(k, index)
            if key == "sympy":
                self._sympy_terms -= len(terms) + 1
                if self._sympy_terms < 0:
                    raise _TooBig
            products = [self._element(key, k, j) * ops.const(c) for j, c in terms]
            value = _add(key, products, ops.const(offset))
        elif self._layers[k].elementwise:
            x = np.empty(1, dtype=object)
            x[0] = self._element(key, k, index)
            kinks = self._kinks[k]
            alone = None if kinks is None else np.asarray(kinks)[index].reshape(1)
            value = self._layers[k].forward(x, self._params_on(self._layers[k], ops), alone, ops)[0]
        else:
            value = self._whole(key, k)[index]
        self._values[key, position, index] = value
        return value

    def _row(self, k: int, index: tuple[int, ...]) -> tuple[list, Fraction]:
        """Layer k's output element `index` as (input index, coefficient) pairs and an offset."""
        if k not in self._affine:
            layer, rational = self._layers[k], RationalOps()
            basis = np.empty(layer.in_shape, dtype=object)
            for j in np.ndindex(layer.in_shape):
                basis[j] = Affine(j)
            self._affine[k] = layer.forward(basis, self._params_on(layer, rational), self._kinks[k], rational)
        if (k, index) not in self._rows:
            form = self._affine[k][index]
            self._rows[k, index] = form.collect() if isinstance(form, Affine) else ([], Fraction(form))
        return self._rows[k, index]

    def _whole(self, key: object, k: int) -> np.ndarray:
        """Layer k's output on the track `key`, from its whole input."""
        if (key, k) not in self._wholes:
            layer, ops = self._layers[k], self._track(key)
            if key == "sympy":
                self._sympy_terms -= 2 * int(np.prod(layer.in_shape))
                if self._sympy_terms < 0:
                    raise _TooBig
            x = np.empty(layer.in_shape, dtype=object)
            for j in np.ndindex(layer.in_shape):
                x[j] = self._element(key, k, j)
            self._wholes[key, k] = layer.forward(x, self._params_on(layer, ops), self._kinks[k], ops)
        return self._wholes[key, k]


class _TooBig(Exception):
    """The SymPy forms would pass SYMPY_TERM_LIMIT."""


def _add(key: object, terms: list, offset: object) -> object:
    if key == "sympy":
        import sympy

        return sympy.Add(*terms, offset)  # in one go: adding SymPy terms one at a time is quadratic
    return sum(terms, offset)


class Affine:
    """offset + sum of coefficient * x[index], built lazily as a tree (so that sums of many terms
    stay linear in time): a rational layer run on these reads off its exact coefficients."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: object, op: str = "x", right: object = None) -> None:
        self.left, self.op, self.right = left, op, right  # "x": the input element `left`

    def __add__(self, other: object) -> Affine:
        return Affine(self, "+", other)

    __radd__ = __add__

    def __mul__(self, factor: object) -> Affine:
        return Affine(self, "*", factor)

    __rmul__ = __mul__

    def __sub__(self, other: object) -> Affine:
        return Affine(self, "+", -1 * other)

    def __rsub__(self, other: object) -> Affine:
        return Affine(-1 * self, "+", other)

    def __neg__(self) -> Affine:
        return Affine(self, "*", -1)

    def collect(self) -> tuple[list, Fraction]:
        """([(index, coefficient), ...], offset), the coefficients exact and nonzero."""
        coefficients: dict[tuple, Fraction] = {}
        offset = Fraction(0)
        stack = [(self, Fraction(1))]
        while stack:
            node, scale = stack.pop()
            if not isinstance(node, Affine):
                offset += scale * node
            elif node.op == "x":
                coefficients[node.left] = coefficients.get(node.left, 0) + scale
            elif node.op == "*":
                stack.append((node.left, scale * node.right))
            else:
                stack += [(node.left, scale), (node.right, scale)]
        return [(j, c) for j, c in coefficients.items() if c], offset
