"""`cnnderive symbols`: every canonical name with its textbook aliases and value."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import guarded, load_derivation


@guarded
def symbols(net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")]) -> None:
    """Every canonical name (inputs, parameters, layer outputs, target) with its textbook aliases and value."""
    from ..printers.terminal import make_console, symbols_table

    make_console().print(symbols_table(load_derivation(net)))
