"""A mini-batch: N examples through the same layers and parameters, and the batch loss over them.

Each example is an ordinary Network (its own input and target, its kinks decided exactly on its
own values); the layers and parameter arrays are the same objects in every example. The batch
loss is L = (1/N)·Σₙ ℓₙ (`mean`, PyTorch's default) or L = Σₙ ℓₙ (`sum`), so every gradient is
∂L/∂w = (1/N)·Σₙ ∂ℓₙ/∂w (or the plain sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .network import Network

REDUCTIONS = ("mean", "sum")


@dataclass
class Batch:
    """The examples of a batch (each a Network sharing layers and parameters) and its reduction."""

    examples: list[Network]
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError("a batch needs at least one example")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown batch reduction {self.reduction!r}")

    @property
    def size(self) -> int:
        return len(self.examples)

    @property
    def scale(self) -> Fraction:
        """The factor in front of the sum over examples: 1/N for the mean, 1 for the sum."""
        return Fraction(1, self.size) if self.reduction == "mean" else Fraction(1)

    @property
    def first(self) -> Network:
        """The first example: its layers, parameters and names are every example's."""
        return self.examples[0]

    @property
    def name(self) -> str:
        return self.first.name

    @property
    def source(self) -> str:
        return self.first.source
