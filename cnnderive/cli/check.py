"""`cnnderive check`: is a hand-computed gradient (a value or a formula) right, and if not, why not."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import guarded, load_derivation, options_of


@guarded
def check(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    param: Annotated[
        str,
        typer.Option(
            "--param",
            "-p",
            help="the gradient checked: ∂L/∂ this element, e.g. conv1.weight[0,0,0,0] (or a layer output)",
        ),
    ],
    value: Annotated[
        str | None, typer.Option("--value", help="your value: a decimal or a fraction, e.g. -0.55 or -11/20")
    ] = None,
    expr: Annotated[
        str | None,
        typer.Option("--expr", help="your formula, in plain maths (2*(o - y)*(i1*w2_1 + ...)) or LaTeX"),
    ] = None,
    tol: Annotated[
        float,
        typer.Option("--tol", min=0.0, max=1.0, help="relative tolerance for --value (a fraction is compared exactly)"),
    ] = 1e-6,
    latex: Annotated[
        bool, typer.Option("--latex", help="read the formula as LaTeX (detected on \\ , ^{ or _{)")
    ] = False,
) -> None:
    """Check a hand-computed gradient: exit 0 if it is right, 1 if it is wrong (with what went wrong)."""
    from ..errors import UserError

    if (value is None) == (expr is None):
        raise UserError("give exactly one of --value X or --expr FORMULA", field="check")
    from ..check.checker import Checker
    from ..printers.check_out import CheckView
    from ..printers.terminal import make_console

    checker = Checker(load_derivation(net, options_of(ctx)), param)
    verdict = checker.check_value(value, tol) if value is not None else checker.check_expr(expr, latex or None)
    make_console().print(CheckView(checker.derivation).render(verdict))
    raise typer.Exit(0 if verdict.right else 1)
