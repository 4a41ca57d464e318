"""The common backprop mistakes, each built from the right derivation so that it can be recognised.

A mistake is not found by reading the student's text: each one is constructed (the chain-rule
terms combined wrongly, or the backward pass rerun with one rule done wrong) and the student's
value or formula is compared with that construction. Each has a name and a paragraph that
explains the right rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from .explanations import EXPLANATIONS

MODIFIERS = {"sign": "a sign error", "factor_two": "the factor 2 dropped"}


@dataclass(frozen=True)
class Mistake:
    """A named mistake: its key, title and explanation, and what it concerns (a term, a layer)."""

    key: str
    title: str
    explanation: str
    term: object | None = None  # the chain-rule term a dropped/only-term mistake is about
    also: tuple[str, ...] = ()  # modifiers on top: "sign", "factor_two"

    @property
    def name(self) -> str:
        return " and ".join([self.title] + [MODIFIERS[m] for m in self.also])


@dataclass(frozen=True)
class Variant:
    """A mistaken version of the right gradient: an expression over the symbols, or a number."""

    mistake: Mistake
    expr: object


@dataclass(frozen=True)
class Track:
    """Where the variants are built: on symbols (to compare formulas) or on numbers (to compare values)."""

    right: object  # the right gradient on this track
    pairs: tuple[tuple[object, object], ...]  # (∂L/∂out, ∂out/∂asked) of each chain-rule term
    run: Callable  # network -> its backward Pass on this track
    pick: Callable  # Pass -> the asked gradient out of it


def mistake(key: str, term=None, also: tuple[str, ...] = (), **fill) -> Mistake:
    title, explanation = EXPLANATIONS[key]
    return Mistake(key, title.format(**fill), explanation, term, also)


def variants(network, terms, track: Track, backward: bool = True) -> list[Variant]:
    """Every mistaken version of the asked gradient that applies here, also with a sign or factor-2 slip."""
    right = track.right
    base = chain_variants(terms, track) + (backward_variants(network, track) if backward else [])
    found = list(base)
    mse = network.loss.kind == "mse"
    found.append(Variant(mistake("sign"), -right))
    if mse:
        found.append(Variant(mistake("factor_two"), right / 2))
        size = int(np.prod(network.output_shape))
        if network.loss.reduction == "mean" and size > 1:
            found.append(Variant(mistake("mean"), right * size))
    for variant in base:
        m = variant.mistake
        found.append(Variant(dataclasses.replace(m, also=("sign",)), -variant.expr))
        if mse:
            found.append(Variant(dataclasses.replace(m, also=("factor_two",)), variant.expr / 2))
    return found


def chain_variants(terms, track: Track, most: int = 32) -> list[Variant]:
    """The chain-rule terms combined wrongly: a product of sums, products, local factors or a term left out."""
    pairs = list(zip(terms, track.pairs))
    live = [(term, pair) for term, pair in pairs if term.cut is None]
    products = [delta * local for _, (delta, local) in live]
    found = []
    if len(pairs) > 1:
        deltas = _sum(delta for _, (delta, _) in pairs)
        found.append(Variant(mistake("product_of_sums"), _sum(local for _, (_, local) in pairs) * deltas))
        if live and len(live) != len(pairs):
            found.append(Variant(mistake("product_of_sums"), _sum(local for _, (_, local) in live) * deltas))
    if len(live) > 1:
        found.append(Variant(mistake("products"), _product(products)))
        if len(live) <= most:
            for (term, _), product in zip(live, products):
                found.append(Variant(mistake("dropped_term", term), track.right - product))
                found.append(Variant(mistake("only_term", term), product))
    if live and any(local != 1 for _, (_, local) in live):
        found.append(Variant(mistake("local_left_out"), _sum(delta for _, (delta, _) in live)))
    return found


def _sum(items):
    items = list(items)
    if items and all(isinstance(item, sympy.Basic) for item in items):
        return sympy.Add(*items)
    return sum(items[1:], items[0]) if items else 0


def _product(items):
    items = list(items)
    if all(isinstance(item, sympy.Basic) for item in items):
        return sympy.Mul(*items)
    result = items[0]
    for item in items[1:]:
        result = result * item
    return result


# -- the backward pass rerun with one rule done wrong ---------------------------------------------


class _Patched:
    """A layer (or loss) with one method replaced by a mistaken rule; everything else is the original's."""

    def __init__(self, original, **methods) -> None:
        self._original = original
        self.__dict__.update(methods)

    def __getattr__(self, name: str):
        return getattr(self._original, name)


