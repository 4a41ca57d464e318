"""`explain`: the derivation a student reads, as Rich renderables built from the Steps model.

The network at a glance, the forward pass layer by layer, the backward pass from the loss (to
the input when asked), or (`--param`) the chain rule for one element. Sections are unnumbered
headings, layers are "layer N · name": the two never look alike. Layer kinds are looked up in the
FORWARD table here and the BACKWARD table in explain_backward; the printers do no maths.
"""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..derivation.budget import work
from .explain_backward import backward
from .explain_batchnorm import batchnorm_forward
from .explain_merge import add_forward, concat_forward
from .explain_param import param_section
from .explain_update import update_section
from .explain_view import ACCENT, View, equation, indent, layer_head, prose, scalar
from .matrices import number_text, put
from .notation import convention_sentence

CONVENTIONS = (
    "Conventions (as PyTorch): ReLU'(0) = 0; a max-pool tie sends the gradient to the first maximum "
    "of the window in row-major order; flatten reads channel, then row, then column. Textbook "
    "indices count from 1 (z¹₁₂ is conv1.output[0,0,1] when there is one channel). Numbers after "
    "= are exact (1.1 is 11/10); after ≈ they are rounded to 4 significant digits."
)


def explanation(steps, to_input: bool = False, title: bool = True, glance: bool = True) -> list[RenderableType]:
    """The whole explanation: overview, forward pass, backward pass (with `to_input`, down to dL/dx).

    An example of a batch is shown without the `title` (the batch has it), and after the first without the `glance`."""
    view = View(steps, to_input=to_input)
    items: list[RenderableType] = [Text(view.network.name, style="bold"), Text()] if title else []
    if glance:
        items += [Rule("The network at a glance", align="left"), overview(view), prose(CONVENTIONS), Text()]
    if view.symbolic is None:
        items += [
            prose(
                f"This network needs {work(view.network):,} multiply-adds per pass: rules are not "
                "written out per element, values are floats, and matrices show their corners."
            ),
            Text(),
        ]
    items += [Rule("Forward pass", align="left")]
    items += [layer_forward(view, step) for step in _input_and_layers(view)]
    items += [loss_forward(view), Text()]
    items += [Rule("Backward pass, from the loss", align="left")]
    items += backward(view)
    items += update_section(view.derivation)
    return items


def param_explanation(steps, tensor, index, expand: bool = False) -> list[RenderableType]:
    """Only the chain rule for one parameter element (or every element of one tensor)."""
    view = View(steps)
    return (
        [Text(view.network.name, style="bold"), Text()]
        + param_section(view, tensor, index, expand)
        + update_section(view.derivation, tensor.name)
    )


# 1. overview ---------------------------------------------------------------------------------


