"""The layer kinds, by their config `type`. A new kind is one class and one line here."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import Cut, Layer, Setting, Shape, Term
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .merge import Add, Concat
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d

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
    "adaptive_avg_pool2d": GlobalAvgPool2d,
    "dropout": Dropout,
    "add": Add,
    "concat": Concat,
    "batchnorm2d": BatchNorm2d,
    "batchnorm1d": BatchNorm1d,
}

__all__ = ["LAYER_KINDS", "Cut", "Layer", "Setting", "Shape", "Term"]
