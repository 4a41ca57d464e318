"""Kinks after batch norm decided on float64 values with a proven error bound: fast, and sure.

Each value is a double x̃ with a bound E ≥ |x̃ - x| on its distance from the exact value x. Conv
and linear propagate the bound by the standard forward error analysis of a dot product of n terms:
|fl(W̃x̃ + b̃) - (Wx + b)| ≤ (γₙ₊₁ + u)(|W̃||x̃| + |b̃|) + (1 + u)|W̃|E, with u = 2⁻⁵³ and
γₖ = ku/(1 - ku), itself computed with a margin for its own rounding. Batch norm runs on 64-bit
intervals (mpmath rounds outward) holding [x̃ - E, x̃ + E]. A ReLU is decided where x̃ > E (on) or
x̃ ≤ -E (off); a max-pool winner where it is above every other element by more than both bounds
(or an exact equal: two zeros of a ReLU that is off). Anything closer, or a layer without a rule
here, gives up (None), and the caller decides on intervals at rising precision instead.
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .layers.activations import ReLU
from .layers.pooling import MaxPool2d
from .ops import FloatOps, IntervalOps
from .surds import Surd

U = 2.0**-53
TINY = 1e-290  # covers underflow to subnormals in every operation


class _GiveUp(Exception):
    """Too close to call with these bounds, or a layer without a bounded rule."""


def _gamma(n: int) -> float:
    return n * U / (1 - n * U)


def _start(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Doubles and bounds of exact values (fractions and a + b√c)."""
    flat = list(np.asarray(values, dtype=object).flat)
    x = np.array([float(v) for v in flat], dtype=float)
    size = np.array(
        [
            abs(float(v.a)) + abs(float(v.b)) * float(np.sqrt(float(v.c))) if isinstance(v, Surd) else abs(float(v))
            for v in flat
        ]
    )
    bound = 8 * U * size + TINY  # a few roundings in float(a) + float(b)·√float(c)
    shape = np.shape(values)
    return x.reshape(shape), bound.reshape(shape)


def decide_bounded(layers: list[Layer], params: dict, start: int, exact_inputs: list) -> list[list] | None:
    """The kinks of layers[start:] for every example, or None when the bounds cannot settle one."""
    last = max((k for k in range(start, len(layers)) if type(layers[k]).decide is not Layer.decide), default=None)
    try:
        pairs = [_start(x) for x in exact_inputs]
        found: list[list] = [[] for _ in exact_inputs]
        for k in range(start, len(layers)):
            layer = layers[k]
            if last is not None and k > last:
                for row in found:
                    row.append(None)
                continue
            pairs, decided = _layer(layer, params[layer.name], pairs)
            for row, d in zip(found, decided):
                row.append(d)
        return found
    except _GiveUp:
        return None


def _layer(layer: Layer, params: dict, pairs: list) -> tuple[list, list]:
    floats = FloatOps()
    if layer.batch_wide:
        return _batch_norm(layer, params, pairs), [None] * len(pairs)
    if type(layer).decide is Layer.decide and layer.kind in ("conv2d", "linear"):
        w = {name: floats.array(value) for name, value in params.items()}  # converted once for every example
        return [_dot(layer, w, x, e) for x, e in pairs], [None] * len(pairs)
    if layer.passes_through:
        return [(layer.forward(x, {}, None, floats), layer.forward(e, {}, None, floats)) for x, e in pairs], [
            None
        ] * len(pairs)
    if isinstance(layer, ReLU):
        decided = [_relu(x, e) for x, e in pairs]
        out = [(np.where(d, x, 0.0), np.where(d, e, 0.0)) for d, (x, e) in zip(decided, pairs)]
        return out, decided
    if isinstance(layer, MaxPool2d):
        decided = [_maxpool(layer, x, e) for x, e in pairs]
        out = [(layer.forward(x, {}, d, floats), layer.forward(e, {}, d, floats)) for d, (x, e) in zip(decided, pairs)]
        return out, decided
    raise _GiveUp(layer.kind)


def _dot(layer: Layer, w: dict, x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    floats = FloatOps()
    size = {name: np.abs(value) for name, value in w.items()}
    value = layer.forward(x, w, None, floats)
    magnitude = layer.forward(np.abs(x), size, None, floats)  # |W̃||x̃| + |b̃|
    spread = layer.forward(
        e, {"weight": size["weight"]} | ({"bias": 0 * size["bias"]} if "bias" in size else {}), None, floats
    )
    n = layer.fan_in() + 1
    margin = 1 + 2 * _gamma(n + 2)  # the bound's own rounding
    bound = ((_gamma(n) + 2 * U) * magnitude + (1 + 2 * U) * spread) * margin + n * TINY
    return value, bound


def _relu(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    on, off = x > e, x <= -e
    if not np.all(on | off):
        raise _GiveUp("a ReLU input too close to 0")
    return on


def _maxpool(layer: MaxPool2d, x: np.ndarray, e: np.ndarray):
    xs, es = layer.windows(x), layer.windows(e)
    k = xs.shape[-1]
    winner = np.full(xs.shape[:-1], -1)
    for i in range(k):
        sure = np.ones(xs.shape[:-1], dtype=bool)
        for j in range(k):
            if j == i:
                continue
            above = (xs[..., i] - xs[..., j]) * (1 - 4 * U) > (es[..., i] + es[..., j]) * (1 + 4 * U) + TINY
            if j > i:  # a later element may equal it exactly: two exact zeros
                above |= (xs[..., i] == xs[..., j]) & (es[..., i] == 0) & (es[..., j] == 0)
            sure &= above
        winner = np.where((winner < 0) & sure, i, winner)
    if np.any(winner < 0):
        raise _GiveUp("a max-pool window too close to call")
    return layer.winners_at(winner)


def _batch_norm(layer: Layer, params: dict, pairs: list) -> list:
    ops = IntervalOps(64)
    ctx = ops.ctx
    inputs = []
    for x, e in pairs:
        out = np.empty(x.shape, dtype=object)
        out.flat[:] = [ctx.mpf(a) + ctx.mpf([-b, b]) for a, b in zip(x.flat, e.flat)]
        inputs.append(out)
    outs = layer.forward_batch(inputs, {name: ops.array(v) for name, v in params.items()}, ops)
    result = []
    for out in outs:
        mids = np.array([float(v.mid) for v in out.flat], dtype=float).reshape(out.shape)
        widths = np.array([float(v.delta) for v in out.flat], dtype=float).reshape(out.shape)
        result.append((mids, widths * (0.5 + 4 * U) + 2 * U * np.abs(mids) + TINY))
    return result
