"""`explain`, where the backward pass starts: dL/d(network output) from the loss, or p - t when a
softmax (or sigmoid) and cross-entropy are taken together."""

from __future__ import annotations

import sympy
from rich.console import Group
from rich.text import Text

from .explain_view import ACCENT, View, equation, indent, prose
from .matrices import number_text, put


def fused_start(view: View) -> Group:
    """Softmax (or sigmoid) with cross-entropy: dL/dz = p - t, and why."""
    last = view.steps.layers[-1]
    z, p = last.input.unicode(), last.output.unicode()
    y = view.derivation.tensors["target"]
    head = Text(f"loss → {z}", style=ACCENT)
    put(head, f"  {view.network.loss.describe()} through {last.layer.kind}, taken together", "bold")
    rule = f"∂L/∂{z} = {p} - y"
    if last.layer.kind == "softmax":
        why = (
            f"Each {p}ₖ depends on every {z}ₘ: ∂{p}ₖ/∂{z}ₘ = {p}ₖ(δₖₘ - {p}ₘ), and ∂L/∂{p}ₖ = -yₖ/{p}ₖ. "
            f"Multiplying and adding over k, almost everything cancels: ∂L/∂{z}ₘ = {p}ₘ·Σₖ yₖ - yₘ, "
        )
        if getattr(view.network.loss, "target_sums_to_one", True):
            why += (
                f"which is {p}ₘ - yₘ because the target adds up to 1. So the gradient that enters the "
                "network is simply prediction minus target."
            )
        else:
            why += "and here the target does not add up to 1, so the Σₖ yₖ factor stays."
            rule = f"∂L/∂{z} = {p}·Σₖ yₖ - y"
    else:
        why = (
            f"For each output, ∂L/∂{p} = -y/{p} + (1 - y)/(1 - {p}) and ∂{p}/∂{z} = {p}(1 - {p}); "
            f"their product simplifies to ∂L/∂{z} = {p} - y: prediction minus target."
        )
    items = [
        prose(why),
        equation(rule, style="bold"),
        view.tensor_view(last.output, last.values, p, approx=view.floats.values[-1]),
        view.tensor_view(y, view.network.target, y.unicode()),
        view.tensor_view(last.input, view.steps.loss.fused, f"∂L/∂{z}", approx=view.floats.deltas[-2]),
    ]
    return Group(head, indent(*items), Text())


def loss_start(view: View) -> Group:
    """Any other loss: dL/d(network output) from its rule."""
    loss = view.steps.loss
    out = loss.output
    head = Text(f"loss → {out.unicode()}", style=ACCENT)
    put(head, f"  {view.network.loss.describe()}", "bold")
    items: list = _hinge_margins(view) if view.network.loss.kind == "hinge" else []
    if view.symbolic is not None:
        delta = sympy.factor_terms(sympy.sympify(view.symbolic.backward.deltas[-1].flat[0]))
        first = (0,) * len(out.shape)
        items.append(equation(f"∂L/∂{out.unicode(first)} = {view.show(delta)}"))
    items.append(view.tensor_view(out, loss.delta, f"∂L/∂{out.unicode()}", approx=view.floats.deltas[-1]))
    return Group(head, indent(*items), Text())


def _hinge_margins(view: View) -> list:
    """The margins of a hinge loss with numbers, and which ones are active: they make the gradient."""
    loss, out = view.network.loss, view.steps.loss.output
    y, s = loss.label, out.unicode()
    margins = loss.margins(view.derivation.values.values[-1])
    shown = [
        f"{out.unicode((j,))} - {out.unicode((y,))} + {number_text(loss.margin)} = {number_text(m)}"
        + (" > 0: active" if on else " ≤ 0: inactive")
        for j, (m, on) in enumerate(zip(margins, loss.active))
        if m is not None
    ]
    scale = "" if loss.reduction == "sum" else f", all times 1/{len(margins)}"
    return [
        prose(
            f"L adds the margins {s}ⱼ - {s}_y + {number_text(loss.margin)} of the wrong classes j that are above 0 "
            f"(here y = {y + 1}). Each active margin adds 1 to ∂L/∂{s}ⱼ and -1 to ∂L/∂{out.unicode((y,))}; "
            f"an inactive one adds nothing (a margin of exactly 0 counts as inactive, as ReLU'(0) = 0){scale}."
        ),
        *(equation(line) for line in shown),
    ]
