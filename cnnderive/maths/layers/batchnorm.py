"""Batch norm in training mode: each channel normalised with the statistics of the whole batch.

y = γ·x̂ + β with x̂ = (x - μ)/√(σ² + ε), where μ and σ² are the mean and variance of the channel
over every example (and every position, for images). Because μ and σ² depend on every example,
forward and backward run on the whole batch at once (`forward_batch`, `backward_batch`); the
exact backward keeps the three paths from x to the loss: through x̂, through σ², through μ.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from ...errors import ShapeError, UserError
from ..ops import FloatOps, from_scaled, integer_scaled
from .base import Index, Layer, Setting, Shape, require_image

ONE_EXAMPLE = (
    "{}: batch norm runs on the whole batch, and this works on one example alone "
    "(grad, explain, latex and check --value take the whole batch)"
)


@dataclass(frozen=True)
class Statistics:
    """One batch-norm forward pass: the per-channel statistics and the normalised values, stacked [N, ...]."""

    centred: np.ndarray  # x - μ
    mean: np.ndarray  # μ, per channel
    variance: np.ndarray  # σ², per channel (divided by m, or m - 1 when unbiased)
    inverse_root: np.ndarray  # 1/√(σ² + ε), per channel
    normalised: np.ndarray  # x̂
    shifted: np.ndarray  # σ² + ε, per channel (rational when the inputs are)


@dataclass(frozen=True)
class BackwardPaths:
    """dL/dx split into its three paths (stacked [N, ...]), and the per-channel sums they need."""

    through_xhat: np.ndarray  # γ·δ/√(σ²+ε)
    through_variance: np.ndarray  # ∂L/∂σ² · 2(x - μ)/m'
    through_mean: np.ndarray  # ∂L/∂μ · 1/m
    d_variance: np.ndarray  # ∂L/∂σ², per channel
    d_mean: np.ndarray  # ∂L/∂μ, per channel

    @property
    def total(self) -> np.ndarray:
        return self.through_xhat + self.through_variance + self.through_mean


@dataclass(frozen=True)
class _BatchNorm(Layer):
    """What batchnorm2d and batchnorm1d share; subclasses say which axes a channel spans."""

    letter = "n"
    batch_wide: ClassVar[bool] = True  # its statistics couple the examples of a batch
    param_letters: ClassVar[dict[str, str]] = {"weight": "γ", "bias": "β"}
    settings: ClassVar[dict[str, Setting]] = {
        "eps": Setting("eps", "number", Fraction(1, 100000)),
        "unbiased": Setting("unbiased", "bool", False),
    }
    eps: Fraction = Fraction(1, 100000)
    unbiased: bool = False  # normalise with the variance divided by m - 1 (PyTorch: m, the default)

    def output_shape(self) -> Shape:
        if self.eps <= 0:
            raise ShapeError(f"eps must be positive, found {self.eps}", "eps")
        return self.in_shape

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.in_shape[0],), "bias": (self.in_shape[0],)}

    def param_axes(self, param: str) -> str:
        return "[channel]"

    def initial(self, param: str) -> Fraction:
        """PyTorch's initial γ = 1 and β = 0, used when the config gives none."""
        return Fraction(1) if param == "weight" else Fraction(0)

    def describe(self) -> str:
        variance = "unbiased variance" if self.unbiased else "biased variance"
        return f"{self.kind} (training, batch statistics, {variance}, eps {self.eps})"

    def reaches(self, in_index: Index, out_index: Index) -> bool | None:
        return in_index[0] == out_index[0]  # the same channel (within an example)

    @property
    def axes(self) -> tuple[int, ...]:
        """The axes of the stacked batch [N, C, ...] a channel's statistics run over."""
        return (0,) + tuple(range(2, len(self.in_shape) + 1))

    def _view(self) -> tuple[int, ...]:
        return (1, self.in_shape[0]) + (1,) * (len(self.in_shape) - 1)

    def count(self, size: int) -> int:
        """m: how many numbers each channel's statistics average (N, or N·H·W for images)."""
        return size * int(np.prod(self.in_shape[1:]))

    def forward(self, x, params, kinks, ops):
        raise UserError(ONE_EXAMPLE.format(self.name))

    def backward(self, x, y, delta, params, kinks, ops):
        raise UserError(ONE_EXAMPLE.format(self.name))

    def statistics(self, xs: list[np.ndarray], ops) -> Statistics:
        stacked = np.stack(xs)
        m = self.count(len(xs))
        if m - self.unbiased < 1:
            raise UserError(f"{self.name}: the unbiased variance needs at least 2 numbers per channel")
        scaled = integer_scaled(stacked) if ops.name in ("rational", "surd") else None
        if scaled is not None:  # fractions: the same numbers in integer arithmetic, much faster
            mean, centred, variance = self._rational_moments(scaled, m)
        else:
            mean = _divide(stacked.sum(axis=self.axes), m, ops)
            centred = stacked - mean.reshape(self._view())
            variance = _divide((centred * centred).sum(axis=self.axes), m - self.unbiased, ops)
        shifted = variance + ops.const(self.eps)
        inverse_root = _reciprocal(ops.sqrt(shifted), ops)
        return Statistics(centred, mean, variance, inverse_root, centred * inverse_root.reshape(self._view()), shifted)

    def _rational_moments(self, scaled, m: int):
        """μ, x - μ and σ² of fractions x = X/D: x - μ = (m·X - ΣX)/(m·D), σ² = Σ(m·X - ΣX)²/(m'·(m·D)²)."""
        numerators, denominator, _ = scaled
        numerators = numerators.astype(object)  # Python integers: no overflow
        totals = numerators.sum(axis=self.axes)
        centred = numerators * m - totals.reshape(self._view())
        squares = (centred * centred).sum(axis=self.axes)
        scale = m * denominator
        mean = np.array([Fraction(t, scale) for t in totals], dtype=object)
        variance = np.array([Fraction(q, (m - self.unbiased) * scale * scale) for q in squares], dtype=object)
        return mean, from_scaled(centred, scale), variance

    def forward_batch(self, xs: list[np.ndarray], params: dict, ops) -> list[np.ndarray]:
        """Every example's output, from the batch statistics."""
        stats = self.statistics(xs, ops)
        out = stats.normalised * params["weight"].reshape(self._view()) + params["bias"].reshape(self._view())
        return list(out)

    def paths(
        self, stats: Statistics, deltas: list[np.ndarray], params: dict, ops, constant_stats=False
    ) -> BackwardPaths:
        """dL/dx by its three paths; `constant_stats` leaves out the paths through μ and σ² (a named mistake)."""
        view, m = self._view(), self.count(len(deltas))
        d_xhat = np.stack(deltas) * params["weight"].reshape(view)
        inv = stats.inverse_root
        through_xhat = d_xhat * inv.reshape(view)
        zero = through_xhat * ops.const(0)
        d_variance = (d_xhat * stats.centred).sum(axis=self.axes) * ops.const(Fraction(-1, 2)) * inv * inv * inv
        # ∂σ²/∂μ = -2/m' Σ(x - μ) = 0: that part of ∂L/∂μ vanishes, so only the path through x̂ reaches μ
        d_mean = -through_xhat.sum(axis=self.axes)
        if constant_stats:
            return BackwardPaths(through_xhat, zero, zero, d_variance * ops.const(0), d_mean * ops.const(0))
        through_variance = d_variance.reshape(view) * stats.centred * ops.const(Fraction(2, m - self.unbiased))
        through_mean = _divide(d_mean, m, ops).reshape(view) + zero
        return BackwardPaths(through_xhat, through_variance, through_mean, d_variance, d_mean)

    def backward_batch(self, xs, deltas, params: dict, ops, constant_stats: bool = False):
        """Each example's dL/d(input), and its part of dL/dγ and dL/dβ (the batch's are their sums)."""
        stats = self.statistics(xs, ops)
        total = self.paths(stats, deltas, params, ops, constant_stats).total
        inner = tuple(range(1, len(self.in_shape)))  # within one example: the positions of a channel
        parts = [
            {
                "weight": _sum(deltas[n] * stats.normalised[n], inner),
                "bias": _sum(deltas[n], inner),
            }
            for n in range(len(deltas))
        ]
        return list(total), parts


