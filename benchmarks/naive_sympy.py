"""The naive SymPy way: the whole loss as one expression, `diff` per weight, `subs` the numbers.

    python benchmarks/naive_sympy.py NET.yaml      # prints the JSON of `cnnderive grad --json`

What a student who knows SymPy might write: every parameter a Symbol, the input as exact
numbers, each layer built element by element (ReLU as Max(0, z), max-pool as Max of the
window, sums with Add(*terms)), then for each weight diff(loss, w).subs(values). It is the
slow baseline of benchmarks/run.py, run there under a time limit. (It also shows the trap
of differentiating Max: at a tie SymPy's Heaviside(0) = 1/2 splits the gradient.)
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from fractions import Fraction

import numpy as np
import sympy
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seeded


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


_Loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: loader.construct_scalar(node))


def rational(value) -> sympy.Rational:
    q = Fraction(str(value).strip())
    return sympy.Rational(q.numerator, q.denominator)


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def array(raw) -> np.ndarray:
    out = np.empty(np.shape(raw), dtype=object)
    for index in np.ndindex(out.shape):
        item = raw
        for k in index:
            item = item[k]
        out[index] = rational(item)
    return out


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=_Loader)
    seed = config.get("seed", 0)
    spec = config["input"]
    if "values" in spec:
        x = array(spec["values"])
    else:
        shape = tuple(spec["shape"])
        x = np.array(
            [sympy.Rational(k, 10) for k in seeded.input_tenths(seed, int(np.prod(shape)))], dtype=object
        ).reshape(shape)
    if x.ndim == 2:
        x = x.reshape(1, *x.shape)
    symbols, numbers = {}, {}

    def parameter(layer_name, param, shape, fan_in, given):
        name = f"{layer_name}.{param}"
        if param in given:
            values = array(given[param]).reshape(shape)
        else:
            drawn = seeded.parameter_hundredths(seed, name, int(np.prod(shape)), fan_in)
            values = np.array([sympy.Rational(k, 100) for k in drawn], dtype=object).reshape(shape)
        tensor = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            symbol = sympy.Symbol(f"{name}[{','.join(map(str, index))}]", real=True)
            tensor[index] = symbol
            numbers[symbol] = values[index]
        symbols[name] = tensor
        return tensor

    for position, layer in enumerate(config["layers"]):
        kind = layer["type"]
        name = layer.get("name", f"{kind}_{position + 1}")
        given = layer.get("params") or {}
        if kind == "conv2d":
            (kh, kw), (sh, sw), (ph, pw) = (
                pair(layer["kernel_size"]),
                pair(layer.get("stride", 1)),
                pair(layer.get("padding", 0)),
            )
            channels, height, width = x.shape
            out_c = layer["out_channels"]
            w = parameter(name, "weight", (out_c, channels, kh, kw), channels * kh * kw, given)
            b = parameter(name, "bias", (out_c,), channels * kh * kw, given) if layer.get("bias", True) else None
            padded = np.full((channels, height + 2 * ph, width + 2 * pw), sympy.Integer(0), dtype=object)
            padded[:, ph : ph + height, pw : pw + width] = x
            out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
            out = np.empty((out_c, out_h, out_w), dtype=object)
            for o, i, j in itertools.product(range(out_c), range(out_h), range(out_w)):
                terms = [
                    w[o, c, a, bb] * padded[c, i * sh + a, j * sw + bb]
                    for c, a, bb in itertools.product(range(channels), range(kh), range(kw))
                ]
                out[o, i, j] = sympy.Add(*terms, *([b[o]] if b is not None else []))
            x = out
        elif kind == "linear":
            n = x.shape[0]
            w = parameter(name, "weight", (layer["out_features"], n), n, given)
            b = parameter(name, "bias", (layer["out_features"],), n, given) if layer.get("bias", True) else None
            x = np.array(
                [
                    sympy.Add(*[w[k, j] * x[j] for j in range(n)], *([b[k]] if b is not None else []))
                    for k in range(w.shape[0])
                ],
                dtype=object,
            )
        elif kind in ("maxpool2d", "avgpool2d"):
            (kh, kw) = pair(layer["kernel_size"])
            (sh, sw) = pair(layer.get("stride", layer["kernel_size"]))
            channels, height, width = x.shape
            out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
            out = np.empty((channels, out_h, out_w), dtype=object)
            for c, i, j in itertools.product(range(channels), range(out_h), range(out_w)):
                window = list(x[c, i * sh : i * sh + kh, j * sw : j * sw + kw].flat)
                out[c, i, j] = sympy.Max(*window) if kind == "maxpool2d" else sympy.Add(*window) / (kh * kw)
            x = out
        elif kind == "flatten":
            x = x.reshape(-1)
        elif kind == "relu":
            x = np.vectorize(lambda z: sympy.Max(0, z), otypes=[object])(x)
        elif kind == "leaky_relu":
            slope = rational(layer.get("negative_slope", "0.01"))
            x = np.vectorize(lambda z, s=slope: sympy.Piecewise((z, z > 0), (s * z, True)), otypes=[object])(x)
        elif kind == "sigmoid":
            x = np.vectorize(lambda z: 1 / (1 + sympy.exp(-z)), otypes=[object])(x)
        elif kind == "tanh":
            x = np.vectorize(sympy.tanh, otypes=[object])(x)
        elif kind == "identity":
            pass
        elif kind == "softmax":
            e = np.vectorize(sympy.exp, otypes=[object])(x)
            total = sympy.Add(*e.flat)
            x = e / total
        else:
            raise SystemExit(f"unknown layer type {kind}")
    flat = list(x.flat)
    spec = config["loss"]
    raw = spec["target"]
    if isinstance(raw, int) and spec["type"] == "cross_entropy":
        target = [sympy.Integer(int(k == raw)) for k in range(len(flat))]
    else:
        target = [rational(v) for v in (raw if isinstance(raw, list) else [raw])]
    if spec["type"] == "cross_entropy":
        terms = [-t * sympy.log(p) for t, p in zip(target, flat) if t != 0]
        if config["layers"][-1]["type"] == "sigmoid":
            terms += [-(1 - t) * sympy.log(1 - p) for t, p in zip(target, flat) if t != 1]
        loss = sympy.Add(*terms)
    else:
        scale = {"mean": sympy.Rational(1, len(flat)), "sum": 1, "half_sum": sympy.Rational(1, 2)}[
            spec.get("reduction", "mean")
        ]
        loss = scale * sympy.Add(*[(p - t) ** 2 for p, t in zip(flat, target)])
    gradients = {}
    for name, tensor in symbols.items():
        grad = np.empty(tensor.shape, dtype=float)
        for index in np.ndindex(tensor.shape):
            grad[index] = float(sympy.diff(loss, tensor[index]).subs(numbers).evalf())
        gradients[name] = grad.tolist()
    document = {
        "loss": float(loss.subs(numbers).evalf()),
        "output": np.vectorize(lambda e: float(e.subs(numbers).evalf()), otypes=[float])(x).tolist(),
        "gradients": gradients,
    }
    print(json.dumps(document))


if __name__ == "__main__":
    main(sys.argv[1])
