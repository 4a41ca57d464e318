"""An exact backprop written from scratch, to judge cnnderive by (it never imports cnnderive).

It reads the config as a Python dict (the data of the YAML, spec section 1) and computes the loss,
the output and every parameter gradient as exact SymPy numbers. Every kink is decided on those exact
numbers: a zero or a tie is PROVED by SymPy (the difference is structurally 0, or its exp-rewritten
numerator expands to 0, or `simplify` gives 0); a sign is read from mpmath interval arithmetic
(rounding outward, at rising precision) only once the interval excludes 0, and a float is the
double both ends of such an interval round to (so a float needs no proof: a value within 1e-600 of 0
rounds to 0.0 whatever it is). Anything it must decide and can neither prove nor sign raises
`Undecided` rather than guessing. Zeros that decide nothing (a gradient entry) are only marked as
exact zeros when a cheap proof finds them. Naive loops throughout: the networks it judges are tiny.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp
from mpmath import iv, libmp

TRANSCENDENTAL = ("tanh", "sigmoid", "softmax")


class Undecided(Exception):
    """A kink the reference can neither prove to be exactly zero nor give a certain sign."""


# --- exact numbers and their signs


def exact(value: object) -> sp.Rational:
    """A config number as an exact rational: 0.1 means 1/10, "1/3" a third (parsed by Fraction, never eval)."""
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        value = Fraction(repr(value))  # YAML's 0.1 arrives as the float 0.1; its shortest repr is the decimal
    elif isinstance(value, str):
        value = Fraction(value.strip())
    elif not isinstance(value, Fraction):
        raise TypeError(f"not a number: {value!r}")
    return sp.Rational(value.numerator, value.denominator)


def tensor(values: object) -> np.ndarray:
    """Nested lists of config numbers as an object array of exact rationals."""
    raw = np.array(values, dtype=object)
    out = np.empty(raw.shape, dtype=object)
    for index in np.ndindex(raw.shape):
        out[index] = exact(raw[index])
    return out


PRECISIONS = (128, 512, 2048)  # bits of the interval evaluations, tried in turn


@lru_cache(maxsize=200_000)
def _enclose(x: sp.Expr, bits: int) -> iv.mpf:
    """An interval that surely holds x (mpmath interval arithmetic, rounding outward at `bits`).

    Memoised per node: SymPy's own evalf re-evaluates every shared subexpression (a softmax's sum of
    exponentials sits in every gradient), which made it 100x slower on these networks.
    """
    if x.is_Rational:
        return iv.mpf(x.p) / iv.mpf(x.q)
    if x is sp.E:
        return iv.e
    args = [_enclose(arg, bits) for arg in x.args]
    if isinstance(x, sp.Add):
        return sum(args[1:], args[0])
    if isinstance(x, sp.Mul):
        product = args[0]
        for factor in args[1:]:
            product = product * factor
        return product
    if isinstance(x, sp.Pow) and x.exp.is_Integer:
        return args[0] ** int(x.exp)
    if isinstance(x, sp.exp):
        return iv.exp(args[0])
    if isinstance(x, sp.tanh):
        return 1 - 2 / (iv.exp(2 * args[0]) + 1)  # tanh(a) = 1 - 2/(e^(2a) + 1): a appears once, no widening
    if isinstance(x, sp.log):
        return iv.log(args[0])
    raise TypeError(f"the reference cannot evaluate {type(x).__name__}: {x}")


def enclosure(x: sp.Expr, bits: int) -> tuple[Fraction, Fraction] | None:
    """Exact rational bounds lo <= x <= hi, or None when the evaluation at `bits` gave nothing finite."""
    saved = iv.prec
    iv.prec = bits
    try:
        box = _enclose(x, bits)
    except (ZeroDivisionError, ValueError, libmp.ComplexResult):  # log of an interval that reaches 0, ...
        return None
    finally:
        iv.prec = saved
    ends = box._mpi_  # the raw endpoints (mpmath's own float() of them truncates, so convert exactly)
    if any(end in (libmp.finf, libmp.fninf, libmp.fnan) for end in ends):
        return None
    lo, hi = (Fraction(*libmp.to_rational(end)) for end in ends)
    return lo, hi


PROOF_OPS = 2000  # a zero that is not a kink is only proved when it is this small (simplify can take minutes)


@lru_cache(maxsize=10_000)
def proved_zero(x: sp.Expr, cheap: bool = False) -> bool:
    """True only when SymPy proves x = 0: structurally, by exp-rewriting and expanding, or by simplify.

    `cheap`: give up (False) on big expressions and skip simplify, for zeros that decide nothing
    (the bias gradient through a softmax, shift invariant, is 0 as a 36,000-operation expression).
    """
    if x == 0:
        return True
    if cheap and sp.count_ops(x) > PROOF_OPS:
        return False
    numerator, _ = sp.fraction(sp.together(x.rewrite(sp.exp)))
    if sp.expand(numerator) == 0:
        return True
    return not cheap and sp.simplify(x) == 0


@lru_cache(maxsize=100_000)
def interval_sign(x: sp.Expr) -> int | None:
    """1 or -1 once an interval around x excludes 0 (rising precision); None if none did (x is 0, or nearly)."""
    for bits in PRECISIONS:
        bounds = enclosure(x, bits)
        if bounds is not None and bounds[0] > 0:
            return 1
        if bounds is not None and bounds[1] < 0:
            return -1
    return None


def sign(x: sp.Expr) -> int:
    """-1, 0 or 1, exactly: the sign of an interval that excludes 0, or 0 by a SymPy proof."""
    x = sp.sympify(x)  # a SymPy object or a Python int (never text)
    if x.is_Rational:
        return int(bool(x > 0)) - int(bool(x < 0))
    found = interval_sign(x)
    if found is not None:
        return found
    if proved_zero(x):
        return 0
    raise Undecided(f"cannot decide the sign of {x}")


def to_float(x: sp.Expr) -> float:
    """The nearest double of an exact value: the double both ends of an interval around it round to."""
    x = sp.sympify(x)
    for bits in PRECISIONS:
        bounds = enclosure(x, bits)
        if bounds is not None and float(bounds[0]) == float(bounds[1]):  # float(Fraction) rounds to nearest
            return float(bounds[0]) + 0.0  # + 0.0: no -0.0
    raise Undecided(f"cannot round {x} to a double")


def floats(values: np.ndarray) -> np.ndarray:
    """An object array of exact values as the nearest doubles."""
    return np.vectorize(to_float, otypes=[float])(values) if values.size else np.zeros(values.shape)


def zero(x: sp.Expr) -> bool:
    """x is proved to be exactly 0 (cheaply: see proved_zero)."""
    x = sp.sympify(x)
    return x == 0 or (not x.is_Rational and interval_sign(x) is None and proved_zero(x, cheap=True))


def settle(values: np.ndarray) -> np.ndarray:
    """The same values with every proved zero written as the integer 0, so that products with it are 0 on sight
    (SymPy leaves exp(A)*exp(-A) unsimplified when A is a sum: without this, one zero delta would make every
    gradient upstream a large expression)."""
    out = values.copy()
    for index in np.ndindex(values.shape):
        if zero(values[index]):
            out[index] = sp.Integer(0)
    return out


def zeros(values: np.ndarray) -> np.ndarray:
    """Where an object array holds values proved to be exactly 0."""
    return np.vectorize(zero, otypes=[bool])(values) if values.size else np.zeros(values.shape, bool)


# --- the result


@dataclass
class Kink:
    """A point where the derivative had to be decided by convention: a ReLU at 0, a max-pool tie."""

    position: int  # the layer's position in the config's list, from 0
    layer: str
    index: tuple
    kind: str  # relu_zero | leaky_zero | maxpool_tie
    after_transcendental: bool  # some earlier layer was tanh, sigmoid or softmax


@dataclass
class Result:
    values: list  # values[0] the input, values[k + 1] the output of layer k (object arrays)
    loss: sp.Expr
    grads: dict  # canonical parameter name -> object array of dL/dparam
    kinks: list = field(default_factory=list)

    @property
    def output(self) -> np.ndarray:
        return self.values[-1]


def _pair(value: object) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out[...] = sp.Integer(0)
    return out


def _sum(terms) -> sp.Expr:
    return sp.Add(*terms)


def _times(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a * b, with 0 * anything = 0 at once (SymPy asks whether `anything` is finite, which evaluates it)."""
    return sp.Integer(0) if a == 0 or b == 0 else a * b


