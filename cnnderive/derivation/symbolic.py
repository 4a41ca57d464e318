"""Closed forms: the network's rules and gradients as SymPy expressions over named symbols.

Every element has a symbol named by its canonical name (`conv1.output[0,1,1]`). Each layer's
output symbols are defined by its forward rule over the previous layer's symbols, and the
backward pass runs on the same symbols, so a gradient comes out in textbook form (in terms of
intermediates such as o and z); `expand` substitutes the definitions down to inputs and
parameters. Kinks (ReLU masks, max-pool winners) are those of the config's numbers.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy

from ..errors import UserError
from ..maths.network import Pass
from ..maths.ops import SympyOps, object_array
from .budget import expanded_terms, tree_size, work
from .build import Derivation
from .names import Tensor


class Symbolic:
    """SymPy symbols, definitions and closed-form gradients of one network."""

    def __init__(self, derivation: Derivation) -> None:
        limit = derivation.budget.symbolic_work
        if work(derivation.network) > limit:
            raise UserError(
                f"the network is too big for closed forms ({work(derivation.network):,} multiply-adds, "
                f"limit {limit:,}); values and chain-rule terms still work without --expand"
            )
        self.derivation = derivation
        self.network = derivation.network
        self.ops = SympyOps()
        self.arrays: dict[str, np.ndarray] = {}
        self.deltas: dict[str, np.ndarray] = {}  # dL/d(element) as a symbol of its own
        self.owner: dict[sympy.Symbol, tuple[Tensor, tuple[int, ...]]] = {}
        self.delta_owner: dict[sympy.Symbol, tuple[Tensor, tuple[int, ...]]] = {}
        for tensor in derivation.tensors.values():
            indices = list(tensor.indices())
            symbols = [sympy.Symbol(tensor.element(i), real=True) for i in indices]
            deltas = [sympy.Symbol("dL/d" + tensor.element(i), real=True) for i in indices]
            self.arrays[tensor.name] = object_array(symbols, tensor.shape)
            self.deltas[tensor.name] = object_array(deltas, tensor.shape)
            self.owner.update((symbol, (tensor, i)) for symbol, i in zip(symbols, indices))
            self.delta_owner.update((symbol, (tensor, i)) for symbol, i in zip(deltas, indices))

    def symbol(self, tensor: Tensor, index: tuple[int, ...] = ()) -> sympy.Symbol:
        return self.arrays[tensor.name][index]

    def _params(self, layer) -> dict[str, np.ndarray]:
        return {param: self.arrays[f"{layer.name}.{param}"] for param in self.network.params[layer.name]}

    def _outputs(self, position: int) -> np.ndarray:
        if position < 0:
            return self.arrays["input"]
        return self.arrays[f"{self.network.layers[position].name}.output"]

    def _layer_input(self, position: int):
        """The symbols layers[position] reads: one array, or a tuple of them for add and concat."""
        values = [self._outputs(k - 1) for k in range(len(self.network.layers) + 1)]
        return self.network.layer_input(values, position)

    @cached_property
    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Each layer-output symbol (and the loss) -> its rule over the previous layer's symbols."""
        defined = {}
        kinks = self.network.kinks
        for position, layer in enumerate(self.network.layers):
            rule = layer.forward(self._layer_input(position), self._params(layer), kinks[position], self.ops)
            for symbol, expr in zip(self._outputs(position).flat, np.asarray(rule).flat):
                defined[symbol] = sympy.sympify(expr)
        out = self._outputs(len(self.network.layers) - 1)
        loss = self.network.loss.value(out, self.arrays["target"], self.ops)
        if self.network.decay.rate:  # J = L + λ/2·Σw², over the parameter symbols
            params = {layer.name: self._params(layer) for layer in self.network.layers}
            loss = loss + self.network.decay.penalty(params, self.ops)
        defined[self.arrays["loss"][()]] = sympy.sympify(loss)
        return defined

    def rule(self, tensor: Tensor, index: tuple[int, ...]) -> sympy.Expr:
        """The forward rule of one layer-output element (or the loss), over the previous layer's symbols."""
        return self.definitions[self.symbol(tensor, index)]

    @cached_property
    def backward(self) -> Pass:
        """The backward pass on symbols: every delta and gradient in terms of intermediates."""
        params = {layer.name: self._params(layer) for layer in self.network.layers}
        values = [self._outputs(k - 1) for k in range(len(self.network.layers) + 1)]
        return self.network.run(self.ops, inputs=values[0], params=params, target=self.arrays["target"], values=values)

    def local_backward(self, position: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One layer's backward rule: dL/d(input) (a tuple for add and concat) and dL/d(params) over
        the dL/d(output) symbols."""
        layer = self.network.layers[position]
        return layer.backward(
            self._layer_input(position),
            self._outputs(position),
            self.deltas[f"{layer.name}.output"],
            self._params(layer),
            self.network.kinks[position],
            self.ops,
        )

    def gradient(self, tensor: Tensor, index: tuple[int, ...]) -> sympy.Expr:
        """dL/d(parameter element) in textbook form: over intermediates, common factors pulled out."""
        return sympy.factor_terms(sympy.sympify(self.backward.grads[tensor.name][index]))

    @cached_property
    def _leaf_forms(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Each layer-output symbol -> its expression over inputs, parameters and target only."""
        leaf = {}
        for symbol, rule in self.definitions.items():
            leaf[symbol] = rule.xreplace(leaf)
        return leaf

    def in_leaves(self, expr: sympy.Expr) -> sympy.Expr:
        """Replace every intermediate symbol by its definition, down to inputs and parameters."""
        return sympy.sympify(expr).xreplace(self._leaf_forms)

    def expand(self, expr: sympy.Expr, what: str = "this closed form") -> sympy.Expr:
        """The fully expanded form over inputs and parameters, refused when it would be too large."""
        leaves = self.in_leaves(expr)
        budget = self.derivation.budget
        terms, nodes = expanded_terms(leaves), tree_size(leaves, budget.expand_nodes)
        if terms > budget.expand_terms or nodes > budget.expand_nodes:
            size = (
                f"about {terms:,} terms"
                if terms > budget.expand_terms
                else f"more than {budget.expand_nodes:,} symbols and operations"
            )
            raise UserError(
                f"{what} would expand to {size}, too long to print; leave out --expand, "
                "or ask about a parameter nearer the output"
            )
        return sympy.expand(leaves, power_exp=False, log=False)

    @cached_property
    def numbers(self) -> dict[sympy.Symbol, object]:
        """Every symbol -> its exact (or float) value in this config."""
        found = {}
        for tensor in self.derivation.tensors.values():
            array = self.derivation.array(tensor)
            for index in tensor.indices():
                found[self.symbol(tensor, index)] = array[index]
        return found

    @cached_property
    def float_numbers(self) -> dict[sympy.Symbol, sympy.Float]:
        """Every input, parameter and layer-output symbol -> its float value (from the float pass)."""
        floats, found = self.derivation.floats, {}
        for tensor in self.derivation.tensors.values():
            if tensor.role == "input":
                array = floats.values[0]
            elif tensor.role == "output":
                array = floats.values[tensor.layer + 1]
            elif tensor.role in ("weight", "bias"):
                array = self.network.parameter(tensor.name)
            else:
                continue
            for index in tensor.indices():
                found[self.symbol(tensor, index)] = sympy.Float(float(array[index]))
        return found
