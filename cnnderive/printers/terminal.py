"""Terminal rendering basics shared by the commands: console, numbers, names, small tables."""

from __future__ import annotations

import os
from fractions import Fraction

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..derivation import ChainTerm, Derivation, ParamGradient

MAX_ROWS = 60
LONG = 48  # an exact form longer than this is shown as a decimal only


def make_console(record: bool = False, width: int | None = None, stderr: bool = False) -> Console:
    """A console that writes no colour codes when piped and honours NO_COLOR."""
    return Console(
        record=record,
        width=width,
        stderr=stderr,
        no_color="NO_COLOR" in os.environ or None,
        highlight=False,
    )


def decimal(value: object, digits: int = 6) -> str:
    """A value as a short decimal: 0.125, -1.5e-06."""
    number = float(value)
    if number == 0:
        return "0"
    text = f"{number:.{digits}g}"
    return text if "e" in text or "." not in text else text.rstrip("0").rstrip(".")


def exact_text(value: object) -> str:
    """A value exactly: 3/10 for a rational, SymPy's form for anything else; '' when not known exactly."""
    if isinstance(value, float):
        return ""
    if isinstance(value, Fraction):
        return str(value)
    if getattr(value, "is_Rational", False):
        return str(value)
    return str(value)


def value_text(value: object) -> str:
    """Exact and decimal together where they differ: '7/40 = 0.175', or just the decimal."""
    approx = decimal(value)
    exact = exact_text(value)
    if not exact or exact == approx:
        return approx
    if len(exact) > LONG:
        return f"≈ {approx}"
    if getattr(value, "is_Rational", True) and _terminates(value):
        return f"{exact} = {decimal(value, 15)}"
    return f"{exact} ≈ {approx}"


def _terminates(value: object) -> bool:
    try:
        q = int(value.q) if hasattr(value, "q") else Fraction(value).denominator
    except (TypeError, ValueError):
        return False
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def term_text(term: ChainTerm) -> str:
    """∂L/∂z¹₁₂·x₁₂ (a bias term has no second factor)."""
    head = f"∂L/∂{term.out.unicode(term.out_index)}"
    return head if term.factor is None else f"{head}·{term.factor.unicode(term.factor_index)}"


def chain_text(gradient: ParamGradient, limit: int = 4) -> str:
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
    table = Table(title=f"∂L/∂θ for {derivation.network.name}", title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("chain rule: ∂L/∂θ =")
    table.add_column("value", justify="right")
    rows = 0
    for tensor, index in _elements(derivation, selected):
        if rows == MAX_ROWS:
            table.caption = "… more rows left out: narrow with --param, or use --json for all of them"
            break
        gradient = derivation.gradient(tensor, index)
        name = Text(tensor.unicode(index), style="bold")
        name.append(f"  {gradient.name}", style="dim")
        table.add_row(name, chain_text(gradient), value_text(gradient.value))
        rows += 1
    return table


def _elements(derivation: Derivation, selected):
    if selected:
        tensor, index = selected
        yield from ((tensor, i) for i in ([index] if index is not None else tensor.indices()))
        return
    for name in derivation.network.parameter_names():
        tensor = derivation.tensors[name]
        yield from ((tensor, i) for i in tensor.indices())


def symbols_table(derivation: Derivation, max_rows: int = 400) -> Table:
    """Canonical name, textbook names (terminal, typed, LaTeX), value: what `check --expr` accepts."""
    table = Table(title=f"names in {derivation.network.name}", title_justify="left")
    for column in ("canonical", "textbook", "typed", "LaTeX"):
        table.add_column(column, no_wrap=True)
    table.add_column("value", justify="right")
    rows = 0
    for tensor, index, value in _named_values(derivation):
        if rows == max_rows:
            table.caption = f"… more names left out (the first {max_rows} are shown)"
            break
        table.add_row(tensor.element(index), tensor.unicode(index), tensor.ascii(index), tensor.latex(index), value_text(value))
        rows += 1
    return table


def _named_values(derivation: Derivation):
    values = derivation.values
    network = derivation.network
    layer_of = {layer.name: k for k, layer in enumerate(network.layers)}
    for tensor in derivation.tensors.values():
        if tensor.role == "loss":
            yield tensor, (), values.loss
            continue
        if tensor.role == "input":
            array = values.values[0]
        elif tensor.role == "target":
            array = derivation.ops.array(network.target)
        elif tensor.role == "output":
            array = values.values[tensor.layer + 1]
        else:
            layer, param = tensor.name.split(".")
            array = derivation.ops.array(network.params[layer][param])
            assert layer_of[layer] == tensor.layer
        for index in tensor.indices():
            yield tensor, index, array[index]
