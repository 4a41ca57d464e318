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
from ..maths.losses import LOSS_KINDS, WeightDecay
from ..maths.network import SGD, Network
from ..maths.ops import object_array
from .fields import Fields, describe
from .graph import Values, read_sources, with_sources
from .values import exact, seeded_input, seeded_parameter
from .yaml_io import MAX_FLOW_DEPTH, _yaml_load, line_of, too_deep

MAX_ELEMENTS = 1_000_000  # per tensor; bigger shapes are refused before anything is allocated
MAX_DEPTH = 6  # levels of nested lists in one tensor field
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
        network.train = _train(raw_train, network)
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
        _check_size(dims, fields.at("shape"))
        values = object_array(seeded_input(seed, int(np.prod(dims))), dims)
    fields.finish()
    return values


def _dimension(value: object, path: tuple) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a positive integer size, found {describe(value)}", path)
    return value


def _check_size(shape: tuple, path: tuple) -> None:
    count = 1
    for d in shape:
        count *= d
    if count > MAX_ELEMENTS:
        raise ConfigError(f"shape {list(shape)} has {count:,} elements; the limit is {MAX_ELEMENTS:,}", path)


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
    _check_size(layer.out_shape, fields.path)
    _spend(budget, layer, fields.path)
    given = Fields(raw_params, fields.at("params"), "a mapping of parameter tensors")
    params = {}
    for param, shape in layer.param_shapes().items():
        _check_size(shape, given.at(param))
        if given.has(param):
            params[param] = _param_tensor(given.get(param), shape, layer, param, given.at(param))
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


def _param_tensor(raw: object, shape: tuple, layer: Layer, param: str, path: tuple) -> np.ndarray:
    values = tensor(raw, path)
    lead = len(shape) - values.ndim
    if lead > 0 and values.shape == shape[lead:] and all(d == 1 for d in shape[:lead]):
        values = values.reshape(shape)  # [kh][kw] for a one-channel kernel, a bare number for one bias
    if values.shape != shape:
        raise ConfigError(
            f"{layer.name}.{param} must have shape {_dims(shape)} {layer.param_axes(param)}, "
            f"found {_dims(values.shape)}",
            path,
        )
    return values


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


def _dims(shape: tuple) -> str:
    return "".join(f"[{d}]" for d in shape) or "[] (a single number)"


def tensor(raw: object, path: tuple) -> np.ndarray:
    """Nested lists of numbers as an object array of Fractions; ragged lists are an error."""
    shape = _nested_shape(raw, path)
    _check_size(shape, path)
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


def _nested_shape(raw: object, path: tuple) -> tuple:
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
    shape = _nested_shape(raw, path) if shape is None else shape
    if depth == len(shape):
        out.append(exact(raw, path))
        return
    if not isinstance(raw, list) or len(raw) != shape[depth]:
        raise ConfigError(f"ragged lists: every list at depth {depth + 1} must have {shape[depth]} entries", path)
    for k, item in enumerate(raw):
        _flatten(item, path + (k,), out, depth + 1, shape)


def _loss(raw: object, layers: list[Layer], out_shape: tuple):
    fields = Fields(raw, ("loss",), "a mapping with type and target")
    kind = fields.choice("type", tuple(LOSS_KINDS))
    cls = LOSS_KINDS[kind]
    target = _target(fields.get("target"), cls.takes_class_index, int(np.prod(out_shape)), fields.at("target"))
    decay = _weight_decay(fields)
    settings = read_settings(fields, cls.settings)
    try:
        loss = cls.create(layers, target, **settings)
    except ShapeError as error:
        raise ConfigError(str(error), fields.at(error.key) if error.key else fields.path) from None
    return loss, target, decay


def _weight_decay(fields: Fields) -> WeightDecay:
    """`weight_decay: λ` (exact, >= 0, default 0) and `decay_bias` (default false) of the loss mapping."""
    rate = fields.number("weight_decay", 0)
    if rate < 0:
        raise ConfigError(f"weight_decay must be 0 or more, found {rate}", fields.at("weight_decay"))
    bias = fields.bool("decay_bias", False)
    if bias and rate == 0:
        raise ConfigError("decay_bias: true needs a weight_decay above 0", fields.at("decay_bias"))
    return WeightDecay(rate, bias)


MAX_STEPS = 10  # exact weights grow with every step (their digits about triple per step)


def _train(raw: object, network: Network) -> SGD:
    """The `train:` mapping: lr > 0, momentum >= 0 (default 0), velocity {param: tensor}, steps."""
    fields = Fields(raw, ("train",), "a mapping with lr (and momentum, velocity, steps)")
    lr = fields.number("lr")
    if lr <= 0:
        raise ConfigError(f"lr must be above 0, found {lr}", fields.at("lr"))
    momentum = fields.number("momentum", 0)
    if momentum < 0:
        raise ConfigError(f"momentum must be 0 or more, found {momentum}", fields.at("momentum"))
    steps = fields.int("steps", 1, minimum=1, maximum=MAX_STEPS)
    if steps > 1 and not network.is_rational():
        raise ConfigError(
            "more than one step needs a network whose values stay rational (MSE, no sigmoid, tanh or softmax): "
            "after exp or tanh the new weights are no longer exact numbers to start the next step from",
            fields.at("steps"),
        )
    velocity = _velocity(fields, network, momentum)
    fields.finish()
    if not network.parameter_names():
        raise ConfigError("the network has no parameters to update", ("train",))
    return SGD(lr, momentum, velocity, steps)


def _velocity(fields: Fields, network: Network, momentum) -> dict[str, np.ndarray]:
    """The given velocity of each parameter tensor (the rest start at 0, as PyTorch's first step)."""
    if not fields.has("velocity"):
        return {}
    if momentum == 0:
        raise ConfigError(
            "a velocity needs a momentum above 0 (without momentum SGD keeps none)", fields.at("velocity")
        )
    given = Fields(fields.get("velocity"), fields.at("velocity"), "a mapping of parameter tensors (fc.weight: ...)")
    velocity = {}
    names = network.parameter_names()
    for key in given.data:
        if key not in names:
            raise ConfigError(f"unknown parameter {key!r}; the parameters: {', '.join(names)}", given.at(key))
        layer_name, param = key.split(".")
        layer = next(layer for layer in network.layers if layer.name == layer_name)
        shape = network.parameter(key).shape
        velocity[key] = _param_tensor(given.get(key), shape, layer, param, given.at(key))
    return velocity


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
