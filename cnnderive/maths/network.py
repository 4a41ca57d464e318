"""A loaded network and its passes: forward values, dL/d(every layer output), parameter gradients.

The kinks (ReLU masks, max-pool winners) are decided once and exactly: on fractions for as long
as the values stay rational, past exp and tanh by kinks.KinkJudge (floats where they are sure,
exact forms, intervals and proofs where not); every pass (float, exact, symbolic) then follows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..errors import UserError
from .kinks import KinkJudge, KinkNote
from .layers import Layer
from .losses import WeightDecay
from .ops import FloatOps, NotRational, RationalOps


@dataclass
class Pass:
    """One forward and backward pass on one number track.

    values[0] is the input and values[k + 1] the output of layers[k]; deltas[k] is dL/d(values[k]).
    """

    values: list[np.ndarray]
    loss: object  # J: the loss L, plus the weight decay's penalty when there is one
    deltas: list[np.ndarray]
    grads: dict[str, np.ndarray]  # dJ/d(each parameter tensor): dL/dw, plus λ·w where decayed
    penalty: object = None  # λ/2·Σw² (already in `loss`), or None without weight decay
    # a value read by several layers (a skip connection) -> ((layer position, its part of dL/d(value)), ...),
    # in layer order; deltas[value] is their sum
    shared: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SGD:
    """The config's `train:` step: PyTorch's SGD with momentum μ and dampening 0.

    v' = μ·v + g and w' = w - lr·v' (with μ = 0: w' = w - lr·g), where g = dJ/dw includes the
    weight decay; `velocity` maps a parameter tensor (fc1.weight) to its v, 0 where not given.
    """

    lr: Fraction
    momentum: Fraction = Fraction(0)
    velocity: dict[str, np.ndarray] = field(default_factory=dict)
    steps: int = 1


@dataclass
class Network:
    """The validated config: layers with shapes, exact parameters, input, target and loss."""

    name: str
    source: str
    input: np.ndarray
    layers: list[Layer]
    params: dict[str, dict[str, np.ndarray]]
    loss: object
    target: np.ndarray
    decay: WeightDecay = field(default_factory=WeightDecay)
    train: SGD | None = None
    _kinks: list | None = field(default=None, repr=False)
    _rational_values: list | None = field(default=None, repr=False)
    _kink_notes: list[KinkNote] = field(default_factory=list, repr=False)
    _float_arrays: dict = field(default_factory=dict, repr=False)  # id -> (exact array, its floats)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape if self.layers else self.input.shape

    def inputs_of(self, position: int) -> tuple[int, ...]:
        """The positions in `values` that layers[position] reads: (position,), the previous output, in a chain."""
        return self.layers[position].sources or (position,)

    def consumers(self, value: int) -> list[int]:
        """The layer positions that read values[value], in order (one, the next layer, in a chain)."""
        return [k for k in range(value, len(self.layers)) if value in self.inputs_of(k)]

    def is_chain(self) -> bool:
        """True when every layer reads the previous one's output (no skip, add or concat)."""
        return all(not layer.sources for layer in self.layers)

    def layer_input(self, values: list, position: int):
        """What layers[position] takes from `values`: one array, or a tuple for add and concat."""
        sources = self.inputs_of(position)
        if self.layers[position].merges:
            return tuple(values[s] for s in sources)
        return values[sources[0]]

    def parameter_names(self) -> list[str]:
        """Canonical names of the parameter tensors, in layer order: conv1.weight, conv1.bias, ..."""
        return [f"{layer.name}.{p}" for layer in self.layers for p in self.params[layer.name]]

    def parameter(self, qualified: str) -> np.ndarray:
        layer, param = qualified.split(".")
        return self.params[layer][param]

    def with_params(self, params: dict[str, dict[str, np.ndarray]]) -> Network:
        """The same network with other (exact) parameters: its kinks are decided afresh."""
        return replace(self, params=params, _kinks=None, _rational_values=None, _kink_notes=[], _float_arrays={})

    def fused_loss(self) -> bool:
        """True when the loss is differentiated through the final softmax/sigmoid in one step."""
        return bool(self.layers) and getattr(self.loss, "on", None) == self.layers[-1].kind

    @property
    def kinks(self) -> list:
        if self._kinks is None:
            self._decide_kinks()
        return self._kinks

    @property
    def rational_values(self) -> list[np.ndarray]:
        """Exact forward values as fractions, up to the first layer that leaves the rationals."""
        if self._kinks is None:
            self._decide_kinks()
        return self._rational_values

    @property
    def kink_notes(self) -> list[KinkNote]:
        """How each kink that float64 could not settle was decided: (layer position, element of
        that layer's input, a sentence), in the order they were decided; empty for rational networks."""
        if self._kinks is None:
            self._decide_kinks()
        return self._kink_notes

    def _decide_kinks(self) -> None:
        rational = RationalOps()
        exact, kinks, exact_values = self.input, [], [self.input]
        judge: KinkJudge | None = None
        for position, layer in enumerate(self.layers):
            if judge is not None:
                kinks.append(judge.decide(position))
                judge.advance(position)
                continue
            exact = self.layer_input(exact_values, position)
            kinks.append(layer.decide(exact))
            try:
                exact = layer.forward(exact, self.params[layer.name], kinks[-1], rational)
            except NotRational:  # exp or tanh: from here on the judge decides
                if not self.chain_from(position):  # no kinks after it (else refused): nothing to decide
                    kinks += [None] * (len(self.layers) - position - 1)
                    break
                judge = KinkJudge(self.layers, self._params, position, exact, kinks)
                judge.advance(position)
            else:
                exact_values.append(exact)
        if hasattr(self.loss, "decide"):  # a loss with kinks of its own (the hinge's margins)
            if judge is None:
                decided = self.loss.decide(exact_values[-1], self.target)
            else:
                decided = judge.decide_loss(self.loss, self.target)
            self.loss = replace(self.loss, active=decided)
        self._kinks, self._rational_values = kinks, exact_values
        self._kink_notes = judge.notes if judge is not None else []

    def chain_from(self, start: int) -> bool:
        """True when the layers from `start` on form a chain reading values[start]. Past exp and tanh the
        kinks are decided along a chain, so a graph there is refused when a ReLU or max-pool follows."""
        if all(self.inputs_of(k) == (k,) for k in range(start, len(self.layers))):
            return True
        kinked = [layer for layer in self.layers[start + 1 :] if type(layer).decide is not Layer.decide]
        if hasattr(self.loss, "decide"):  # the hinge's margins are kinks too
            kinked.append(self.loss)
        if kinked:
            name = getattr(kinked[0], "name", "the loss")
            raise UserError(
                f"{name} ({kinked[0].kind}) comes after {self.layers[start].name} "
                f"({self.layers[start].kind}) in a network with skip, add or concat there; its kinks are decided "
                "exactly only before the first sigmoid, tanh or softmax, or in a chain"
            )
        return False

    def _params(self, layer: Layer, ops) -> dict[str, np.ndarray]:
        if isinstance(ops, FloatOps):  # converted once: the kink pass and the float pass share them
            return {name: self._floats(value) for name, value in self.params[layer.name].items()}
        return {name: ops.array(value) for name, value in self.params[layer.name].items()}

    def _floats(self, value: np.ndarray) -> np.ndarray:
        cached = self._float_arrays.get(id(value))
        if cached is None or cached[0] is not value:
            cached = self._float_arrays[id(value)] = (value, FloatOps().array(value))
        return cached[1]

    def run(
        self, ops, inputs: np.ndarray | None = None, params=None, target=None, values=None, overrides=None, decay=True
    ) -> Pass:
        """Forward and backward on one track; `params` maps layer -> param -> array already on it.

        Given `values` (one array per layer output, e.g. symbols), the forward pass is skipped and
        the backward pass is written in terms of them. `overrides` replaces rules of the backward
        pass (how `check` builds a mistake): a layer position -> a backward function with the
        signature of Layer.backward, or "fused" -> a function (out, target, ops) giving dL/d(input
        of the final softmax or sigmoid). With weight decay, the loss is J = L + λ/2·Σw² and each
        decayed gradient dL/dw + λ·w; `decay=False` leaves the penalty out (the mistake "λw left out").
        """
        overrides = overrides or {}  # also "combine": (parts, ops) -> dL/d(a value read by several layers)
        kinks = self.kinks
        params = params or {layer.name: self._params(layer, ops) for layer in self.layers}
        target = ops.array(self.target) if target is None else target
        if values is None:
            values = [ops.array(self.input) if inputs is None else inputs]
            for k, (layer, decided) in enumerate(zip(self.layers, kinks)):
                values.append(layer.forward(self.layer_input(values, k), params[layer.name], decided, ops))
        out = values[-1]
        deltas: list = [None] * len(values)
        deltas[-1] = self.loss.delta(out, target, ops)
        grads: dict[str, np.ndarray] = {}
        start = len(self.layers) - 1
        if self.fused_loss():
            fused = overrides.get("fused") or (lambda o, t, ops: self.loss.fused_delta(self.layers[-1], o, t, ops))
            deltas[-2] = fused(out, target, ops)
            start -= 1
        parts: dict[int, list] = {}  # a value read by several layers -> [(layer, its dL/d(value))], last layer first
        for k in range(start, -1, -1):
            layer = self.layers[k]
            backward = overrides.get(k, layer.backward)
            delta_in, layer_grads = backward(
                self.layer_input(values, k), values[k + 1], deltas[k + 1], params[layer.name], kinks[k], ops
            )
            if not layer.merges:
                delta_in = (delta_in,)
            for source, part in zip(self.inputs_of(k), delta_in):
                parts.setdefault(source, []).append((k, part))
            for name, grad in layer_grads.items():
                grads[f"{layer.name}.{name}"] = grad
            if not parts.get(k):  # a value no layer reads (the network's output is read by the loss)
                continue
            deltas[k] = _sum_parts(parts, k, ops, overrides.get("combine"))
        shared = {value: tuple(reversed(found)) for value, found in parts.items() if len(found) > 1}
        ordered = {name: grads[name] for name in self.parameter_names()}
        loss = self.loss.value(out, target, ops)
        if not decay or not self.decay.rate:
            return Pass(values, loss, deltas, ordered, shared=shared)
        penalty = self.decay.penalty(params, ops)
        for layer in self.layers:
            for param, w in params[layer.name].items():
                if self.decay.applies(param):
                    name = f"{layer.name}.{param}"
                    ordered[name] = ordered[name] + self.decay.gradient(w, ops)
        return Pass(values, loss + penalty, deltas, ordered, penalty, shared)

    def is_rational(self) -> bool:
        """True when every value is rational (no exp, log or tanh anywhere, MSE loss)."""
        return all(layer.rational for layer in self.layers) and self.loss.rational


def _sum_parts(parts: dict[int, list], value: int, ops, combine=None):
    """dL/d(values[value]): the sum of what every layer that reads it sends back (a chain: the one part).

    `combine` (check's mistakes) replaces the sum where several layers read the value.
    """
    found = [part for _, part in reversed(parts[value])]
    if len(found) > 1 and combine is not None:
        return combine(found, ops)
    total = found[0]
    for part in found[1:]:
        total = total + part
    return total