def overview(view: View) -> Table:
    """One row per layer: what it does, its output's textbook name, shapes in -> out, parameters."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column, justify in (
        ("#", "right"),
        ("layer", "left"),
        ("kind", "left"),
        ("name", "left"),
        ("shape in → out", "left"),
        ("params", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=column in ("#", "name", "shape in → out"))
    x = view.derivation.tensors["input"]
    table.add_row("", "input", "", x.unicode(), _shape(x.shape), "")
    total = 0
    for step in view.steps.layers:
        params = view.network.params[step.layer.name]
        count = sum(int(np.prod(p.shape)) for p in params.values())
        total += count
        table.add_row(
            str(step.position + 1),
            step.layer.name,
            step.layer.describe(),
            step.output.unicode(),
            f"{_shape(step.input.shape)} → {_shape(step.output.shape)}",
            str(count) if count else "",
        )
    table.add_row(
        "", "loss", view.network.loss.describe(), "L", f"{_shape(view.network.output_shape)} → 1", f"{total} in all"
    )
    return table


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "1"


# 2. forward ----------------------------------------------------------------------------------


def _input_and_layers(view: View):
    yield None
    yield from view.steps.layers


def layer_forward(view: View, step) -> Group:
    """One layer of the forward pass: what it does, its rule for one element, its values."""
    if step is None:
        x = view.derivation.tensors["input"]
        return Group(Text("input", style=ACCENT), indent(view.tensor_view(x, view.network.input, x.unicode())), Text())
    head = layer_head(step)
    put(head, f"  {step.layer.describe()}: {step.input.unicode()} → {step.output.unicode()}", "bold")
    put(head, f"   ({step.output.name})", "dim")
    body = FORWARD[step.layer.kind](view, step)
    body += [Text(f"Kink decided exactly: {note}", style="yellow") for note in step.kink_notes]
    body += [Text(f"Convention: {convention_text(step, c)}", style="yellow") for c in step.conventions]
    return Group(head, indent(*body), Text())


def convention_text(step, convention) -> str:
    return convention_sentence(convention, step.layer.kind == "relu", lambda x, i: x.unicode(i), number_text)


def _rule_line(view: View, step, note: str = "") -> list:
    if step.rule is None:
        return []
    line = equation(f"{step.output.unicode(step.first)} = {view.show(step.rule)}")
    return [line] + ([indent(Text(note, style="dim"))] if note else [])


def _values(view: View, step, marked=None) -> RenderableType:
    return view.tensor_view(
        step.output, step.values, step.output.unicode(), marked, approx=view.floats.values[step.position + 1]
    )


def _param_views(view: View, step) -> list:
    out = []
    for param, values in view.network.params[step.layer.name].items():
        tensor = view.derivation.tensors[f"{step.layer.name}.{param}"]
        out.append(view.tensor_view(tensor, values, tensor.unicode()))
    return out


def _generic_forward(view: View, step) -> list:
    return _rule_line(view, step) + [_values(view, step)]


def _conv_forward(view: View, step) -> list:
    note = "every output element likewise, with the window moved by the stride"
    return [*_param_views(view, step), *_rule_line(view, step, note), _values(view, step)]


def _linear_forward(view: View, step) -> list:
    return [
        *_param_views(view, step),
        *_rule_line(view, step, "each output: its row of weights times the input"),
        _values(view, step),
    ]


def _relu_forward(view: View, step) -> list:
    z, a = step.input.unicode(), step.output.unicode()
    return [equation(f"{a} = max(0, {z}): positive values pass, the rest become 0"), _values(view, step)]


def _leaky_forward(view: View, step) -> list:
    z, a = step.input.unicode(), step.output.unicode()
    slope = number_text(step.layer.negative_slope)
    return [equation(f"{a} = {z} where {z} > 0, else {slope}·{z}"), _values(view, step)]


def _maxpool_forward(view: View, step) -> list:
    items = []
    if view.symbolic is not None:
        window = step.layer.windows(view.symbolic.arrays[step.input.name])[step.first]
        names = ", ".join(view.show(s) for s in window)
        items.append(equation(f"{step.output.unicode(step.first)} = max({names}) = {view.show(step.rule)}"))
    else:
        items.append(equation(f"{step.output.unicode()} = the maximum of each window"))
    items.append(Text("[ ] marks the maximum of each window (the first one, row by row, if tied)", style="dim"))
    items.append(
        view.tensor_view(
            step.input,
            view.derivation.values.values[step.position],
            step.input.unicode(),
            marked=step.mask,
            approx=view.floats.values[step.position],
        )
    )
    items.append(_values(view, step))
    return items


def _flatten_forward(view: View, step) -> list:
    order = np.arange(1, int(np.prod(step.input.shape)) + 1).reshape(step.input.shape)
    label = f"k in {step.output.unicode()}ₖ"
    return [
        prose(
            f"Flatten copies {step.input.unicode()} into a vector, channel by channel, row by row: "
            f"the element at each position below becomes {step.output.unicode()}ₖ with that k."
        ),
        view.tensor_view(step.input, order, label),
        _values(view, step),
    ]


def _softmax_forward(view: View, step) -> list:
    return _rule_line(view, step) + [_values(view, step), Text("(probabilities: they add up to 1)", style="dim")]


def _dropout_forward(view: View, step) -> list:
    z, r = step.input.unicode(), step.output.unicode()
    scale = number_text(step.layer.scale)
    return [
        equation(f"{r} = {z}·m·{scale}: the kept elements (m = 1) scaled by 1/(1 - p), the dropped ones 0"),
        view.tensor_view(step.input, step.mask, "m", dim_zeros=True),
        _values(view, step),
    ]


FORWARD = {
    "conv2d": _conv_forward,
    "linear": _linear_forward,
    "relu": _relu_forward,
    "leaky_relu": _leaky_forward,
    "maxpool2d": _maxpool_forward,
    "flatten": _flatten_forward,
    "softmax": _softmax_forward,
    "sigmoid": _generic_forward,
    "tanh": _generic_forward,
    "identity": _generic_forward,
    "avgpool2d": _generic_forward,
    "adaptive_avg_pool2d": _generic_forward,
    "dropout": _dropout_forward,
    "add": add_forward,
    "concat": concat_forward,
    "batchnorm2d": batchnorm_forward,
    "batchnorm1d": batchnorm_forward,
}


def loss_forward(view: View) -> Group:
    loss = view.steps.loss
    head = Text("loss", style=ACCENT)
    put(head, f"  {view.network.loss.describe()}", "bold")
    items: list = [head]
    if loss.rule is not None:
        items.append(equation(f"L = {view.show(loss.rule)}"))
    target = view.derivation.tensors["target"]
    items.append(view.tensor_view(target, view.network.target, target.unicode()))
    items.append(scalar("L", loss.value))
    return Group(items[0], indent(*items[1:]))
