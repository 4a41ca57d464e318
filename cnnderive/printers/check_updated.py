"""Terminal rendering of `check --updated`: the new weight right or wrong, the step with its numbers
(read off derivation/update.py's TensorStep, no arithmetic here), and the mistake it matches."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from ..check.updated import UpdatedVerdict
from .matrices import number, number_text
from .numbers import DIGITS
from .terminal import value_text


def updated_verdict(verdict: UpdatedVerdict, name: str) -> Group:
    """Right or wrong, the right new weight and how the step gives it, and the named mistake."""
    w = verdict.tensor.unicode(verdict.index)
    steps = len(verdict.update.steps)
    after = "after the step" if steps == 1 else f"after {steps} steps"
    head = Text(f"{w} {after}", style="bold")
    head.append(f"  ({verdict.tensor.element(verdict.index)})  in {name}", style="dim")
    given_digits = len(verdict.given_text.lstrip("-−0.").replace(".", "").split("e")[0].split("E")[0])
    right = value_text(verdict.value, verdict.approx, max(DIGITS, given_digits + 2))
    right = right if right.startswith("≈") or number(verdict.value, verdict.approx)[1] else "≈ " + right
    parts: list = [head]
    if verdict.right:
        how = (
            f"to {verdict.rounded_to} significant digits"
            if verdict.rounded_to
            else "exactly"
            if verdict.exact or verdict.relative_error == 0
            else f"within relative {verdict.tol:g}"
        )
        parts.append(Text.assemble(("✓ right: ", "bold green"), f"{verdict.given_text} is the new {w} ({how})"))
        return Group(*parts)
    error = "" if verdict.relative_error is None else f" (relative error {verdict.relative_error:.3g})"
    parts.append(
        Text.assemble(("✗ wrong: ", "bold red"), f"you gave {verdict.given_text}; the new {w} is {right}{error}")
    )
    parts += [Text(line) for line in step_lines(verdict, w)]
    for k, found in enumerate(verdict.mistakes):
        title = Text("Your value is what you get with " if k == 0 else "or: ", style="bold")
        title.append(found.name, style="bold yellow")
        parts += [title, Padding(Text(found.explanation), (0, 0, 0, 2))]
    if not verdict.mistakes:
        parts.append(Text("No common mistake of the step gives this value: compare yours line by line.", style="dim"))
    return Group(*parts)


def step_lines(verdict: UpdatedVerdict, w: str) -> list[str]:
    """The last step for this one element: the gradient (with λ·w), the velocity, the new weight."""
    update, step, at = verdict.update, verdict.step, verdict.index

    def show(values) -> str:
        return _paren(number_text(values.exact[at], float(values.approx[at])))

    def equals(values) -> str:  # "= 0.5" or "≈ 0.3589"
        text, exact = number(values.exact[at], float(values.approx[at]))
        return ("= " if exact else "≈ ") + text

    several = len(update.steps) > 1
    lines = [f"the step (SGD{f', step {len(update.steps)} of {len(update.steps)}' if several else ''}):"]
    lr, mu = number_text(update.lr), number_text(update.momentum)
    if step.decay is not None:
        g, lam = f"∂J/∂{w}", number_text(update.rate)
        lines.append(f"  {g} = ∂L/∂{w} + λ·{w} = {show(step.loss_gradient)} + {lam}·{show(step.weight)}")
        lines.append(f"  {' ' * len(g)} {equals(step.gradient)}")
    else:
        g = f"∂L/∂{w}"
        lines.append(f"  {g} {equals(step.gradient)}")
    if step.velocity is not None:
        lines.append(
            f"  v ← μ·v + {g} = {mu}·{show(step.velocity)} + {show(step.gradient)} {equals(step.new_velocity)}"
        )
        lines.append(f"  {w} ← {w} − lr·v = {show(step.weight)} − {lr}·{show(step.new_velocity)}")
    else:
        lines.append(f"  {w} ← {w} − lr·{g} = {show(step.weight)} − {lr}·{show(step.gradient)}")
    lines.append(f"  {' ' * len(w)}   {equals(step.new_weight)}")
    return lines


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text
