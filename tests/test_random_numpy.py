"""Random small networks against an independent NumPy float64 backprop written here.

Hypothesis draws the shapes, the layers (conv, activations, pools, flatten, linear, softmax),
the loss and short-decimal numbers, writes the network as YAML text, and compares the tool's
loss and gradients with a plain loop-based backprop. Exact ties (max-pool windows with equal
values, ReLU inputs of exactly 0) are kept, since both sides must take the first maximum and
ReLU'(0) = 0; examples where float64 is within 1e-9 of a kink without being on it are skipped,
because there the tool decides with exact numbers and float64 may not.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.maths.ops import RationalOps
from tests.yaml_text import to_yaml

NEAR = 1e-9
ACTIVATIONS = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
RATIONAL_ACTIVATIONS = ["relu", "leaky_relu", "identity"]


# --- writing the YAML


def document(x, layers, loss) -> str:
    lines = [f"input: {{values: {to_yaml(x)}}}", "layers:" if layers else "layers: []"]
    lines += [f"  - {to_yaml(layer)}" for layer in layers]
    lines.append(f"loss: {to_yaml(loss)}")
    return "\n".join(lines) + "\n"


# --- drawing a network


def tenths(low=-10, high=10):
    return st.integers(low, high).map(lambda k: Fraction(k, 10))


def hundredths(low=-100, high=100):
    return st.integers(low, high).map(lambda k: Fraction(k, 100))


def array(draw, shape, element) -> np.ndarray:
    size = int(np.prod(shape))
    flat = draw(st.lists(element, min_size=size, max_size=size))
    out = np.empty(size, dtype=object)
    out[:] = flat
    return out.reshape(shape)


def activation(draw, kind):
    layer = {"type": kind}
    if kind == "leaky_relu" and draw(st.booleans()):
        layer["negative_slope"] = draw(hundredths(0, 50))
    return layer


def image_layer(draw, shape, activations):
    """One layer that keeps an image an image; returns (layer, new shape)."""
    kind = draw(st.sampled_from(["conv2d", "conv2d", "maxpool2d", "avgpool2d", *activations]))
    if kind in activations:
        return activation(draw, kind), shape
    c, h, w = shape
    pad = (draw(st.integers(0, 1)), draw(st.integers(0, 1))) if kind == "conv2d" else (0, 0)
    kernel = (draw(st.integers(1, min(3, h + 2 * pad[0]))), draw(st.integers(1, min(3, w + 2 * pad[1]))))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    out_h = (h + 2 * pad[0] - kernel[0]) // stride[0] + 1
    out_w = (w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    layer = {"type": kind, "kernel_size": list(kernel), "stride": list(stride)}
    if kind != "conv2d":
        return layer, (c, out_h, out_w)
    out_c = draw(st.integers(1, 2))
    layer.update(out_channels=out_c, padding=list(pad))
    params = {"weight": array(draw, (out_c, c, *kernel), hundredths())}
    if draw(st.booleans()):
        params["bias"] = array(draw, (out_c,), hundredths(-50, 50))
    else:
        layer["bias"] = False
    layer["params"] = params
    return layer, (out_c, out_h, out_w)


def linear_layer(draw, size, out):
    layer = {"type": "linear", "out_features": out, "params": {"weight": array(draw, (out, size), hundredths())}}
    if draw(st.booleans()):
        layer["params"]["bias"] = array(draw, (out,), hundredths(-50, 50))
    else:
        layer["bias"] = False
    return layer


@st.composite
def networks(draw, rational=False):
    """(input, layers with their params, loss) of a random small network; `rational`: no exp/tanh/log."""
    activations = RATIONAL_ACTIVATIONS if rational else ACTIVATIONS
    if draw(st.integers(0, 3)):
        shape = (draw(st.integers(1, 2)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    else:
        shape = (draw(st.integers(1, 5)),)
    x = array(draw, shape, tenths())
    layers = []
    if len(shape) == 3:
        for _ in range(draw(st.integers(0, 4))):
            layer, shape = image_layer(draw, shape, activations)
            layers.append(layer)
        if draw(st.integers(0, 3)):
            layers.append({"type": "flatten"})
            shape = (int(np.prod(shape)),)
    if len(shape) == 1:
        for _ in range(draw(st.integers(0 if layers else 1, 2))):
            out = draw(st.integers(1, 4))
            layers.append(linear_layer(draw, shape[0], out))
            shape = (out,)
            if draw(st.booleans()):
                layers.append(activation(draw, draw(st.sampled_from(activations))))
    size = int(np.prod(shape))
    ending = "mse" if rational else draw(st.sampled_from(["mse", "softmax", "sigmoid", "softmax_mse"]))
    if ending in ("softmax", "softmax_mse"):
        layers.append({"type": "softmax"})
    elif ending == "sigmoid":
        layers.append({"type": "sigmoid"})
    if ending in ("mse", "softmax_mse"):
        target = draw(st.lists(tenths(), min_size=size, max_size=size))
        loss = {"type": "mse", "target": target}
        reduction = draw(st.sampled_from([None, "mean", "sum", "half_sum"]))
        if reduction:
            loss["reduction"] = reduction
    elif ending == "softmax" and draw(st.booleans()):
        loss = {"type": "cross_entropy", "target": draw(st.integers(0, size - 1))}
    elif ending == "softmax" and draw(st.integers(0, 3)) == 0:  # any weights, not summing to 1
        loss = {"type": "cross_entropy", "target": draw(st.lists(tenths(0, 10), min_size=size, max_size=size))}
    elif ending == "softmax":
        a, b = draw(st.integers(0, size - 1)), draw(st.integers(0, size - 1))
        q = Fraction(draw(st.integers(0, 10)), 10)
        target = [Fraction(0)] * size
        target[a] += q
        target[b] += 1 - q
        loss = {"type": "cross_entropy", "target": target}
    elif draw(st.booleans()):
        loss = {"type": "cross_entropy", "target": draw(st.integers(0, size - 1))}
    else:
        loss = {"type": "cross_entropy", "target": draw(st.lists(tenths(0, 10), min_size=size, max_size=size))}
    return x, layers, loss


# --- the independent reference: float64 backprop with loops


def f64(a) -> np.ndarray:
    return np.array([float(v) for v in np.asarray(a).flat], dtype=np.float64).reshape(np.asarray(a).shape)


class Floats:
    """The float64 track of the reference."""

    array = staticmethod(f64)
    number = staticmethod(float)

    @staticmethod
    def zeros(shape):
        return np.zeros(shape)


class Exact:
    """The exact track of the reference: object arrays of Fractions (rational layers only)."""

    number = staticmethod(Fraction)

    @staticmethod
    def array(a):
        a = np.asarray(a, dtype=object)
        out = np.empty(a.shape, dtype=object)
        for index in np.ndindex(a.shape):
            out[index] = Fraction(a[index])
        return out

    @staticmethod
    def zeros(shape):
        out = np.empty(shape, dtype=object)
        out[...] = Fraction(0)
        return out


class Kinks:
    """Collects how close float64 comes to a kink without sitting on it."""

    def __init__(self):
        self.near = False

    def check(self, distances):
        for d in np.asarray(distances, dtype=float).flat:
            if 0 < abs(d) < NEAR:
                self.near = True


def windows(shape, kernel, stride):
    _, h, w = shape
    oh, ow = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    for i in range(oh):
        for j in range(ow):
            yield i, j, slice(i * stride[0], i * stride[0] + kernel[0]), slice(j * stride[1], j * stride[1] + kernel[1])


def pool_out(shape, kernel, stride):
    return shape[0], (shape[1] - kernel[0]) // stride[0] + 1, (shape[2] - kernel[1]) // stride[1] + 1


def forward_layer(layer, x, kinks, track=Floats):
    """(output, cache for backward)."""
    kind = layer["type"]
    zero = track.number(0)
    params = {k: track.array(v) for k, v in layer.get("params", {}).items()}
    if kind == "conv2d":
        w, b = params["weight"], params.get("bias")
        ph, pw = layer["padding"]
        xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)), constant_values=zero)
        kernel, stride = layer["kernel_size"], layer["stride"]
        out = track.zeros((w.shape[0], *pool_out(xp.shape, kernel, stride)[1:]))
        for i, j, rows, cols in windows(xp.shape, kernel, stride):
            for o in range(w.shape[0]):
                out[o, i, j] = np.sum(w[o] * xp[:, rows, cols]) + (b[o] if b is not None else zero)
        return out, (xp, w)
    if kind == "linear":
        w, b = params["weight"], params.get("bias")
        return np.dot(w, x) + (b if b is not None else zero), (w,)
    if kind == "flatten":
        return x.reshape(-1), None
    if kind in ("relu", "leaky_relu"):
        kinks.check(x)
        slope = zero if kind == "relu" else track.number(layer.get("negative_slope", Fraction(1, 100)))
        on = x > 0
        return np.where(on, x, slope * x), (on, slope)
    if kind == "sigmoid":
        y = 1 / (1 + np.exp(-x))
        return y, y
    if kind == "tanh":
        y = np.tanh(x)
        return y, y
    if kind == "identity":
        return x, None
    if kind == "softmax":
        e = np.exp(x - x.max())
        y = e / e.sum()
        return y, y
    if kind == "maxpool2d":
        kernel, stride = layer["kernel_size"], layer["stride"]
        out = track.zeros(pool_out(x.shape, kernel, stride))
        winners = {}
        for i, j, rows, cols in windows(x.shape, kernel, stride):
            for c in range(x.shape[0]):
                window = x[c, rows, cols]
                flat = window.reshape(-1)
                k = 0
                for m in range(1, flat.size):  # first maximum, row-major
                    if flat[m] > flat[k]:
                        k = m
                kinks.check(flat[k] - flat)
                winners[c, i, j] = (c, rows.start + k // kernel[1], cols.start + k % kernel[1])
                out[c, i, j] = flat[k]
        return out, winners
    if kind == "avgpool2d":
        kernel, stride = layer["kernel_size"], layer["stride"]
        out = track.zeros(pool_out(x.shape, kernel, stride))
        for i, j, rows, cols in windows(x.shape, kernel, stride):
            out[:, i, j] = x[:, rows, cols].sum(axis=(1, 2)) / (kernel[0] * kernel[1])
        return out, None
    raise AssertionError(kind)


def backward_layer(layer, x, cache, delta, track=Floats):
    """(dL/dx, {param: grad})."""
    kind = layer["type"]
    if kind == "conv2d":
        xp, w = cache
        ph, pw = layer["padding"]
        kernel, stride = layer["kernel_size"], layer["stride"]
        dw, dxp = track.zeros(w.shape), track.zeros(xp.shape)
        for i, j, rows, cols in windows(xp.shape, kernel, stride):
            for o in range(w.shape[0]):
                dw[o] += delta[o, i, j] * xp[:, rows, cols]
                dxp[:, rows, cols] += delta[o, i, j] * w[o]
        grads = {"weight": dw}
        if "bias" in layer["params"]:
            grads["bias"] = delta.sum(axis=(1, 2))
        return dxp[:, ph : ph + x.shape[1], pw : pw + x.shape[2]], grads
    if kind == "linear":
        (w,) = cache
        grads = {"weight": np.outer(delta, x)}
        if "bias" in layer["params"]:
            grads["bias"] = delta.copy()
        return np.dot(w.T, delta), grads
    if kind == "flatten":
        return delta.reshape(x.shape), {}
    if kind in ("relu", "leaky_relu"):
        on, slope = cache
        return np.where(on, delta, slope * delta), {}
    if kind == "sigmoid":
        return delta * cache * (1 - cache), {}
    if kind == "tanh":
        return delta * (1 - cache**2), {}
    if kind == "identity":
        return delta, {}
    if kind == "softmax":
        y = cache
        return y * (delta - np.sum(delta * y)), {}
    if kind == "maxpool2d":
        dx = track.zeros(x.shape)
        for out_index, in_index in cache.items():
            dx[in_index] += delta[out_index]
        return dx, {}
    if kind == "avgpool2d":
        kernel, stride = layer["kernel_size"], layer["stride"]
        dx = track.zeros(x.shape)
        for i, j, rows, cols in windows(x.shape, kernel, stride):
            dx[:, rows, cols] += delta[:, i, j][:, None, None] / (kernel[0] * kernel[1])
        return dx, {}
    raise AssertionError(kind)


def reference(x, layers, loss, track=Floats):
    """(loss, {layer position: {param: grad}}, kinks, output) by a plain forward and backward."""
    kinks = Kinks()
    values, caches = [track.array(x)], []
    for layer in layers:
        out, cache = forward_layer(layer, values[-1], kinks, track)
        values.append(out)
        caches.append(cache)
    o = values[-1].reshape(-1)
    target = loss["target"]
    t = track.array(np.eye(o.size, dtype=int)[target] if isinstance(target, int) else target)
    if loss["type"] == "mse":
        scale = track.number(
            {"mean": Fraction(1, o.size), "sum": 1, "half_sum": Fraction(1, 2)}[loss.get("reduction", "mean")]
        )
        value = scale * np.sum((o - t) ** 2)
        delta = 2 * scale * (o - t)
    elif layers[-1]["type"] == "softmax":
        value = -np.sum(t * np.log(o))
        delta = -t / o
    else:
        value = -np.sum(t * np.log(o) + (1 - t) * np.log(1 - o))
        delta = -t / o + (1 - t) / (1 - o)
    delta = delta.reshape(values[-1].shape)
    grads = {}
    for k in range(len(layers) - 1, -1, -1):
        delta, layer_grads = backward_layer(layers[k], values[k], caches[k], delta, track)
        grads[k] = layer_grads
    return value, grads, kinks, values[-1]


def layer_name(layer, position):
    return layer.get("name", f"{layer['type']}_{position + 1}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks())
def test_random_network_matches_numpy_backprop(net):
    """Loss, output and every gradient agree with the NumPy backprop to float64 rounding."""
    x, layers, loss = net
    text = document(x, layers, loss)
    note(text)
    with np.errstate(all="ignore"):
        value, grads, kinks, out = reference(x, layers, loss)
    assume(not kinks.near)
    assume(np.isfinite(value) and all(np.isfinite(g).all() for lg in grads.values() for g in lg.values()))
    if layers and layers[-1]["type"] == "sigmoid" and loss["type"] == "cross_entropy":
        assume(np.all((out > 1e-6) & (out < 1 - 1e-6)))  # keep log(1 - p) well conditioned
    if layers and layers[-1]["type"] == "softmax" and loss["type"] == "cross_entropy":
        assume(np.all(out > 1e-6))
    derivation = Derivation(loads(text, "random.yaml"), exact=False)
    floats = derivation.floats
    np.testing.assert_allclose(float(floats.loss), value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(floats.values[-1], dtype=float), out, rtol=1e-9, atol=1e-12)
    expected = {
        f"{layer_name(layer, k)}.{param}": grad for k, layer in enumerate(layers) for param, grad in grads[k].items()
    }
    assert list(floats.grads) == list(expected)
    best = derivation.gradient_floats()
    for name, want in expected.items():
        assert floats.grads[name].shape == want.shape, name
        np.testing.assert_allclose(floats.grads[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(best[name], want, rtol=1e-9, atol=1e-12, err_msg=name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks(rational=True))
def test_random_rational_network_matches_exact_backprop(net):
    """Rational networks with the ties and zeros short decimals make: the same backprop run on Fractions
    equals the tool's exact gradients, and the tool's float pass follows the exact kinks (no skipping)."""
    x, layers, loss = net
    text = document(x, layers, loss)
    note(text)
    value, grads, _, out = reference(x, layers, loss, Exact)
    derivation = Derivation(loads(text, "random.yaml"), exact=False)
    exact = derivation.network.run(RationalOps())
    assert exact.loss == value
    assert (exact.values[-1] == out).all()
    expected = {
        f"{layer_name(layer, k)}.{param}": grad for k, layer in enumerate(layers) for param, grad in grads[k].items()
    }
    assert list(exact.grads) == list(expected)
    best = derivation.gradient_floats()
    for name, want in expected.items():
        assert exact.grads[name].shape == want.shape, name
        assert exact.grads[name].tolist() == want.tolist(), name
        nearest = f64(want)
        assert best[name].tolist() == nearest.tolist(), name
        np.testing.assert_allclose(derivation.floats.grads[name], nearest, rtol=1e-9, atol=1e-12, err_msg=name)
