"""The one textbook order of factors and terms, shared by the terminal and LaTeX printers.

A product reads upstream gradient, data, parameters: ∂L/∂z¹₁₂·x₁₂, x₁₁·w¹₁₁; a sum ends with its
bias. Within a role, elements go layer by layer and row by row (numeric indices, so x₁,₁₁ comes
after x₁,₂, unlike SymPy's sort by name).
"""

from __future__ import annotations

ROLE_RANK = {"delta": 1, "input": 2, "output": 3, "weight": 4, "bias": 5, "target": 6, "loss": 7}
OTHER = 8  # numbers come first (0); sums and functions of elements last


def element_key(tensor, index: tuple[int, ...], is_delta: bool = False) -> tuple:
    """Where an element (or ∂L/∂ of it) goes in a product: role, layer, then its index."""
    layer = -1 if tensor.layer is None else tensor.layer
    return (ROLE_RANK["delta" if is_delta else tensor.role], layer, tuple(index))


def convention_sentence(convention, relu: bool, name, number) -> str:
    """A tie or an exact zero at a kink, and what PyTorch's convention makes of it; `name(tensor, index)`
    and `number(value)` write names and numbers in the printer's own notation."""
    names = [name(convention.tensor, index) for index in convention.elements]
    if convention.kind == "tie":
        return (
            f"a tie: {' = '.join(names)} = {number(convention.value)}; the gradient goes to the first, "
            f"{names[0]} (PyTorch's convention; any of them is a valid subgradient)"
        )
    slope = "0" if relu else "the slope"
    return f"{names[0]} = 0 exactly: the derivative there is {slope} (PyTorch's convention)"
