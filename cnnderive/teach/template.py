"""Reading a template: a network config whose numbers may be left out or written as ranges.

A range is a string such as "int[-2,2]", "one_decimal[-1,1]" or "two_decimal[-0.5,0.5]": a number
drawn from that grid (steps of 1, 0.1 or 0.01, ends included). It may stand for one number
anywhere a config has numbers (input values, parameters, the loss target), or for a whole
parameter tensor (every element drawn); the input as a whole is drawn with `shape:` beside
`values: "int[0,3]"`. Three keys are the template's own: `questions` (the gradients to ask,
default one element per parameter tensor), `allow` (accidents the template wants: tie, zero,
shared_winner) and `tolerance` (relative, default 0.01).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import yaml

from ..errors import ConfigError, UserError
from ..files import read_regular

RANGE = re.compile(r"\s*(int|one_decimal|two_decimal)\s*\[\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*\]\s*\Z")
LOOKS_LIKE_RANGE = re.compile(r"\s*(int|one_decimal|two_decimal)\s*\[")
STEPS = {"int": Fraction(1), "one_decimal": Fraction(1, 10), "two_decimal": Fraction(1, 100)}
ACCIDENTS = ("tie", "zero", "shared_winner")  # what `allow:` may name
DEFAULT_TOLERANCE = Fraction(1, 100)
MAX_TEMPLATE_BYTES = 1_000_000


class DecimalText(str):
    """A YAML decimal kept as its text (so 0.1 stays 1/10), written back as a plain number."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: DecimalText(loader.construct_scalar(node)))


class ConfigDumper(yaml.SafeDumper):
    """YAML out: Fractions and kept decimals as plain numbers, lists of numbers on one line."""


def _fraction(dumper: yaml.SafeDumper, value: Fraction) -> yaml.Node:
    if value.denominator == 1:
        return dumper.represent_int(int(value))
    from ..printers.numbers import exact_decimal

    decimal = exact_decimal(value, 30)
    if decimal is None:
        return dumper.represent_str(f"{value.numerator}/{value.denominator}")
    return dumper.represent_scalar("tag:yaml.org,2002:float", decimal)


