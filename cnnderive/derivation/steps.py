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
    inputs: tuple[Tensor, ...] = ()  # every tensor it reads (several for add and concat; `input` is the first)
    # delta_in as floats; where the input is read by several layers, delta_in is this layer's part of
    # dL/d(input) (see Fork), not the sum
    delta_in_approx: np.ndarray | None = None

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
class Fork:
    """A tensor that several layers read (a skip connection): dL/d(it) is the sum of their parts."""

    tensor: Tensor
    readers: tuple[LayerStep, ...]  # in layer order
    parts: tuple[np.ndarray, ...]  # each reader's dL/d(tensor), exact where the network is small
    parts_approx: tuple[np.ndarray, ...]
    total: np.ndarray
    total_approx: np.ndarray
    after: int  # the position of the layer whose backward step completes the sum (the first reader)

    def worked_index(self) -> tuple[int, ...]:
        """The element to work by hand: the first every branch sends something to (else the first)."""
        for index in zip(*self.total.nonzero()):
            if all(part[index] != 0 for part in self.parts):
                return tuple(int(i) for i in index)
        return (0,) * self.total.ndim


@dataclass(frozen=True)
class Steps:
    derivation: Derivation
    symbolic: object | None  # symbolic.Symbolic, or None when the network is too big for rules
    layers: tuple[LayerStep, ...]
    loss: LossStep
    forks: tuple[Fork, ...] = ()  # in backward order

    def shared_input(self, step: LayerStep) -> bool:
        """True when the (first) input of this step is read by other layers too: its delta_in is a part."""
        return any(
            fork.tensor == step.input and step.position in [r.position for r in fork.readers] for fork in self.forks
        )

    def fork_after(self, position: int) -> Fork | None:
        """The fork whose sum is complete once the backward pass has gone through layer `position`."""
        return next((fork for fork in self.forks if fork.after == position), None)


def build_steps(derivation: Derivation) -> Steps:
    """All the layer steps of a derivation; rules only when the network is small enough to print them."""
    symbolic = None
    batch_wide = any(layer.batch_wide for layer in derivation.network.layers)  # no one-example rules past batch norm
    if work(derivation.network) <= derivation.budget.rules_work and not batch_wide:
        from .symbolic import Symbolic

        symbolic = Symbolic(derivation)
    network, values, floats = derivation.network, derivation.values, derivation.floats
    has_params_before = [any(network.params[l.name] for l in network.layers[:k]) for k in range(len(network.layers))]
    steps = []
    for k, layer in enumerate(network.layers):
        output = derivation.layer_tensor(k)
        first = (0,) * len(output.shape)
        source = network.inputs_of(k)[0]
        rule = back_rule = None
        if symbolic is not None:
            rule = symbolic.rule(output, first)
            back_in = symbolic.local_backward(k)[0]
            back_rule = sympy.sympify((back_in[0] if layer.merges else back_in).flat[0])
        steps.append(
            LayerStep(
                position=k,
                layer=layer,
                input=derivation.input_tensor(k),
                output=output,
                values=values.values[k + 1],
                rule=rule,
                delta=values.deltas[k + 1],
                delta_in=_part(values, source, k),
                back_rule=back_rule,
                feeds_params=has_params_before[k],
                mask=layer.mask(network.kinks[k]),
                kink_notes=tuple(note.text for note in network.kink_notes if note.position == k),
                conventions=_conventions(layer, derivation.input_tensor(k), exact_input(network, source)),
                inputs=derivation.input_tensors(k),
                delta_in_approx=_part(floats, source, k),
            )
        )
    fused = values.deltas[-2] if network.fused_loss() else None
    output = derivation.layer_tensor(len(network.layers) - 1) if network.layers else derivation.tensors["input"]
    loss_rule = symbolic.rule(derivation.tensors["loss"], ()) if symbolic is not None else None
    loss = LossStep(loss_rule, values.loss, output, values.deltas[-1], fused)
    return Steps(derivation, symbolic, tuple(steps), loss, _forks(derivation, steps))


def _part(run, value: int, reader: int) -> np.ndarray:
    """dL/d(values[value]) as layer `reader` sends it back: the whole delta, unless several layers read it."""
    parts = dict(run.shared.get(value, ()))
    return parts.get(reader, run.deltas[value])


def _forks(derivation: Derivation, steps: list[LayerStep]) -> tuple[Fork, ...]:
    values, floats = derivation.values, derivation.floats
    forks = []
    for value in sorted(values.shared, reverse=True):
        readers = tuple(steps[k] for k, _ in values.shared[value])
        parts = tuple(part for _, part in values.shared[value])
        parts_approx = tuple(_part(floats, value, step.position) for step in readers)
        tensor = derivation.value_tensor(value)
        forks.append(
            Fork(tensor, readers, parts, parts_approx, values.deltas[value], floats.deltas[value], readers[0].position)
        )
    return tuple(forks)


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
