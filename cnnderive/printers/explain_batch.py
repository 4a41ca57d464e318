"""`explain` and `grad` of a mini-batch: each example as an ordinary derivation, then "The batch":
the batch loss L = 1/N (ℓ₁ + … + ℓ_N) and, per parameter tensor, ∂L/∂w = 1/N (∂ℓ₁/∂w + … + ∂ℓ_N/∂w)
with every example's matrix. Reads derivation.batch records only; no maths here."""

from __future__ import annotations

from fractions import Fraction

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..derivation.batch import BatchDerivation
from ..derivation.steps import build_steps
from .explain_view import View, equation, indent, prose, value_line
from .matrices import number_text
from .terminal import MAX_ROWS, parameter_elements, value_text

MAX_EXAMPLE_COLUMNS = 4  # examples with a column of their own in the `grad` table
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def loss_name(n: int) -> str:
    """ℓ₁, ℓ₂, ...: example n's loss (1-based)."""
    return "ℓ" + str(n).translate(_SUBSCRIPT)


def factor_text(scale: Fraction) -> str:
    """'1/2 ' in front of the sum over examples, or '' for batch_reduction: sum."""
    return "" if scale == 1 else f"{scale} "


def sum_text(derivation: BatchDerivation, of: str) -> str:
    """'1/2 (∂ℓ₁/∂w + ∂ℓ₂/∂w)' for `of` = '∂{}/∂w' (three examples and more: first, second, …, last)."""
    names = [of.format(loss_name(n)) for n in range(1, derivation.size + 1)]
    if len(names) > 3:
        names = [names[0], names[1], "…", names[-1]]
    return f"{factor_text(derivation.scale)}({' + '.join(names)})"


def reduction_sentence(derivation: BatchDerivation) -> str:
    n = derivation.size
    if derivation.scale == 1:
        text = f"A batch of {n} examples (batch_reduction: sum): L = {sum_text(derivation, '{}')}, their losses added."
    else:
        text = (
            f"A batch of {n} examples (batch_reduction: mean, as PyTorch): L = {sum_text(derivation, '{}')}, the mean "
            f"of the examples' losses; so every gradient is 1/{n} times the sum of the examples' gradients."
        )
    return text + (BATCH_NORM_PARTS if derivation.batch_wide else "")


BATCH_NORM_PARTS = (
    " With batch norm each example's loss depends on every example (through the batch mean and variance): "
    "example n's column is the gradient of ℓ₁ + … + ℓ_N that flows through example n's own values "
    "(the columns still add up to the batch gradient)."
)


def batch_explanation(derivation: BatchDerivation, to_input: bool = False) -> list[RenderableType]:
    """Each example's forward and backward pass under "example n of N", then the batch section."""
    from .explain import explanation

    items: list[RenderableType] = [Text(derivation.network.name, style="bold"), Text()]
    items += [prose(reduction_sentence(derivation)), Text()]
    for n, example in enumerate(derivation.examples, start=1):
        items += [Rule(f"example {n} of {derivation.size}", align="left", style="bold")]
        items += explanation(build_steps(example), to_input, title=False, glance=n == 1)
    return items + batch_section(derivation)


def batch_section(derivation: BatchDerivation) -> list[RenderableType]:
    """ "The batch": L, then per parameter tensor ∂L/∂w = 1/N (Σ ∂ℓₙ/∂w) with each example's matrix."""
    view = View(build_steps(derivation.examples[0]))
    items: list[RenderableType] = [Rule("The batch", align="left", style="bold"), prose(reduction_sentence(derivation))]
    losses = [example.values.loss for example in derivation.examples]
    approx = [float(example.nearest.loss) for example in derivation.examples]
    shown = [number_text(value, near) for value, near in zip(losses, approx)]
    loss, loss_approx = derivation.loss
    items.append(
        equation(
            f"L = {sum_text(derivation, '{}')} = {_with_numbers(derivation, shown)} {value_line(loss, loss_approx)}"
        )
    )
    for name, record in derivation.gradients.items():
        tensor = derivation.tensors[name]
        w = tensor.unicode()
        items += [Text(), Text(f"∂L/∂{w} = {sum_text(derivation, '∂{}/∂' + w)}", style="bold")]
        for n, (part, near) in enumerate(zip(record.parts, record.parts_approx), start=1):
            label = f"∂{loss_name(n)}/∂{w}"
            items.append(indent(view.tensor_view(tensor, part, label, approx=near)))
        items.append(indent(view.tensor_view(tensor, record.value, f"∂L/∂{w}", approx=record.approx)))
    return items


def _with_numbers(derivation: BatchDerivation, shown: list[str]) -> str:
    parts = shown if len(shown) <= 4 else [shown[0], shown[1], "…", shown[-1]]
    return f"{factor_text(derivation.scale)}({' + '.join(parts)})"


def batch_gradient_table(derivation: BatchDerivation, selected=None) -> Table:
    """`grad` of a batch: per parameter element, each example's ∂ℓₙ/∂θ, and ∂L/∂θ = 1/N (their sum)."""
    table = Table(title=Text(f"∂L/∂θ for {derivation.network.name}"), title_justify="left")
    table.caption = reduction_sentence(derivation)
    table.add_column("parameter", no_wrap=True)
    shown = list(range(min(derivation.size, MAX_EXAMPLE_COLUMNS)))
    for n in shown:
        table.add_column(f"∂{loss_name(n + 1)}/∂θ", justify="right", no_wrap=True)
    if derivation.size > len(shown):
        table.add_column("…")
    table.add_column(f"∂L/∂θ = {sum_text(derivation, '∂{}/∂θ')}", justify="right")
    for row, (tensor, index) in enumerate(parameter_elements(derivation, selected)):
        if row == MAX_ROWS:
            table.caption += "\n… more rows left out: narrow with --param, or use --json for all of them"
            break
        record = derivation.gradients[tensor.name]
        name = Text(tensor.unicode(index), style="bold")
        name.append(f"  {tensor.element(index)}", style="dim")
        cells = [value_text(record.parts[n][index], float(record.parts_approx[n][index])) for n in shown]
        cells += ["…"] if derivation.size > len(shown) else []
        table.add_row(name, *cells, value_text(record.value[index], float(record.approx[index])))
    return table


def batch_verdict(verdict, name: str) -> Group:
    """`check --value` on a batch: right or wrong, the batch gradient, and the batch mistake it matches."""
    head = Text(f"∂L/∂{verdict.symbol}", style="bold")
    head.append(f"  ({verdict.element})  of the batch in {name}", style="dim")
    right = value_text(verdict.value, verdict.approx)
    right = right if right.startswith("≈") else f"= {right}"
    lines: list[RenderableType] = [head]
    if verdict.right:
        how = (
            f"to {verdict.rounded_to} significant digits"
            if verdict.rounded_to
            else "exactly"
            if verdict.exact
            else "within the tolerance"
        )
        lines.append(Text(f"✓ right ({how}): ∂L/∂{verdict.symbol} {right}", style="green"))
        return Group(*lines)
    lines.append(
        Text(f"✗ wrong: yours is {verdict.given_text}, the batch gradient ∂L/∂{verdict.symbol} {right}", style="red")
    )
    if verdict.relative_error is not None:
        lines.append(Text(f"  relative error {verdict.relative_error:.3g}", style="dim"))
    if verdict.mistake is not None:
        title, paragraph = verdict.mistake
        which = f" (example {verdict.example})" if verdict.example else ""
        lines += [Text(f"Mistake: {title}{which}", style="bold yellow"), indent(prose(paragraph))]
    return Group(*lines)
