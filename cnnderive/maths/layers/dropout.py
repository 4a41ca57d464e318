"""Dropout with the mask written in the config, scaled as PyTorch does in training mode."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ...errors import ShapeError
from .base import Cut, Index, Layer, Setting, Shape


@dataclass(frozen=True)
class Dropout(Layer):
    """a = z · m / (1 - p): m is the 0/1 mask of kept elements, 1/(1 - p) PyTorch's inverted scaling,
    so that the expected output equals the input. The local derivative is the same factor m / (1 - p)."""

    kind = "dropout"
    letter = "r"  # r for retained; d would read as the d of dL/dz in formulas
    elementwise = True

    settings: ClassVar[dict[str, Setting]] = {
        "p": Setting("p", "number", Fraction(1, 2)),
        "kept": Setting("mask", "tensor"),
    }
    p: Fraction = Fraction(1, 2)
    kept: tuple = ()  # the mask, flat and row-major (a tuple: layers are frozen and hashable)

    def output_shape(self) -> Shape:
        if not 0 <= self.p < 1:
            raise ShapeError(f"p is the probability of dropping an element: 0 <= p < 1, found {self.p}", "p")
        size = int(np.prod(self.in_shape))
        if len(self.kept) != size:
            shape = "".join(f"[{d}]" for d in self.in_shape)
            raise ShapeError(f"mask must have the shape of the layer input, {shape} ({size} numbers), found {len(self.kept)}", "mask")
        if any(m not in (0, 1) for m in self.kept):
            raise ShapeError("mask holds 1 (kept) or 0 (dropped) for each element", "mask")
        return self.in_shape

    @property
    def scale(self) -> Fraction:
        return 1 / (1 - self.p)

    def describe(self) -> str:
        return f"dropout p = {self.p} (kept x {self.scale})"

    def _factors(self, ops) -> np.ndarray:
        factors = np.empty(len(self.kept), dtype=object)
        factors[:] = [ops.const(m * self.scale) for m in self.kept]
        factors = factors.reshape(self.in_shape)
        return factors.astype(np.float64) if isinstance(factors.flat[0], float) else factors

    def forward(self, x, params, kinks, ops):
        return x * self._factors(ops)

    def backward(self, x, y, delta, params, kinks, ops):
        return delta * self._factors(ops), {}

    def mask(self, kinks) -> np.ndarray:
        return np.array(self.kept, dtype=int).reshape(self.in_shape)

    def cut_reason(self, index: Index, kinks) -> Cut | None:
        return None if self.mask(kinks)[index] else Cut.DROPPED
