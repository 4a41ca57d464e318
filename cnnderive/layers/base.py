"""What every layer kind provides: its shapes, forward rule and local derivative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from ..fields import Fields

Shape = tuple[int, ...]
Index = tuple[int, ...]


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
    """Base of all layer kinds. Subclasses add their settings as dataclass fields."""

    kind: ClassVar[str]
    letter: ClassVar[str] = "a"  # textbook letter of the output
    starts_stage: ClassVar[bool] = False  # conv and linear number the stages (superscripts)
    rational: ClassVar[bool] = True  # maps rationals to rationals, so kinks after it are exact
    elementwise: ClassVar[bool] = False

    name: str
    in_shape: Shape
    out_shape: Shape

    @classmethod
    def from_config(cls, fields: Fields, name: str, in_shape: Shape) -> Layer:
        fields.finish()
        return cls(name=name, in_shape=in_shape, out_shape=in_shape)

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

    def cut_reason(self, index: Index, kinks: object) -> str | None:
        """Why d(output)/d(input[index]) is zero under these kinks, or None if it is not cut."""
        return None

    def describe(self) -> str:
        return self.kind


def require_image(kind: str, name: str, in_shape: Shape, path: tuple) -> None:
    if len(in_shape) != 3:
        before = "the input is" if path[-1] == 0 else "the layer before gives"
        raise ConfigError(
            f"{name} ({kind}) needs an image [C][H][W], but {before} a vector of shape {list(in_shape)} "
            "(write the input as [C][H][W] or [H][W], and keep image layers before flatten and linear)",
            path,
        )


def check_window(name: str, in_shape: Shape, kernel, stride, padding, path: tuple) -> tuple[int, int]:
    """The output height and width of a sliding window, or a clear error if it does not fit."""
    _, height, width = in_shape
    if kernel[0] > height + 2 * padding[0] or kernel[1] > width + 2 * padding[1]:
        raise ConfigError(
            f"{name}: kernel {kernel[0]}x{kernel[1]} is larger than its "
            f"{'padded ' if any(padding) else ''}input {height + 2 * padding[0]}x{width + 2 * padding[1]}",
            path + ("kernel_size",),
        )
    return (
        window_out(height, kernel[0], stride[0], padding[0]),
        window_out(width, kernel[1], stride[1], padding[1]),
    )


def window_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1