def _elementwise_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        out[index] = _times(a[index], b[index])
    return out


# --- layers: forward(x) returns (y, backward) with backward(dL/dy) -> (dL/dx, {param: grad})


def linear(x, weight, bias):
    if x.ndim != 1:
        raise ValueError("linear needs a vector input (add a flatten)")
    out_n, in_n = weight.shape
    y = np.empty(out_n, dtype=object)
    for o in range(out_n):
        y[o] = _sum([weight[o, i] * x[i] for i in range(in_n)] + ([bias[o]] if bias is not None else []))

    def backward(g):
        gx = np.array([_sum(_times(weight[o, i], g[o]) for o in range(out_n)) for i in range(in_n)], dtype=object)
        gw = np.empty(weight.shape, dtype=object)
        for o in range(out_n):
            for i in range(in_n):
                gw[o, i] = _times(g[o], x[i])
        grads = {"weight": gw}
        if bias is not None:
            grads["bias"] = g.copy()
        return gx, grads

    return y, backward


def conv2d(x, weight, bias, stride, padding):
    channels, height, width = x.shape
    out_c, in_c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    if in_c != channels:
        raise ValueError(f"conv2d expects {in_c} input channels, got {channels}")
    xp = _zeros((channels, height + 2 * ph, width + 2 * pw))
    xp[:, ph : ph + height, pw : pw + width] = x
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    window = [(c, a, b) for c in range(channels) for a in range(kh) for b in range(kw)]
    y = np.empty((out_c, out_h, out_w), dtype=object)
    for o in range(out_c):
        for i in range(out_h):
            for j in range(out_w):
                terms = [_times(weight[o, c, a, b], xp[c, i * sh + a, j * sw + b]) for c, a, b in window]
                y[o, i, j] = _sum(terms + ([bias[o]] if bias is not None else []))

    def backward(g):
        gxp, gw = _zeros(xp.shape), _zeros(weight.shape)
        for o in range(out_c):
            for i in range(out_h):
                for j in range(out_w):
                    for c, a, b in window:
                        gxp[c, i * sh + a, j * sw + b] += _times(weight[o, c, a, b], g[o, i, j])
                        gw[o, c, a, b] += _times(g[o, i, j], xp[c, i * sh + a, j * sw + b])
        grads = {"weight": gw}
        if bias is not None:
            grads["bias"] = np.array([_sum(g[o].flat) for o in range(out_c)], dtype=object)
        return gxp[:, ph : ph + height, pw : pw + width], grads

    return y, backward


