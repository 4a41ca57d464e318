"""Reading a mini-batch: N inputs through the same layers, one target each, the batch reduction.

The input is a batch when it is written as `examples: [x1, x2, ...]` (each as `values` would be
written), or as `values` with one more level of lists than the network takes: [N][C][H][W] for an
image network, [N][K] for one that starts with linear ([C][H][W] stays one image). The loss's
`target` is then a list of N targets and `batch_reduction` (mean, the default, or sum) says how
the examples' losses make the batch loss.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..maths.batch import REDUCTIONS, Batch
from ..maths.layers import Layer
from ..maths.losses import LOSS_KINDS
from ..maths.network import Network
from .build import _target, layer_kind, read_settings
from .fields import Fields, describe
from .tensors import nested_shape, tensor

MAX_EXAMPLES = 256


def batch_inputs(raw: object, raw_layers: object) -> list[np.ndarray] | None:
    """Each example's input ([C][H][W] or [K]) when the input is a batch, else None (one example)."""
    if not isinstance(raw, dict):
        return None
    if "examples" in raw:
        return _examples(raw)
    if "values" not in raw or "shape" in raw:
        return None
    path = ("input", "values")
    depth = len(nested_shape(raw["values"], path))
    if depth == 4 or (depth == 2 and _starts_linear(raw_layers)):
        values = tensor(raw["values"], path)
        _check_count(len(values), path)
        return [values[n] for n in range(len(values))]
    return None


def _starts_linear(raw_layers: object) -> bool:
    if not isinstance(raw_layers, list) or not raw_layers or not isinstance(raw_layers[0], dict):
        return False
    return layer_kind(raw_layers[0].get("type")) == "linear"


def _examples(raw: dict) -> list[np.ndarray]:
    fields = Fields(raw, ("input",), "a mapping with examples")
    items = fields.get("examples")
    path = fields.at("examples")
    if fields.has("values") or fields.has("shape"):
        raise ConfigError("give examples (a list of inputs) or values or shape, not both", path)
    fields.finish()
    if not isinstance(items, list) or not items:
        raise ConfigError(f"expected a list of inputs, one per example, found {describe(items)}", path)
    _check_count(len(items), path)
    examples = []
    for n, item in enumerate(items):
        values = tensor(item if isinstance(item, list) else [item], path + (n,))
        if values.ndim == 2:
            values = values.reshape(1, *values.shape)
        if values.ndim not in (1, 3):
            raise ConfigError(f"expected [C][H][W], [H][W] or [K] numbers, found {values.ndim} levels", path + (n,))
        if examples and values.shape != examples[0].shape:
            raise ConfigError(
                f"example {n + 1} has shape {list(values.shape)}, example 1 has {list(examples[0].shape)}: "
                "every example of a batch has the same shape",
                path + (n,),
            )
        examples.append(values)
    return examples


def _check_count(count: int, path: tuple) -> None:
    if count > MAX_EXAMPLES:
        raise ConfigError(f"a batch of {count} examples; the limit is {MAX_EXAMPLES}", path)


def build_batch(top: Fields, names: tuple[str, str], examples: list, layers: list[Layer], params: dict, budget: dict):
    """The Batch: one Network per example, sharing the layers and parameter arrays."""
    name, source = names
    if budget["work"] * len(examples) > budget["max_work"]:
        raise ConfigError(
            f"{len(examples)} examples of {budget['work']:,} multiply-adds each need "
            f"{budget['work'] * len(examples):,} per pass; the limit is {budget['max_work']:,} "
            "(raise it with --max-work, or use fewer examples)",
            ("input",),
        )
    shape = layers[-1].out_shape if layers else examples[0].shape
    losses, targets, reduction = _batch_loss(top.get("loss"), layers, shape, len(examples))
    if top.has("train"):
        raise ConfigError("train: is not available for a batch yet (give one example)", ("train",))
    top.finish()
    floats: dict = {}  # the parameters' floats, converted once for every example
    networks = [
        Network(name, source, x, layers, params, loss, target, _float_arrays=floats)
        for x, loss, target in zip(examples, losses, targets)
    ]
    return Batch(networks, reduction)


def _batch_loss(raw: object, layers: list[Layer], out_shape: tuple, count: int):
    """One loss and one target per example, and the batch reduction."""
    fields = Fields(raw, ("loss",), "a mapping with type and target")
    kind = fields.choice("type", tuple(LOSS_KINDS))
    cls = LOSS_KINDS[kind]
    raw_target, path = fields.get("target"), fields.at("target")
    if not isinstance(raw_target, list) or len(raw_target) != count:
        raise ConfigError(
            f"the input is a batch of {count} examples: expected a list of {count} targets, one per example "
            f"(found {describe(raw_target) if not isinstance(raw_target, list) else f'{len(raw_target)} entries'})",
            path,
        )
    size = int(np.prod(out_shape))
    targets = [_target(item, cls.takes_class_index, size, path + (n,)) for n, item in enumerate(raw_target)]
    reduction = fields.choice("batch_reduction", REDUCTIONS, "mean")
    for key in ("weight_decay", "decay_bias"):
        if fields.has(key):
            raise ConfigError(f"{key} is not available for a batch yet", fields.at(key))
    settings = read_settings(fields, cls.settings)
    try:
        losses = [cls.create(layers, target, **settings) for target in targets]
    except ShapeError as error:
        raise ConfigError(str(error), fields.at(error.key) if error.key else fields.path) from None
    return losses, targets, reduction
