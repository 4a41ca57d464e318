"""`cnnderive graph`: a picture of the computation, one node per tensor, as SVG or Graphviz DOT."""

from __future__ import annotations

import os
import shutil
from enum import Enum
from typing import Annotated

import typer

from ..errors import UserError
from .common import guarded, load_derivation, options_of

SUFFIXES = (".svg", ".dot")


class Engine(str, Enum):
    """Who draws the SVG: cnnderive's own writer (the same bytes everywhere) or Graphviz's dot."""

    builtin = "builtin"
    graphviz = "graphviz"


@guarded
def graph(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="write the picture here: .svg (a picture) or .dot (Graphviz)",
            metavar="FILE.svg|.dot",
        ),
    ],
    param: Annotated[
        str | None,
        typer.Option(
            "--param",
            "-p",
            help="highlight the paths from this tensor to the loss: a parameter (conv1.weight), "
            "the input or a layer output",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="who draws an .svg: builtin (the same everywhere) or graphviz (needs dot)",
            metavar="builtin|graphviz",
        ),
    ] = Engine.builtin,
    force: Annotated[bool, typer.Option("--force", help="replace FILE if it exists")] = False,
) -> None:
    """A picture of the computation: each tensor with its value and gradient, the data flow between them."""
    from ..files import check_outputs, write_atomic
    from ..printers.graph import build_graph
    from ..printers.graph_dot import graphviz_missing, graphviz_svg, render_dot
    from ..printers.graph_svg import render_svg

    suffix = os.path.splitext(output)[1].lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{output}: give a file name ending in .svg (a picture) or .dot (Graphviz)", field="-o")
    check_outputs([(output, "-o")], force)
    graphviz = engine is Engine.graphviz and suffix == ".svg"
    if graphviz and shutil.which("dot") is None:
        raise UserError(graphviz_missing(), field="--engine")
    from ..derivation.names import parse_differentiable

    derivation = load_derivation(net, options_of(ctx))
    model = build_graph(derivation, parse_differentiable(derivation.network, param)[0] if param else None)
    if suffix == ".dot":
        document: str | bytes = render_dot(model)
    else:
        document = graphviz_svg(render_dot(model)) if graphviz else render_svg(model)
    write_atomic(output, document, force)
    typer.echo(f"wrote {output}")
