"""The terminal's update section (the config's `train:`) and the "+ λ·w" part of one gradient.

Rendered from derivation/update.py's records (Update, Step, TensorStep) and ElementGradient.decay;
no arithmetic here. Used by `explain` (after the backward pass, or after one parameter's chain rule)
and by `grad` (after its table).
"""

from __future__ import annotations

import numpy as np
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from ..derivation.records import ElementGradient
from .explain_view import indent
from .matrices import Matrix, number, number_text

MAX_SLICES = 2  # kernels (or channels) of a 3-D or 4-D tensor shown per quantity
MAX_SIDE = 8  # rows and columns of each matrix shown

HOW = {
    "exact": "Every number here is exact: the network stays in the rationals, so the new weights are fractions.",
    "nearest": (
        "The new weights are irrational (exp or tanh is inside): where an exact form is long they are shown "
        "rounded; each is the nearest double of its exact value (grad --json gives all digits)."
    ),
    "float64": (
        "This network is too big for exact values: the step runs in float64 on the nearest doubles of the "
        "gradient, as PyTorch's SGD would."
    ),
}


def update_section(derivation, only: str | None = None) -> list[RenderableType]:
    """The SGD step(s): the rule, then per step and parameter tensor w, ∂J/∂w, v and the new w (`only`: one
    tensor, fc.weight); [] without `train:`."""
    update = derivation.update
    if update is None:
        return []
    items: list[RenderableType] = [Rule(f"The update step: SGD, lr = {number_text(update.lr)}", align="left")]
    items += [_prose(line) for line in _rule_lines(update)]
    items += [_prose(HOW[update.how]), Text()]
    j = "J" if update.rate else "L"
    for step in update.steps:
        if len(update.steps) > 1:
            items.append(Text(f"step {step.number}", style="bold cyan"))
        start = "the config's" if step.number == 1 else f"step {step.number - 1}'s"
        items.append(_indented(Text(f"at {start} weights: {j} {_value(step.loss, step.loss_approx)}")))
        for tensor in step.tensors:
            if only is not None and tensor.name != only:
                continue
            items += [_indented(block) for block in _tensor_blocks(derivation, update, tensor)]
        items.append(Text())
    if update.loss_after is not None:
        count = len(update.steps)
        after = f"after {'the step' if count == 1 else f'{count} steps'}"
        items += [_indented(Text(f"{after}: {j} {_value(update.loss_after, update.loss_after_approx)}")), Text()]
    return items


def decay_lines(gradient: ElementGradient) -> list[RenderableType]:
    """∂J/∂w = ∂L/∂w + λ·w with the numbers, for one decayed parameter element; [] when it is not decayed."""
    decay = gradient.decay
    if decay is None:
        return []
    w = gradient.tensor.unicode(gradient.index)
    lam, weight = number_text(decay.rate), number_text(decay.weight)
    chain = number_text(gradient.chain_value, gradient.chain_approx)
    pad = " " * len(f"∂J/∂{w} ")
    return [
        _prose(f"With weight decay the loss is J = L + λ/2·Σw², λ = {lam}: its gradient adds λ·w to the chain rule's."),
        _prose(f"∂J/∂{w} = ∂L/∂{w} + λ·{w}"),
        _prose(f"{pad}= {chain} + {lam}·{_paren(weight)}"),
        _prose(f"{pad}{_value(gradient.value, gradient.approx)}"),
    ]


def _rule_lines(update) -> list[str]:
    mu, lam = number_text(update.momentum), number_text(update.rate)
    g = "∂J/∂w" if update.rate else "∂L/∂w"
    lines = []
    if update.rate:
        lines.append(f"With weight decay λ = {lam}, the gradient is of J = L + λ/2·Σw²: ∂J/∂w = ∂L/∂w + λ·w.")
    if update.momentum:
        lines.append(f"With momentum μ = {mu} (PyTorch's SGD, dampening 0): v ← μ·v + {g}, then w ← w - lr·v.")
    else:
        lines.append(f"Each parameter moves against its gradient: w ← w - lr·{g}.")
    return lines


def _tensor_blocks(derivation, update, tensor) -> list[RenderableType]:
    """One parameter tensor in one step: its quantities side by side, one line of them each."""
    name = derivation.tensors[tensor.name].unicode()
    j = "J" if update.rate else "L"
    lr, mu = number_text(update.lr), number_text(update.momentum)
    if tensor.decay is None:
        rows = [[(name, tensor.weight), (f"∂{j}/∂{name}", tensor.gradient)]]
    else:
        rows = [[(name, tensor.weight), (f"λ·{name}", tensor.decay)]]
        rows.append([(f"∂L/∂{name}", tensor.loss_gradient), (f"∂J/∂{name} = ∂L/∂{name} + λ·{name}", tensor.gradient)])
    if tensor.velocity is not None:
        rows.append([("v", tensor.velocity), (f"v ← {mu}·v + ∂{j}/∂{name}", tensor.new_velocity)])
        step = f"{name} ← {name} - {lr}·v"
    else:
        step = f"{name} ← {name} - {lr}·∂{j}/∂{name}"
    rows.append([(step, tensor.new_weight)])
    head = Text(f"{tensor.name} ({name})", style="bold")
    return [head] + [Columns([_matrices(label, values) for label, values in row], padding=(0, 4)) for row in rows]


def _matrices(label: str, values) -> RenderableType:
    """A vector or matrix; a 3-D or 4-D tensor as its first kernels (channels)."""
    exact, approx = np.asarray(values.exact, dtype=object), np.asarray(values.approx)
    if exact.ndim <= 2:
        return Matrix(label, exact, approx=approx, max_side=MAX_SIDE)
    leads = list(np.ndindex(*exact.shape[:-2]))
    if len(leads) == 1:
        return Matrix(label, exact[leads[0]], approx=approx[leads[0]], max_side=MAX_SIDE)
    shown = [
        Matrix(label, exact[at], approx=approx[at], title=_title(at, exact.ndim), max_side=MAX_SIDE)
        for at in leads[:MAX_SLICES]
    ]
    if len(leads) > MAX_SLICES:
        shown.append(Text(f"… and {len(leads) - MAX_SLICES} more", style="dim"))
    return Group(*shown)


def _title(at: tuple[int, ...], ndim: int) -> str:
    return f"out {at[0] + 1}, in {at[1] + 1}" if ndim == 4 else "channel " + ",".join(str(i + 1) for i in at)


def _value(value, approx) -> str:
    """'= 0.175', '= 1/3' or '≈ 0.2748', as the matrices show numbers."""
    text, exact = number(value, approx)
    return ("= " if exact else "≈ ") + text


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _prose(text: str) -> RenderableType:
    return indent(Text(text))


def _indented(renderable: RenderableType) -> RenderableType:
    return indent(renderable)
