"""The Typer application: the global options, the commands, and every usage error as one line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer vendors click (pinned)
from typer.core import TyperArgument, TyperGroup, TyperOption

from ..errors import one_line
from . import check, explain, generate, grad, graph, latex, symbols
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


def _type_hint(param: TyperOption | TyperArgument, ctx: object) -> str | None:
    """The type column of --help: an option's metavar (FILE.tex) when it has one, else nothing.

    Typer prints <bool>, <str>, <float range> for every option, which says nothing to a student.
    """
    return None if isinstance(param, TyperArgument) or param.is_flag else param.metavar


TyperOption.display_type_rich = _type_hint  # type: ignore[method-assign]
TyperArgument.display_type_rich = _type_hint  # type: ignore[method-assign]

EXAMPLES = {
    "explain": [
        "cnnderive explain configs/seed000_maxpool_flatten.yaml",
        'cnnderive explain configs/seed001_conv_conv_mse.yaml --param "conv1.weight[0,0,0,0]"',
    ],
    "grad": [
        "cnnderive grad configs/seed002_pool_to_fc.yaml",
        "cnnderive grad configs/lenet5.yaml --json --param conv1.bias",
    ],
    "symbols": ["cnnderive symbols configs/seed001_conv_conv_mse.yaml"],
    "check": [
        'cnnderive check configs/seed001_conv_conv_mse.yaml --param "conv1.weight[0,0,0,0]" --value -0.55',
        (
            'cnnderive check configs/seed001_conv_conv_mse.yaml --param "conv1.weight[0,0,0,0]" '
            '--expr "2*(o - y)*(i_1*w_1^2 + i_2*w_2^2 + i_4*w_3^2 + i_5*w_4^2)"'
        ),
        "cnnderive check configs/seed002_pool_to_fc.yaml --answers configs/worksheets/seed002_sign_error.yaml",
    ],
    "latex": [
        "cnnderive latex configs/seed001_conv_conv_mse.yaml -o seed001.tex --pdf",
        "cnnderive latex configs/seed002_pool_to_fc.yaml --snippet",
    ],
    "graph": [
        "cnnderive graph configs/seed000_maxpool_flatten.yaml --param conv1.weight -o seed000.svg",
        "cnnderive graph configs/seed002_pool_to_fc.yaml -o seed002.dot",
    ],
}


def examples(command: str) -> str:
    """The epilog of a command's --help: a few commands to copy (one paragraph each, as Rich wraps)."""
    return "\n\n".join(["Examples:", *EXAMPLES[command]])


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"cnnderive {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=OneLineErrors,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    help="Backpropagation in a small CNN, step by step and exactly.",
)


@app.callback()
def options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an internal error")] = False,
    max_work: Annotated[
        int,
        typer.Option(
            "--max-work", help="refuse networks needing more multiply-adds per pass than this", min=1, metavar="N"
        ),
    ] = DEFAULT_MAX_WORK,
    version: Annotated[
        bool,
        typer.Option("--version", help="print the version and stop", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    # the commands read these through ctx (options_of); no module state, so runs in one process stay apart
    ctx.obj = Options(debug=debug, max_work=max_work)


app.command("explain", epilog=examples("explain"))(explain.explain)
app.command("grad", epilog=examples("grad"))(grad.grad)
app.command("symbols", epilog=examples("symbols"))(symbols.symbols)
app.command("check", epilog=examples("check"))(check.check)
app.command("latex", epilog=examples("latex"))(latex.latex)
app.command("graph", epilog=examples("graph"))(graph.graph)
app.command("generate", epilog=generate.EPILOG)(generate.generate)
