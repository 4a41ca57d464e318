"""A batch with batch norm: every layer runs on all N examples in lock-step.

Per-example layers run on each example as in Network.run; a batch-wide layer (batch norm) runs
once on all N, since its statistics couple them. The gradients are those of the sum of the
examples' losses S = Σₙ ℓₙ (the batch loss L is s·S); example n's part of ∂S/∂w is what flows
through example n's own values, so the parts still add up to ∂S/∂w (without batch norm they are
exactly ∂ℓₙ/∂w).

Kinks are decided once: exactly on fractions and on a + b√c (`surds.py`: ReLU and max-pool right
after batch norm), and where channels have been mixed since, on intervals at rising precision.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import UserError
from .batch import Batch
from .bounded import decide_bounded
from .kinks import KinkNote
from .layers import Layer
from .layers.activations import _Rectifier
from .layers.pooling import MaxPool2d
from .network import Pass
from .ops import IntervalOps, NotRational
from .surds import Surd, SurdOps

PRECISIONS = (64, 128, 256, 512, 1024, 2048)  # bits of the interval passes, tried in turn


def has_batch_wide(layers: list[Layer]) -> bool:
    return any(layer.batch_wide for layer in layers)


def _forward(layer: Layer, xs: list, params: dict, kinks: list, ops) -> list:
    if layer.batch_wide:
        return layer.forward_batch(xs, params, ops)
    return [layer.forward(x, params, decided, ops) for x, decided in zip(xs, kinks)]


def run_batch(batch: Batch, ops, constant_stats: bool = False) -> list[Pass]:
    """Each example's pass on one track (values, dS/d(values), its part of ∂S/∂w), kinks as decided.

    `constant_stats` treats batch norm's mean and variance as constants in the backward pass (a named mistake)."""
    nets, first = batch.examples, batch.first
    layers = first.layers
    kinks = [net.kinks for net in nets]
    params = {layer.name: first._params(layer, ops) for layer in layers}
    targets = [ops.array(net.target) for net in nets]
    values = [[ops.array(net.input)] for net in nets]
    for k, layer in enumerate(layers):
        outs = _forward(layer, [v[k] for v in values], params[layer.name], [kk[k] for kk in kinks], ops)
        for v, out in zip(values, outs):
            v.append(out)
    deltas = [[None] * len(v) for v in values]
    start = len(layers) - 1
    for n, net in enumerate(nets):
        deltas[n][-1] = net.loss.delta(values[n][-1], targets[n], ops)
        if first.fused_loss():
            deltas[n][-2] = net.loss.fused_delta(layers[-1], values[n][-1], targets[n], ops)
    start -= first.fused_loss()
    grads: list[dict] = [{} for _ in nets]
    for k in range(start, -1, -1):
        layer, own = layers[k], params[layers[k].name]
        if layer.batch_wide:
            xs, ds = [v[k] for v in values], [d[k + 1] for d in deltas]
            ins, parts = layer.backward_batch(xs, ds, own, ops, constant_stats)
        else:
            found = [
                layer.backward(values[n][k], values[n][k + 1], deltas[n][k + 1], own, kinks[n][k], ops)
                for n in range(len(nets))
            ]
            ins, parts = [f[0] for f in found], [f[1] for f in found]
        for n in range(len(nets)):
            deltas[n][k] = ins[n]
            grads[n].update({f"{layer.name}.{name}": grad for name, grad in parts[n].items()})
    names = first.parameter_names()
    return [
        Pass(
            values[n],
            net.loss.value(values[n][-1], targets[n], ops),
            deltas[n],
            {name: grads[n][name] for name in names},
        )
        for n, net in enumerate(nets)
    ]


def decide_batch_kinks(batch: Batch) -> None:
    """Decide every example's kinks on the whole batch, and give each example Network its kinks,
    its rational values (up to the first batch norm's square root) and notes."""
    nets, layers = batch.examples, batch.first.layers
    params = batch.first.params
    surd = SurdOps()
    values = [[net.input] for net in nets]
    kinks: list[list] = [[] for _ in nets]
    notes: list[KinkNote] = []
    for k, layer in enumerate(layers):
        try:
            _check_roots(layer, [v[k] for v in values])
            decided = [layer.decide(v[k]) for v in values]
            outs = _forward(layer, [v[k] for v in values], params[layer.name], decided, surd)
        except NotRational:  # square roots of several channels mixed: intervals from here on
            _decide_on_intervals(batch, k, [v[k] for v in values], kinks, notes)
            break
        for n, (v, out) in enumerate(zip(values, outs)):
            kinks[n].append(decided[n])
            v.append(out)
    else:
        _decide_loss(batch, [v[-1] for v in values])
    for n, net in enumerate(nets):
        rational = []
        for value in values[n]:
            if any(isinstance(item, Surd) for item in np.asarray(value, dtype=object).flat):
                break
            rational.append(value)
        net._kinks, net._rational_values, net._kink_notes = kinks[n], rational, list(notes)


