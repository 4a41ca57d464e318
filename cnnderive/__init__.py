"""cnnderive: backpropagation in a small convolutional network, step by step and exactly.

    >>> import cnnderive
    >>> d = cnnderive.load("configs/seed000_maxpool_flatten.yaml")
    >>> d.floats.loss, d.values.grads["conv1.weight"]
"""

__version__ = "0.1.0"


def load(path):
    """Read a network config and return its Derivation: forward values, deltas, gradients, chain terms."""
    from .config import load as load_network
    from .derivation.build import Derivation

    return Derivation(load_network(path))
