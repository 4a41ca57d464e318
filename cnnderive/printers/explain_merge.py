"""`explain` for graphs: add and concat, forward and backward, and the sum where a tensor is read twice.

The numbers come from the Steps records (LayerStep.inputs, Steps.forks); nothing is computed here.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from .explain_view import View, equation, indent, prose
from .matrices import number_text

COPIES = "the + copies the gradient to both branches"


def add_forward(view: View, step) -> list:
    names = " + ".join(x.unicode() for x in step.inputs)
    return [
        equation(f"{step.output.unicode()} = {names}, element by element (the skip connection joins here)"),
        view.tensor_view(step.output, step.values, step.output.unicode(), approx=view.floats.values[step.position + 1]),
    ]


def concat_forward(view: View, step) -> list:
    parts = ", ".join(f"{x.unicode()} ({x.shape[0]} channel{'s' if x.shape[0] > 1 else ''})" for x in step.inputs)
    return [
        prose(f"{step.output.unicode()} stacks the channels of {parts}, in this order."),
        view.tensor_view(step.output, step.values, step.output.unicode(), approx=view.floats.values[step.position + 1]),
    ]


def add_backward(view: View, step, delta_in) -> list:
    s = step.output.unicode()
    inputs = [x.unicode() for x in step.inputs]
    each = " and ".join(f"∂L/∂{x} = ∂L/∂{s}" for x in inputs)
    return [
        prose(
            f"{s} = {' + '.join(inputs)} has ∂{s}/∂{inputs[0]} = 1 for every input: {COPIES}. "
            f"So {each}, element by element: nothing is halved and nothing is multiplied."
        ),
        view.tensor_view(step.output, step.delta, f"∂L/∂{s}", approx=view.floats.deltas[step.position + 1]),
    ]


def concat_backward(view: View, step, delta_in) -> list:
    c = step.output.unicode()
    first = 0
    parts = []
    for x in step.inputs:
        channels = x.shape[0]
        parts.append(
            f"channels {first + 1}-{first + channels} to {x.unicode()}"
            if channels > 1
            else f"channel {first + 1} to {x.unicode()}"
        )
        first += channels
    return [
        prose(f"Concatenation only moved channels, so ∂L/∂{c} is cut back into its pieces: {', '.join(parts)}."),
        view.tensor_view(step.output, step.delta, f"∂L/∂{c}", approx=view.floats.deltas[step.position + 1]),
    ]


def fork_backward(view: View, fork) -> Group:
    """Where a tensor is read by several layers: each sends its part back, and the parts add."""
    x = fork.tensor.unicode()
    names = " and ".join(step.layer.name for step in fork.readers)
    adds = any(step.layer.kind == "add" for step in fork.readers)
    head = Text(f"{fork.tensor.name} · read by {names}", style="bold cyan")
    items = [
        prose(
            f"{x} is read by {names}{' (' + COPIES + ')' if adds else ''}, so ∂L/∂{x} is the sum of the parts "
            f"they send back: the chain rule adds one term per path from {x} to L. Summed, not averaged."
        )
    ]
    for step, part, approx in zip(fork.readers, fork.parts, fork.parts_approx):
        items.append(view.tensor_view(fork.tensor, part, f"from {step.layer.name}", dim_zeros=True, approx=approx))
    index = fork.worked_index()
    terms = " + ".join(_term(part[index], approx[index]) for part, approx in zip(fork.parts, fork.parts_approx))
    total = number_text(fork.total[index], fork.total_approx[index])
    items.append(equation(f"∂L/∂{fork.tensor.unicode(index)} = {terms} = {total}"))
    items.append(view.tensor_view(fork.tensor, fork.total, f"∂L/∂{x}", dim_zeros=True, approx=fork.total_approx))
    return Group(head, indent(*items), Text())




def _term(value, approx) -> str:
    text = number_text(value, approx)
    return f"({text})" if text.startswith("-") else text
