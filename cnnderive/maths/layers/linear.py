"""Fully connected layers and the flatten that feeds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import ShapeError
from ..ops import tensordot
from .base import Index, Layer, Setting, Shape, Term


@dataclass(frozen=True)
class Flatten(Layer):
    """f[k] = x[c, i, j] with k = (c*H + i)*W + j: channel, then row, then column (as PyTorch)."""

    kind = "flatten"
    letter = "f"
    passes_through = True

    def output_shape(self) -> Shape:
        return (int(np.prod(self.in_shape)),)

    def forward(self, x, params, kinks, ops):
        return x.reshape(self.out_shape)

    def backward(self, x, y, delta, params, kinks, ops):
        return delta.reshape(self.in_shape), {}


@dataclass(frozen=True)
class Linear(Layer):
    """z[k] = b[k] + sum_j W[k, j] x[j]."""

    kind = "linear"
    letter = "z"
    starts_stage = True

    settings: ClassVar[dict[str, Setting]] = {"out_features": Setting("out_features", "int"), "bias": Setting("bias", "bool", True)}
    out_features: int = 1
    bias: bool = True

    def output_shape(self) -> Shape:
        if len(self.in_shape) != 1:
            raise ShapeError(
                f"linear needs a vector input, but it receives shape {list(self.in_shape)}: put a flatten layer before it"
            )
        return (self.out_features,)

    def param_shapes(self) -> dict[str, Shape]:
        shapes = {"weight": (self.out_features, self.in_shape[0])}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def param_axes(self, param: str) -> str:
        return "[out][in]" if param == "weight" else "[out]"

    def fan_in(self) -> int:
        return self.in_shape[0]

    def describe(self) -> str:
        return f"linear {self.in_shape[0]} -> {self.out_features}"

    def forward(self, x, params, kinks, ops):
        return tensordot(ops, params["weight"], x, 1, params["bias"] if self.bias else None)

    def backward(self, x, y, delta, params, kinks, ops):
        grads = {"weight": tensordot(ops, delta, x, 0)}  # the outer product delta x^T
        if self.bias:
            grads["bias"] = delta.copy()
        return tensordot(ops, params["weight"], delta, ([0], [0])), grads

    def param_terms(self, param: str, index: Index) -> list[Term]:
        if param == "bias":
            return [Term((index[0],), None)]
        return [Term((index[0],), (index[1],))]