ConfigDumper.add_representer(Fraction, _fraction)
ConfigDumper.add_representer(DecimalText, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", str(v)))


def dump(data: object) -> str:
    """Config data as YAML text, the same bytes on every machine."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=10_000)


@dataclass(frozen=True)
class Range:
    """A grid of hand-friendly numbers: multiples of `step` from `first` to `last` steps."""

    kind: str
    first: int
    last: int

    @property
    def step(self) -> Fraction:
        return STEPS[self.kind]

    def value(self, k: int) -> Fraction:
        return (self.first + k) * self.step

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Fill:
    """A whole tensor drawn from one range; `shape` as the config reader builds it."""

    range: Range
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Template:
    """A parsed template: the config with Range/Fill leaves, and what to ask and screen."""

    source: str
    text: str
    config: dict
    questions: tuple[str, ...]
    allow: frozenset[str]
    tolerance: Fraction
    layer_names: tuple[str, ...]  # each layer's name, default names included

    @property
    def stem(self) -> str:
        return Path(self.source).stem


def parse_range(text: str, path: tuple) -> Range | None:
    """A range string as a Range; None for any other string; an error for a malformed range."""
    match = RANGE.match(text)
    if match is None:
        if LOOKS_LIKE_RANGE.match(text):
            raise ConfigError(f"{text!r} is not a range; write e.g. int[-2,2] or one_decimal[-1,1]", path)
        return None
    kind, low, high = match.group(1), Fraction(match.group(2)), Fraction(match.group(3))
    step = STEPS[kind]
    first, last = -((-low) // step), high // step  # the grid points inside [low, high]
    if first > last:
        raise ConfigError(
            f"{text!r} holds no {kind.replace('_', ' ')} number (is the low end above the high end?)", path
        )
    return Range(kind, int(first), int(last))


def load_template(path: str) -> Template:
    """Read and check a template file; every problem is one UserError naming file, field and line."""
    data = read_regular(path, MAX_TEMPLATE_BYTES, "the template")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read the template: {error}", file=path) from None
    return parse_template(text, path)


def parse_template(text: str, source: str) -> Template:
    """Template text -> Template, its shapes and questions checked on a network built from it."""
    from ..config.yaml_io import line_of

    try:
        data = yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError) as error:
        mark = getattr(error, "problem_mark", None)
        raise UserError(
            f"not valid YAML: {getattr(error, 'problem', None) or error}",
            file=source,
            line=mark.line + 1 if mark else None,
            field="YAML",
        ) from None
    try:
        return _parse(data, text, source)
    except ConfigError as error:
        error.file = source
        error.line = error.line or line_of(text, error.path)
        raise


def _parse(data: object, text: str, source: str) -> Template:
    if not isinstance(data, dict):
        raise ConfigError(
            "a template is a config mapping (input, layers, loss) with optional questions, allow, tolerance"
        )
    config = copy.deepcopy(data)
    questions = config.pop("questions", None)
    allow = _allow(config.pop("allow", []))
    tolerance = _tolerance(config.pop("tolerance", DEFAULT_TOLERANCE))
    config.pop("seed", None)  # each variant draws its own
    _mark_ranges(config)
    network = _skeleton_network(config, source)
    _fill_shapes(config, network)
    names = tuple(layer.name for layer in network.layers)
    asked = _questions(questions, network)
    return Template(source, text, config, asked, allow, tolerance, names)


def _allow(raw: object) -> frozenset[str]:
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if item not in ACCIDENTS:
            raise ConfigError(f"allow lists accidents the template wants: {', '.join(ACCIDENTS)}", ("allow",))
    return frozenset(items)


def _tolerance(raw: object) -> Fraction:
    from ..config.values import exact

    value = exact(raw, ("tolerance",))
    if not 0 < value < 1:
        raise ConfigError("the tolerance is relative: a number between 0 and 1, e.g. 0.01", ("tolerance",))
    return value


def _number_positions(config: dict):
    """(container, key, path, whole) for every place a config holds numbers; `whole` for a tensor."""
    found = []
    raw_input = config.get("input")
    if isinstance(raw_input, dict) and "values" in raw_input:
        found.append((raw_input, "values", ("input", "values"), True))
    layers = config.get("layers")
    for position, layer in enumerate(layers if isinstance(layers, list) else []):
        params = layer.get("params") if isinstance(layer, dict) else None
        if isinstance(params, dict):
            for key in params:
                found.append((params, key, ("layers", position, "params", key), True))
    loss = config.get("loss")
    if isinstance(loss, dict) and "target" in loss:
        found.append((loss, "target", ("loss", "target"), False))
    return found


def _mark_ranges(config: dict) -> None:
    """Replace each range string by a Range (one number) or a Fill (a whole tensor, shape to come)."""
    for container, key, path, whole in _number_positions(config):
        value = container[key]
        if isinstance(value, str) and not isinstance(value, DecimalText):
            found = parse_range(value, path)
            if found is not None:
                container[key] = Fill(found, ()) if whole else found
                continue
        container[key] = _ranges_inside(value, path)


def _ranges_inside(value: object, path: tuple) -> object:
    if isinstance(value, list):
        return [_ranges_inside(item, path + (k,)) for k, item in enumerate(value)]
    if isinstance(value, str) and not isinstance(value, DecimalText):
        return parse_range(value, path) or value
    return value


def _skeleton_network(config: dict, source: str):
    """The network with every drawn number at 0 and every drawn tensor left out: its shapes."""
    from ..config import loads

    skeleton = copy.deepcopy(config)
    for container, key, path, _ in _number_positions(skeleton):
        if isinstance(container[key], Fill):
            if path[0] == "input":
                if "shape" not in container:
                    raise ConfigError(
                        'an input drawn whole needs its shape: shape: [5, 5] beside values: "int[0,3]"', path
                    )
                del container[key]
            else:
                del container[key]
        else:
            container[key] = _zeros(container[key])
    try:
        return loads(dump(skeleton), source)
    except ConfigError as error:
        error.line = None  # the line is looked up in the template's own text
        raise


def _zeros(value: object) -> object:
    if isinstance(value, list):
        return [_zeros(item) for item in value]
    return 0 if isinstance(value, Range) else value


def _fill_shapes(config: dict, network) -> None:
    for container, key, path, _ in _number_positions(config):
        fill = container[key]
        if isinstance(fill, Fill):
            if path[0] == "input":
                shape = network.input.shape
                del container["shape"]
            else:
                shape = network.params[network.layers[path[1]].name][key].shape
            container[key] = Fill(fill.range, tuple(shape))


def _questions(raw: object, network) -> tuple[str, ...]:
    from ..derivation.names import parse_parameter

    if raw is None:
        names = network.parameter_names()
        if not names:
            raise ConfigError(
                "the network has no parameters: list the gradients to ask under questions", ("questions",)
            )
        return tuple(f"{name}[{','.join('0' for _ in network.parameter(name).shape)}]" for name in names)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "questions is a list of gradients to ask, e.g. [conv1.weight[0,0,0,0], fc.bias[1]]", ("questions",)
        )
    asked = []
    for k, item in enumerate(raw):
        try:
            _, index = parse_parameter(network, str(item))
        except UserError as error:
            raise ConfigError(error.message, ("questions", k)) from None
        if index is None:
            raise ConfigError(f"{item!r} is a whole tensor; ask for one element, e.g. {item}[0,...]", ("questions", k))
        asked.append(str(item).replace(" ", ""))
    if len(set(asked)) != len(asked):
        raise ConfigError("a question is asked twice", ("questions",))
    return tuple(asked)