def _pool_windows(x, kernel, stride):
    """(output index, [input indices of its window, row-major]) for every pooling window."""
    channels, height, width = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    for c in range(channels):
        for i in range(out_h):
            for j in range(out_w):
                yield (c, i, j), [(c, i * sh + a, j * sw + b) for a in range(kh) for b in range(kw)]


def maxpool2d(x, kernel, stride, note_kink):
    windows = list(_pool_windows(x, kernel, stride))
    y = np.empty((x.shape[0], windows[-1][0][1] + 1, windows[-1][0][2] + 1), dtype=object)
    winner = {}
    for out, cells in windows:
        best, tied = cells[0], False
        for cell in cells[1:]:
            s = sign(x[cell] - x[best])
            if s > 0:
                best, tied = cell, False
            elif s == 0:
                tied = True  # equal to the current maximum: the first one keeps the gradient
        if tied:
            note_kink(out, "maxpool_tie")
        winner[out] = best
        y[out] = x[best]

    def backward(g):
        gx = _zeros(x.shape)
        for out, cell in winner.items():
            gx[cell] += g[out]
        return gx, {}

    return y, backward


def avgpool2d(x, kernel, stride):
    windows = list(_pool_windows(x, kernel, stride))
    size = kernel[0] * kernel[1]
    y = np.empty((x.shape[0], windows[-1][0][1] + 1, windows[-1][0][2] + 1), dtype=object)
    for out, cells in windows:
        y[out] = _sum(x[cell] for cell in cells) / size

    def backward(g):
        gx = _zeros(x.shape)
        for out, cells in windows:
            for cell in cells:
                gx[cell] += g[out] / size
        return gx, {}

    return y, backward


