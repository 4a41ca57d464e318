"""Every layer kind and every loss, every parameter's gradient, against central finite differences.

The reference is independent of cnnderive: a forward pass written here with mpmath at 50
digits, differentiated numerically with h = 1e-20 (truncation ~h^2, rounding ~1e-30), so it
is right to far more digits than float64. The networks are filled with seeded short decimals
and each is checked to keep well away from kinks (ReLU inputs near 0, max-pool near-ties).
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.maths.layers import LAYER_KINDS
from tests.yaml_text import to_yaml

H = Fraction(1, 10**20)
KINK_MARGIN = 1e-4  # every ReLU input and max-pool top-two gap must be at least this far from a kink


# --- building a config: numbers are decimal strings, so the YAML and the reference share them exactly


def document(inputs, layers, loss) -> str:
    lines = [f"input: {{values: {to_yaml(inputs)}}}", "layers:"]
    lines += [f"  - {to_yaml(layer)}" for layer in layers]
    lines.append(f"loss: {to_yaml(loss)}")
    return "\n".join(lines) + "\n"


def decimals(rng: random.Random, shape, low: int, high: int, scale: int = 100) -> np.ndarray:
    """An object array of Fractions k/scale with k uniform in [low, high]."""
    flat = [Fraction(rng.randint(low, high), scale) for _ in range(int(np.prod(shape)))]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def fill(seed: int, input_shape, layers):
    """Give every layer explicit params (seeded two-decimal numbers); return input and filled layers."""
    rng = random.Random(seed)
    x = decimals(rng, input_shape, -100, 100)
    shape = tuple(input_shape)
    shapes = {"input": shape}  # by layer name: what `from` reads
    filled = []
    for position, layer in enumerate(layers):
        layer = dict(layer)
        kind = layer["type"]
        if kind == "add":
            shape = shapes[layer["from"][0]]
        elif kind == "concat":
            parts = [shapes[name] for name in layer["from"]]
            shape = (sum(part[0] for part in parts), *parts[0][1:])
        elif "from" in layer:
            shape = shapes[layer["from"]]
        if kind == "conv2d":
            kh, kw = pair(layer["kernel_size"])
            sh, sw = pair(layer.get("stride", 1))
            ph, pw = pair(layer.get("padding", 0))
            out = layer["out_channels"]
            params = {"weight": decimals(rng, (out, shape[0], kh, kw), -60, 60)}
            if layer.get("bias", True):
                params["bias"] = decimals(rng, (out,), -30, 30)
            layer["params"] = params
            shape = (out, (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
        elif kind == "linear":
            out = layer["out_features"]
            params = {"weight": decimals(rng, (out, shape[0]), -60, 60)}
            if layer.get("bias", True):
                params["bias"] = decimals(rng, (out,), -30, 30)
            layer["params"] = params
            shape = (out,)
        elif kind in ("maxpool2d", "avgpool2d"):
            kh, kw = pair(layer["kernel_size"])
            sh, sw = pair(layer.get("stride", layer["kernel_size"]))
            shape = (shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1)
        elif kind == "adaptive_avg_pool2d":
            shape = (shape[0], 1, 1)
        elif kind == "flatten":
            shape = (int(np.prod(shape)),)
        shapes[layer.get("name", f"{kind}_{position + 1}")] = shape
        filled.append(layer)
    return x, filled


# --- the independent reference: a forward pass in mpmath


def mpf(q) -> object:
    q = Fraction(q)
    return mp.mpf(q.numerator) / q.denominator


def mp_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for index in itertools.product(*map(range, arr.shape)):
        out[index] = mpf(arr[index])
    return out


class Reference:
    """Loss of the network as a function of its parameters, in mpmath; records the kink margins."""

    def __init__(self, x, layers, loss):
        self.x = mp_array(x)
        self.layers = layers
        self.loss = loss
        self.params = {
            (k, name): mp_array(value)
            for k, layer in enumerate(layers)
            for name, value in layer.get("params", {}).items()
        }
        self.margins: list = []

    def forward(self, params) -> object:
        a = self.x
        outputs = {"input": a}  # by layer name, for `from`: a graph, not only a chain
        for k, layer in enumerate(self.layers):
            source = layer.get("from")
            if isinstance(source, list):  # add or concat
                a = tuple(outputs[name] for name in source)
            elif source is not None:
                a = outputs[source]
            a = self.layer(layer, a, params.get((k, "weight")), params.get((k, "bias")))
            outputs[layer.get("name", f"{layer['type']}_{k + 1}")] = a
        return self.loss_value(a)

    def layer(self, layer, x, w, b):
        kind = layer["type"]
        if kind == "add":  # element by element
            total = x[0].copy()
            for other in x[1:]:
                total = total + other
            return total
        if kind == "concat":  # along the channels
            return np.concatenate(x, axis=0)
        if kind == "conv2d":
            return conv2d(x, w, b, pair(layer.get("stride", 1)), pair(layer.get("padding", 0)))
        if kind == "linear":
            out = np.empty(w.shape[0], dtype=object)
            for o in range(w.shape[0]):
                s = b[o] if b is not None else mp.mpf(0)
                for j in range(w.shape[1]):
                    s += w[o, j] * x[j]
                out[o] = s
            return out
        if kind == "flatten":
            return np.array(list(x.flat), dtype=object)
        if kind in ("relu", "leaky_relu"):
            self.margins += [abs(v) for v in x.flat]
            slope = mpf(layer.get("negative_slope", Fraction(1, 100))) if kind == "leaky_relu" else mp.mpf(0)
            return elementwise(x, lambda v: v if v > 0 else slope * v)
        if kind == "sigmoid":
            return elementwise(x, lambda v: 1 / (1 + mp.exp(-v)))
        if kind == "tanh":
            return elementwise(x, mp.tanh)
        if kind == "identity":
            return x
        if kind == "softmax":
            e = elementwise(x, mp.exp)
            total = mp.fsum(e.flat)
            return elementwise(e, lambda v: v / total)
        if kind in ("maxpool2d", "avgpool2d"):
            return self.pool(kind, x, pair(layer["kernel_size"]), pair(layer.get("stride", layer["kernel_size"])))
        if kind == "adaptive_avg_pool2d":  # the mean of each whole channel
            return self.pool("avgpool2d", x, x.shape[1:], x.shape[1:])
        if kind == "dropout":  # kept elements scaled by 1/(1 - p), dropped ones 0
            kept = np.asarray(layer["mask"], dtype=object).reshape(x.shape)
            scale = 1 / (1 - mpf(Fraction(layer.get("p", "1/2"))))
            return np.vectorize(lambda v, m: v * m * scale, otypes=[object])(x, kept)
        raise AssertionError(kind)

    def pool(self, kind, x, kernel, stride):
        c_, h_, w_ = x.shape
        ho, wo = (h_ - kernel[0]) // stride[0] + 1, (w_ - kernel[1]) // stride[1] + 1
        out = np.empty((c_, ho, wo), dtype=object)
        for c, i, j in itertools.product(range(c_), range(ho), range(wo)):
            window = [x[c, i * stride[0] + a, j * stride[1] + b] for a in range(kernel[0]) for b in range(kernel[1])]
            if kind == "maxpool2d":
                ordered = sorted(window, reverse=True)
                if len(ordered) > 1:
                    self.margins.append(ordered[0] - ordered[1])
                out[c, i, j] = ordered[0]
            else:
                out[c, i, j] = mp.fsum(window) / len(window)
        return out

    def loss_value(self, out):
        o = list(out.flat)
        kind = self.loss["type"]
        target = self.loss["target"]
        if isinstance(target, int):
            t = [mp.mpf(int(k == target)) for k in range(len(o))]
        else:
            t = [mpf(v) for v in target]
        if kind == "hinge":  # sum over wrong classes of max(0, o_j - o_y + margin), or that over the classes
            y, margin = t.index(1), mpf(Fraction(self.loss.get("margin", 1)))
            margins = [o[j] - o[y] + margin for j in range(len(o)) if j != y]
            self.margins += [abs(m) for m in margins]
            total = mp.fsum(m for m in margins if m > 0)
            return total / len(o) if self.loss.get("reduction", "sum") == "mean" else total
        if kind == "mse":
            total = mp.fsum((a - b) ** 2 for a, b in zip(o, t))
            return (
                total
                * {"mean": mp.mpf(1) / len(o), "sum": 1, "half_sum": mp.mpf(1) / 2}[self.loss.get("reduction", "mean")]
            )
        if self.layers[-1]["type"] == "softmax":
            return -mp.fsum(b * mp.log(a) for a, b in zip(o, t))
        assert self.layers[-1]["type"] == "sigmoid"
        return -mp.fsum(b * mp.log(a) + (1 - b) * mp.log(1 - a) for a, b in zip(o, t))

    def gradients(self) -> dict:
        """Central differences for every parameter element: {(layer, name): array}."""
        grads = {}
        h = mpf(H)
        for key, value in self.params.items():
            grad = np.empty(value.shape, dtype=object)
            for index in itertools.product(*map(range, value.shape)):
                params = dict(self.params)
                up, down = value.copy(), value.copy()
                up[index] += h
                down[index] -= h
                params[key] = up
                plus = self.forward(params)
                params[key] = down
                minus = self.forward(params)
                grad[index] = (plus - minus) / (2 * h)
            grads[key] = grad
        return grads


def conv2d(x, w, b, stride, padding):
    c_in, h_in, w_in = x.shape
    out_c, _, kh, kw = w.shape
    ho = (h_in + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w_in + 2 * padding[1] - kw) // stride[1] + 1
    out = np.empty((out_c, ho, wo), dtype=object)
    for o, i, j in itertools.product(range(out_c), range(ho), range(wo)):
        s = b[o] if b is not None else mp.mpf(0)
        for c, a, bb in itertools.product(range(c_in), range(kh), range(kw)):
            r, q = i * stride[0] + a - padding[0], j * stride[1] + bb - padding[1]
            if 0 <= r < h_in and 0 <= q < w_in:
                s += w[o, c, a, bb] * x[c, r, q]
        out[o, i, j] = s
    return out


def elementwise(x, f):
    out = np.empty(x.shape, dtype=object)
    for index in itertools.product(*map(range, x.shape)):
        out[index] = f(x[index])
    return out


# --- the cases: together they cover every layer kind and every loss

CASES = {
    "conv_multichannel_nonsquare_stride_pad_tanh_linear_mse_mean": (
        1,
        (2, 5, 6),
        [
            {
                "type": "conv2d",
                "name": "conv1",
                "out_channels": 3,
                "kernel_size": [2, 3],
                "stride": [2, 1],
                "padding": [1, 0],
            },
            {"type": "tanh"},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 2},
            {"type": "identity"},
        ],
        {"type": "mse", "target": [Fraction(1, 2), Fraction(-1, 4)]},
    ),
    "conv_nobias_pad_relu_maxpool_linear_softmax_ce_class": (
        102,
        (1, 6, 6),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 3, "padding": 1, "bias": False},
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 3},
            {"type": "softmax"},
        ],
        {"type": "cross_entropy", "target": 2},
    ),
    "conv_leaky_avgpool_nonsquare_softmax_ce_probabilities": (
        3,
        (2, 4, 4),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2},
            {"type": "leaky_relu", "negative_slope": Fraction(1, 5)},
            {"type": "avgpool2d", "kernel_size": [2, 1], "stride": 1},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 3},
            {"type": "softmax"},
        ],
        {"type": "cross_entropy", "target": [Fraction(2, 10), Fraction(5, 10), Fraction(3, 10)]},
    ),
    "conv_sigmoid_overlapping_maxpool_sigmoid_bce": (
        4,
        (1, 5, 5),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 1, "kernel_size": 2},
            {"type": "sigmoid"},
            {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 2},
            {"type": "sigmoid"},
        ],
        {"type": "cross_entropy", "target": [1, Fraction(1, 4)]},
    ),
    "vector_linear_leaky_default_tanh_identity_mse_sum": (
        5,
        (4,),
        [
            {"type": "linear", "name": "fc1", "out_features": 3},
            {"type": "leaky_relu"},
            {"type": "linear", "name": "fc2", "out_features": 3},
            {"type": "tanh"},
            {"type": "linear", "name": "fc3", "out_features": 2, "bias": False},
            {"type": "identity"},
        ],
        {"type": "mse", "target": [Fraction(1, 10), Fraction(-2, 10)], "reduction": "sum"},
    ),
    "conv_identity_avgpool_conv_mse_half_sum": (
        6,
        (1, 5, 5),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2},
            {"type": "identity"},
            {"type": "avgpool2d", "kernel_size": 2},
            {"type": "conv2d", "name": "conv2", "out_channels": 1, "kernel_size": 2},
        ],
        {"type": "mse", "target": [Fraction(3, 10)], "reduction": "half_sum"},
    ),
    "conv_dropout_global_avgpool_linear_ce": (
        11,
        (2, 3, 3),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2},
            {"type": "dropout", "p": "1/3", "mask": [[[1, 0], [1, 1]], [[0, 1], [1, 1]]]},
            {"type": "adaptive_avg_pool2d"},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 3},
            {"type": "softmax"},
        ],
        {"type": "cross_entropy", "target": 2},
    ),
    "conv_tanh_linear_hinge_sum": (
        12,
        (1, 3, 3),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2, "stride": 1},
            {"type": "tanh"},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 4},
        ],
        {"type": "hinge", "target": 2, "margin": "1/100"},
    ),
    "vector_relu_linear_hinge_mean": (
        14,
        (3,),
        [
            {"type": "linear", "name": "fc1", "out_features": 4},
            {"type": "relu"},
            {"type": "linear", "name": "fc2", "out_features": 3},
        ],
        {"type": "hinge", "target": 0, "margin": "3/10", "reduction": "mean"},
    ),
    "softmax_inside_then_mse_mean": (
        7,
        (3,),
        [
            {"type": "linear", "name": "fc", "out_features": 4},
            {"type": "softmax"},
        ],
        {"type": "mse", "target": [Fraction(1, 10), Fraction(2, 10), Fraction(3, 10), Fraction(4, 10)]},
    ),
    "softmax_over_an_image_ce_class": (
        8,
        (1, 3, 3),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2},
            {"type": "softmax"},
        ],
        {"type": "cross_entropy", "target": 5},
    ),
    "conv_relu_conv_stride_relu_maxpool_single_sigmoid_bce": (
        102,
        (1, 6, 6),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 3},
            {"type": "relu"},
            {"type": "conv2d", "name": "conv2", "out_channels": 2, "kernel_size": 2, "stride": [1, 2], "bias": False},
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": [2, 1], "stride": [1, 1]},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 1},
            {"type": "sigmoid"},
        ],
        {"type": "cross_entropy", "target": [1]},
    ),
    "resnet_block_identity_skip_add_relu_global_pool_ce": (
        12,
        (2, 4, 4),
        [
            {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 3, "padding": 1},
            {"type": "relu", "name": "relu1"},
            {"type": "conv2d", "name": "conv2", "out_channels": 2, "kernel_size": 3, "padding": 1},
            {"type": "add", "name": "skip", "from": ["conv2", "input"]},
            {"type": "relu", "name": "relu2"},
            {"type": "adaptive_avg_pool2d"},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 3},
            {"type": "softmax"},
        ],
        {"type": "cross_entropy", "target": 1},
    ),
    "two_branches_concat_and_a_three_way_add_mse": (
        13,
        (1, 4, 4),
        [
            {"type": "conv2d", "name": "left", "out_channels": 2, "kernel_size": 2},
            {"type": "tanh", "name": "left_act", "from": "left"},
            {"type": "conv2d", "name": "right", "out_channels": 1, "kernel_size": 2, "from": "input"},
            {"type": "concat", "name": "cat", "from": ["left_act", "right"]},
            {"type": "conv2d", "name": "mix", "out_channels": 1, "kernel_size": 1, "from": "cat"},
            {"type": "add", "name": "sum3", "from": ["mix", "right", "right"]},
            {"type": "flatten"},
            {"type": "linear", "name": "fc", "out_features": 2},
        ],
        {"type": "mse", "target": [Fraction(1, 2), Fraction(-1, 4)]},
    ),
    "linear_sigmoid_bce_class_index": (
        10,
        (3,),
        [
            {"type": "linear", "name": "fc", "out_features": 3},
            {"type": "sigmoid"},
        ],
        {"type": "cross_entropy", "target": 1},
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_gradient_matches_finite_differences(case):
    """The tool's float64 gradient of every parameter element agrees with 50-digit central differences."""
    seed, shape, layers, loss = CASES[case]
    x, layers = fill(seed, shape, layers)
    network = loads(document(x, layers, loss), f"{case}.yaml")
    derivation = Derivation(network, exact=False)
    with mp.workdps(50):
        reference = Reference(x, layers, loss)
        loss_value = reference.forward(reference.params)
        assert min(reference.margins, default=1) > KINK_MARGIN, "the case sits near a kink; pick other numbers"
        expected = reference.gradients()
        names = {
            (k, p): f"{layer['name'] if 'name' in layer else layer['type'] + '_' + str(k + 1)}.{p}"
            for k, layer in enumerate(layers)
            for p in layer.get("params", {})
        }
        assert float(derivation.floats.loss) == pytest.approx(float(loss_value), rel=1e-12)
        assert set(derivation.floats.grads) == set(names.values())
        floats = derivation.floats.grads
        best = derivation.gradient_floats()
        for key, grad in expected.items():
            name = names[key]
            want = np.array([float(v) for v in grad.flat]).reshape(grad.shape)
            assert floats[name].shape == want.shape, name
            np.testing.assert_allclose(floats[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(best[name], want, rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_cases_cover_every_layer_kind_and_loss():
    """Guard: adding a layer kind or loss to the cases list is how this module stays complete."""
    kinds = {layer["type"] for _, _, layers, _ in CASES.values() for layer in layers}
    # batch norm only makes sense on a batch: its finite differences are in test_batchnorm.py
    batch_wide = {kind for kind, cls in LAYER_KINDS.items() if cls.batch_wide}
    assert batch_wide == {"batchnorm2d", "batchnorm1d"}
    assert kinds == set(LAYER_KINDS) - batch_wide
    losses = set()
    for _, _, layers, loss in CASES.values():
        if loss["type"] == "mse":
            losses.add(("mse", loss.get("reduction", "mean")))
        elif loss["type"] == "hinge":
            losses.add(("hinge", loss.get("reduction", "sum")))
        else:
            target = "class" if isinstance(loss["target"], int) else "probabilities"
            losses.add((layers[-1]["type"], target))
    assert losses >= {
        ("mse", "mean"),
        ("mse", "sum"),
        ("mse", "half_sum"),
        ("softmax", "class"),
        ("softmax", "probabilities"),
        ("sigmoid", "class"),
        ("sigmoid", "probabilities"),
        ("hinge", "sum"),
        ("hinge", "mean"),
    }
    convs = [layer for _, _, layers, _ in CASES.values() for layer in layers if layer["type"] == "conv2d"]
    assert any(layer.get("bias") is False for layer in convs)
    assert any(layer.get("padding") for layer in convs)
    assert any(layer.get("stride") for layer in convs)
    assert any(
        isinstance(layer["kernel_size"], list) and layer["kernel_size"][0] != layer["kernel_size"][1] for layer in convs
    )
