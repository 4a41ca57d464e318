"""The computation as a graph, one node per tensor (micrograd's draw_dot at tensor granularity).

Nodes are the input, each parameter tensor, each layer output, the target and the loss, each with
its shape and a preview of its value and gradient; edges are the data flow. With a parameter
chosen, the nodes and edges on its paths to the loss are highlighted. An edge into a layer that
routes the gradient (ReLU, max-pool, dropout) says how many elements of its input the gradient
passes; a path along which no gradient reaches the loss is greyed. The writers (graph_svg,
graph_dot) only lay this model out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..derivation.names import Tensor
from ..errors import one_line
from .numbers import shown

PREVIEW = 4  # elements shown of a tensor longer than PREVIEW + 1 (then "…")


@dataclass(frozen=True)
class Node:
    """One tensor: its name, what it is, a preview of its value and gradient, and where it sits."""

    name: str  # canonical: conv1.weight, relu_2.output, loss
    textbook: str  # w¹, a¹, L
    shape: str  # [1][4][4], or "scalar"
    kind: str  # parameter, input, target, loss, or the layer's description (conv 1@2x2)
    value: str  # "value = [1, 0, 2, 1, …]"
    gradient: str | None  # "grad ≈ [0.1234, …]"; None for the target, which is not differentiated
    rank: int  # row of the layout: the input 0, a layer's output one below the layer's input
    highlighted: bool = False  # on a path from the chosen parameter to the loss
    greyed: bool = False  # no gradient from the loss reaches it (every path is cut)

    @property
    def lines(self) -> tuple[str, ...]:
        """The text of the node's box, the name first."""
        details = [self.name, f"{self.textbook} · {self.shape} · {self.kind}", self.value]
        return tuple(details + ([self.gradient] if self.gradient is not None else []))


@dataclass(frozen=True)
class Edge:
    """Data flowing from one tensor into another; `passing`/`total` count where a layer routes the gradient."""

    source: str
    target: str
    passing: int | None = None  # elements of the source the gradient passes back to
    total: int | None = None
    router: str = ""  # the layer kind that routes it: relu, maxpool2d, dropout
    highlighted: bool = False
    greyed: bool = False  # no gradient flows back along it

    @property
    def label(self) -> str:
        if self.total is None:
            return ""
        return f"{self.router}: {self.passing} of {self.total} elements pass"


@dataclass(frozen=True)
class Graph:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    param: str | None  # the parameter whose paths are highlighted

    @property
    def legend(self) -> tuple[str, ...]:
        lines = ["value: the forward pass; grad: ∂L/∂ that tensor; = exact, ≈ rounded to 4 digits"]
        if self.param:
            lines.append(f"bold: the paths from {self.param} to the loss")
        if any(node.greyed for node in self.nodes):
            lines.append("grey, dashed: no gradient passes (every element is cut by ReLU, max-pool or dropout)")
        return tuple(lines)


def build_graph(derivation, param: Tensor | None = None) -> Graph:
    """The graph of a derivation; `param` (a parameter, the input or a layer output) has its paths to the loss
    highlighted."""
    network = derivation.network
    nodes = {name: _node(derivation, tensor) for name, tensor in derivation.tensors.items()}
    edges: list[Edge] = []
    for position, layer in enumerate(network.layers):
        output = derivation.layer_tensor(position).name
        for source in derivation.input_tensors(position):  # several for add and concat
            edges.append(Edge(source.name, output, **_routing(layer, network.kinks[position])))
        edges += [Edge(f"{layer.name}.{name}", output) for name in network.params[layer.name]]
    last = derivation.layer_tensor(len(network.layers) - 1).name if network.layers else "input"
    edges += [Edge(last, "loss"), Edge("target", "loss")]
    live = _reaching(edges, "loss", lambda edge: edge.passing != 0)
    on_path = _reachable(edges, param.name) if param is not None else set()
    edges = [
        replace(edge, highlighted=edge.source in on_path, greyed=edge.passing == 0 or edge.target not in live)
        for edge in edges
    ]
    marked = tuple(replace(node, highlighted=name in on_path, greyed=name not in live) for name, node in nodes.items())
    title = one_line(network.name + (f": the paths from {param.name} to the loss" if param is not None else ""))
    return Graph(title, marked, tuple(edges), param.name if param is not None else None)