def elementwise(x, function, derivative):
    """An elementwise activation from its value and its local derivative (both given the input)."""
    y, local = np.empty(x.shape, dtype=object), np.empty(x.shape, dtype=object)
    for index in np.ndindex(x.shape):
        y[index], local[index] = function(x[index]), derivative(x[index])
    return y, lambda g: (_elementwise_times(g, local), {})


def relu(x, slope, kind, note_kink):
    """ReLU (slope 0) or leaky ReLU: the derivative at exactly 0 is the slope (spec section 2)."""
    decided = {}
    for index in np.ndindex(x.shape):
        decided[index] = sign(x[index])
        if decided[index] == 0:
            note_kink(index, kind)

    y, local = np.empty(x.shape, dtype=object), np.empty(x.shape, dtype=object)
    for index in np.ndindex(x.shape):
        s = decided[index]
        y[index] = x[index] if s > 0 else (sp.Integer(0) if s == 0 else slope * x[index])
        local[index] = sp.Integer(1) if s > 0 else slope
    return y, lambda g: (_elementwise_times(g, local), {})


def sigmoid(v):
    return 1 / (1 + sp.exp(-v))


def softmax(x):
    """Softmax over every element of its input."""
    e = np.empty(x.shape, dtype=object)
    for index in np.ndindex(x.shape):
        e[index] = sp.exp(x[index])
    total = _sum(e.flat)
    p = e / total

    def backward(g):
        dot = _sum(_times(g[index], p[index]) for index in np.ndindex(x.shape))
        return _elementwise_times(p, g - dot), {}

    return p, backward


# --- the network


def layer_name(layer: dict, position: int) -> str:
    """The spec's default name: type and position in the list, from 1 (conv2d_1, relu_2)."""
    return layer.get("name", f"{layer['type']}_{position + 1}")


