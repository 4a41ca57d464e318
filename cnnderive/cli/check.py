"""`cnnderive check`: is a hand-computed gradient (a value or a formula) right, and if not, why not."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import guarded, options_of
from .loading import example_of, load_any


@guarded
def check(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    param: Annotated[
        str | None,
        typer.Option(
            "--param",
            "-p",
            help="the gradient checked: ∂L/∂ this element, e.g. conv1.weight[0,0,0,0], or a name that "
            "`cnnderive symbols` lists (w1_1_1; a layer output too)",
        ),
    ] = None,
    value: Annotated[
        str | None, typer.Option("--value", help="your value: a decimal or a fraction, e.g. -0.55 or -11/20")
    ] = None,
    expr: Annotated[
        str | None,
        typer.Option(
            "--expr",
            help="your formula, in plain maths (2*(o - y)*(i1*w2_1 + ...), dC/do, relu'(z), 1\\[z > 0]) or LaTeX",
        ),
    ] = None,
    tol: Annotated[
        float,
        typer.Option(
            "--tol",
            min=0.0,
            max=1.0,
            help="relative tolerance for --value and --answers (a fraction is compared exactly)",
        ),
    ] = 1e-6,
    latex: Annotated[
        bool, typer.Option("--latex", help="read the formula as LaTeX (detected on \\ , ^{ or _{)")
    ] = False,
    updated: Annotated[
        bool, typer.Option("--updated", help="--value is the parameter's new value after the config's train: step")
    ] = False,
    example: Annotated[
        int | None, typer.Option("--example", min=1, help="a batch config: check this example (1 to N) alone")
    ] = None,
    answers: Annotated[
        str | None,
        typer.Option(
            "--answers",
            metavar="ANSWERS.yaml",
            help="a whole worksheet: names (as --param takes them) -> your values or {expr: ...}; each step "
            "right, wrong, or carried forward from your earlier answers",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="with --answers: the verdicts as JSON, for graders")] = False,
) -> None:
    """Check a hand-computed gradient, or a whole worksheet (--answers): exit 0 if right, 1 if wrong (and why)."""
    from ..errors import UserError

    if answers is not None or as_json:
        if answers is None:
            raise UserError("--json is for a whole worksheet: give --answers FILE", field="--json")
        one = [name for name, used in (("--param", param), ("--value", value), ("--expr", expr)) if used is not None]
        if one or updated:
            raise UserError(
                f"--answers checks a whole worksheet and {'/'.join(one or ['--updated'])} one gradient: "
                "give one or the other",
                field="check",
            )
        raise typer.Exit(_check_worksheet(ctx, net, answers, tol, example, as_json))
    if param is None:
        raise UserError(
            "give --param P with --value X or --expr FORMULA, or a worksheet with --answers FILE", field="check"
        )
    if (value is None) == (expr is None):
        raise UserError("give exactly one of --value X or --expr FORMULA", field="check")
    from ..check.checker import Checker
    from ..printers.check_out import CheckView
    from ..printers.terminal import make_console

    derivation = example_of(load_any(net, options_of(ctx)), example)
    if updated:  # the new weight after the train: step, not a gradient
        raise typer.Exit(_check_updated(derivation, param, value, tol))
    if hasattr(derivation, "examples"):  # a batch: its value against 1/N Σ ∂ℓₙ/∂w
        raise typer.Exit(_check_batch(derivation, param, value, expr, tol))
    checker = Checker(derivation, param)
    verdict = checker.check_value(value, tol) if value is not None else checker.check_expr(expr, latex or None)
    make_console().print(CheckView(checker.derivation).render(verdict))
    raise typer.Exit(0 if verdict.right else 1)


def _check_batch(derivation, param: str, value: str | None, expr: str | None, tol: float) -> int:
    """check on a whole batch: --value against the batch gradient (exit 0 right, 1 wrong); --expr refused."""
    from ..check.batch import check_batch_value
    from ..errors import UserError
    from ..printers.explain_batch import batch_verdict
    from ..printers.terminal import make_console

    if expr is not None:
        raise UserError("--expr on a batch: check one example's formula with --example n", field="--expr")
    verdict = check_batch_value(derivation, param, value, tol)
    make_console().print(batch_verdict(verdict, derivation.network.name))
    return 0 if verdict.right else 1


def _check_updated(derivation, param: str, value: str | None, tol: float) -> int:
    """check --updated: --value against the new weight after the last SGD step (exit 0 right, 1 wrong)."""
    from ..check.checker import asked_element
    from ..check.updated import check_updated
    from ..errors import UserError
    from ..printers.check_updated import updated_verdict
    from ..printers.terminal import make_console

    if value is None:
        raise UserError("--updated checks a new value: give it with --value X", field="--updated")
    tensor, index = asked_element(derivation.network, param)
    verdict = check_updated(derivation, tensor, index, value, tol)
    make_console().print(updated_verdict(verdict, derivation.network.name))
    return 0 if verdict.right else 1


def _check_worksheet(ctx: typer.Context, net: str, answers: str, tol: float, example: int | None, as_json: bool) -> int:
    """check --answers: every answered step right, wrong or carried forward (exit 0 all right, 1 otherwise)."""
    from ..check.worksheet import check_worksheet
    from ..check.worksheet_answers import read_answers
    from ..errors import UserError
    from ..printers.terminal import make_console
    from ..printers.worksheet_out import render_json, worksheet_view

    derivation = example_of(load_any(net, options_of(ctx)), example)
    if hasattr(derivation, "examples"):
        raise UserError("a worksheet is for one example: choose it with --example n", field="--answers")
    worksheet = check_worksheet(derivation, read_answers(answers, derivation.network), tol)
    if as_json:
        typer.echo(render_json(worksheet))
    else:
        make_console().print(worksheet_view(worksheet, derivation.network))
    return 0 if worksheet.all_right else 1
