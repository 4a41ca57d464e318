"""The losses: their value, dL/d(output), and the fused rule through a final softmax or sigmoid."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ..errors import ShapeError
from .layers import Layer, Setting
from .ops import integer_scaled


@dataclass(frozen=True)
class MSE:
    """sum_i (o_i - t_i)^2, divided by n (mean), or not (sum), or halved (half_sum)."""

    kind: ClassVar[str] = "mse"
    settings: ClassVar[dict[str, Setting]] = {
        "reduction": Setting("reduction", "choice", "mean", options=("mean", "sum", "half_sum"))
    }
    takes_class_index: ClassVar[bool] = False
    rational: ClassVar[bool] = True  # maps rational outputs to a rational loss and gradient
    reduction: str = "mean"

    @classmethod
    def create(cls, layers: list[Layer], target: np.ndarray, **settings: object) -> MSE:
        return cls(**settings)

    def scale(self, size: int) -> Fraction:
        return {"mean": Fraction(1, size), "sum": Fraction(1), "half_sum": Fraction(1, 2)}[self.reduction]

    def describe(self) -> str:
        return f"mse ({self.reduction})"

    def value(self, out, target, ops):
        diff = out.reshape(-1) - target
        with np.errstate(all="ignore"):  # a float track may overflow to inf here; the nearest pass is exact
            return (diff * diff).sum() * ops.const(self.scale(diff.size))

    def delta(self, out, target, ops):
        diff = out.reshape(-1) - target
        return (diff * ops.const(2 * self.scale(diff.size))).reshape(out.shape)


@dataclass(frozen=True)
class CrossEntropy:
    """-sum_i t_i log p_i on a softmax; the binary form, summed, on a sigmoid."""

    kind: ClassVar[str] = "cross_entropy"
    settings: ClassVar[dict[str, Setting]] = {}
    takes_class_index: ClassVar[bool] = True  # a class index stands for its one-hot vector
    rational: ClassVar[bool] = False
    on: str = "softmax"
    target_sums_to_one: bool = True  # then dL/dz through a softmax is exactly p - t

    @classmethod
    def create(cls, layers: list[Layer], target: np.ndarray, **settings: object) -> CrossEntropy:
        last = layers[-1].kind if layers else "input"
        if last not in ("softmax", "sigmoid"):
            raise ShapeError(
                f"cross_entropy needs the network to end in softmax or sigmoid, but it ends in {last}", "type"
            )
        return cls(last, target_sums_to_one=sum(target) == 1)

    def describe(self) -> str:
        return "cross-entropy" if self.on == "softmax" else "binary cross-entropy"

    def value(self, out, target, ops):
        p = out.reshape(-1)
        total = ops.const(0)
        for k in range(p.size):
            if target[k] != 0:
                total = total - target[k] * ops.log(p[k : k + 1])[0]
            if self.on == "sigmoid" and target[k] != 1:
                total = total - (1 - target[k]) * ops.log(1 - p[k : k + 1])[0]
        return total

    def delta(self, out, target, ops):
        p = out.reshape(-1)
        zero = ops.const(0)
        delta = np.array([-t / q if t != 0 else zero for t, q in zip(target, p)], dtype=p.dtype)
        if self.on == "sigmoid":
            delta = delta + np.array([(1 - t) / (1 - q) if t != 1 else zero for t, q in zip(target, p)], dtype=p.dtype)
        return delta.reshape(out.shape)

    def fused_delta(self, last: Layer, out, target, ops):
        """dL/d(input of the final softmax or sigmoid): p - t (times sum t, for a softmax)."""
        p = out.reshape(-1)
        if self.on == "softmax" and not self.target_sums_to_one:
            return (p * target.sum() - target).reshape(out.shape)
        return (p - target).reshape(out.shape)

    def from_logits(self, z, target, ops):
        """(loss, dL/dp, dL/dz) from z, the input of the final softmax or sigmoid, the same numbers as
        value, delta and fused_delta, in forms with no log(0) and no 1 - p when the output saturates:
        every sum adds positive terms (softplus, log-sum-exp). `target` is the exact target (it decides
        which terms exist); for tracks without overflow (intervals, SymPy) whose `ops` has log1p."""
        z_flat = z.reshape(-1)
        if self.on == "sigmoid":
            loss, delta, fused = _binary_from_logits(z_flat, target, ops)
        else:
            loss, delta, fused = _softmax_from_logits(z_flat, target, ops)
        return loss, delta.reshape(z.shape), fused.reshape(z.shape)


def _binary_from_logits(z, target, ops):
    """-t log s(z) - (1 - t) log(1 - s(z)) = t softplus(-z) + (1 - t) softplus(z), with softplus(x) =
    log(1 + e^x); dL/dp = -t (1 + e^-z) + (1 - t)(1 + e^z); dL/dz = (1 - t) s(z) - t s(-z)."""
    down, up = ops.exp(-z), ops.exp(z)  # e^-z, e^z
    softplus_down, softplus_up = ops.log1p(down), ops.log1p(up)
    zero = ops.const(0)
    loss, delta, fused = zero, np.full(z.shape, zero, dtype=object), np.full(z.shape, zero, dtype=object)
    for k, exact in enumerate(target):
        t = ops.const(exact)
        if exact != 0:
            loss = loss + t * softplus_down[k]
            delta[k] = delta[k] - t * (1 + down[k])
            fused[k] = fused[k] - t / (1 + up[k])
        if exact != 1:
            loss = loss + (1 - t) * softplus_up[k]
            delta[k] = delta[k] + (1 - t) * (1 + up[k])
            fused[k] = fused[k] + (1 - t) / (1 + down[k])
    return loss, delta, fused


def _softmax_from_logits(z, target, ops):
    """With e_k = exp(z_k) and r_k = sum of the other e_j (no subtraction): -log p_k = log1p(r_k / e_k),
    dL/dp_k = -t_k (1 + r_k / e_k), dL/dz_k = p_k sum t - t_k = (sum t - t_k) p_k - t_k (1 - p_k)
    with 1 - p_k = r_k / (e_k + r_k)."""
    e = ops.exp(z)
    zero = ops.const(0)
    before, after = [zero], [zero]
    for k in range(len(e) - 1):
        before.append(before[-1] + e[k])
        after.append(after[-1] + e[len(e) - 1 - k])
    rest = [before[k] + after[len(e) - 1 - k] for k in range(len(e))]
    total = ops.const(sum(target))
    loss, delta, fused = zero, np.full(z.shape, zero, dtype=object), np.full(z.shape, zero, dtype=object)
    for k, exact in enumerate(target):
        t, ratio = ops.const(exact), rest[k] / e[k]
        p, q = e[k] / (e[k] + rest[k]), rest[k] / (e[k] + rest[k])
        if exact != 0:
            loss = loss + t * ops.log1p(np.array([ratio], dtype=object))[0]
            delta[k] = -t * (1 + ratio)
        fused[k] = (total - t) * p - t * q if exact != 0 else total * p
    return loss, delta, fused


@dataclass(frozen=True)
class WeightDecay:
    """L2 weight decay: J = L + λ/2·Σw² over the weights (and the biases when `bias`), so that
    dJ/dw = dL/dw + λ·w: PyTorch's SGD(weight_decay=λ) adds the same λ·w to the gradient."""

    rate: Fraction = Fraction(0)  # λ
    bias: bool = False  # decay the biases too

    def applies(self, param: str) -> bool:
        """Whether the parameter tensor `param` (weight, bias) of a layer is decayed."""
        return self.rate != 0 and (param != "bias" or self.bias)

    def penalty(self, params: dict[str, dict[str, np.ndarray]], ops):
        """λ/2·Σw² over every decayed parameter; `params` maps layer -> param -> array on the track of `ops`."""
        total = ops.const(0)
        for layer_params in params.values():
            for param, w in layer_params.items():
                if self.applies(param):
                    total = total + (w * w).sum()
        return total * ops.const(self.rate / 2)

    def gradient(self, w: np.ndarray, ops) -> np.ndarray:
        """λ·w: the penalty's part of dJ/dw."""
        return w * ops.const(self.rate)

    def exact_penalty(self, params: dict[str, dict[str, np.ndarray]]) -> Fraction:
        """λ/2·Σw² of exact (rational) parameters, in integers: LeNet-5's 60,000 weights in milliseconds."""
        total = Fraction(0)
        for layer_params in params.values():
            for param, w in layer_params.items():
                if self.applies(param):
                    numerators, denominator, _ = integer_scaled(w)
                    total += Fraction(sum(n * n for n in numerators.ravel().tolist()), denominator * denominator)
        return total * self.rate / 2

    def scaled_gradient(self, w: np.ndarray, scale: int) -> tuple[np.ndarray, int]:
        """λ·w·scale as (integers, d): λ·w·scale = integers / d exactly (integers a NumPy object array)."""
        numerators, denominator, _ = integer_scaled(w)
        extra = self.rate.denominator * denominator
        return numerators.astype(object) * (self.rate.numerator * scale), extra


