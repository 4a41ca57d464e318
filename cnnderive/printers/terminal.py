"""Terminal rendering basics shared by the commands: console, numbers, names, small tables."""

from __future__ import annotations

import os

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..derivation.budget import BUDGET, small_enough
from ..derivation.build import Derivation
from ..derivation.records import ElementGradient, Term
from ..maths.numbers import as_fraction
from .numbers import DIGITS, full_decimal, rounded

MAX_ROWS = 60
LONG = 28  # an exact form longer than this is shown as a decimal only


def make_console(record: bool = False, width: int | None = None, stderr: bool = False) -> Console:
    """A console that writes no colour codes when piped and honours NO_COLOR."""
    return Console(
        record=record,
        width=width,
        stderr=stderr,
        no_color="NO_COLOR" in os.environ or None,
        highlight=False,
    )


def value_text(value: object, approx: float | None = None, digits: int = DIGITS) -> str:
    """Exact and decimal together: '7/40 = 0.175', '1/3 ≈ 0.3333', 'exp(1/10) ≈ 1.105', or '≈ 0.3' for big forms.

    `approx` (the value as a float) is used for anything that is not a rational, so that a big
    exact form is never evaluated or printed.
    """
    if isinstance(value, float):
        return rounded(value, digits)
    q = as_fraction(value)
    if q is not None:
        if q.denominator == 1:
            return str(q.numerator)
        full = full_decimal(q)
        return f"{q} = {full}" if full is not None else f"{q} ≈ {rounded(q, digits)}"
    number = rounded(approx if approx is not None else value, digits)
    if small_enough(value, BUDGET.shown_form_nodes) and len(text := str(value)) <= LONG:
        return f"{text} ≈ {number}"
    return f"≈ {number}"


def term_text(term: Term) -> str:
    """∂L/∂z¹₁₂·x₁₂ (a bias term has no second factor)."""
    head = f"∂L/∂{term.out.unicode(term.out_index)}"
    return head if term.factor is None else f"{head}·{term.factor.unicode(term.factor_index)}"


def chain_text(gradient: ElementGradient, limit: int = 4) -> str:
    """The chain-rule sum, live terms first, with a count of the terms a kink cut."""
    live = [term_text(t) for t in gradient.live_terms]
    shown = " + ".join(live[:limit]) + (f" + … ({len(live)} terms)" if len(live) > limit else "")
    cut = len(gradient.cut_terms)
    if not live:
        shown = "0"
    if cut:
        shown += f"  [{cut} cut]"
    return shown


def gradient_table(derivation: Derivation, selected=None) -> Table:
    """One row per parameter element: its names, the chain-rule form, the value."""
    table = Table(title=Text(f"∂L/∂θ for {derivation.network.name}"), title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("chain rule: ∂L/∂θ =")
    table.add_column("value", justify="right")
    for row, (tensor, index) in enumerate(parameter_elements(derivation, selected)):
        if row == MAX_ROWS:
            table.caption = "… more rows left out: narrow with --param, or use --json for all of them"
            break
        gradient = derivation.gradient(tensor, index)
        name = Text(tensor.unicode(index), style="bold")
        name.append(f"  {gradient.name}", style="dim")
        chain = chain_text(gradient) + (" + λ·w" if gradient.decay is not None else "")
        table.add_row(name, chain, value_text(gradient.value, gradient.approx))
    return table


def parameter_elements(derivation, selected):
    """(tensor, index) of every parameter element, or of the one selected (a tensor, an element)."""
    if selected:
        tensor, index = selected
        yield from ((tensor, i) for i in ([index] if index is not None else tensor.indices()))
        return
    for name in derivation.network.parameter_names():
        tensor = derivation.tensors[name]
        yield from ((tensor, i) for i in tensor.indices())


def symbols_table(derivation: Derivation, typed_aliases=None, max_rows: int = 400, stacked: bool = False) -> Table:
    """Canonical name, textbook names (printed, LaTeX, typed), value: every name `check --expr` accepts.

    `typed_aliases(tensor, index)` gives the short names a student may type besides the typed
    textbook name (i_5, w^2_1, o, y, ...); without it only the textbook names are listed.
    A name is never broken over two lines (a LaTeX name split at 80 columns cannot be copied):
    `stacked` puts the LaTeX name under the canonical one, for narrow terminals.
    """
    table = Table(title=Text(f"names in {derivation.network.name}"), title_justify="left")
    table.add_column("canonical" + ("\nLaTeX" if stacked else ""), no_wrap=True)
    table.add_column("textbook", no_wrap=True)
    if not stacked:
        table.add_column("LaTeX", no_wrap=True)
    table.add_column("typed (and also accepted)", ratio=1)  # wraps between names, after the commas
    table.add_column("value", justify="right", min_width=12)
    for row, (tensor, index, value, approx) in enumerate(_named_values(derivation)):
        if row == max_rows:
            table.caption = f"… more names left out (the first {max_rows} are shown)"
            break
        shown = (tensor.element(index), tensor.unicode(index), tensor.latex(index))
        typed = [tensor.ascii(index)] + (typed_aliases(tensor, index) if typed_aliases else [])
        others = ", ".join(name for name in dict.fromkeys(typed) if name not in shown)
        names = (f"{shown[0]}\n{shown[2]}", shown[1]) if stacked else shown
        table.add_row(*names, others, value_text(value, approx))
    return table


class FirstThatFits:
    """The first of several renderables whose narrowest form fits the width (else the last one):
    Rich cuts a table whose unbreakable columns are wider than the terminal."""

    def __init__(self, *choices) -> None:
        self.choices = choices

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(10_000)  # Measurement.get clamps to the width it is given
        for choice in self.choices:
            if Measurement.get(console, unbounded, choice).minimum <= options.max_width:
                yield choice
                return
        yield self.choices[-1]


def symbols_view(derivation: Derivation, typed_aliases=None, max_rows: int = 400) -> FirstThatFits:
    """The symbols table, with the LaTeX names in their own column where that fits, else under the canonical ones."""
    return FirstThatFits(
        symbols_table(derivation, typed_aliases, max_rows),
        symbols_table(derivation, typed_aliases, max_rows, stacked=True),
    )


def _named_values(derivation: Derivation):
    for tensor in derivation.tensors.values():
        exact, approx = derivation.array(tensor), derivation.array(tensor, exact=False)
        for index in tensor.indices():
            yield tensor, index, exact[index], float(approx[index])