def _node(derivation, tensor: Tensor) -> Node:
    exact, approx = derivation.array(tensor), derivation.array(tensor, exact=False)
    gradient = None
    if tensor.role != "target":
        gradient = "grad " + preview(*_gradients(derivation, tensor))
    layers = derivation.network.layers
    kind = layers[tensor.layer].describe() if tensor.role == "output" else _KINDS.get(tensor.role, tensor.role)
    return Node(
        name=tensor.name,
        textbook=tensor.unicode(),
        shape="".join(f"[{d}]" for d in tensor.shape) or "scalar",
        kind=kind,
        value="value " + preview(exact, approx),
        gradient=gradient,
        rank=_rank(derivation, tensor),
    )


_KINDS = {"input": "input", "weight": "parameter", "bias": "parameter", "target": "target", "loss": "loss"}


def _gradients(derivation, tensor: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """dL/d(tensor), exact and as floats; dL/dL is 1."""
    if tensor.role == "loss":
        return np.array(1), np.array(1.0)
    passes = derivation.values, derivation.floats
    if tensor.role in ("weight", "bias"):
        return tuple(run.grads[tensor.name] for run in passes)
    position = 0 if tensor.role == "input" else tensor.layer + 1
    return tuple(run.deltas[position] for run in passes)


def _rank(derivation, tensor: Tensor) -> int:
    """The row: a layer's output one below its input; its parameters beside its input; the loss last."""
    count = len(derivation.network.layers)
    rows = {"input": 0, "output": (tensor.layer or 0) + 1, "target": count, "loss": count + 1}
    return rows.get(tensor.role, tensor.layer or 0)


def preview(exact: np.ndarray, approx: np.ndarray) -> str:
    """`= [1, 0, 2, 1, …]`: the first elements row-major, exact where short, else `≈` and 4 digits."""
    values, floats = np.asarray(exact, dtype=object).ravel(), np.asarray(approx, dtype=object).ravel()
    count = len(values) if len(values) <= PREVIEW + 1 else PREVIEW
    texts = [shown(values[i], _float(floats[i])) for i in range(count)]
    sign = "=" if all(is_exact for _, is_exact in texts) else "≈"
    body = ", ".join(text for text, _ in texts) + (", …" if count < len(values) else "")
    return f"{sign} {body}" if np.ndim(exact) == 0 else f"{sign} [{body}]"


def _float(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _routing(layer, kinks) -> dict:
    """How many elements of a routing layer's input the gradient passes (its mask's ones, less any cut)."""
    mask = layer.mask(kinks)
    if mask is None:
        return {}
    cut = sum(1 for index in zip(*np.nonzero(mask == 0)) if layer.cut_reason(tuple(map(int, index)), kinks))
    return {"passing": mask.size - cut, "total": mask.size, "router": layer.kind}


def _reachable(edges: list[Edge], start: str) -> set[str]:
    """The nodes that depend on `start` (itself included): its paths forward to the loss."""
    found, todo = {start}, [start]
    while todo:
        name = todo.pop()
        for edge in edges:
            if edge.source == name and edge.target not in found:
                found.add(edge.target)
                todo.append(edge.target)
    return found


def _reaching(edges: list[Edge], end: str, usable) -> set[str]:
    """The nodes with a path to `end` along usable edges (itself included)."""
    found, todo = {end}, [end]
    while todo:
        name = todo.pop()
        for edge in edges:
            if edge.target == name and edge.source not in found and usable(edge):
                found.add(edge.source)
                todo.append(edge.source)
    return found
