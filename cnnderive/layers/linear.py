"""Fully connected layers and the flatten that feeds them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..fields import Fields
from ..ops import tensordot
from .base import Index, Layer, Shape, Term


@dataclass(frozen=True)
class Flatten(Layer):
    """f[k] = x[c, i, j] with k = (c*H + i)*W + j: channel, then row, then column (as PyTorch)."""

    kind = "flatten"
    letter = "f"

    @classmethod
    def from_config(cls, fields: Fields, name: str, in_shape: Shape) -> Flatten:
        fields.finish()
        return cls(name, in_shape, (int(np.prod(in_shape)),))

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

    out_features: int = 1
    bias: bool = True

    @classmethod
    def from_config(cls, fields: Fields, name: str, in_shape: Shape) -> Linear:
        if len(in_shape) != 1:
            raise ConfigError(
                f"{name} (linear) needs a vector input, but it receives shape {list(in_shape)}: "
                "put a flatten layer before it",
                fields.path,
            )
        out_features = fields.int("out_features")
        bias = fields.bool("bias", True)
        fields.finish()
        return cls(name, in_shape, (out_features,), out_features, bias)

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
