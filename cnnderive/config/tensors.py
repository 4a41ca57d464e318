"""Tensors written in a config: nested lists of exact numbers, their shapes checked and bounded."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import ConfigError
from ..maths.layers import Layer
from ..maths.ops import object_array
from .values import exact

MAX_ELEMENTS = 1_000_000  # per tensor; bigger shapes are refused before anything is allocated
MAX_DEPTH = 6  # levels of nested lists in one tensor field


def check_size(shape: tuple, path: tuple) -> None:
    count = 1
    for d in shape:
        count *= d
    if count > MAX_ELEMENTS:
        raise ConfigError(f"shape {list(shape)} has {count:,} elements; the limit is {MAX_ELEMENTS:,}", path)


def param_tensor(raw: object, shape: tuple, layer: Layer, param: str, path: tuple) -> np.ndarray:
    values = tensor(raw, path)
    lead = len(shape) - values.ndim
    if lead > 0 and values.shape == shape[lead:] and all(d == 1 for d in shape[:lead]):
        values = values.reshape(shape)  # [kh][kw] for a one-channel kernel, a bare number for one bias
    if values.shape != shape:
        raise ConfigError(
            f"{layer.name}.{param} must have shape {dims(shape)} {layer.param_axes(param)}, found {dims(values.shape)}",
            path,
        )
    return values


def dims(shape: tuple) -> str:
    return "".join(f"[{d}]" for d in shape) or "[] (a single number)"


def tensor(raw: object, path: tuple) -> np.ndarray:
    """Nested lists of numbers as an object array of Fractions; ragged lists are an error."""
    shape = nested_shape(raw, path)
    check_size(shape, path)
    flat = _flatten_fast(raw, shape)
    if flat is None:  # something is wrong: the careful walk says what and where
        flat = []
        _flatten(raw, path, flat)
    return object_array(flat, shape)


_PLAIN = {int, str, Fraction}  # what _Loader gives for numbers (decimals as their text)


def _flatten_fast(raw: object, shape: tuple) -> list[Fraction] | None:
    """The numbers of a regular nested list, row-major, each distinct text converted once; None
    when anything is off (ragged, not a number), for `_flatten` to find and report."""
    level = [raw]
    for size in shape:
        if not all(type(item) is list and len(item) == size for item in level):
            return None
        level = [item for items in level for item in items]
    if not set(map(type, level)) <= _PLAIN:
        return None
    try:
        converted = {value: exact(value, ()) for value in set(level)}
    except ConfigError:
        return None
    return list(map(converted.__getitem__, level))


def nested_shape(raw: object, path: tuple) -> tuple:
    shape = []
    node = raw
    while isinstance(node, list):
        if not node:
            raise ConfigError("empty list", path)
        if len(shape) == MAX_DEPTH:
            raise ConfigError(f"lists nested more than {MAX_DEPTH} deep; a tensor has at most 4 levels", path)
        shape.append(len(node))
        node = node[0]
    return tuple(shape)


def _flatten(raw: object, path: tuple, out: list, depth: int = 0, shape: tuple | None = None) -> None:
    shape = nested_shape(raw, path) if shape is None else shape
    if depth == len(shape):
        out.append(exact(raw, path))
        return
    if not isinstance(raw, list) or len(raw) != shape[depth]:
        raise ConfigError(f"ragged lists: every list at depth {depth + 1} must have {shape[depth]} entries", path)
    for k, item in enumerate(raw):
        _flatten(item, path + (k,), out, depth + 1, shape)
