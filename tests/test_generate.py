"""`cnnderive generate` on the three seed templates: 30 variants each with no tie, no exact ReLU
zero and every mistake discriminated, checked by an exact forward and backward pass written here
(Fractions; floats after a softmax) that does not use cnnderive's config reader, maths or screen."""

from __future__ import annotations

import functools
import time
from fractions import Fraction

import numpy as np
import pytest
import yaml

from cnnderive.check.checker import Checker
from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.maths.numbers import as_fraction
from cnnderive.teach.draw import draw_variants
from cnnderive.teach.template import load_template
from tests.conftest import CONFIGS

TEMPLATES = sorted((CONFIGS / "templates").glob("*.yaml"))
SEED = 7
TIMES: dict[str, float] = {}


@functools.cache
def variants_of(path: str):
    start = time.perf_counter()
    found = draw_variants(load_template(path), 30, SEED)
    TIMES[path] = time.perf_counter() - start
    return found


# -- an independent reference: the config read by plain YAML, the passes written out -------------


def exact(value) -> Fraction:
    """A YAML number (int, or a float written with a few decimals) as the exact number it was written as."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def tensor(raw) -> np.ndarray:
    return np.vectorize(exact, otypes=[object])(np.array(raw, dtype=object))


def conv(x, w, b):
    """One channel in, one out, stride 1, no padding."""
    kh, kw = w.shape
    out = np.empty((x.shape[0] - kh + 1, x.shape[1] - kw + 1), dtype=object)
    for i, j in np.ndindex(*out.shape):
        out[i, j] = sum(w[a, c] * x[i + a, j + c] for a in range(kh) for c in range(kw)) + b
    return out


def reference(text: str, relu_zero_and_ties: list):
    """(network description, every layer's input and parameters) and dL/d(each parameter)."""
    config = yaml.safe_load(text)
    x = tensor(config["input"]["values"])
    inputs, grads = [], {}
    for k, layer in enumerate(config["layers"]):
        kind, name = layer["type"], layer.get("name", f"{layer['type']}_{k + 1}")
        params = {key: tensor(value) for key, value in layer.get("params", {}).items()}
        inputs.append((kind, name, x, params))
        if kind == "conv2d":
            x = conv(x, params["weight"], params["bias"][0] if "bias" in params else 0)
        elif kind == "relu":
            relu_zero_and_ties.extend(f"{name}: zero" for v in x.flat if v == 0)
            x = np.vectorize(lambda v: max(v, Fraction(0)), otypes=[object])(x)
        elif kind == "maxpool2d":
            s = layer["kernel_size"]
            out = np.empty((x.shape[0] // s, x.shape[1] // s), dtype=object)
            for i, j in np.ndindex(*out.shape):
                window = list(x[i * s : i * s + s, j * s : j * s + s].flat)
                out[i, j] = max(window)
                relu_zero_and_ties.extend(f"{name}: tie" for _ in range(window.count(max(window)) - 1))
            x = out
        elif kind == "flatten":
            x = x.reshape(-1)
        elif kind == "linear":
            x = params["weight"].dot(x) + params["bias"]
        elif kind == "softmax":
            e = np.exp(x.astype(float))
            x = e / e.sum()
    loss = config["loss"]
    if loss["type"] == "mse":
        target = tensor(loss["target"])
        scale = {"sum": 2, "half_sum": 1, "mean": Fraction(2, x.size)}[loss.get("reduction", "mean")]
        delta = scale * (x - target)
    else:
        delta = x - np.eye(x.size)[loss["target"]]  # cross-entropy through the softmax: p - y
    for kind, name, x_in, params in reversed(inputs):
        if kind == "softmax":
            continue  # fused with the cross-entropy above
        if kind == "linear":
            grads[f"{name}.weight"], grads[f"{name}.bias"] = np.outer(delta, x_in), delta
            delta = params["weight"].T.dot(delta)
        elif kind == "flatten":
            delta = delta.reshape(x_in.shape)
        elif kind == "maxpool2d":
            s, back = len(x_in) // len(delta), np.zeros(x_in.shape, dtype=delta.dtype)
            for i, j in np.ndindex(*delta.shape):
                window = x_in[i * s : i * s + s, j * s : j * s + s]
                a, c = divmod(list(window.flat).index(max(window.flat)), s)
                back[i * s + a, j * s + c] = delta[i, j]
            delta = back
        elif kind == "relu":
            delta = delta * (x_in > 0)
        elif kind == "conv2d":
            w = params["weight"]
            kh, kw = w.shape
            grads[f"{name}.weight"] = np.array(
                [
                    [sum(delta[i, j] * x_in[i + a, j + c] for i, j in np.ndindex(*delta.shape)) for c in range(kw)]
                    for a in range(kh)
                ]
            )
            grads[f"{name}.weight.terms"] = (delta, x_in)
            grads[f"{name}.bias"] = np.array([delta.sum()])
            back = np.zeros(x_in.shape, dtype=delta.dtype) * 0
            for i, j in np.ndindex(*delta.shape):
                back[i : i + kh, j : j + kw] = back[i : i + kh, j : j + kw] + w * delta[i, j]
            delta = back
    return grads


def element(grads, name: str):
    """dL/d(name[index]) out of the reference gradients; a conv weight's index is [0,0,a,c]."""
    tensor_name, index = name.split("[")
    index = tuple(int(i) for i in index.rstrip("]").split(","))
    array = grads[tensor_name]
    return array[index[-array.ndim :]]


def too_close(a: float, b: float, relative: float) -> bool:
    return abs(a - b) <= relative * (abs(a) + abs(b)) + 2e-6


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_thirty_variants_have_no_tie_and_no_relu_zero(path):
    variants = variants_of(str(path))
    assert len(variants) == 30 and len({v.config_text for v in variants}) == 30
    for variant in variants:
        accidents: list = []
        reference(variant.config_text, accidents)
        assert accidents == [], f"variant {variant.number}: {accidents}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_right_values_are_the_reference_backprop(path):
    for variant in variants_of(str(path)):
        grads = reference(variant.config_text, [])
        for answer in variant.answers:
            expected = element(grads, answer.name)
            assert float(expected) == pytest.approx(answer.approx, rel=1e-9, abs=1e-12)
            if isinstance(expected, Fraction):
                assert as_fraction(answer.value) == expected  # exact, not only close


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_mistake_gives_another_number(path):
    """Every mistake the checker builds for the variant (rebuilt here from the written config) lies
    outside the tolerance of the right value; so do the sign error and, for a conv weight, the
    product of sums computed from the reference's terms."""
    template = load_template(str(path))
    relative = float(template.tolerance)
    for variant in variants_of(str(path)):
        derivation = Derivation(loads(variant.config_text, "variant"))
        grads = reference(variant.config_text, [])
        for question in template.questions:
            right = float(element(grads, question))
            checker = Checker(derivation, question)
            values = [float(v.expr) for v in checker.value_variants()]
            assert values, question
            assert not [v for v in values if too_close(right, v, relative)], (variant.number, question)
            assert not too_close(right, -right, relative)
            if ".weight" in question and f"{question.split('.')[0]}.weight.terms" in grads:
                delta, x_in = grads[f"{question.split('.')[0]}.weight.terms"]
                a, c = (int(i) for i in question.rstrip("]").split(",")[-2:])
                inputs = [x_in[i + a, j + c] for i, j in np.ndindex(*delta.shape) if delta[i, j] != 0]
                product_of_sums = float(sum(inputs) * sum(delta.flat))
                assert len(inputs) == 1 or not too_close(right, product_of_sums, relative), (variant.number, question)


def test_thirty_variants_take_seconds():
    for path in TEMPLATES:
        variants_of(str(path))
    assert all(seconds < 60 for seconds in TIMES.values()), TIMES
