"""Layers that take several inputs: the elementwise sum of a residual connection, and channel concat.

Their `forward` takes a tuple of arrays (one per source, in the order of the config's `from:`) and
their `backward` gives a tuple of dL/d(input), one per source; Network.run sums the contributions of
every consumer of a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import ShapeError
from .base import Layer, Shape


@dataclass(frozen=True)
class Add(Layer):
    """y = x₁ + x₂ (+ ...), element by element: the join of a residual (skip) connection."""

    kind = "add"
    letter = "s"
    merges: ClassVar[bool] = True
    inputs: int = 2

    def forward(self, xs, params, kinks, ops):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total

    def backward(self, xs, y, delta, params, kinks, ops):
        """The + copies the gradient to every branch: dL/dxᵢ = dL/dy for each i."""
        return tuple(delta for _ in xs), {}

    def reaches(self, in_index, out_index) -> bool:
        return in_index == out_index

    def describe(self) -> str:
        return f"add ({self.inputs} inputs)"


@dataclass(frozen=True)
class Concat(Layer):
    """y = [x₁; x₂; ...] along the channels (dim 1 in PyTorch's torch.cat over N, C, H, W)."""

    kind = "concat"
    letter = "c"
    merges: ClassVar[bool] = True
    channels: tuple[int, ...] = ()  # channels of each input, in order (set by the config reader)

    def output_shape(self) -> Shape:
        if len(self.in_shape) != 3:
            raise ShapeError(f"concat joins images [C][H][W] along C, but an input has shape {list(self.in_shape)}")
        return (sum(self.channels), *self.in_shape[1:])

    def forward(self, xs, params, kinks, ops):
        return np.concatenate(list(xs), axis=0)

    def backward(self, xs, y, delta, params, kinks, ops):
        """Each input gets its own channels of dL/dy back."""
        cuts = np.cumsum(self.channels)[:-1]
        return tuple(np.split(delta, cuts, axis=0)), {}

    def describe(self) -> str:
        return f"concat over channels ({' + '.join(map(str, self.channels))})"