def _reciprocal(values: np.ndarray, ops) -> np.ndarray:
    """1/v element by element (a number over an array would not do for intervals)."""
    if values.dtype != object:
        return 1.0 / values
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [ops.const(1) / v for v in values.flat]
    return out


def _sum(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return values.sum(axis=axes) if axes else values


def _divide(total: np.ndarray, count: int, ops) -> np.ndarray:
    """total / count: a float division on float64 (as PyTorch), an exact 1/count elsewhere."""
    if isinstance(ops, FloatOps):
        return total / count
    return total * ops.const(Fraction(1, count))


@dataclass(frozen=True)
class BatchNorm2d(_BatchNorm):
    """Per channel of an image batch [N, C, H, W]: statistics over N, H and W."""

    kind = "batchnorm2d"

    def output_shape(self) -> Shape:
        require_image(self.kind, self.in_shape)
        return super().output_shape()


@dataclass(frozen=True)
class BatchNorm1d(_BatchNorm):
    """Per feature of a vector batch [N, F]: statistics over N."""

    kind = "batchnorm1d"

    def output_shape(self) -> Shape:
        if len(self.in_shape) != 1:
            raise ShapeError(
                f"batchnorm1d needs a vector input, but it receives shape {list(self.in_shape)} "
                "(use batchnorm2d on images, or put it after flatten or linear)"
            )
        return super().output_shape()
