"""Element-wise activations, and softmax."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from .base import Cut, Index, Layer, Setting


@dataclass(frozen=True)
class Identity(Layer):
    """a = z."""

    kind = "identity"
    elementwise = True
    keeps_order = True
    passes_through = True

    def forward(self, x, params, kinks, ops):
        return x

    def backward(self, x, y, delta, params, kinks, ops):
        return delta, {}


@dataclass(frozen=True)
class _Rectifier(Layer):
    """What ReLU and leaky ReLU share: the kink at 0, decided on the input, and its 0/1 mask."""

    elementwise = True

    def decide(self, x):
        return np.array(x > 0, dtype=bool)

    def keeps_order_of(self, a: Index, b: Index, kinks) -> bool:
        return self.keeps_order or bool(kinks[a] and kinks[b])  # both on: each passes unchanged

    def mask(self, kinks) -> np.ndarray:
        return np.asarray(kinks, dtype=int)


@dataclass(frozen=True)
class ReLU(_Rectifier):
    """a = max(0, z); the derivative is 1 where z > 0 and 0 elsewhere (ReLU'(0) = 0)."""

    kind = "relu"

    def forward(self, x, params, kinks, ops):
        return np.where(kinks, x, ops.const(0))

    def backward(self, x, y, delta, params, kinks, ops):
        return np.where(kinks, delta, ops.const(0)), {}

    def cut_reason(self, index: Index, kinks) -> Cut | None:
        return None if kinks[index] else Cut.RELU_OFF


@dataclass(frozen=True)
class LeakyReLU(_Rectifier):
    """a = z if z > 0 else slope * z; the derivative at 0 is the slope (as PyTorch)."""

    kind = "leaky_relu"

    settings: ClassVar[dict[str, Setting]] = {"negative_slope": Setting("negative_slope", "number", Fraction(1, 100))}
    negative_slope: Fraction = Fraction(1, 100)

    @property
    def keeps_order(self) -> bool:  # type: ignore[override]
        return self.negative_slope > 0

    def describe(self) -> str:
        return f"leaky_relu (slope {self.negative_slope})"

    def forward(self, x, params, kinks, ops):
        return np.where(kinks, x, x * ops.const(self.negative_slope))

    def backward(self, x, y, delta, params, kinks, ops):
        return np.where(kinks, delta, delta * ops.const(self.negative_slope)), {}

    def cut_reason(self, index: Index, kinks) -> Cut | None:
        if kinks[index] or self.negative_slope:
            return None
        return Cut.LEAKY_OFF


@dataclass(frozen=True)
class Sigmoid(Layer):
    """a = 1 / (1 + exp(-z)); da/dz = a (1 - a)."""

    kind = "sigmoid"
    elementwise = True
    keeps_order = True
    rational = False

    def forward(self, x, params, kinks, ops):
        return 1 / (1 + ops.exp(-x))

    def backward(self, x, y, delta, params, kinks, ops):
        return delta * y * (1 - y), {}


@dataclass(frozen=True)
class Tanh(Layer):
    """a = tanh(z); da/dz = 1 - a^2."""

    kind = "tanh"
    elementwise = True
    keeps_order = True
    rational = False

    def forward(self, x, params, kinks, ops):
        return ops.tanh(x)

    def backward(self, x, y, delta, params, kinks, ops):
        return delta * (1 - y * y), {}


@dataclass(frozen=True)
class Softmax(Layer):
    """p_k = exp(z_k) / sum_j exp(z_j) over all elements; dp_k/dz_m = p_k (delta_km - p_m)."""

    kind = "softmax"
    letter = "p"
    rational = False
    keeps_order = True  # one shared denominator: p_a > p_b exactly when z_a > z_b

    def forward(self, x, params, kinks, ops):
        if x.dtype != object:
            x = x - x.max()
        e = ops.exp(x)
        return e / e.sum()

    def backward(self, x, y, delta, params, kinks, ops):
        return y * (delta - (delta * y).sum()), {}
