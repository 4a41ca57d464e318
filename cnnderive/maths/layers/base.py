"""What every layer kind provides: its settings, shapes, forward rule and local derivative."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import numpy as np

from ...errors import ShapeError

Shape = tuple[int, ...]
Index = tuple[int, ...]


class Cut(Enum):
    """Why a chain-rule term is zero: the kink, window or padding that stops the gradient."""

    RELU_OFF = "ReLU is off there (its input is <= 0, and ReLU'(0) = 0)"
    LEAKY_OFF = "leaky ReLU with slope 0 is off there"
    NOT_MAXIMUM = "max-pool: not the (first) maximum of its window"
    MAXPOOL_UNCOVERED = "max-pool: no pooling window covers it"
    AVGPOOL_UNCOVERED = "avg-pool: no pooling window covers it"
    PADDING = "zero padding"
    DROPPED = "dropout dropped it (its mask is 0)"
    MARGIN_INACTIVE = "hinge: its margin is <= 0, so it adds nothing to the loss"

    def __str__(self) -> str:
        return self.value


REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    """How one setting of a layer kind is written in the config: key, kind of value, default.

    `kind` is int, pair (an int or [h, w]), bool, number (exact) or choice (one of `options`); `same_as` names another
    setting whose value is the default (a pool's stride is its kernel_size, as in PyTorch).
    """

    key: str
    kind: str
    default: object = REQUIRED
    minimum: int = 1
    same_as: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """One chain-rule term of a parameter's gradient: dL/d(out[out_index]) * d(out)/d(param).

    `in_index` is the layer-input element that d(out)/d(param) equals (a weight's term);
    None means the factor is 1 (a bias); `padding` marks a factor that is a padded zero.
    """

    out_index: Index
    in_index: Index | None
    padding: bool = False


@dataclass(frozen=True)
class Layer:
    """Base of all layer kinds. Subclasses add their settings as dataclass fields and in `settings`."""

    kind: ClassVar[str]
    settings: ClassVar[dict[str, Setting]] = {}  # dataclass field -> how the config writes it
    letter: ClassVar[str] = "a"  # textbook letter of the output
    starts_stage: ClassVar[bool] = False  # conv and linear number the stages (superscripts)
    rational: ClassVar[bool] = True  # maps rationals to rationals, so kinks after it are exact
    elementwise: ClassVar[bool] = False
    passes_through: ClassVar[bool] = False  # outputs are the inputs relabelled (flatten, identity): no factor
    keeps_order: ClassVar[bool] = False  # same shape, and out[a] > out[b] exactly when in[a] > in[b]
    merges: ClassVar[bool] = False  # takes several inputs (add, concat): forward and backward use tuples
    batch_wide: ClassVar[bool] = False  # couples the examples of a batch (batch norm): forward_batch, backward_batch
    param_letters: ClassVar[dict[str, str]] = {}  # textbook letters other than w (weight) and b (others)

    def keeps_order_of(self, a: Index, b: Index, kinks) -> bool:
        """out[a] > out[b] exactly when in[a] > in[b], with this layer's kinks decided."""
        return self.keeps_order

    name: str
    in_shape: Shape
    out_shape: Shape
    # the values it reads, by position in Network.run's `values` (0 the input, k + 1 the output of
    # layers[k]); () means the previous layer's output, as in a chain
    sources: tuple[int, ...] = ()

    @classmethod
    def create(cls, name: str, in_shape: Shape, **settings: object) -> Layer:
        """The layer with its output shape; ShapeError when it cannot take `in_shape`."""
        draft = cls(name, in_shape, (), **settings)
        return dataclasses.replace(draft, out_shape=draft.output_shape())

    def output_shape(self) -> Shape:
        return self.in_shape

    def param_shapes(self) -> dict[str, Shape]:
        return {}

    def param_axes(self, param: str) -> str:
        """How the axes of a parameter are laid out, for error messages."""
        return ""

    def fan_in(self) -> int:
        return 1

    def work(self) -> int:
        """Multiply-adds of this layer's forward pass: the measure of its size."""
        count = 1
        for d in self.out_shape:
            count *= d
        return count * max(1, self.fan_in())

    def decide(self, x: np.ndarray) -> object:
        """The kinks of this layer at input x (ReLU mask, max-pool winners), decided on x as given."""
        return None

    def forward(self, x: np.ndarray, params: dict, kinks: object, ops) -> np.ndarray:
        raise NotImplementedError

    def backward(self, x, y, delta, params: dict, kinks: object, ops) -> tuple[np.ndarray, dict]:
        """dL/d(input) and dL/d(each parameter) from dL/d(output) = delta."""
        raise NotImplementedError

    def param_terms(self, param: str, index: Index) -> list[Term]:
        return []

    def cut_reason(self, index: Index, kinks: object) -> Cut | None:
        """Why d(output)/d(input[index]) is zero under these kinks, or None if it is not cut."""
        return None

    def reaches(self, in_index: Index, out_index: Index) -> bool | None:
        """Whether input element in_index feeds output element out_index; None: read it off the rule."""
        return in_index == out_index if self.elementwise else None

    def local_cut(self, in_index: Index, out_index: Index, kinks: object) -> Cut | None:
        """Why d(out[out_index])/d(in[in_index]) is zero under these kinks (it is zero when called)."""
        return self.cut_reason(in_index, kinks)

    def mask(self, kinks: object) -> np.ndarray | None:
        """Where gradient flows, as 0/1 (the ReLU derivative, the max-pool routing), or None."""
        return None

    def describe(self) -> str:
        return self.kind


def require_image(kind: str, in_shape: Shape) -> None:
    if len(in_shape) != 3:
        raise ShapeError(
            f"{kind} needs an image [C][H][W], but its input is a vector of shape {list(in_shape)} "
            "(write the input as [C][H][W] or [H][W], and keep image layers before flatten and linear)"
        )


def check_window(in_shape: Shape, kernel, stride, padding) -> tuple[int, int]:
    """The output height and width of a sliding window, or a clear error if it does not fit."""
    _, height, width = in_shape
    if kernel[0] > height + 2 * padding[0] or kernel[1] > width + 2 * padding[1]:
        raise ShapeError(
            f"kernel {kernel[0]}x{kernel[1]} is larger than its "
            f"{'padded ' if any(padding) else ''}input {height + 2 * padding[0]}x{width + 2 * padding[1]}",
            "kernel_size",
        )
    return (
        window_out(height, kernel[0], stride[0], padding[0]),
        window_out(width, kernel[1], stride[1], padding[1]),
    )


def window_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


