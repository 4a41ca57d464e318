"""`cnnderive explain`: the forward and backward pass layer by layer, or one parameter's chain rule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from .common import guarded, options_of
from .loading import example_of, load_any


@guarded
def explain(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    param: Annotated[
        str | None,
        typer.Option(
            "--param",
            "-p",
            help="only the chain rule of this element or tensor: a parameter (conv1.weight[0,0,0,0], fc.bias), "
            "the input (input[0,0,1]) or a layer output (fc.output[1], maxpool2d_1.output)",
        ),
    ] = None,
    to_input: Annotated[
        bool,
        typer.Option(
            "--to-input",
            help="go on to ∂L/∂(input) even where nothing before the first layer learns (always for a conv)",
        ),
    ] = False,
    expand: Annotated[
        bool, typer.Option("--expand", help="with --param: also the form fully expanded in inputs and parameters")
    ] = False,
    svg: Annotated[Path | None, typer.Option("--svg", help="also write what is printed as an SVG picture")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="also write what is printed as an HTML page")] = None,
    width: Annotated[
        int | None, typer.Option("--width", min=40, help="columns to lay out for (default: terminal)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --svg or --html file")] = False,
    example: Annotated[
        int | None, typer.Option("--example", min=1, help="a batch config: only this example (1 to N), alone")
    ] = None,
) -> None:
    """The derivation step by step: network, forward pass, backward pass (or one element with --param)."""
    from ..derivation.steps import build_steps
    from ..errors import one_line
    from ..files import check_outputs, write_atomic
    from ..printers.explain import explanation, param_explanation
    from ..printers.terminal import make_console

    if expand and not param:
        raise UserError("--expand needs --param: name the parameter to expand", field="--expand")
    if to_input and param:
        raise UserError(
            "--to-input is for the whole pass; with --param name the input element instead", field="--to-input"
        )
    check_outputs([(svg, "--svg"), (html, "--html")], force)
    from ..derivation.names import parse_differentiable

    derivation = example_of(load_any(net, options_of(ctx)), example)
    selected = parse_differentiable(derivation.network, param) if param else None
    if hasattr(derivation, "examples"):  # a whole batch: each example, then the batch's sums
        from ..printers.explain_batch import batch_explanation

        if selected:
            raise UserError(
                "--param on a batch: add --example n for one example's chain rule "
                "(cnnderive grad NET.yaml --param P shows the batch gradient)",
                field="--param",
            )
        items = batch_explanation(derivation, to_input)
    else:
        steps = build_steps(derivation)
        items = param_explanation(steps, *selected, expand=expand) if selected else explanation(steps, to_input)
    console = make_console(record=bool(svg or html), width=width)
    for item in items:
        console.print(item)
    if svg:
        title = one_line(f"cnnderive explain {Path(net).name}")
        write_atomic(svg, console.export_svg(clear=False, title=title), force, "--svg")
    if html:
        write_atomic(html, console.export_html(clear=False), force, "--html")