def _like(values: list | np.ndarray, shape, delta: np.ndarray) -> np.ndarray:
    """An array of the given values in the dtype of delta (object for exact and symbolic tracks)."""
    out = np.empty(shape, dtype=object)
    out[...] = values
    return out if delta.dtype == object else out.astype(delta.dtype)


def _no_derivative(x, y, delta, params, kinks, ops):
    return delta, {}


def _softmax_diagonal(x, y, delta, params, kinks, ops):
    return delta * y * (1 - y), {}


def _pool_to_all(layer):
    def backward(x, y, delta, params, kinks, ops):
        delta_x = _like(ops.const(0), x.shape, np.empty(0, dtype=object))
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        for c, i, j in np.ndindex(*delta.shape):
            delta_x[c, i * sh : i * sh + kh, j * sw : j * sw + kw] += delta[c, i, j]
        return _like(delta_x, x.shape, delta), {}

    return backward


def _flatten_order(layer, order: str):
    channels, height, width = layer.in_shape

    def backward(x, y, delta, params, kinks, ops):
        if order == "columns":
            return delta.reshape(channels, width, height).transpose(0, 2, 1), {}
        return delta.reshape(height, width, channels).transpose(2, 0, 1), {}

    return backward


def _multiplied(layer):
    """The gradient of each input as the product, not the sum, of what each next neuron sends back."""

    def backward(x, y, delta, params, kinks, ops):
        _, grads = layer.backward(x, y, delta, params, kinks, ops)
        weight = params["weight"]
        parts: dict = {}
        for w_index in np.ndindex(*weight.shape):
            for term in layer.param_terms("weight", w_index):
                if term.in_index is not None:
                    parts.setdefault(term.in_index, []).append(weight[w_index] * delta[term.out_index])
        delta_x = _like(ops.const(0), x.shape, np.empty(0, dtype=object))
        for index, contributions in parts.items():
            delta_x[index] = _product(contributions)
        return _like(delta_x, x.shape, delta), grads

    return backward


_ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}


def backward_variants(network, track: Track) -> list[Variant]:
    """The backward pass rerun with one layer's rule done wrong, for every layer where that can happen."""
    _ = network.kinks  # decided now, so that every variant shares them
    layers = network.layers
    fused = network.fused_loss()
    found = []

    def rerun(key: str, patches: dict, loss=None, **fill) -> None:
        changed = [patches.get(k, layer) for k, layer in enumerate(layers)]
        variant_network = dataclasses.replace(network, layers=changed, loss=loss or network.loss)
        found.append(Variant(mistake(key, **fill), track.pick(track.run(variant_network))))

    for k, layer in enumerate(layers):
        final = fused and k == len(layers) - 1
        if layer.kind in _ACTIVATIONS and not final:
            rerun("activation_left_out", {k: _Patched(layer, backward=_no_derivative)}, kind=_ACTIVATIONS[layer.kind])
        if layer.kind == "softmax" and not final:
            rerun("softmax_diagonal", {k: _Patched(layer, backward=_softmax_diagonal)})
        if layer.kind == "maxpool2d":
            rerun("maxpool_all", {k: _Patched(layer, backward=_pool_to_all(layer))})
        if layer.kind == "flatten" and len(layer.in_shape) == 3:
            for order in ("columns", "channels_last"):
                rerun("flatten_transposed", {k: _Patched(layer, backward=_flatten_order(layer, order))})
        if layer.kind in ("linear", "conv2d"):
            rerun("next_layer_multiplied", {k: _Patched(layer, backward=_multiplied(layer))})
    if fused:
        loss, last = network.loss, layers[-1]
        left_out = _Patched(loss, fused_delta=lambda _last, out, t, ops: loss.delta(out, t, ops))
        rerun("activation_left_out", {}, left_out, kind=_ACTIVATIONS[last.kind])
        if last.kind == "softmax":
            diagonal = _Patched(loss, fused_delta=lambda _last, out, t, ops: loss.delta(out, t, ops) * out * (1 - out))
            rerun("softmax_diagonal", {}, diagonal)
    return found


def symbolic_run(symbolic):
    """The backward pass of a (mistaken) network on the symbols of `symbolic`."""
    arrays = symbolic.arrays

    def run(network):
        params = {
            layer.name: {p: arrays[f"{layer.name}.{p}"] for p in network.params[layer.name]} for layer in network.layers
        }
        values = [arrays["input"]] + [arrays[f"{layer.name}.output"] for layer in network.layers]
        return network.run(symbolic.ops, inputs=values[0], params=params, target=arrays["target"], values=values)

    return run
