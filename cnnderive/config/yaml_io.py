"""Safe YAML with exact decimals: numbers keep their text, so 0.1 stays exactly 1/10."""

from __future__ import annotations

import json
import re

import numpy as np
import yaml


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader, keeping every decimal as its text so that 0.1 stays exactly 1/10."""


class _DeepLoader(yaml.SafeLoader):
    """The pure-Python safe loader, for deeply nested text: libyaml's C composer recurses and
    overflows the C stack (a crash) where this one raises RecursionError."""


for _loader in (_Loader, _DeepLoader):
    _loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: loader.construct_scalar(node))

_DEEP_BLOCKS = re.compile(r"(?:-[ \t]+){200}|^[ \t]{2000}", re.MULTILINE)


MAX_FLOW_DEPTH = 200  # [ and { open at once; a config needs a dozen, a tensor at most 6


def too_deep(text: str) -> int | None:
    """The 1-based line where [ and { nest more than MAX_FLOW_DEPTH deep, or None.

    Checked before parsing: YAML's recursive parser takes seconds to give up on such text.
    """
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return None
    codes = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    depth = np.cumsum(step)
    if depth.max() <= MAX_FLOW_DEPTH:
        return None
    at = int(np.argmax(depth > MAX_FLOW_DEPTH))
    return codes[:at].tobytes().count(b"\n") + 1


def _loader_for(text: str) -> type:
    """The C loader, unless the text nests deeply in blocks (libyaml's composer would overflow the C stack)."""
    return _DeepLoader if _DEEP_BLOCKS.search(text) else _Loader


# A long flow list of plain numbers as the value of a key (`weight: [[0.1, -0.2], ...]`), ending
# its line. PyYAML builds a Python object per scalar (about 4 us each: 0.25 s for LeNet-5's 62k
# numbers); the JSON parser reads such a list in C. For these characters the two agree: an
# integer becomes an int and a decimal keeps its text (as _Loader does); anything JSON does not
# read exactly like YAML (leading zeros, `.5`, `1.`, a trailing comma) is a JSON error, and that
# list is left to YAML.
_NUMBER_LIST = re.compile(
    r"^([ \t]*(?:-[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]*:[ \t]*)(\[[-0-9.,\s\[\]]*?\])(?=[ \t]*(?:#[^\n]*)?(?:\r?\n|\Z))",
    re.MULTILINE,
)
_NUMBER_LIST_MIN = 1000  # characters; shorter lists are not worth it
_MARKER = "cnnderive-number-list-"


def _yaml_load(text: str) -> object:
    """yaml.load with _Loader; long lists of plain numbers are read by the JSON parser instead.

    Each such list is swapped for a marker scalar before YAML sees the text, and put back after.
    If a marker is not found exactly once as a whole value (the list was inside a quoted or
    block string), or YAML rejects the swapped text, the original text is read by YAML alone.
    Error lines are always looked up in the original text.
    """
    lists: dict[str, list] = {}

    def swap(match: re.Match) -> str:
        if len(match.group(2)) < _NUMBER_LIST_MIN:
            return match.group(0)
        try:
            value = json.loads(match.group(2), parse_float=str)
        except (ValueError, RecursionError):
            return match.group(0)
        marker = f"{_MARKER}{len(lists)}"
        lists[marker] = value
        return match.group(1) + marker

    if _MARKER not in text:
        swapped = _NUMBER_LIST.sub(swap, text)
        if lists:
            try:
                data = yaml.load(swapped, Loader=_loader_for(swapped))
            except (yaml.YAMLError, RecursionError):
                pass
            else:
                if _put_back(data, dict(lists)) == len(lists):
                    return data
    return yaml.load(text, Loader=_loader_for(text))


def _put_back(data: object, lists: dict[str, list]) -> int:
    """Replace each marker value in the loaded data by its list; how many were replaced.

    Each container is visited once: YAML aliases can share one list many times over (`[*a, *a, ...]`
    nested ten deep is 10^10 paths but only ten lists).
    """
    found = 0
    stack = [data]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        for key, value in list(items):
            if type(value) is str and value.startswith(_MARKER) and value in lists:
                node[key] = lists.pop(value)
                found += 1
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return found


def line_of(text: str, path: tuple) -> int | None:
    """The 1-based line of the YAML node at `path` (or of the nearest enclosing one)."""
    try:
        node = yaml.compose(text, Loader=_loader_for(text))
    except (yaml.YAMLError, RecursionError):
        return None
    line = node.start_mark.line if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                break
            line, node = match[-1][0].start_mark.line, match[-1][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line
        else:
            break
    return None if line is None else line + 1
