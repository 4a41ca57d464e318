"""The losses: their value, dL/d(output), and the fused rule through a final softmax or sigmoid."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ..errors import ShapeError
from .layers import Layer, Setting


@dataclass(frozen=True)
class MSE:
    """sum_i (o_i - t_i)^2, divided by n (mean), or not (sum), or halved (half_sum)."""

    kind: ClassVar[str] = "mse"
    settings: ClassVar[dict[str, Setting]] = {
        "reduction": Setting("reduction", "choice", "mean", options=("mean", "sum", "half_sum"))
    }
    takes_class_index: ClassVar[bool] = False
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
    on: str = "softmax"
    target_sums_to_one: bool = True  # then dL/dz through a softmax is exactly p - t

    @classmethod
    def create(cls, layers: list[Layer], target: np.ndarray, **settings: object) -> CrossEntropy:
        last = layers[-1].kind if layers else "input"
        if last not in ("softmax", "sigmoid"):
            raise ShapeError(f"cross_entropy needs the network to end in softmax or sigmoid, but it ends in {last}", "type")
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


LOSS_KINDS: dict[str, type] = {
    "cross_entropy": CrossEntropy,
    "mse": MSE,
}
