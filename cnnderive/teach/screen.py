"""Rejecting accidental variants: an exact max-pool tie, a ReLU input exactly 0, one element winning
several pooling windows, or a named mistake whose value lands within the tolerance of the right one.

An exercise with such an accident has an answer that hangs on a convention, or lets a student
with a common mistake reach the right number; the generator draws again instead.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def accident(network, allow: frozenset[str]) -> str | None:
    """Why this network is an accident (a tie, an exact zero, a shared winner), or None."""
    values = network.rational_values  # exact inputs of the layers before any exp/tanh
    for k, layer in enumerate(network.layers[: len(values)]):
        x = values[network.inputs_of(k)[0]]  # its (first) input: a graph need not read the previous layer
        if layer.kind in ("relu", "leaky_relu") and "zero" not in allow:
            zeros = [index for index in np.ndindex(*x.shape) if x[index] == 0]
            if zeros:
                return f"the input of {layer.name} is exactly 0 at {list(zeros[0])}"
        if layer.kind == "maxpool2d":
            ties = layer.ties(x)
            if ties and "tie" not in allow:
                return f"{layer.name}: window {list(ties[0][0])} has a tied maximum"
            shared = _shared_winner(layer, network.kinks[k])
            if shared is not None and "shared_winner" not in allow:
                return f"{layer.name}: element {list(shared)} wins several windows"
    if network.kink_notes and not {"tie", "zero"} <= allow:
        return f"a kink after exp or tanh sits exactly on its edge ({network.kink_notes[0].text})"
    return None


def _shared_winner(layer, kinks) -> tuple[int, ...] | None:
    """The first input element that is the maximum of more than one window, if any."""
    rows, cols = kinks
    channels = np.broadcast_to(np.arange(rows.shape[0])[:, None, None], rows.shape)
    counts = Counter(zip(channels.flat, rows.flat, cols.flat))
    return next((tuple(int(i) for i in element) for element, n in counts.items() if n > 1), None)


def tolerance_of(value: float, relative: float) -> float:
    """The absolute tolerance around a value: relative, with a floor for values at or near 0."""
    return max(relative * abs(value), ABSOLUTE_FLOOR)


ABSOLUTE_FLOOR = 1e-6


def too_close(right: float, wrong: float, relative: float) -> bool:
    """True when the two tolerance windows overlap: a student's number could be read as either."""
    return abs(right - wrong) <= tolerance_of(right, relative) + tolerance_of(wrong, relative)
