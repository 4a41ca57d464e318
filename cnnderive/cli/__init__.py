"""The command line: thin commands that call the library and hand the result to a printer."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import check, explain, grad, latex, symbols
from .common import DEBUG, LIMITS

app = typer.Typer(
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Backpropagation in a small CNN, step by step and exactly.",
)


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an internal error")] = False,
    max_work: Annotated[
        int, typer.Option("--max-work", help="refuse networks needing more multiply-adds per pass than this", min=1)
    ] = 20_000_000,
) -> None:
    DEBUG["on"] = debug
    LIMITS["work"] = max_work


app.command("explain")(explain.explain)
app.command("grad")(grad.grad)
app.command("symbols")(symbols.symbols)
app.command("check")(check.check)
app.command("latex")(latex.latex)


def main() -> None:
    try:
        app(prog_name="cnnderive")
    except KeyboardInterrupt:  # outside a command (the commands handle their own)
        sys.stderr.write("cnnderive: interrupted\n")
        raise SystemExit(130) from None
