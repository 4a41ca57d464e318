"""The convolution layer (cross-correlation, as PyTorch's Conv2d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fields import Fields
from .base import Index, Layer, Shape, Term, check_window, require_image


@dataclass(frozen=True)
class Conv2d(Layer):
    """z[o,i,j] = b[o] + sum_{c,a,b} w[o,c,a,b] * x[c, i*s + a - p, j*s + b - p]."""

    kind = "conv2d"
    letter = "z"
    starts_stage = True

    out_channels: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    bias: bool = True

    @classmethod
    def from_config(cls, fields: Fields, name: str, in_shape: Shape) -> "Conv2d":
        require_image(cls.kind, name, in_shape, fields.path)
        out_channels = fields.int("out_channels")
        kernel = fields.pair("kernel_size")
        stride = fields.pair("stride", 1)
        padding = fields.pair("padding", 0, minimum=0)
        bias = fields.bool("bias", True)
        fields.finish()
        height, width = check_window(name, in_shape, kernel, stride, padding, fields.path)
        return cls(name, in_shape, (out_channels, height, width), out_channels, kernel, stride, padding, bias)

    def param_shapes(self) -> dict[str, Shape]:
        shapes = {"weight": (self.out_channels, self.in_shape[0], *self.kernel)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def param_axes(self, param: str) -> str:
        return "[out][in][kh][kw]" if param == "weight" else "[out]"

    def fan_in(self) -> int:
        return self.in_shape[0] * self.kernel[0] * self.kernel[1]

    def describe(self) -> str:
        text = f"conv {self.out_channels}@{self.kernel[0]}x{self.kernel[1]}"
        if self.stride != (1, 1):
            text += f", stride {_pair(self.stride)}"
        if self.padding != (0, 0):
            text += f", padding {_pair(self.padding)}"
        return text

    def _offsets(self):
        """For each kernel offset (a, b): the rows and columns of the padded input it multiplies."""
        _, height, width = self.out_shape
        sh, sw = self.stride
        for a in range(self.kernel[0]):
            for b in range(self.kernel[1]):
                yield a, b, slice(a, a + sh * (height - 1) + 1, sh), slice(b, b + sw * (width - 1) + 1, sw)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        ph, pw = self.padding
        return np.pad(x, ((0, 0), (ph, ph), (pw, pw))) if ph or pw else x

    def forward(self, x, params, kinks, ops):
        weight = params["weight"]
        padded = self._pad(x)
        out = None
        for a, b, rows, cols in self._offsets():
            term = np.tensordot(weight[:, :, a, b], padded[:, rows, cols], axes=([1], [0]))
            out = term if out is None else out + term
        if self.bias:
            out = out + params["bias"][:, None, None]
        return out

    def backward(self, x, y, delta, params, kinks, ops):
        weight = params["weight"]
        padded = self._pad(x)
        grad_weight = np.empty(weight.shape, dtype=delta.dtype)
        delta_padded = np.zeros(padded.shape, dtype=delta.dtype)
        if delta.dtype == object:
            delta_padded[...] = ops.const(0)
        for a, b, rows, cols in self._offsets():
            grad_weight[:, :, a, b] = np.tensordot(delta, padded[:, rows, cols], axes=([1, 2], [1, 2]))
            delta_padded[:, rows, cols] += np.tensordot(weight[:, :, a, b], delta, axes=([0], [0]))
        ph, pw = self.padding
        delta_x = delta_padded[:, ph : ph + self.in_shape[1], pw : pw + self.in_shape[2]]
        grads = {"weight": grad_weight}
        if self.bias:
            grads["bias"] = delta.sum(axis=(1, 2))
        return delta_x, grads

    def param_terms(self, param: str, index: Index) -> list[Term]:
        _, height, width = self.out_shape
        _, in_height, in_width = self.in_shape
        if param == "bias":
            return [Term((index[0], i, j), None) for i in range(height) for j in range(width)]
        o, c, a, b = index
        terms = []
        for i in range(height):
            for j in range(width):
                row = i * self.stride[0] + a - self.padding[0]
                col = j * self.stride[1] + b - self.padding[1]
                inside = 0 <= row < in_height and 0 <= col < in_width
                terms.append(Term((o, i, j), (c, row, col) if inside else None, padding=not inside))
        return terms


def _pair(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
