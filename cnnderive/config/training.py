"""The training fields of a config: the loss's weight decay and the `train:` mapping (SGD steps)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..maths.losses import WeightDecay
from ..maths.network import SGD, Network
from .fields import Fields
from .tensors import param_tensor


def weight_decay(fields: Fields) -> WeightDecay:
    """`weight_decay: λ` (exact, >= 0, default 0) and `decay_bias` (default false) of the loss mapping."""
    rate = fields.number("weight_decay", 0)
    if rate < 0:
        raise ConfigError(f"weight_decay must be 0 or more, found {rate}", fields.at("weight_decay"))
    bias = fields.bool("decay_bias", False)
    if bias and rate == 0:
        raise ConfigError("decay_bias: true needs a weight_decay above 0", fields.at("decay_bias"))
    return WeightDecay(rate, bias)


MAX_STEPS = 10  # exact weights grow with every step (their digits about triple per step)


def read_train(raw: object, network: Network) -> SGD:
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
        velocity[key] = param_tensor(given.get(key), shape, layer, param, given.at(key))
    return velocity
