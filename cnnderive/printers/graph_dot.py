"""The graph as Graphviz DOT text, and (on request) Graphviz's own SVG of it.

The DOT keeps the built-in layout's rows (`rank=same`), so `dot -Tsvg` draws the same picture in
Graphviz's style. Only `--engine graphviz` runs Graphviz; the built-in SVG writer is the default,
so that the output is the same on every machine.
"""

from __future__ import annotations

import shutil
import subprocess

from ..errors import UserError
from .graph import Edge, Graph, Node

DOT_TIMEOUT = 60  # seconds; these graphs have a few dozen nodes

GREY = 'color="#bbbbbb", fontcolor="#999999"'  # the colours are the built-in SVG's
HIGHLIGHT = 'color="#d62728", penwidth=2.5'
NORMAL = 'color="#555555"'


def render_dot(graph: Graph) -> str:
    """The graph as a DOT digraph: one node statement per tensor, one edge statement per data flow."""
    lines = [
        "digraph cnnderive {",
        f"  graph [rankdir=TB, labelloc=t, fontname=monospace, label={quote(graph.title)}];",
        "  node [shape=box, fontname=monospace, fontsize=11];",
        "  edge [fontname=monospace, fontsize=10];",
    ]
    lines += [f"  {_node(node)};" for node in graph.nodes]
    lines += [f"  {_edge(edge)};" for edge in graph.edges]
    for rank in sorted({node.rank for node in graph.nodes}):
        names = " ".join(f"{quote(node.name)};" for node in graph.nodes if node.rank == rank)
        lines.append(f"  {{ rank=same; {names} }}")
    return "\n".join([*lines, "}"]) + "\n"


def _node(node: Node) -> str:
    label = "".join(escape(line) + "\\l" for line in node.lines)  # \l: each line left-justified
    styles = (["filled"] if node.kind == "parameter" and not node.greyed else []) + (["dashed"] if node.greyed else [])
    fill = ', fillcolor="#eef4fb"' if "filled" in styles else ""
    return f'{quote(node.name)} [label="{label}", {_attributes(node, styles)}{fill}]'


def _edge(edge: Edge) -> str:
    label = f", label={quote(edge.label)}" if edge.label else ""
    styles = ["dashed"] if edge.greyed else []
    return f"{quote(edge.source)} -> {quote(edge.target)} [{_attributes(edge, styles)}{label}]"


def _attributes(record: Node | Edge, styles: list[str]) -> str:
    """Colour by highlight (or grey), dashed where no gradient passes, as in the built-in SVG."""
    colour = HIGHLIGHT if record.highlighted else GREY if record.greyed else NORMAL
    return colour + (f", style={quote(','.join(styles))}" if styles else "")


def escape(text: str) -> str:
    """Text for inside a DOT string: backslashes and quotes escaped, line breaks as \\n."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")


def quote(text: str) -> str:
    return f'"{escape(text)}"'


def graphviz_svg(dot: str, timeout: float = DOT_TIMEOUT) -> bytes:
    """Graphviz's SVG of DOT text (`dot -Tsvg`); a missing or failing Graphviz is one clear line."""
    program = shutil.which("dot")
    if program is None:
        raise UserError(graphviz_missing(), field="--engine")
    try:
        result = subprocess.run(
            [program, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"Graphviz took longer than {timeout:.0f} s and was stopped", field="--engine") from None
    except OSError as error:
        raise UserError(f"cannot run Graphviz's dot: {error.strerror or error}", field="--engine") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        raise UserError(f"Graphviz's dot failed: {message[0]}", field="--engine")
    return result.stdout


def graphviz_missing() -> str:
    return "Graphviz's dot is not installed (on Debian or Ubuntu: apt-get install graphviz); leave out --engine graphviz for the built-in SVG"