def _check_roots(layer: Layer, xs: list) -> None:
    """NotRational before a layer that would add a + b√c to a' + b'√c' (NumPy's object dot cannot raise it)."""
    if layer.elementwise or layer.passes_through or layer.kind in ("maxpool2d", "avgpool2d"):
        return  # each output is one input, or a sum within one channel: one √c
    roots = {v.c for x in xs for v in np.asarray(x, dtype=object).flat if isinstance(v, Surd)}
    if len(roots) > 1:
        raise NotRational(f"{layer.name} mixes several square roots")


def _decide_loss(batch: Batch, outs: list) -> None:
    for net, out in zip(batch.examples, outs):
        if hasattr(net.loss, "decide"):
            try:
                net.loss = replace(net.loss, active=net.loss.decide(out, net.target))
            except NotRational:
                raise UserError("the hinge loss's margins after batch norm are not decided yet") from None


class _Undecided(Exception):
    """An interval holds the kink's edge: try a higher precision."""


def _decide_on_intervals(batch: Batch, start: int, exact_inputs: list, kinks: list, notes: list) -> None:
    """Decide the kinks of layers[start:] on intervals that surely hold the exact values, from the
    exact inputs of layers[start], at rising precision; a kink still undecided at the highest is an error."""
    layers = batch.first.layers
    if hasattr(batch.first.loss, "decide"):
        raise UserError("the hinge loss's margins after batch norm are not decided yet")
    if all(type(layer).decide is Layer.decide for layer in layers[start:]):
        for row in kinks:
            row += [None] * (len(layers) - start)
        return
    bounded = decide_bounded(layers, batch.first.params, start, exact_inputs)
    if bounded is not None:
        for row, more in zip(kinks, bounded):
            row += more
        text = (
            "decided on float64 with a proven error bound: batch norm's square roots of several channels are mixed "
            "before it, and every input is farther from the kink than its bound"
        )
        notes += [
            KinkNote(k, (), text) for k in range(start, len(layers)) if type(layers[k]).decide is not Layer.decide
        ]
        return
    for bits in PRECISIONS:
        ops = IntervalOps(bits)
        xs = [_interval(x, ops) for x in exact_inputs]
        found: list[list] = [[] for _ in exact_inputs]
        try:
            for k in range(start, len(layers)):
                layer = layers[k]
                decided = [_interval_decide(layer, x) for x in xs]
                params = {name: ops.array(value) for name, value in batch.first.params[layer.name].items()}
                xs = _forward(layer, xs, params, decided, ops)
                for row, d in zip(found, decided):
                    row.append(d)
        except _Undecided as error:
            last = str(error)
            continue
        for row, more in zip(kinks, found):
            row += more
        for k in range(start, len(layers)):
            if type(layers[k]).decide is not Layer.decide:
                text = (
                    f"decided on intervals at {bits} bits: batch norm's square roots of several channels are mixed "
                    "before it, so its input is not a fraction or a + b√c"
                )
                notes.append(KinkNote(k, (), text))
        return
    raise UserError(f"{last}: a kink after batch norm could not be decided at {PRECISIONS[-1]} bits (an exact tie?)")


def _interval(values: np.ndarray, ops: IntervalOps) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [v.interval(ops.ctx) if isinstance(v, Surd) else ops.convert(v) for v in values.flat]
    return out


def _interval_decide(layer: Layer, x: np.ndarray):
    if type(layer).decide is Layer.decide:
        return None
    if isinstance(layer, _Rectifier):
        return _signs(layer, x)
    if isinstance(layer, MaxPool2d):
        windows = layer.windows(x)
        first = np.empty(windows.shape[:-1], dtype=np.int64)
        for index in np.ndindex(*windows.shape[:-1]):
            first[index] = _winner(layer, windows[index])
        return layer.winners_at(first)
    raise UserError(f"{layer.name} ({layer.kind}) after batch norm and a mixing layer is not decided yet")


def _signs(layer: Layer, x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=bool)
    for index, v in np.ndenumerate(x):
        if (v > 0) is True:
            out[index] = True
        elif (v <= 0) is True:
            out[index] = False
        else:
            raise _Undecided(f"{layer.name}: input {list(index)} is 0 or too close to 0 to tell")
    return out


def _winner(layer: Layer, window: np.ndarray) -> int:
    # the first maximum: surely above every earlier element and surely at least every later one
    # (equal only as exact points, such as two zeros of a ReLU that is off)
    for i, v in enumerate(window):
        if all((v > other) is True for other in window[:i]) and all((v >= other) is True for other in window[i + 1 :]):
            return i
    raise _Undecided(f"{layer.name}: a window's maximum is shared or too close to tell")
