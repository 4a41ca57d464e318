"""`cnnderive grad`: every gradient, as a table or as the JSON of the spec."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import guarded, options_of
from .loading import load_any


@guarded
def grad(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    param: Annotated[
        str | None, typer.Option("--param", "-p", help="only this parameter, e.g. conv1.weight or fc.bias[2]")
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="print the JSON document of the spec instead of a table")
    ] = False,
) -> None:
    """The gradient of the loss for every parameter: chain-rule form and value (and, with train:, the new weights)."""
    from ..derivation.names import parse_parameter

    derivation = load_any(net, options_of(ctx), exact=None if not json else False)
    selected = parse_parameter(derivation.network, param) if param else None
    if json:
        from ..printers.json_out import render

        only = selected[0].name if selected else None
        typer.echo(render(derivation, only))
        return
    if hasattr(derivation, "examples"):  # a batch: each example's part and the 1/N
        from ..printers.explain_batch import batch_gradient_table
        from ..printers.terminal import make_console

        make_console().print(batch_gradient_table(derivation, selected))
        return
    from ..printers.explain_update import update_section
    from ..printers.terminal import gradient_table, make_console

    console = make_console()
    console.print(gradient_table(derivation, selected))
    for item in update_section(derivation, selected[0].name if selected else None):  # the `train:` step(s)
        console.print(item)
