"""Graphs, not only chains: a layer's `from:` (an earlier layer's name, or `input`) and the inputs
of add and concat, read into value positions (0 the input, k + 1 the output of layer k)."""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from ..maths.layers import Layer
from .fields import Fields, describe


class Values:
    """The tensors a layer may read so far: the input and each earlier layer's output, by name."""

    def __init__(self, input_shape: tuple) -> None:
        self.positions: dict[str, int] = {"input": 0}
        self.shapes: list[tuple] = [input_shape]
        self.read: set[int] = set()

    def add(self, name: str, shape: tuple) -> None:
        self.positions[name] = len(self.shapes)
        self.shapes.append(shape)

    def unread(self) -> list[str]:
        """Names of the layer outputs (not the last) that no later layer reads."""
        last = len(self.shapes) - 1
        return [name for name, k in self.positions.items() if 0 < k < last and k not in self.read]


def read_sources(fields: Fields, cls: type[Layer], values: Values) -> tuple[tuple[int, ...], tuple, dict]:
    """(the value positions the layer reads, its in_shape, settings the layer takes from its inputs).

    A one-input layer reads `from: NAME` (default: the previous layer); add and concat read
    `from: [a, b, ...]`, at least two names. The sources are () when the layer reads the previous one.
    """
    previous = len(values.shapes) - 1
    if not getattr(cls, "merges", False):
        if not fields.has("from"):
            values.read.add(previous)
            return (), values.shapes[previous], {}
        source = _position(fields.get("from"), values, fields.at("from"))
        values.read.add(source)
        return ((source,) if source != previous else ()), values.shapes[source], {}
    names = fields.get("from", None)
    if not isinstance(names, list) or len(names) < 2:
        raise ConfigError(
            f"{cls.kind} takes `from: [a, b]`, a list of at least two earlier layer names (or input), "
            f"found {describe(names)}",
            fields.at("from"),
        )
    sources = tuple(_position(name, values, fields.at("from")) for name in names)
    values.read.update(sources)
    shapes = [values.shapes[s] for s in sources]
    if cls.kind == "add":
        if any(shape != shapes[0] for shape in shapes):
            raise ConfigError(f"add needs inputs of one shape, found {_list(names, shapes)}", fields.at("from"))
        return sources, shapes[0], {"inputs": len(sources)}
    if any(len(shape) != 3 or shape[1:] != shapes[0][1:] for shape in shapes):
        raise ConfigError(
            f"concat joins images [C][H][W] with the same H and W, found {_list(names, shapes)}", fields.at("from")
        )
    return sources, shapes[0], {"channels": tuple(shape[0] for shape in shapes)}


def with_sources(layer: Layer, sources: tuple[int, ...]) -> Layer:
    return dataclasses.replace(layer, sources=sources) if sources else layer


def _position(name: object, values: Values, path: tuple) -> int:
    if not isinstance(name, str) or name not in values.positions:
        known = ", ".join(values.positions)
        raise ConfigError(f"`from` names an earlier layer or input; found {describe(name)}; known: {known}", path)
    return values.positions[name]


def _list(names: list, shapes: list) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in zip(names, shapes))
