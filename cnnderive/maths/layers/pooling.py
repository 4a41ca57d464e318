"""Max- and average-pooling over sliding windows."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import ShapeError
from .base import Cut, Index, Layer, Setting, Shape, check_window, require_image


@dataclass(frozen=True)
class _Pool(Layer):
    letter = "p"

    settings: ClassVar[dict[str, Setting]] = {
        "kernel": Setting("kernel_size", "pair"),
        "stride": Setting("stride", "pair", same_as="kernel"),
    }
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)

    def output_shape(self) -> Shape:
        require_image(self.kind, self.in_shape)
        height, width = check_window(self.in_shape, self.kernel, self.stride, (0, 0))
        return (self.in_shape[0], height, width)

    def describe(self) -> str:
        size = f"{self.kernel[0]}x{self.kernel[1]}"
        return f"{self.kind} {size}, stride {self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"

    def windows(self, x: np.ndarray) -> np.ndarray:
        """x's pooling windows as an array [C][H_out][W_out][kh*kw], each window row-major."""
        view = sliding_window_view(x, self.kernel, axis=(1, 2))
        view = view[:, :: self.stride[0], :: self.stride[1]][:, : self.out_shape[1], : self.out_shape[2]]
        return view.reshape(*self.out_shape, self.kernel[0] * self.kernel[1])

    def reaches(self, in_index: Index, out_index: Index) -> bool:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        c, row, col = in_index
        return c == out_index[0] and 0 <= row - out_index[1] * sh < kh and 0 <= col - out_index[2] * sw < kw

    def covered(self, index: Index) -> bool:
        _, row, col = index
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return any(0 <= row - i * sh < kh for i in range(self.out_shape[1])) and any(
            0 <= col - j * sw < kw for j in range(self.out_shape[2])
        )


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """p = the maximum of each window; its gradient goes to the first maximal element (row-major)."""

    kind = "maxpool2d"

    def decide(self, x):
        """The winner of each window, as input (rows, cols) arrays of shape [C][H_out][W_out]."""
        return self.winners_at(np.argmax(self.windows(x), axis=-1))

    def winners_at(self, first: np.ndarray):
        """The (rows, cols) input arrays of the winners, from each window's winning position within it."""
        rows = first // self.kernel[1] + (np.arange(self.out_shape[1]) * self.stride[0])[None, :, None]
        cols = first % self.kernel[1] + (np.arange(self.out_shape[2]) * self.stride[1])[None, None, :]
        return rows, cols

    def ties(self, x: np.ndarray) -> list[tuple[Index, tuple[Index, ...]]]:
        """Each window whose maximum is shared, exactly: (window, its maximal input elements, row-major)."""
        windows = self.windows(x)
        kw, (sh, sw) = self.kernel[1], self.stride
        found = []
        for c, i, j in np.ndindex(*windows.shape[:-1]):
            window = list(windows[c, i, j])
            top = max(window)
            tied = tuple((c, i * sh + w // kw, j * sw + w % kw) for w, value in enumerate(window) if value == top)
            if len(tied) > 1:
                found.append(((c, i, j), tied))
        return found

    def _channels(self):
        return np.arange(self.out_shape[0])[:, None, None]

    def forward(self, x, params, kinks, ops):
        rows, cols = kinks
        return x[self._channels(), rows, cols]

    def backward(self, x, y, delta, params, kinks, ops):
        rows, cols = kinks
        delta_x = np.zeros(x.shape, dtype=delta.dtype)
        if delta.dtype == object:
            delta_x[...] = ops.const(0)
        np.add.at(delta_x, (np.broadcast_to(self._channels(), rows.shape), rows, cols), delta)
        return delta_x, {}

    def mask(self, kinks) -> np.ndarray:
        """The 0/1 routing mask over the input: 1 where some window's maximum sits."""
        rows, cols = kinks
        mask = np.zeros(self.in_shape, dtype=int)
        mask[np.broadcast_to(self._channels(), rows.shape), rows, cols] = 1
        return mask

    def local_cut(self, in_index: Index, out_index: Index, kinks) -> Cut | None:
        return Cut.NOT_MAXIMUM

    def cut_reason(self, index: Index, kinks) -> Cut | None:
        if self.mask(kinks)[index]:
            return None
        return Cut.NOT_MAXIMUM if self.covered(index) else Cut.MAXPOOL_UNCOVERED


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """p = the mean of each window; each element of a window gets 1/(kh*kw) of its gradient."""

    kind = "avgpool2d"

    def _share(self, ops):
        return ops.const(Fraction(1, self.kernel[0] * self.kernel[1]))

    def forward(self, x, params, kinks, ops):
        return self.windows(x).sum(axis=-1) * self._share(ops)

    def backward(self, x, y, delta, params, kinks, ops):
        delta_x = np.zeros(x.shape, dtype=delta.dtype)
        if delta.dtype == object:
            delta_x[...] = ops.const(0)
        share = delta * self._share(ops)
        (kh, kw), (sh, sw) = self.kernel, self.stride
        _, height, width = self.out_shape
        for a in range(kh):
            for b in range(kw):
                delta_x[:, a : a + sh * (height - 1) + 1 : sh, b : b + sw * (width - 1) + 1 : sw] += share
        return delta_x, {}

    def cut_reason(self, index: Index, kinks) -> Cut | None:
        return None if self.covered(index) else Cut.AVGPOOL_UNCOVERED


@dataclass(frozen=True)
class GlobalAvgPool2d(AvgPool2d):
    """PyTorch's adaptive_avg_pool2d to 1x1: one window the size of the whole map, per channel."""

    kind = "adaptive_avg_pool2d"

    settings: ClassVar[dict[str, Setting]] = {"output_size": Setting("output_size", "int", 1)}
    output_size: int = 1

    @classmethod
    def create(cls, name: str, in_shape: Shape, output_size: int = 1) -> GlobalAvgPool2d:
        require_image(cls.kind, in_shape)
        if output_size != 1:
            raise ShapeError(
                f"only output_size 1 (global average pooling) is supported, found {output_size}; "
                "for other sizes use avgpool2d with its kernel_size and stride",
                "output_size",
            )
        whole = (in_shape[1], in_shape[2])
        return super().create(name, in_shape, kernel=whole, stride=whole)

    def describe(self) -> str:
        return f"global average pool {self.kernel[0]}x{self.kernel[1]} -> 1x1"
