"""What an indicator in a formula reads: relu'(z), step(z), H(z), 1[z > 0] are 0 or 1, decided at
this config's numbers as the ReLU masks are (the contract's ReLU'(0) = 0), so that a formula with
them is compared with the chain rule under the same masks.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import sympy

from ...errors import UserError
from .names import brief

UNSURE = mpmath.mpf("1e-40")  # closer to 0 than this at 60 digits, a sign is taken only from a decided kink


def sign_here(symbolic, evaluator, expr: sympy.Expr) -> int:
    """-1, 0 or 1: the sign of a forward quantity at the config's numbers; exact on fractions, and a ReLU
    input near 0 (after tanh, say) as the network decided its kink."""
    if any(symbol.name.startswith("dL/d") for symbol in expr.free_symbols):
        raise UserError("an indicator (relu'(z), step(z), 1[z > 0]) compares forward values, not gradients")
    value = evaluator.number(expr, evaluator.base)
    if not isinstance(value, (Fraction, mpmath.mpf)):
        raise UserError(f"an indicator's argument {brief(str(expr))} is not a real number at this config's values")
    if isinstance(value, Fraction) or abs(value) > UNSURE:
        return (value > 0) - (value < 0)
    mask = relu_mask(symbolic, expr)
    if mask is None:
        raise UserError(
            f"the sign of {brief(str(expr))} at this config's numbers is not certain (it is within 1e-40 of 0)"
        )
    return 1 if mask else 0  # decided exactly when the network was built; off means exactly 0 here


def relu_mask(symbolic, expr: sympy.Expr) -> bool | None:
    """The config's decision for an element that is the input of a ReLU (or leaky ReLU), else None."""
    owner = symbolic.owner.get(expr) if expr.is_Symbol else None
    if owner is None or owner[0].role not in ("input", "output"):
        return None
    tensor, index = owner
    network = symbolic.network
    position = 0 if tensor.role == "input" else tensor.layer + 1
    if position >= len(network.layers) or network.layers[position].kind not in ("relu", "leaky_relu"):
        return None
    return bool(network.kinks[position][index])
