"""The derivation, layer by layer: the records that `explain` and `latex` both render.

Forward: each layer's rule for a representative element and all its output values.
Backward: dL/d(output) of each layer, its local backward rule over dL/d symbols, and the
masks that decide where gradient flows (the ReLU derivative, the max-pool routing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from ..maths.layers import Layer
from .budget import work
from .build import Derivation
from .names import Tensor


@dataclass(frozen=True)
class Convention:
    """An exact tie of a max-pool window, or a ReLU input exactly 0: a convention decides the gradient."""

    kind: str  # "tie": the gradient goes to the first of `elements`; "zero": the derivative there is 0 (or the slope)
    tensor: Tensor  # the layer's input
    elements: tuple[tuple[int, ...], ...]
    value: object


@dataclass(frozen=True)
class LayerStep:
    """One layer, forward and backward."""

    position: int
    layer: Layer
    input: Tensor
    output: Tensor
    values: np.ndarray  # the layer's output values (exact for small networks)
    rule: sympy.Expr | None  # forward rule of the first output element, over the previous layer's symbols
    delta: np.ndarray  # dL/d(output)
    delta_in: np.ndarray  # dL/d(input)
    back_rule: sympy.Expr | None  # dL/d(input[first]) over the dL/d(output) symbols
    feeds_params: bool  # an earlier layer has parameters: dL/d(input) is on the way to their gradients
    mask: np.ndarray | None  # ReLU derivative (0/1 over the output) or max-pool routing (0/1 over the input)
    kink_notes: tuple[str, ...] = ()  # how each kink that float64 could not settle was decided exactly
    conventions: tuple[Convention, ...] = ()  # each exact tie or exact zero at a kink

    @property
    def first(self) -> tuple[int, ...]:
        return (0,) * len(self.output.shape)


@dataclass(frozen=True)
class LossStep:
    """The loss: its rule over the network output and target, value, and where backward starts."""

    rule: sympy.Expr | None
    value: object
    output: Tensor
    delta: np.ndarray  # dL/d(network output)
    fused: np.ndarray | None  # dL/d(input of the final softmax or sigmoid): p - t, when fused


@dataclass(frozen=True)
class Steps:
    derivation: Derivation
    symbolic: object | None  # symbolic.Symbolic, or None when the network is too big for rules
    layers: tuple[LayerStep, ...]
    loss: LossStep


def build_steps(derivation: Derivation) -> Steps:
    """All the layer steps of a derivation; rules only when the network is small enough to print them."""
    symbolic = None
    if work(derivation.network) <= derivation.budget.rules_work:
        from .symbolic import Symbolic

        symbolic = Symbolic(derivation)
    network, values = derivation.network, derivation.values
    has_params_before = [any(network.params[l.name] for l in network.layers[:k]) for k in range(len(network.layers))]
    steps = []
    for k, layer in enumerate(network.layers):
        output = derivation.layer_tensor(k)
        first = (0,) * len(output.shape)
        rule = back_rule = None
        if symbolic is not None:
            rule = symbolic.rule(output, first)
            back_rule = sympy.sympify(symbolic.local_backward(k)[0].flat[0])
        steps.append(
            LayerStep(
                position=k,
                layer=layer,
                input=derivation.input_tensor(k),
                output=output,
                values=values.values[k + 1],
                rule=rule,
                delta=values.deltas[k + 1],
                delta_in=values.deltas[k],
                back_rule=back_rule,
                feeds_params=has_params_before[k],
                mask=layer.mask(network.kinks[k]),
                kink_notes=tuple(note.text for note in network.kink_notes if note.position == k),
                conventions=_conventions(layer, derivation.input_tensor(k), exact_input(network, k)),
            )
        )
    fused = values.deltas[-2] if network.fused_loss() else None
    output = derivation.layer_tensor(len(network.layers) - 1) if network.layers else derivation.tensors["input"]
    loss_rule = symbolic.rule(derivation.tensors["loss"], ()) if symbolic is not None else None
    loss = LossStep(loss_rule, values.loss, output, values.deltas[-1], fused)
    return Steps(derivation, symbolic, tuple(steps), loss)


def exact_input(network, position: int):
    """The exact (rational) input of a layer, or None when exp/tanh came before it."""
    values = network.rational_values
    return values[position] if position < len(values) else None


def _conventions(layer: Layer, x: Tensor, values) -> tuple[Convention, ...]:
    """Where calculus leaves a choice at these exact numbers: ReLU inputs exactly 0, max-pool ties."""
    if values is None or layer.kind not in ("relu", "leaky_relu", "maxpool2d"):
        return ()
    if layer.kind != "maxpool2d":
        return tuple(
            Convention("zero", x, (index,), values[index]) for index in np.ndindex(*values.shape) if values[index] == 0
        )
    return tuple(Convention("tie", x, tied, values[tied[0]]) for _, tied in layer.ties(values))
