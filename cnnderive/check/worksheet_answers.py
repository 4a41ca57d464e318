"""Reading a worksheet's answers.yaml: each name -> a value, a fraction, a formula or a whole tensor.

A key is any name `--param` takes (`fc.weight[0,0]`, `z1_1_2`, `fc.output` for the whole tensor),
optionally written as its gradient (`dL/dz1_1_2`, `∂L/∂(fc.output)`); each value means ∂L/∂(that).
Every problem is one UserError naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

import yaml

from ..config.yaml_io import MAX_FLOW_DEPTH, _yaml_load, line_of, too_deep
from ..derivation.names import Tensor, parse_element, tensors
from ..errors import UserError
from ..files import read_regular
from .values import parse_value

MAX_ANSWERS_BYTES = 1_000_000
# dL/d, ∂L/∂, dC/d ... in front of a name: the answer is that gradient anyway
_GRADIENT_PREFIX = re.compile(r"\A\s*(?:d|∂|\\partial\s*)\s*[LCJ]\s*/\s*(?:d|∂|\\partial\s*)\s*")


@dataclass(frozen=True)
class Given:
    """One number of the student's: as written, and exactly (a formula's value at the config's numbers)."""

    value: object  # a Fraction for a number written; for a formula its value (SymPy) once checked
    text: str
    fraction: bool = False  # written as a fraction: compared exactly
    formula: bool = False


@dataclass(frozen=True)
class Answer:
    """One entry of answers.yaml: ∂L/∂(an element, or every element of a tensor)."""

    written: str  # the name as written in the file
    tensor: Tensor
    index: tuple[int, ...] | None  # None: the whole tensor
    items: tuple[tuple[tuple[int, ...], Given], ...]  # (element index, what the student gave), row-major
    line: int | None = None
    latex: bool | None = None  # a formula: read as LaTeX (None: detected)
    source: str | None = None  # the answers file

    @property
    def name(self) -> str:
        """The canonical name: fc.weight[0,0], or fc.output for a whole tensor."""
        return self.tensor.name if self.index is None else self.tensor.element(self.index)

    @property
    def formula(self) -> str | None:
        given = self.items[0][1]
        return given.text if given.formula else None


def read_answers(path: str, network) -> list[Answer]:
    """The answers of a worksheet file, in the file's order; duplicates and unknown names are errors."""
    data = read_regular(path, MAX_ANSWERS_BYTES, "the answers")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read the answers: {error}", file=path) from None
    document = _parse(text, path)
    if not isinstance(document, dict) or not document:
        raise UserError(
            "expected a mapping of names to your values, e.g. `fc.weight[0,0]: -0.55` (one a line)",
            file=path,
            line=line_of(text, ()),
        )
    answers, covered = [], {}
    for key, raw in document.items():
        line = line_of(text, (key,))
        answer = _answer(network, key, raw, lambda *at, key=key: line_of(text, (key, *at)), path)
        for index, _ in answer.items:
            if (answer.tensor.name, index) in covered:
                first = covered[(answer.tensor.name, index)]
                raise UserError(
                    f"{answer.tensor.element(index)} is answered twice (also as {first!r})", file=path, line=line
                )
            covered[(answer.tensor.name, index)] = answer.written
        answers.append(replace(answer, source=path))
    return answers


