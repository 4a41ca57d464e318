"""`explain`, a conv layer's dL/d(input): the full convolution of dL/dz with the kernel rotated 180°.

This is the step students trip on most, so it is shown in pieces: the sentence, the rotated
kernel, dL/dz padded (and spread out by the stride) with zeros, and for one element the window
of that padded map that the rotated kernel lies on. Nothing here computes a gradient: the
entries are dL/dz values placed where the full convolution reads them; the sums come from the
derivation's records (explain_backward._rules and the dL/dx matrix).
"""

from __future__ import annotations

import numpy as np
from rich.columns import Columns
from rich.console import RenderableType
from rich.text import Text

from .explain_view import View, prose


def full_conv_sentence(view: View, step) -> Text:
    """How dL/dx comes from dL/dz: one sentence, with what stride, padding and channels change."""
    z, x = step.output.unicode(), step.input.unicode()
    layer = step.layer
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    text = (
        f"Input: each {x} element fed every output whose window covered it; from each it gets ∂L/∂{z} "
        f"times the weight that multiplied it, and these terms add up. For all elements at once this is "
        f"the full convolution of ∂L/∂{z} with the kernel rotated by 180°: pad ∂L/∂{z} with "
        f"{_count(kh - 1, 'row')} of zeros above and below and {_count(kw - 1, 'column')} left and right, "
        f"slide the rotated kernel over it, and at each position multiply element by element and add."
    )
    if (sh, sw) != (1, 1):
        text += (
            f" With stride {sh}x{sw}, first spread ∂L/∂{z} out: {sh - 1} zero rows between its rows and "
            f"{sw - 1} zero columns between its columns (the positions the window skipped)."
        )
    if (ph, pw) != (0, 0):
        text += f" The forward padding ({ph}x{pw}) was not input, so it is cut off: {ph} rows and {pw} columns fewer."
    if layer.out_channels > 1 or step.input.shape[0] > 1:
        text += (
            f" With several channels, input channel c adds the full convolutions of every output channel o "
            f"of ∂L/∂{z} with its kernel w[o,c], each rotated."
        )
    return prose(text)


def padded_delta(view: View, step, channel: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """dL/dz of one output channel where the full convolution reads it: spread by the stride, padded by
    kernel - 1 - padding (exact values and floats); None when the padding is wider than the kernel."""
    layer = step.layer
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    if ph > kh - 1 or pw > kw - 1:
        return None
    _, height, width = step.input.shape
    exact = np.full((height + kh - 1, width + kw - 1), 0, dtype=object)
    approx = np.zeros(exact.shape)
    delta, floats = step.delta[channel], view.floats.deltas[step.position + 1][channel]
    for (i, j), value in np.ndenumerate(delta):
        row, col = kh - 1 - ph + i * sh, kw - 1 - pw + j * sw
        if row < exact.shape[0] and col < exact.shape[1]:
            exact[row, col], approx[row, col] = value, floats[i, j]
    return exact, approx


def full_conv_items(view: View, step, worked: tuple[int, ...] | None) -> list[RenderableType]:
    """The rotated kernel, dL/dz padded, and for the element `worked` of dL/dx the window the kernel lies on."""
    z, name = step.output.unicode(), step.layer.name
    w = view.derivation.tensors[f"{name}.weight"]
    flipped = view.network.params[name]["weight"][..., ::-1, ::-1]
    items: list[RenderableType] = [view.tensor_view(w, flipped, f"{w.unicode()} rotated 180°")]
    padded = padded_delta(view, step)
    if padded is None:
        return items
    several = step.layer.out_channels > 1
    label = f"∂L/∂{z} padded" + (" (output channel 1)" if several else "")
    items.append(view.tensor_view(None, padded[0], label, approx=padded[1], dim_zeros=True))
    if worked is None or several:
        return items
    kh, kw = step.layer.kernel
    c, a, b = worked
    window = padded[0][a : a + kh, b : b + kw], padded[1][a : a + kh, b : b + kw]
    x = step.input.unicode(worked)
    items.append(
        prose(
            f"So ∂L/∂{x} is the rotated kernel laid on the padded ∂L/∂{z} at rows {a + 1}-{a + kh}, "
            f"columns {b + 1}-{b + kw}: multiply element by element and add."
        )
    )
    rotated = flipped[0, c]
    items.append(
        Columns(
            [
                view.tensor_view(None, window[0], "window", approx=window[1], dim_zeros=True),
                view.tensor_view(None, rotated, f"{w.unicode()} rotated"),
            ],
            padding=(0, 4),
        )
    )
    return items


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