def _params(layer: dict, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    given = layer.get("params", {})
    if "weight" not in given or (layer.get("bias", True) and "bias" not in given):
        raise ValueError(f"{name}: the reference needs every parameter written out (no seeded draws)")
    weight = tensor(given["weight"])
    bias = tensor(given["bias"]) if layer.get("bias", True) else None
    return weight, bias


def forward_layer(x, layer, name, note_kink):
    kind = layer["type"]
    if kind == "linear":
        weight, bias = _params(layer, name)
        return linear(x, weight, bias), (weight, bias)
    if kind == "conv2d":
        weight, bias = _params(layer, name)
        if weight.ndim == 2:  # [kh][kw] when out = in = 1
            weight = weight.reshape(1, 1, *weight.shape)
        stride, padding = _pair(layer.get("stride", 1)), _pair(layer.get("padding", 0))
        return conv2d(x, weight, bias, stride, padding), (weight, bias)
    if kind in ("maxpool2d", "avgpool2d"):
        if "padding" in layer:
            raise ValueError("pools have no padding in the spec")
        kernel = _pair(layer["kernel_size"])
        stride = _pair(layer.get("stride", layer["kernel_size"]))
        pool = maxpool2d(x, kernel, stride, note_kink) if kind == "maxpool2d" else avgpool2d(x, kernel, stride)
        return pool, None
    if kind == "flatten":
        return (x.reshape(-1), lambda g: (g.reshape(x.shape), {})), None
    if kind == "relu":
        return relu(x, sp.Integer(0), "relu_zero", note_kink), None
    if kind == "leaky_relu":
        return relu(x, exact(layer.get("negative_slope", Fraction(1, 100))), "leaky_zero", note_kink), None
    if kind == "sigmoid":
        return elementwise(x, sigmoid, lambda v: sigmoid(v) * (1 - sigmoid(v))), None
    if kind == "tanh":
        return elementwise(x, sp.tanh, lambda v: 1 - sp.tanh(v) ** 2), None
    if kind == "identity":
        return (x, lambda g: (g, {})), None
    if kind == "softmax":
        return softmax(x), None
    raise ValueError(f"unknown layer type {kind!r}")


def loss_and_delta(config: dict, output: np.ndarray) -> tuple[sp.Expr, np.ndarray]:
    """The loss and dL/d(output) (spec section 1: mse with its reductions, cross-entropy on softmax/sigmoid)."""
    spec = config["loss"]
    o = output.reshape(-1)
    n = o.size
    target = spec["target"]
    if isinstance(target, int) and not isinstance(target, bool):
        t = np.array([sp.Integer(int(k == target)) for k in range(n)], dtype=object)  # class index: one-hot
    else:
        t = tensor(target).reshape(-1)
    if t.size != n:
        raise ValueError(f"target has {t.size} values, the output {n}")
    if spec["type"] == "mse":
        scale = {"mean": sp.Rational(1, n), "sum": sp.Integer(1), "half_sum": sp.Rational(1, 2)}
        c = scale[spec.get("reduction", "mean")]
        loss = c * _sum((o[k] - t[k]) ** 2 for k in range(n))
        delta = np.array([2 * c * (o[k] - t[k]) for k in range(n)], dtype=object)
        return loss, delta.reshape(output.shape)
    if spec["type"] != "cross_entropy":
        raise ValueError(f"unknown loss {spec['type']!r}")
    last = config["layers"][-1]["type"] if config["layers"] else None
    terms, delta = [], np.empty(n, dtype=object)
    for k in range(n):
        p = o[k]
        terms.append(-t[k] * sp.log(p) if t[k] != 0 else 0)
        delta[k] = -t[k] / p
        if last == "sigmoid":
            terms.append(-(1 - t[k]) * sp.log(1 - p) if t[k] != 1 else 0)
            delta[k] += (1 - t[k]) / (1 - p)
        elif last != "softmax":
            raise ValueError("cross_entropy needs the network to end in softmax or sigmoid")
    return _sum(terms), delta.reshape(output.shape)


def backprop(config: dict) -> Result:
    """Loss, layer outputs and every parameter gradient of `config`, exactly, kinks decided exactly."""
    x = tensor(config["input"]["values"])
    layers = config["layers"]
    if x.ndim == 2:
        x = x.reshape(1, *x.shape)  # [H][W] means one channel
    values, backwards, kinks, names = [x], [], [], []
    for position, layer in enumerate(layers):
        name = layer_name(layer, position)
        after = any(earlier["type"] in TRANSCENDENTAL for earlier in layers[:position])

        def note_kink(index, kind, position=position, name=name, after=after):
            kinks.append(Kink(position, name, tuple(index), kind, after))

        (y, backward), _ = forward_layer(values[-1], layer, name, note_kink)
        values.append(y)
        backwards.append(backward)
        names.append(name)
    loss, g = loss_and_delta(config, values[-1])
    grads = {}
    g = settle(g)
    for position in reversed(range(len(layers))):
        g, layer_grads = backwards[position](g)
        g = settle(g)
        for param, grad in layer_grads.items():
            grads[f"{names[position]}.{param}"] = settle(grad)
    ordered = {
        f"{names[k]}.{p}": grads[f"{names[k]}.{p}"]
        for k in range(len(layers))
        for p in ("weight", "bias")
        if f"{names[k]}.{p}" in grads
    }
    return Result(values=values, loss=loss, grads=ordered, kinks=kinks)
