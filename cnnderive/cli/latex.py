"""`cnnderive latex`: the derivation as a LaTeX document, a snippet to paste, or a PDF."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from enum import Enum
from typing import Annotated

import typer

from ..errors import UserError
from ..files import check_outputs, temporary_folder, write_atomic
from .common import guarded, options_of
from .loading import example_of, load_any


class Heading(str, Enum):
    """Top heading levels a document or snippet can start at."""

    chapter = "chapter"
    section = "section"
    subsection = "subsection"
    subsubsection = "subsubsection"


PDFLATEX_TIMEOUT = 300  # seconds; the biggest shipped network compiles in well under one


@guarded
def latex(
    ctx: typer.Context,
    net: Annotated[str, typer.Argument(help="the network config (YAML)", metavar="NET.yaml")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="write the document here (default, or -: print it)", metavar="FILE.tex"),
    ] = None,
    param: Annotated[
        str | None,
        typer.Option(
            "--param",
            "-p",
            help="only the gradient of this parameter, input or layer output, e.g. conv1.weight, fc.bias[2], "
            "fc.output[1], input[0,0,1]",
        ),
    ] = None,
    snippet: Annotated[
        bool, typer.Option("--snippet", help="only the body, to paste into a document that loads amsmath, amssymb")
    ] = False,
    top_heading: Annotated[
        Heading | None,
        typer.Option(
            "--top-heading", help="the level of the top headings (default: section, with --snippet subsection)"
        ),
    ] = None,
    to_input: Annotated[
        bool, typer.Option("--to-input", help="go back to dL/dx even when the first layer is linear")
    ] = False,
    all_elements: Annotated[
        bool,
        typer.Option("--all-elements", help="work out every parameter element in full, not one per tensor"),
    ] = False,
    program_names: Annotated[
        bool, typer.Option("--program-names", help="write the program's name (fc.weight[0,0]) after each symbol")
    ] = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="also run pdflatex and write FILE.pdf next to FILE.tex")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace FILE.tex (and FILE.pdf) if they exist")] = False,
    example: Annotated[
        int | None, typer.Option("--example", min=1, help="a batch config: only this example (1 to N), alone")
    ] = None,
) -> None:
    """The derivation as a LaTeX document that compiles with pdflatex: forward, backward, each gradient."""
    from ..derivation.steps import build_steps
    from ..printers.latex import render
    from ..printers.latex_blocks import Options

    output = None if output == "-" else output  # the usual spelling of standard output
    pdf_path = _pdf_path(output, snippet) if pdf else None
    check_outputs([(output, "-o"), (pdf_path, "--pdf")], force)
    from ..derivation.names import parse_differentiable

    derivation = example_of(load_any(net, options_of(ctx)), example)
    selected = parse_differentiable(derivation.network, param) if param else None
    if selected and hasattr(derivation, "examples"):
        raise UserError("--param on a batch: add --example n for one example's chain rule", field="--param")
    top = top_heading.value if top_heading else ("subsection" if snippet else "section")
    if top == "chapter" and not snippet:
        raise UserError(
            "the document is an article, which has no chapters; use it with --snippet", field="--top-heading"
        )
    options = Options(to_input=to_input, all_elements=all_elements, program_names=program_names, top=top)
    if hasattr(derivation, "examples"):  # a batch: each example, then the batch's sums
        from ..printers.latex_batch import render_batch

        document = render_batch(derivation, snippet=snippet, options=options)
    else:
        document = render(build_steps(derivation), selected, snippet=snippet, options=options)
    if output is None:
        sys.stdout.write(document)
        return
    write_atomic(output, document, force)
    typer.echo(f"wrote {output}")
    if pdf_path:
        write_atomic(pdf_path, run_pdflatex(document), force, option="--pdf")
        typer.echo(f"wrote {pdf_path}")


def _pdf_path(output: str | None, snippet: bool) -> str:
    """Where --pdf writes, checked before anything is computed or written."""
    if output is None:
        raise UserError("needs -o FILE.tex: the PDF is written next to it, as FILE.pdf", field="--pdf")
    if snippet:
        raise UserError("a snippet has no preamble, so it cannot be compiled alone; leave out --snippet", field="--pdf")
    if shutil.which("pdflatex") is None:
        raise UserError(
            "pdflatex is not installed (on Debian or Ubuntu: apt-get install texlive-latex-base "
            "texlive-latex-recommended); nothing was written",
            field="--pdf",
        )
    path = os.path.splitext(output)[0] + ".pdf"
    if os.path.abspath(path) == os.path.abspath(output):
        raise UserError(f"-o {output} would be overwritten by the PDF; name the .tex file", field="--pdf")
    return path


def run_pdflatex(document: str, timeout: float = PDFLATEX_TIMEOUT) -> bytes:
    """Compile a document in a temporary folder and return the PDF; a failure is one clear line."""
    with temporary_folder("latex") as folder:
        with open(os.path.join(folder, "derivation.tex"), "w", encoding="utf-8") as stream:
            stream.write(document)
        command = ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", "derivation.tex"]
        try:
            subprocess.run(command, cwd=folder, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"pdflatex took longer than {timeout:.0f} s and was stopped", field="--pdf") from None
        pdf = os.path.join(folder, "derivation.pdf")
        log = os.path.join(folder, "derivation.log")
        if not os.path.exists(pdf):
            raise UserError(f"pdflatex failed: {_first_error(log)}", field="--pdf")
        with open(pdf, "rb") as stream:
            return stream.read()


def _first_error(log: str) -> str:
    try:
        with open(log, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError:
        return "no log was written"
    match = re.search(r"^! (.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "no PDF was written"
