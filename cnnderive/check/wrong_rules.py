"""Backward rules done wrong for the window layers (pooling, convolution) and flatten: check's named
mistakes that are a whole rule, not a chain-rule term, done wrong.

Each maker takes the layer and returns a backward function with Layer.backward's signature, or
None where the mistake cannot happen there (no overlapping windows, stride 1); `check` reruns the
backward pass with it through Network.run(overrides=...), on numbers and on symbols alike.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..maths.ops import tensordot


def like(values: list | np.ndarray, shape, delta: np.ndarray) -> np.ndarray:
    """An array of the given values in the dtype of delta (object for exact and symbolic tracks)."""
    out = np.empty(shape, dtype=object)
    out[...] = values
    return out if delta.dtype == object else out.astype(delta.dtype)


def _zeros(shape, delta: np.ndarray, ops) -> np.ndarray:
    return like(ops.const(0), shape, delta)


# -- pooling ----------------------------------------------------------------------------------------


def pool_to_all(layer):
    """Max-pool: each window's gradient added to every element of the window (the max taken as a sum)."""

    def backward(x, y, delta, params, kinks, ops):
        delta_x = like(ops.const(0), x.shape, np.empty(0, dtype=object))
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        for c, i, j in np.ndindex(*delta.shape):
            delta_x[c, i * sh : i * sh + kh, j * sw : j * sw + kw] += delta[c, i, j]
        return like(delta_x, x.shape, delta), {}

    return backward


def _overlapping(layer) -> bool:
    """Whether two of the layer's windows share an element (a stride smaller than the kernel)."""
    (kh, kw), (sh, sw), (_, height, width) = layer.kernel, layer.stride, layer.out_shape
    return (sh < kh and height > 1) or (sw < kw and width > 1)


def maxpool_overwritten(layer):
    """Max-pool: each window's gradient written (=, not +=) to its maximum, window after window in
    row-major order, so that a maximum shared by overlapping windows keeps only the last one's."""
    if not _overlapping(layer):
        return None

    def backward(x, y, delta, params, kinks, ops):
        rows, cols = kinks
        delta_x = _zeros(x.shape, delta, ops)
        for c, i, j in np.ndindex(*delta.shape):
            delta_x[c, rows[c, i, j], cols[c, i, j]] = delta[c, i, j]
        return delta_x, {}

    return backward


def avgpool_overwritten(layer):
    """Avg-pool: each window's share written (=, not +=) to its elements, window after window in
    row-major order, so that an element of overlapping windows keeps only the last one's share."""
    if not _overlapping(layer):
        return None

    def backward(x, y, delta, params, kinks, ops):
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        share = delta * ops.const(Fraction(1, kh * kw))
        delta_x = _zeros(x.shape, delta, ops)
        for c, i, j in np.ndindex(*delta.shape):
            delta_x[c, i * sh : i * sh + kh, j * sw : j * sw + kw] = share[c, i, j]
        return delta_x, {}

    return backward


def avgpool_share_left_out(layer):
    """Avg-pool: the window's gradient copied to its elements without the 1/(kh·kw): k² times the right one."""
    size = layer.kernel[0] * layer.kernel[1]

    def backward(x, y, delta, params, kinks, ops):
        delta_x, grads = layer.backward(x, y, delta, params, kinks, ops)
        return delta_x * ops.const(size), grads

    return backward


# -- convolution ----------------------------------------------------------------------------------


