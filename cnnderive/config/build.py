"""Reading a network config: safe YAML, exact numbers, PyTorch defaults, shapes checked up front."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError, ShapeError, UserError, one_line
from ..files import read_regular
from ..maths.batch import Batch
from ..maths.layers import LAYER_KINDS, Layer, Setting
from ..maths.losses import LOSS_KINDS
from ..maths.network import Network
from ..maths.ops import object_array
from .fields import Fields, describe
from .graph import Values, read_sources, with_sources
from .tensors import check_size, param_tensor, tensor
from .training import read_train, weight_decay
from .values import exact, seeded_input, seeded_parameter
from .yaml_io import MAX_FLOW_DEPTH, _yaml_load, line_of, too_deep

LIMITS = {"work": 20_000_000, "parameters": 2_000_000}  # whole network; `--max-work` raises the first
MAX_CONFIG_BYTES = 4_000_000  # ten times configs/lenet5.yaml (0.4 MB); bounds parse time and memory
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"input", "target", "loss"}  # canonical names of the network's own tensors
# words the formula grammar of `check --expr` reads as functions or constants (check/formula/parser.py)
_FORMULA_WORDS = {"exp", "log", "ln", "sqrt", "tanh", "sigmoid", "sigma", "max", "min", "e", "pi", "E"}


def load(path: str | Path, max_work: int = LIMITS["work"]) -> Network:
    """Read and validate a config file; every problem becomes one UserError naming file, field, line.

    Only a regular file of at most MAX_CONFIG_BYTES is read; `max_work` bounds the multiply-adds of one pass.
    """
    return _single(load_any(path, max_work))


def load_any(path: str | Path, max_work: int = LIMITS["work"]) -> Network | Batch:
    """As `load`, but a config whose input is a mini-batch gives a Batch of examples."""
    path = str(path)
    data = read_regular(path, MAX_CONFIG_BYTES, "the config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"cannot read the config: {error}", file=path) from None
    return loads_any(text, path, max_work)


def loads(text: str, source: str = "<config>", max_work: int = LIMITS["work"]) -> Network:
    """Validate config text; `source` names it in error messages."""
    return _single(loads_any(text, source, max_work))


def _single(found: Network | Batch) -> Network:
    """The network of a one-example config; a batch is refused by the commands that take one example."""
    if isinstance(found, Batch):
        raise UserError(
            f"the input is a batch of {found.size} examples, and this command takes one example "
            "(explain, grad, latex and check take a batch)",
            file=found.source,
            field="input",
        )
    return found


def loads_any(text: str, source: str = "<config>", max_work: int = LIMITS["work"]) -> Network | Batch:
    """Validate config text: one Network, or a Batch when the input holds several examples."""
    deep = too_deep(text)
    if deep is not None:
        raise UserError(
            f"not valid YAML: nested too deeply (more than {MAX_FLOW_DEPTH} levels of [ and {{)",
            file=source,
            line=deep,
            field="YAML",
        )
    try:
        data = _yaml_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(filter(None, [error.context, error.problem]))
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            problem += " (a tab: YAML indents with spaces)"
        raise UserError(
            f"not valid YAML: {problem}", file=source, line=mark.line + 1 if mark else None, field="YAML"
        ) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise UserError(f"not valid YAML: {str(error).splitlines()[0]}", file=source, line=line, field="YAML") from None
    except RecursionError:
        raise UserError("not valid YAML: nested too deeply", file=source, field="YAML") from None
    except (yaml.YAMLError, ValueError, KeyError, IndexError, AttributeError, TypeError, OverflowError) as error:
        # PyYAML's own constructors raise plain Python errors for e.g. `!!int abc` or `!!timestamp x`
        raise UserError(
            f"not valid YAML: a value cannot be read ({str(error)[:160]})", file=source, field="YAML"
        ) from None
    try:
        return build(data, source, max_work)
    except ConfigError as error:
        error.file = source
        error.line = line_of(text, error.path)
        raise
    except RecursionError:
        raise UserError("the config is nested too deeply", file=source) from None


def build(data: object, source: str, max_work: int = LIMITS["work"]) -> Network | Batch:
    top = Fields(data, (), "a mapping with input, layers and loss")
    name = one_line(top.string("name", Path(source).stem))  # every printer then shows it as plain text
    seed = top.int("seed", 0, minimum=0, maximum=2**63 - 1)
    from .batch import batch_inputs, build_batch  # a mini-batch: several inputs through the same layers

    raw_input, raw_layers = top.get("input"), top.get("layers")
    examples = batch_inputs(raw_input, raw_layers)
    inputs = _input(raw_input, seed) if examples is None else examples[0]
    if not isinstance(raw_layers, list):
        raise ConfigError("expected a list of layers", ("layers",))
    layers: list[Layer] = []
    params: dict[str, dict[str, np.ndarray]] = {}
    shape = inputs.shape
    budget = {"work": 0, "parameters": 0, "max_work": max_work}
    values = Values(shape)
    for position, raw in enumerate(raw_layers):
        try:
            layer, layer_params = _layer(raw, position, values, seed, params, budget)
        except ConfigError as error:
            raise _with_shape_story(error, layers) from None
        layers.append(layer)
        params[layer.name] = layer_params
        shape = layer.out_shape
        values.add(layer.name, shape)
    unread = values.unread()
    if unread:
        raise ConfigError(f"no later layer reads the output of {', '.join(unread)} (see `from`)", ("layers",))
    _check_batch_wide(layers, examples)
    if examples is not None:
        return build_batch(top, (name, source), examples, layers, params, budget)
    loss, target, decay = _loss(top.get("loss"), layers, shape)
    raw_train = top.get("train", None)
    top.finish()
    network = Network(name, source, inputs, layers, params, loss, target, decay)
    if raw_train is not None:
        network.train = read_train(raw_train, network)
    return network


def _check_batch_wide(layers: list[Layer], examples: list | None) -> None:
    """Batch norm in training mode needs a batch of two or more, in a chain."""
    for position, layer in enumerate(layers):
        if not layer.batch_wide:
            continue
        if examples is None or len(examples) < 2:
            raise ConfigError("batchnorm needs a batch of at least 2 examples in training mode", ("layers", position))
        if any(other.sources for other in layers):
            raise ConfigError(
                f"{layer.name}: batch norm in a network with skip, add or concat is not available yet",
                ("layers", position),
            )


def _input(raw: object, seed: int) -> np.ndarray:
    fields = Fields(raw, ("input",), "a mapping with values or shape")
    if fields.has("values") == fields.has("shape"):
        raise ConfigError("give exactly one of values (the numbers) or shape (values drawn from the seed)", ("input",))
    if fields.has("values"):
        values = tensor(fields.get("values"), fields.at("values"))
        if values.ndim == 2:
            values = values.reshape(1, *values.shape)
        if values.ndim not in (1, 3):
            raise ConfigError(
                f"expected [C][H][W], [H][W] or [N] numbers, found {values.ndim} levels of lists", fields.at("values")
            )
    else:
        shape = fields.get("shape")
        if not isinstance(shape, list) or len(shape) not in (1, 2, 3):
            raise ConfigError("expected a shape [C, H, W], [H, W] or [N]", fields.at("shape"))
        dims = tuple(_dimension(d, fields.at("shape")) for d in shape)
        dims = (1, *dims) if len(dims) == 2 else dims
        check_size(dims, fields.at("shape"))
        values = object_array(seeded_input(seed, int(np.prod(dims))), dims)
    fields.finish()
    return values


def _dimension(value: object, path: tuple) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a positive integer size, found {describe(value)}", path)
    return value


def _layer(raw: object, position: int, values: Values, seed: int, known: dict, budget: dict) -> tuple[Layer, dict]:
    fields = Fields(raw, ("layers", position), "a mapping with a type")
    kind = fields.get("type")
    kind = layer_kind(kind)
    if kind is None:
        raise ConfigError(
            f"unknown layer type {describe(fields.get('type'))}; known types: {', '.join(LAYER_KINDS)}",
            fields.at("type"),
        )
    name = fields.string("name", f"{kind}_{position + 1}")
    if not _NAME.match(name) or name in _RESERVED:
        raise ConfigError(
            f"layer name {name!r} must be letters, digits and _ (and not input, target or loss)", fields.at("name")
        )
    if name in _FORMULA_WORDS:
        words = ", ".join(sorted(_FORMULA_WORDS))
        message = f"layer name {name!r} is a word of check formulas ({words}); choose another"
        raise ConfigError(message, fields.at("name"))
    if name in known:
        raise ConfigError(f"two layers are called {name!r}; names must be unique", fields.at("name"))
    raw_params = fields.get("params", {})
    sources, in_shape, implied = read_sources(fields, LAYER_KINDS[kind], values)
    layer = with_sources(_create(LAYER_KINDS[kind], fields, name, in_shape, implied), sources)
    check_size(layer.out_shape, fields.path)
    _spend(budget, layer, fields.path)
    given = Fields(raw_params, fields.at("params"), "a mapping of parameter tensors")
    params = {}
    for param, shape in layer.param_shapes().items():
        check_size(shape, given.at(param))
        if given.has(param):
            params[param] = param_tensor(given.get(param), shape, layer, param, given.at(param))
        elif hasattr(layer, "initial"):  # batch norm starts as PyTorch's: γ = 1, β = 0
            params[param] = object_array([layer.initial(param)] * int(np.prod(shape)), shape)
        else:
            count = int(np.prod(shape))
            drawn = seeded_parameter(seed, f"{name}.{param}", count, layer.fan_in())
            params[param] = object_array(drawn, shape)
    for key in given.data:
        if key not in params:
            known = ", ".join(params) or "none"
            off = " (this layer has bias: false)" if key == "bias" and "weight" in params else ""
            raise ConfigError(f"{name} has no parameter {key!r}{off}; its parameters: {known}", given.at(key))
    return layer, params


def layer_kind(written: object) -> str | None:
    """The kind a config's `type` names: ours (`maxpool2d`) or PyTorch's class name (`MaxPool2d`,
    `LeakyReLU`), in any case; None when it names none."""
    if not isinstance(written, str):
        return None
    key = written.strip().lower().replace("_", "")
    return next((kind for kind in LAYER_KINDS if kind.replace("_", "") == key), None)


def _create(cls: type[Layer], fields: Fields, name: str, in_shape: tuple, implied: dict | None = None) -> Layer:
    """The layer of kind `cls` from its settings in the config (and `implied` by its inputs: concat's
    channels); a shape it cannot take is a ConfigError."""
    settings = read_settings(fields, cls.settings)
    try:
        return cls.create(name, in_shape, **settings, **(implied or {}))
    except ShapeError as error:
        raise ConfigError(f"{name}: {error}", fields.at(error.key) if error.key else fields.path) from None


def read_settings(fields: Fields, settings: dict[str, Setting]) -> dict[str, object]:
    """Each declared setting read from the config (or its default); any other key is an error."""
    values: dict[str, object] = {}
    for attribute, setting in settings.items():
        default = setting.default
        if setting.same_as is not None:
            default = list(values[setting.same_as])
        if setting.kind == "int":
            values[attribute] = fields.int(setting.key, default, minimum=setting.minimum)
        elif setting.kind == "pair":
            values[attribute] = fields.pair(setting.key, default, minimum=setting.minimum)
        elif setting.kind == "bool":
            values[attribute] = fields.bool(setting.key, default)
        elif setting.kind == "number":
            values[attribute] = fields.number(setting.key, default)
        elif setting.kind == "tensor":  # exact numbers, flat; the layer checks their count and values
            values[attribute] = tuple(tensor(fields.get(setting.key, default), fields.at(setting.key)).flat)
        else:
            values[attribute] = fields.choice(setting.key, setting.options, default)
    fields.finish()
    return values


def _spend(budget: dict, layer: Layer, path: tuple) -> None:
    """Refuse a network whose size alone would take minutes, before its parameters are drawn or read."""
    budget["work"] += layer.work()
    budget["parameters"] += sum(int(np.prod(shape)) for shape in layer.param_shapes().values())
    if budget["work"] > budget["max_work"]:
        raise ConfigError(
            f"the network up to {layer.name} needs {budget['work']:,} multiply-adds per pass; the limit is "
            f"{budget['max_work']:,} (raise it with --max-work, or use a smaller layer)",
            path,
        )
    if budget["parameters"] > LIMITS["parameters"]:
        raise ConfigError(
            f"the network up to {layer.name} has {budget['parameters']:,} parameters; the limit is "
            f"{LIMITS['parameters']:,}",
            path,
        )


def _with_shape_story(error: ConfigError, earlier: list[Layer]) -> ConfigError:
    """A parameter of the wrong shape, with why the layer's input has the shape it has, where a window
    before it floored (a 3x3 map pooled 2x2, stride 2, is 1x1: its last row and column are dropped)."""
    if "must have shape" not in error.message:
        return error
    floors = [story for layer in earlier if (story := _floored(layer))]
    if floors:
        error.message += f" (the input shrank: {'; '.join(floors)})"
    return error


def _floored(layer: Layer) -> str:
    """'maxpool2d_1 takes 3x3 to 1x1: (3 - 2)/2 + 1 floors to 1' when a window does not fit evenly, else ''."""
    kernel, stride = getattr(layer, "kernel", None), getattr(layer, "stride", None)
    if kernel is None or stride is None or len(layer.in_shape) != 3:
        return ""
    padding = getattr(layer, "padding", (0, 0))
    sums = []
    for size, k, s, p in zip(layer.in_shape[1:], kernel, stride, padding):
        if (size + 2 * p - k) % s:
            padded = f"{size} + 2·{p}" if p else f"{size}"
            sums.append(f"({padded} - {k})/{s} + 1 floors to {(size + 2 * p - k) // s + 1}")
    if not sums:
        return ""
    (h, w), (oh, ow) = layer.in_shape[1:], layer.out_shape[1:]
    return f"{layer.name} takes {h}x{w} to {oh}x{ow}: " + ", ".join(dict.fromkeys(sums))


def _loss(raw: object, layers: list[Layer], out_shape: tuple):
    fields = Fields(raw, ("loss",), "a mapping with type and target")
    kind = fields.choice("type", tuple(LOSS_KINDS))
    cls = LOSS_KINDS[kind]
    target = _target(fields.get("target"), cls.takes_class_index, int(np.prod(out_shape)), fields.at("target"))
    decay = weight_decay(fields)
    settings = read_settings(fields, cls.settings)
    try:
        loss = cls.create(layers, target, **settings)
    except ShapeError as error:
        raise ConfigError(str(error), fields.at(error.key) if error.key else fields.path) from None
    return loss, target, decay


def _target(raw: object, class_index: bool, size: int, path: tuple) -> np.ndarray:
    """The target as a flat vector: a class index (cross-entropy) becomes its one-hot vector, as the spec says."""
    if class_index and not isinstance(raw, (list, bool)):
        number = exact(raw, path)
        if number.denominator != 1:
            raise ConfigError(f"a class index is a whole number, found {raw}", path)
        if not 0 <= number < size:
            hint = "; for the label of a single sigmoid output write a list, target: [0] or [1]" if size == 1 else ""
            raise ConfigError(
                f"class index {raw} is out of range: the network has {size} output{'s' if size > 1 else ''} "
                f"(0 to {size - 1}){hint}",
                path,
            )
        raw = int(number)
        values = [Fraction(int(k == raw)) for k in range(size)]
        return object_array(values, (size,))
    if not isinstance(raw, list):
        if size != 1:
            raise ConfigError(f"expected a list of {size} numbers (one per output)", path)
        raw = [raw]
    values = tensor(raw, path).reshape(-1)
    if values.size != size:
        raise ConfigError(f"expected {size} numbers (one per network output), found {values.size}", path)
    return values
