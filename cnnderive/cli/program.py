"""The Typer application: the global options, the commands, and every usage error as one line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer vendors click (pinned)
from typer.core import TyperGroup

from ..errors import one_line
from . import check, explain, grad, latex, symbols
from .common import DEFAULT_MAX_WORK, INTERRUPTED, Options, say


class OneLineErrors(TyperGroup):
    """Typer's command group, with click's usage errors as one line `cnnderive: error: ...` and exit 2.

    It runs click in non-standalone mode, so errors come back here instead of being drawn as a box,
    and it prints the Ctrl-C line for every interrupt (click turns one into exit status 130).
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError:  # `cnnderive` alone: the help is already printed
            code = 2
        except ClickException as error:
            say(f"error: {usage_message(error)}")
            code = 2
        except typer.Abort:  # click's Abort (end of input at a prompt): the user stopped it, as with Ctrl-C
            code = INTERRUPTED
        code = code if isinstance(code, int) else 0
        if code == INTERRUPTED:
            say("interrupted")
        if standalone_mode:
            raise SystemExit(code)
        return code


def usage_message(error: ClickException) -> str:
    """Click's message on one line, with the help command for the rest."""
    message = re.sub(r"\s*\n\s*", " ", error.format_message().strip()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return one_line(message)


app = typer.Typer(
    cls=OneLineErrors,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Backpropagation in a small CNN, step by step and exactly.",
)


@app.callback()
def options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an internal error")] = False,
    max_work: Annotated[
        int, typer.Option("--max-work", help="refuse networks needing more multiply-adds per pass than this", min=1)
    ] = DEFAULT_MAX_WORK,
) -> None:
    # the commands read these through ctx (options_of); no module state, so runs in one process stay apart
    ctx.obj = Options(debug=debug, max_work=max_work)


app.command("explain")(explain.explain)
app.command("grad")(grad.grad)
app.command("symbols")(symbols.symbols)
app.command("check")(check.check)
app.command("latex")(latex.latex)
