"""The built-in SVG writer of the graph: layered top to bottom, boxes of text, arrows. No dependencies.

Each row holds the tensors of one rank (a layer's output, with the next layer's parameters beside
it), so every arrow goes down exactly one row and never crosses a box. The output is SVG 1.1 and
the same bytes on every machine: integer coordinates, a monospace font, no measurements of text.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .graph import Edge, Graph, Node

FONT = 12  # px
CHAR = 7.5  # px per character of a 12 px monospace font (an upper bound, so text stays in its box)
LINE = 16  # px per line of text
PAD = 8  # px between a box's border and its text
COLUMN_GAP = 40
ROW_GAP = 56  # room for the arrows between rows
MARGIN = 20

COLOURS = {  # (stroke, fill of a box, text)
    "normal": ("#555555", "#ffffff", "#000000"),
    "param": ("#555555", "#eef4fb", "#000000"),
    "highlighted": ("#d62728", "#fff1f0", "#000000"),
    "greyed": ("#bbbbbb", "#f7f7f7", "#999999"),
}


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


def render_svg(graph: Graph) -> str:
    """The graph as a standalone SVG 1.1 document."""
    boxes, size = _layout(graph)
    title_height = MARGIN + LINE
    legend_top = title_height + size[1] + LINE
    width = max([size[0], *(_text_width(line) for line in (graph.title, *graph.legend))]) + 2 * MARGIN
    height = legend_top + LINE * len(graph.legend) + MARGIN
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "version": "1.1",
            "width": str(width),
            "height": str(height),
            "viewBox": f"0 0 {width} {height}",
            "font-family": "monospace",
            "font-size": str(FONT),
        },
    )
    ET.SubElement(svg, "title").text = graph.title
    _markers(ET.SubElement(svg, "defs"))
    ET.SubElement(svg, "rect", {"width": str(width), "height": str(height), "fill": "#ffffff"})
    _text(svg, MARGIN, MARGIN + FONT, graph.title, bold=True)
    shifted = {name: Box(box.x + MARGIN, box.y + title_height, box.width, box.height) for name, box in boxes.items()}
    for edge in graph.edges:
        _edge(svg, graph, edge, shifted)
    for node in graph.nodes:
        _node(svg, node, shifted[node.name])
    for row, line in enumerate(graph.legend):
        _text(svg, MARGIN, legend_top + row * LINE + FONT, line, colour="#555555")
    ET.indent(svg)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(svg, encoding="unicode") + "\n"


def _layout(graph: Graph) -> tuple[dict[str, Box], tuple[int, int]]:
    """Each node's box (before the title's offset) and the size of the whole drawing."""
    rows: dict[int, list[Node]] = {}
    for node in graph.nodes:
        rows.setdefault(node.rank, []).append(node)
    sizes = {node.name: _box_size(node) for node in graph.nodes}
    columns = max(len(row) for row in rows.values())
    widths = [max((sizes[row[c].name][0] for row in rows.values() if c < len(row)), default=0) for c in range(columns)]
    left = _label_room(graph)
    lefts = [left + sum(widths[:c]) + COLUMN_GAP * c for c in range(columns)]
    boxes, top = {}, 0
    for rank in sorted(rows):
        height = max(sizes[node.name][1] for node in rows[rank])
        for column, node in enumerate(rows[rank]):
            width = sizes[node.name][0]
            boxes[node.name] = Box(lefts[column] + (widths[column] - width) // 2, top, width, sizes[node.name][1])
        top += height + ROW_GAP
    return boxes, (lefts[-1] + widths[-1], top - ROW_GAP)


def _box_size(node: Node) -> tuple[int, int]:
    return max(_text_width(line) for line in node.lines) + 2 * PAD, len(node.lines) * LINE + 2 * PAD


def _text_width(text: str) -> int:
    return math.ceil(len(text) * CHAR)


def _label_room(graph: Graph) -> int:
    """Room on the left for the labels of the arrows down the first column."""
    labels = [_text_width(edge.label) for edge in graph.edges if edge.label]
    return max(labels) + 2 * PAD if labels else 0


def _style(record: Node | Edge, default: str = "normal") -> str:
    return "highlighted" if record.highlighted else "greyed" if record.greyed else default


def _classes(kind: str, record: Node | Edge) -> str:
    """`node highlighted greyed`: what the element is and each mark it carries, for styles and tests."""
    marks = [mark for mark in ("highlighted", "greyed") if getattr(record, mark)]
    return " ".join([kind, *marks])


def _node(svg: ET.Element, node: Node, box: Box) -> None:
    style = _style(node, "param" if node.kind == "parameter" else "normal")
    stroke, fill, ink = COLOURS[style]
    group = ET.SubElement(svg, "g", {"id": f"node-{node.name}", "class": _classes("node", node)})
    ET.SubElement(group, "title").text = node.name
    attributes = {
        "x": str(box.x),
        "y": str(box.y),
        "width": str(box.width),
        "height": str(box.height),
        "rx": "4",
        "fill": fill,
        "stroke": stroke,
        "stroke-width": "2.5" if node.highlighted else "1",
    }
    if node.greyed:
        attributes["stroke-dasharray"] = "5,3"
    ET.SubElement(group, "rect", attributes)
    for row, line in enumerate(node.lines):
        _text(group, box.x + PAD, box.y + PAD + row * LINE + FONT, line, colour=ink, bold=row == 0)


def _edge(svg: ET.Element, graph: Graph, edge: Edge, boxes: dict[str, Box]) -> None:
    style = _style(edge)
    stroke = COLOURS[style][0]
    source, target = boxes[edge.source], boxes[edge.target]
    x1, y1 = _port(edge, graph, boxes, outgoing=True), source.y + source.height
    x2, y2 = _port(edge, graph, boxes, outgoing=False), target.y
    group = ET.SubElement(svg, "g", {"id": f"edge-{edge.source}-{edge.target}", "class": _classes("edge", edge)})
    ET.SubElement(group, "title").text = f"{edge.source} -> {edge.target}"
    attributes = {
        "x1": str(x1),
        "y1": str(y1),
        "x2": str(x2),
        "y2": str(y2 - 2),  # the arrow head ends on the border
        "stroke": stroke,
        "stroke-width": "2.5" if edge.highlighted else "1.2",
        "marker-end": f"url(#arrow-{style})",
    }
    if edge.greyed:
        attributes["stroke-dasharray"] = "5,3"
    ET.SubElement(group, "line", attributes)
    if edge.label:
        middle = (y1 + y2) // 2 + FONT // 2 - 2
        _text(group, min(x1, x2) - PAD, middle, edge.label, colour=COLOURS[style][2], anchor="end")


def _port(edge: Edge, graph: Graph, boxes: dict[str, Box], outgoing: bool) -> int:
    """Where an arrow leaves (or enters) a box: its edges spread along the border, ordered by the other end."""
    own = edge.source if outgoing else edge.target
    shared = [e for e in graph.edges if (e.source if outgoing else e.target) == own]
    shared.sort(key=lambda e: boxes[e.target if outgoing else e.source].x)
    box = boxes[own]
    return box.x + box.width * (shared.index(edge) + 1) // (len(shared) + 1)


def _markers(defs: ET.Element) -> None:
    """One arrow head per edge style, in the style's colour."""
    for style in ("normal", "highlighted", "greyed"):
        stroke = COLOURS[style][0]
        marker = ET.SubElement(
            defs,
            "marker",
            {
                "id": f"arrow-{style}",
                "viewBox": "0 0 10 10",
                "refX": "9",
                "refY": "5",
                "markerWidth": "7",
                "markerHeight": "7",
                "orient": "auto",
            },
        )
        ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": stroke})


def _text(
    parent: ET.Element, x: int, y: int, text: str, colour: str = "#000000", bold: bool = False, anchor: str = "start"
) -> None:
    attributes = {"x": str(x), "y": str(y), "fill": colour}
    if bold:
        attributes["font-weight"] = "bold"
    if anchor != "start":
        attributes["text-anchor"] = anchor
    ET.SubElement(parent, "text", attributes).text = text
