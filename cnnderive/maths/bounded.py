"""Kinks after batch norm decided on float64 values with a proven error bound: fast, and sure.

Each value is a double x̃ with a bound E ≥ |x̃ - x| on its distance from the exact value x. Conv
and linear propagate the bound by the standard forward error analysis of a dot product of n terms:
|fl(W̃x̃ + b̃) - (Wx + b)| ≤ (γₙ₊₁ + u)(|W̃||x̃| + |b̃|) + (1 + u)|W̃|E, with u = 2⁻⁵³ and
γₖ = ku/(1 - ku), itself computed with a margin for its own rounding; batch norm likewise, per
channel (see _batch_norm). A ReLU is decided where x̃ > E (on) or
x̃ ≤ -E (off); a max-pool winner where it is above every other element by more than both bounds
(or an exact equal: two zeros of a ReLU that is off). Anything closer, or a layer without a rule
here, gives up (None), and the caller decides on intervals at rising precision instead.
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .layers.activations import ReLU
from .layers.pooling import MaxPool2d
from .ops import FloatOps
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
    """Batch norm on doubles with bounds, per channel (first-order error analysis, each bound with
    a margin of 1/1000 for the rounding of its own computation, far more than it needs):
    μ̃ = fl(Σx̃/m), |μ̃ - μ| ≤ ΣE/m + γₘΣ|x̃|/m + u|μ̃|;  d̃ = fl(x̃ - μ̃), |d̃ - d| ≤ E + E_μ + u|d̃|;
    σ̃² = fl(Σd̃²/m'), |σ̃² - σ²| ≤ Σ(2|d̃|E_d + E_d²)/m' + γₘ₊₁Σd̃²/m';  c = σ² + ε > c̃ - E_c > 0;
    s̃ = fl(1/√c̃), |s̃ - 1/√c| ≤ E_c/(2(c̃ - E_c)^{3/2}) + 3u·s̃;
    ỹ = fl(γ̃·d̃·s̃ + β̃), |ỹ - y| ≤ |γ|(|d̃|E_s + s̃E_d + E_dE_s) + 4u(|γ̃d̃s̃| + |β̃|) + u|γ̃d̃s̃| + u|β̃|."""
    margin = 1.001
    view = (1, -1) + (1,) * (len(layer.in_shape) - 1)
    axes = layer.axes
    x = np.stack([p[0] for p in pairs])
    e = np.stack([p[1] for p in pairs])
    m = x.size // x.shape[1]
    divisor = m - layer.unbiased
    gamma_w = np.array([float(v) for v in params["weight"]], dtype=float).reshape(view)
    beta = np.array([float(v) for v in params["bias"]], dtype=float).reshape(view)
    eps = float(layer.eps)
    mean = x.sum(axis=axes, keepdims=True) / m
    e_mean = (
        e.sum(axis=axes, keepdims=True) / m + _gamma(m + 1) * np.abs(x).sum(axis=axes, keepdims=True) / m
    ) * margin
    e_mean += U * np.abs(mean) * margin + TINY
    d = x - mean
    e_d = (e + e_mean + U * np.abs(d)) * margin + TINY
    variance = (d * d).sum(axis=axes, keepdims=True) / divisor
    e_var = ((2 * np.abs(d) * e_d + e_d * e_d).sum(axis=axes, keepdims=True) / divisor) * margin
    e_var += _gamma(m + 2) * variance * margin + TINY
    shifted = variance + eps
    e_shifted = (e_var + U * eps + 2 * U * shifted) * margin + TINY  # ε as a double, and the sum's rounding
    low = shifted - e_shifted * margin
    if np.any(low <= 0):
        raise _GiveUp("a variance too close to 0")
    inverse = 1 / np.sqrt(shifted)
    e_inv = (e_shifted / (2 * low * np.sqrt(low)) + 3 * U * inverse) * margin * margin + TINY
    scaled = gamma_w * d * inverse
    y = scaled + beta
    e_y = np.abs(gamma_w) * (np.abs(d) * e_inv + inverse * e_d + e_d * e_inv) * (1 + 2 * U)
    e_y = (e_y + 6 * U * (np.abs(scaled) + np.abs(beta))) * margin + TINY
    return [(y[n], e_y[n]) for n in range(len(pairs))]