@dataclass(frozen=True)
class Hinge:
    """The multiclass SVM loss: the sum over j != y of max(0, s_j - s_y + margin), as CS231n writes it
    (`sum`), or that divided by the number of classes (`mean`, PyTorch's MultiMarginLoss). A margin of
    exactly 0 is inactive (derivative 0, as ReLU'(0) and PyTorch). Which margins are active is decided
    once, exactly, by the network (`active`); every track then follows it."""

    kind: ClassVar[str] = "hinge"
    settings: ClassVar[dict[str, Setting]] = {
        "margin": Setting("margin", "number", Fraction(1)),
        "reduction": Setting("reduction", "choice", "sum", options=("sum", "mean")),
    }
    takes_class_index: ClassVar[bool] = True
    rational: ClassVar[bool] = True
    margin: Fraction = Fraction(1)
    reduction: str = "sum"
    label: int = 0
    active: tuple[bool, ...] | None = None  # set by Network once the kinks are decided

    @classmethod
    def create(cls, layers: list[Layer], target: np.ndarray, **settings: object) -> Hinge:
        if sorted(target) != [0] * (len(target) - 1) + [1]:
            raise ShapeError("hinge needs a class index (or a one-hot list) as its target", "target")
        if settings.get("margin", 1) <= 0:
            raise ShapeError(f"margin must be above 0, found {settings['margin']}", "margin")
        return cls(label=int(np.argmax(np.asarray(target, dtype=float))), **settings)

    def describe(self) -> str:
        return f"multiclass hinge (margin {self.margin}, {self.reduction})"

    def decide(self, out, target) -> tuple[bool, ...]:
        """Which margins are active: s_j - s_y + margin > 0, for j != y (never at y)."""
        s, y = out.reshape(-1), self.label
        return tuple(bool(j != y and s[j] - s[y] > -self.margin) for j in range(s.size))

    def margins(self, out) -> list:
        """s_j - s_y + margin for every class j (None at the label y), on the values given."""
        s, y = out.reshape(-1), self.label
        return [None if j == y else s[j] - s[y] + self.margin for j in range(s.size)]

    def _scale(self, ops, size: int):
        return ops.const(Fraction(1, size) if self.reduction == "mean" else Fraction(1))

    def value(self, out, target, ops):
        s, y = out.reshape(-1), self.label
        total = ops.const(0)
        for j in np.flatnonzero(self._active(out)):
            total = total + (s[j] - s[y] + ops.const(self.margin))
        return total * self._scale(ops, s.size)

    def delta(self, out, target, ops):
        s, active = out.reshape(-1), self._active(out)
        scale, zero = self._scale(ops, s.size), ops.const(0)
        delta = np.array([scale if on else zero for on in active], dtype=s.dtype)
        delta[self.label] = -scale * ops.const(sum(active))
        return delta.reshape(out.shape)

    def _active(self, out) -> tuple[bool, ...]:
        if self.active is None:
            raise RuntimeError("the hinge margins are decided by the network before the loss is used")
        return self.active


LOSS_KINDS: dict[str, type] = {
    "cross_entropy": CrossEntropy,
    "mse": MSE,
    "hinge": Hinge,
}