def _parse(text: str, source: str) -> object:
    deep = too_deep(text)
    if deep is not None:
        raise UserError(f"not valid YAML: nested more than {MAX_FLOW_DEPTH} deep", file=source, line=deep)
    try:
        return _yaml_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(filter(None, [error.context, error.problem]))
        raise UserError(f"not valid YAML: {problem}", file=source, line=mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise UserError(f"not valid YAML: {str(error)[:160]}", file=source) from None


def _answer(network, key: object, raw: object, line_at, source: str) -> Answer:
    """One entry: the element or tensor it names, and the value(s) given for it."""
    line = line_at()
    if not isinstance(key, str):
        raise UserError(f"{key!r} is not a name: write e.g. fc.weight[0,0] or z1_1_2", file=source, line=line)
    try:
        tensor, index = _named(network, _without_prefix(key))
    except UserError as error:
        raise UserError(error.message, file=source, line=line) from None
    if tensor.role in ("target", "loss"):
        raise UserError(
            f"{key}: ∂L/∂ of the {tensor.role} is not a step of the backward pass; answer ∂L/∂ of the input, "
            "a parameter or a layer output",
            file=source,
            line=line,
        )
    if isinstance(raw, dict):
        if index is None and len(tensor.shape) and _size(tensor.shape) > 1:
            raise UserError(
                f"{key}: a formula answers one element, e.g. {tensor.element(next(tensor.indices()))}",
                file=source,
                line=line,
            )
        formula, latex = _formula(key, raw, source, line)
        element = index if index is not None else next(tensor.indices())
        return Answer(key, tensor, element, ((element, Given(None, formula, formula=True)),), line, latex)
    if index is not None:
        if isinstance(raw, list):
            raise UserError(f"{key} is one element: give one number, not a list", file=source, line=line)
        return Answer(key, tensor, index, ((index, _number(key, raw, source, line)),), line)
    shape = _shape_given(key, raw, tensor, source, line)
    flat: list[tuple[tuple[int, ...], Given]] = []
    for element in tensor.indices():
        at = element[len(tensor.shape) - len(shape) :]  # the leading axes of size 1 may be left out
        item = raw
        for i in at:
            item = item[i]
        flat.append((element, _number(f"{key}{list(at)}", item, source, line_at(*at))))
    return Answer(key, tensor, None, tuple(flat), line)


def _named(network, name: str) -> tuple[Tensor, tuple[int, ...] | None]:
    """An element or tensor as --param names it, or a whole tensor by its textbook name (z2, a1, x)."""
    for tensor in tensors(network).values():
        if tensor.role not in ("target", "loss") and name in (tensor.ascii(), tensor.unicode(), tensor.latex()):
            return tensor, None
    return parse_element(network, name, option="answers")


def _without_prefix(key: str) -> str:
    """`dL/dz1_1_2` -> `z1_1_2`; `∂L/∂(fc.output)` -> `fc.output`."""
    match = _GRADIENT_PREFIX.match(key)
    if not match:
        return key
    rest = key[match.end() :].strip()
    return rest[1:-1].strip() if rest.startswith("(") and rest.endswith(")") else rest


def _formula(key: str, raw: dict, source: str, line: int | None) -> tuple[str, bool | None]:
    unknown = set(raw) - {"expr", "latex"}
    formula = raw.get("expr")
    if unknown or not isinstance(formula, str) or not formula.strip():
        raise UserError(
            f'{key}: a formula is written {{expr: "..."}} (optionally with latex: true)', file=source, line=line
        )
    latex = raw.get("latex")
    if latex is not None and not isinstance(latex, bool):
        raise UserError(f"{key}: latex is true or false", file=source, line=line)
    return formula, latex or None


def _number(key: str, raw: object, source: str, line: int | None) -> Given:
    """A decimal, an integer or a fraction ("-11/20"), kept exact."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        shown = (
            "nothing" if raw is None else repr(raw) if not isinstance(raw, (list, dict)) else "a " + type(raw).__name__
        )
        raise UserError(
            f"{key}: {shown} is not a number: give a decimal like -0.55 or a fraction like -11/20",
            file=source,
            line=line,
        )
    text = str(raw)
    try:
        value, fraction = parse_value(text)
    except UserError as error:
        raise UserError(f"{key}: {error.message}", file=source, line=line) from None
    return Given(Fraction(value), text.strip(), fraction)


def _shape_given(key: str, raw: object, tensor: Tensor, source: str, line: int | None) -> tuple[int, ...]:
    """The shape of the nested lists given for a whole tensor: its own, or without leading axes of size 1."""
    if not isinstance(raw, list):
        if _size(tensor.shape) == 1:
            return ()
        dims = "".join(f"[{d}]" for d in tensor.shape)
        raise UserError(
            f"{key} is the whole tensor {dims}: give nested lists, or name one element, e.g. "
            f"{tensor.element(next(tensor.indices()))}",
            file=source,
            line=line,
        )
    shape, node = [], raw
    while isinstance(node, list) and len(shape) <= len(tensor.shape):
        shape.append(len(node))
        node = node[0] if node else None
    shape = tuple(shape)
    allowed = [tensor.shape[drop:] for drop in range(len(tensor.shape)) if all(d == 1 for d in tensor.shape[:drop])]
    if shape not in allowed or not _regular(raw, shape):
        dims = "".join(f"[{d}]" for d in tensor.shape)
        raise UserError(f"{key}: expected nested lists of shape {dims}", file=source, line=line)
    return shape


def _regular(raw: object, shape: tuple[int, ...]) -> bool:
    if not shape:
        return not isinstance(raw, list)
    return isinstance(raw, list) and len(raw) == shape[0] and all(_regular(item, shape[1:]) for item in raw)


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size
