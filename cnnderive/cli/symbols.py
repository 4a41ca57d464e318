"""`cnnderive symbols`: every canonical name with its textbook aliases and value."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import guarded, load_derivation, options_of


@guarded
def symbols(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
) -> None:
    """Every name you can use (input, parameters, layer outputs, target): as printed, as typed, in LaTeX, with its value."""
    from ..printers.terminal import make_console, symbols_view

    derivation = load_derivation(net, options_of(ctx))
    make_console().print(symbols_view(derivation, _short_aliases(derivation)))


def _short_aliases(derivation):
    """The short names `check` accepts per element (i_5, w^2_1, o, y), for networks small enough for formulas."""
    from ..check.formula.names import NameTable, element_aliases
    from ..derivation.symbolic import Symbolic
    from ..errors import UserError

    try:
        table = NameTable(Symbolic(derivation))
    except UserError:
        return None
    return lambda tensor, index: element_aliases(table, tensor, index)[4:]
