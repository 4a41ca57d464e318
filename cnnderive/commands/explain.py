"""`cnnderive explain`: the forward and backward pass layer by layer, or one parameter's chain rule."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from .common import guarded, load_derivation


@guarded
def explain(
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    param: Annotated[
        str | None,
        typer.Option(
            "--param", "-p", help="only the chain rule of this parameter, e.g. conv1.weight[0,0,0,0] or fc.bias"
        ),
    ] = None,
    expand: Annotated[
        bool, typer.Option("--expand", help="with --param: also the form fully expanded in inputs and parameters")
    ] = False,
    svg: Annotated[Path | None, typer.Option("--svg", help="also write what is printed as an SVG picture")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="also write what is printed as an HTML page")] = None,
    width: Annotated[
        int | None, typer.Option("--width", min=40, help="columns to lay out for (default: terminal)")
    ] = None,
) -> None:
    """The derivation step by step: network, forward pass, backward pass (or one parameter with --param)."""
    from ..names import parse_parameter
    from ..printers.explain import explanation, param_explanation
    from ..printers.terminal import make_console
    from ..steps import build_steps

    if expand and not param:
        raise UserError("--expand needs --param: name the parameter to expand", field="--expand")
    derivation = load_derivation(net)
    selected = parse_parameter(derivation.network, param) if param else None
    steps = build_steps(derivation)
    items = param_explanation(steps, *selected, expand=expand) if selected else explanation(steps)
    console = make_console(record=bool(svg or html), width=width)
    for item in items:
        console.print(item)
    if svg:
        _write(svg, console.export_svg(clear=False, title=f"cnnderive explain {Path(net).name}"))
    if html:
        _write(html, console.export_html(clear=False))


def _write(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, then rename: never a half-written file."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
