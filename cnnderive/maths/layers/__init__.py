"""The layer kinds, by their config `type`. A new kind is one class and one line here."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import Cut, Layer, Setting, Shape, Term
from .conv import Conv2d
from .linear import Flatten, Linear
from .pooling import AvgPool2d, MaxPool2d

LAYER_KINDS: dict[str, type[Layer]] = {
    "conv2d": Conv2d,
    "linear": Linear,
    "flatten": Flatten,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
    "softmax": Softmax,
    "maxpool2d": MaxPool2d,
    "avgpool2d": AvgPool2d,
}

__all__ = ["LAYER_KINDS", "Cut", "Layer", "Setting", "Shape", "Term"]