def conv_input_gradient(layer, delta: np.ndarray, weight: np.ndarray, ops, rotate: bool, dilate: bool):
    """dL/dx of a conv layer as the full correlation of the (k-1)-padded delta with the kernel:
    right with the kernel rotated 180° and the delta dilated by the stride (s-1 zeros between its
    elements); `rotate=False` slides the kernel as it is, `dilate=False` keeps the delta's elements
    next to each other (each ∂L/∂z[i,j] sent to the window at (i, j), not (i·s, j·s))."""
    (kh, kw), (ph, pw) = layer.kernel, layer.padding
    sh, sw = layer.stride if dilate else (1, 1)
    _, height, width = layer.out_shape
    spread = _zeros((delta.shape[0], sh * (height - 1) + 2 * kh - 1, sw * (width - 1) + 2 * kw - 1), delta, ops)
    spread[:, kh - 1 : kh - 1 + sh * (height - 1) + 1 : sh, kw - 1 : kw - 1 + sw * (width - 1) + 1 : sw] = delta
    windows = sliding_window_view(spread, layer.kernel, axis=(1, 2))
    kernel = np.ascontiguousarray(weight[:, :, ::-1, ::-1]) if rotate else weight
    reached = tensordot(ops, kernel, windows, ([0, 2, 3], [0, 3, 4]))
    channels, in_height, in_width = layer.in_shape
    padded = _zeros((channels, in_height + 2 * ph, in_width + 2 * pw), reached, ops)
    padded[:, : reached.shape[1], : reached.shape[2]] = reached  # rows a stride skips stay 0
    return padded[:, ph : ph + in_height, pw : pw + in_width]


def _input_rule(layer, rotate: bool, dilate: bool):
    def backward(x, y, delta, params, kinks, ops):
        _, grads = layer.backward(x, y, delta, params, kinks, ops)
        return conv_input_gradient(layer, delta, params["weight"], ops, rotate, dilate), grads

    return backward


def kernel_not_rotated(layer):
    """Conv: dL/dx with the kernel slid over the padded delta as it is, not rotated by 180°."""
    return _input_rule(layer, rotate=False, dilate=True)


def stride_not_dilated(layer):
    """Conv with stride > 1: dL/dx with the delta not dilated (computed as if the stride were 1)."""
    return None if layer.stride == (1, 1) else _input_rule(layer, rotate=True, dilate=False)


def kernel_rotated(where: str) -> Callable:
    """Conv: dL/dW with the delta flipped by 180° (`where="delta"`: x convolved with the delta, not
    correlated) or the right dL/dW rotated by 180° (`where="result"`)."""

    def make(layer):
        def backward(x, y, delta, params, kinks, ops):
            delta_x, grads = layer.backward(x, y, delta, params, kinks, ops)
            if where == "delta":
                flipped = np.ascontiguousarray(delta[:, ::-1, ::-1])
                weight = layer.backward(x, y, flipped, params, kinks, ops)[1]["weight"]
            else:
                weight = np.ascontiguousarray(grads["weight"][:, :, ::-1, ::-1])
            return delta_x, grads | {"weight": weight}

        return backward

    return make


# -- flatten ----------------------------------------------------------------------------------------


def flatten_order(order: str):
    """Flatten read column by column (`order="columns"`) or with the channels last, not row by row."""

    def make(layer):
        if len(layer.in_shape) != 3:
            return None
        channels, height, width = layer.in_shape

        def backward(x, y, delta, params, kinks, ops):
            if order == "columns":
                return delta.reshape(channels, width, height).transpose(0, 2, 1), {}
            return delta.reshape(height, width, channels).transpose(2, 0, 1), {}

        return backward

    return make


_AVERAGE = [("pool_overwritten", avgpool_overwritten), ("avgpool_share_left_out", avgpool_share_left_out)]
WINDOW_RULES: dict[str, list[tuple[str, Callable]]] = {
    "maxpool2d": [("maxpool_all", pool_to_all), ("pool_overwritten", maxpool_overwritten)],
    "avgpool2d": _AVERAGE,
    "adaptive_avg_pool2d": _AVERAGE,
    "conv2d": [
        ("kernel_not_rotated", kernel_not_rotated),
        ("stride_not_dilated", stride_not_dilated),
        ("kernel_rotated", kernel_rotated("delta")),
        ("kernel_rotated", kernel_rotated("result")),
    ],
    "flatten": [("flatten_transposed", flatten_order("columns")), ("flatten_transposed", flatten_order("last"))],
}
