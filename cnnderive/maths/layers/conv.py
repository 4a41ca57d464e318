"""The convolution layer (cross-correlation, as PyTorch's Conv2d)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ops import tensordot
from .base import Index, Layer, Setting, Shape, Term, check_window, require_image


@dataclass(frozen=True)
class Conv2d(Layer):
    """z[o,i,j] = b[o] + sum_{c,a,b} w[o,c,a,b] * x[c, i*s + a - p, j*s + b - p]."""

    kind = "conv2d"
    letter = "z"
    starts_stage = True

    settings: ClassVar[dict[str, Setting]] = {
        "out_channels": Setting("out_channels", "int"),
        "kernel": Setting("kernel_size", "pair"),
        "stride": Setting("stride", "pair", 1),
        "padding": Setting("padding", "pair", 0, minimum=0),
        "bias": Setting("bias", "bool", True),
    }
    out_channels: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    bias: bool = True

    def output_shape(self) -> Shape:
        require_image(self.kind, self.in_shape)
        height, width = check_window(self.in_shape, self.kernel, self.stride, self.padding)
        return (self.out_channels, height, width)

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

    def _pad(self, x: np.ndarray, ops) -> np.ndarray:
        ph, pw = self.padding
        if not (ph or pw):
            return x
        padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
        if x.dtype == object:
            padded[:, :ph] = padded[:, ph + x.shape[1] :] = ops.const(0)
            padded[:, :, :pw] = padded[:, :, pw + x.shape[2] :] = ops.const(0)
        return padded

    def _patches(self, padded: np.ndarray) -> np.ndarray:
        """The input window of every output position: [C][H_out][W_out][kh][kw] (a view, no copy)."""
        _, height, width = self.out_shape
        sh, sw = self.stride
        view = sliding_window_view(padded, self.kernel, axis=(1, 2))
        return view[:, : sh * (height - 1) + 1 : sh, : sw * (width - 1) + 1 : sw]

    def forward(self, x, params, kinks, ops):
        # z[o,i,j] = sum over (c, a, b) of w[o,c,a,b] * patch[c,i,j,a,b], + b[o]: one contraction
        bias = params["bias"][:, None, None] if self.bias else None
        return tensordot(ops, params["weight"], self._patches(self._pad(x, ops)), ([1, 2, 3], [0, 3, 4]), bias)

    def backward(self, x, y, delta, params, kinks, ops):
        weight = params["weight"]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        # dL/dw[o,c,a,b] = sum over (i, j) of delta[o,i,j] * patch[c,i,j,a,b]
        grad_weight = tensordot(ops, delta, self._patches(self._pad(x, ops)), ([1, 2], [1, 2]))
        # dL/dx (padded) [c,r,s] = sum over (o, a, b) of w[o,c,a,b] * delta[o, (r-a)/sh, (s-b)/sw]:
        # a full correlation of the stride-dilated, (k-1)-padded delta with the flipped kernel
        _, height, width = self.out_shape
        spread = np.zeros(
            (delta.shape[0], sh * (height - 1) + 2 * kh - 1, sw * (width - 1) + 2 * kw - 1), dtype=delta.dtype
        )
        if delta.dtype == object:
            spread[...] = ops.const(0)
        spread[:, kh - 1 : kh - 1 + sh * (height - 1) + 1 : sh, kw - 1 : kw - 1 + sw * (width - 1) + 1 : sw] = delta
        windows = sliding_window_view(spread, self.kernel, axis=(1, 2))  # [O][rows][cols][kh][kw]
        reached = tensordot(ops, weight[:, :, ::-1, ::-1], windows, ([0, 2, 3], [0, 3, 4]))
        in_height, in_width = self.in_shape[1] + 2 * ph, self.in_shape[2] + 2 * pw
        delta_padded = np.zeros((self.in_shape[0], in_height, in_width), dtype=reached.dtype)
        if reached.dtype == object:
            delta_padded[...] = ops.const(0)
        delta_padded[:, : reached.shape[1], : reached.shape[2]] = reached  # rows a stride skips stay 0
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
