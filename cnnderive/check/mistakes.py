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
from fractions import Fraction

import numpy as np
import sympy

from .explanations import EXPLANATIONS, explanation, network_features
from .wrong_rules import WINDOW_RULES, like

MODIFIERS = {"sign": "a sign error", "factor_two": "the factor 2 dropped"}


@dataclass(frozen=True)
class Mistake:
    """A named mistake: its key, title and explanation, and what it concerns (a term, a layer)."""

    key: str
    title: str
    explanation: str
    term: object | None = None  # the chain-rule term a dropped/only-term mistake is about
    also: tuple[str, ...] = ()  # modifiers on top: "sign", "factor_two"
    terms: tuple = ()  # every term it may be about, when terms of equal value give the same mistake

    @property
    def about(self) -> tuple:
        """The chain-rule terms this mistake names (none for most)."""
        return self.terms or (() if self.term is None else (self.term,))

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
    run: Callable  # overrides -> the backward Pass on this track with those rules replaced
    pick: Callable  # Pass -> the asked gradient out of it
    decay: object = None  # λ·w on this track, when the asked parameter is decayed


def mistake(key: str, features: frozenset[str], term=None, at: str | None = None, **fill) -> Mistake:
    """The named mistake, its paragraph about what this network has (`features`) and, for a layer's
    rule done wrong, about that layer's kind (`at`)."""
    about = features | {f"at:{at}"} if at else features
    return Mistake(key, EXPLANATIONS[key][0].format(**fill), explanation(key, about), term)


def variants(network, terms, track: Track, backward: bool = True) -> list[Variant]:
    """Every mistaken version of the asked gradient that applies here, also with a sign or factor-2 slip."""
    right, features = track.right, network_features(network)
    base = chain_variants(terms, track, features) + decay_variants(track, features)
    if backward:
        base += backward_variants(network, track, features) + kink_variants(network, track, features)
    found = list(base)
    mse = network.loss.kind == "mse"
    found.append(Variant(mistake("sign", features), -right))
    if mse:
        found.append(Variant(mistake("factor_two", features), right / 2))
        size = int(np.prod(network.output_shape))
        if network.loss.reduction == "mean" and size > 1:
            found.append(Variant(mistake("mean", features), right * size))
    for variant in base:
        m = variant.mistake
        found.append(Variant(dataclasses.replace(m, also=("sign",)), -variant.expr))
        if mse:
            found.append(Variant(dataclasses.replace(m, also=("factor_two",)), variant.expr / 2))
    return found


def chain_variants(terms, track: Track, features: frozenset[str], most: int = 32) -> list[Variant]:
    """The chain-rule terms combined wrongly: a product of sums, products, local factors or a term left out."""
    pairs = list(zip(terms, track.pairs))
    live = [(term, pair) for term, pair in pairs if term.cut is None]
    products = [delta * local for _, (delta, local) in live]
    found = []
    if len(pairs) > 1:
        deltas = _sum(delta for _, (delta, _) in pairs)
        found.append(Variant(mistake("product_of_sums", features), _sum(local for _, (_, local) in pairs) * deltas))
        if live and len(live) != len(pairs):
            found.append(Variant(mistake("product_of_sums", features), _sum(local for _, (_, local) in live) * deltas))
    if len(live) > 1:
        found.append(Variant(mistake("products", features), _product(products)))
        if len(live) <= most:
            for (term, _), product in zip(live, products):
                found.append(Variant(mistake("dropped_term", features, term), track.right - product))
                found.append(Variant(mistake("only_term", features, term), product))
    if live and any(local != 1 for _, (_, local) in live):
        found.append(Variant(mistake("local_left_out", features), _sum(delta for _, (delta, _) in live)))
    return found


def decay_variants(track: Track, features: frozenset[str]) -> list[Variant]:
    """The weight decay's λ·w left out, counted twice (the penalty taken as λ·Σw²) or halved (λ/2·w)."""
    if track.decay is None:
        return []
    right, decay = track.right, track.decay
    return [
        Variant(mistake("decay_left_out", features), right - decay),
        Variant(mistake("decay_twice", features), right + decay),
        Variant(mistake("decay_half", features), right - decay / 2),
    ]


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
# Each entry builds a mistaken backward rule for one layer (None where it does not apply); the
# pass is rerun with it through Network.run(overrides=...).


def _left_out(layer):
    return lambda x, y, delta, params, kinks, ops: (delta, {})


def _softmax_diagonal(layer):
    return lambda x, y, delta, params, kinks, ops: (delta * y * (1 - y), {})


def _dropout_unscaled(layer):
    """Dropout's backward with the mask but not PyTorch's 1/(1 - p) (the forward pass scaled by it)."""
    if layer.p == 0:
        return None

    def backward(x, y, delta, params, kinks, ops):
        mask = np.array([ops.const(m) for m in layer.kept], dtype=object).reshape(x.shape)
        return delta * like(mask, x.shape, delta), {}

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
        delta_x = like(ops.const(0), x.shape, np.empty(0, dtype=object))
        for index, contributions in parts.items():
            delta_x[index] = _product(contributions)
        return like(delta_x, x.shape, delta), grads

    return backward


_ACTIVATION = ("activation_left_out", _left_out)
WRONG_RULES: dict[str, list[tuple[str, Callable]]] = {
    "relu": [_ACTIVATION],
    "leaky_relu": [_ACTIVATION],
    "sigmoid": [_ACTIVATION],
    "tanh": [_ACTIVATION],
    "softmax": [_ACTIVATION, ("softmax_diagonal", _softmax_diagonal)],
    "linear": [("next_layer_multiplied", _multiplied)],
    "dropout": [("dropout_scale_left_out", _dropout_unscaled)],
    "conv2d": [("next_layer_multiplied", _multiplied), *WINDOW_RULES["conv2d"]],
} | {kind: rules for kind, rules in WINDOW_RULES.items() if kind != "conv2d"}
# the same slips made where the loss is differentiated through the final softmax or sigmoid
FUSED_WRONG_RULES: dict[str, list[tuple[str, Callable]]] = {
    "sigmoid": [("activation_left_out", lambda loss: lambda out, t, ops: loss.delta(out, t, ops))],
    "softmax": [
        ("activation_left_out", lambda loss: lambda out, t, ops: loss.delta(out, t, ops)),
        ("softmax_diagonal", lambda loss: lambda out, t, ops: loss.delta(out, t, ops) * out * (1 - out)),
    ],
}
ACTIVATION_NAMES = {
    "relu": "ReLU",
    "leaky_relu": "leaky ReLU",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
}


def backward_variants(network, track: Track, features: frozenset[str]) -> list[Variant]:
    """The backward pass rerun with one layer's rule done wrong, for every layer where that can happen."""
    layers, fused = network.layers, network.fused_loss()
    found = []
    for k, layer in enumerate(layers):
        if fused and k == len(layers) - 1:
            continue
        for key, make in WRONG_RULES.get(layer.kind, []):
            rule = make(layer)
            if rule is not None:
                passed = track.run({k: rule})
                kh, kw = getattr(layer, "kernel", (1, 1))
                named = mistake(key, features, at=layer.kind, kind=ACTIVATION_NAMES.get(layer.kind, ""), size=kh * kw)
                found.append(Variant(named, track.pick(passed)))
    if not network.is_chain():  # a tensor read by several layers: its parts averaged, not summed
        passed = track.run({"combine": _averaged})
        found.append(Variant(mistake("residual_averaged", features), track.pick(passed)))
    if fused:
        last = layers[-1]
        for key, make in FUSED_WRONG_RULES.get(last.kind, []):
            passed = track.run({"fused": make(network.loss)})
            named = mistake(key, features, at=last.kind, kind=ACTIVATION_NAMES[last.kind])
            found.append(Variant(named, track.pick(passed)))
    return found


def _averaged(parts: list, ops):
    """The mistake: the parts of dL/d(a tensor several layers read) averaged instead of summed."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total * ops.const(Fraction(1, len(parts)))


def kink_variants(network, track: Track, features: frozenset[str]) -> list[Variant]:
    """The backward pass with an exact kink decided by the other convention: ReLU'(0) = 1 at an
    input exactly 0, or a tied max-pool window's gradient sent to another of its maxima."""
    found, values = [], network.rational_values
    for k, layer in enumerate(network.layers[: len(values) - 1]):
        x, kinks = values[network.inputs_of(k)[0]], network.kinks[k]
        if layer.kind in ("relu", "leaky_relu"):
            zeros = np.asarray(x == 0, dtype=bool)
            if zeros.any():
                rule = _with_kinks(layer, np.asarray(kinks, dtype=bool) | zeros)
                passed = track.run({k: rule})
                named = mistake("kink_convention", features, what="derivative 1 at an input exactly 0")
                found.append(Variant(named, track.pick(passed)))
        elif layer.kind == "maxpool2d":
            for other in _other_winners(layer, x, kinks):
                passed = track.run({k: _with_kinks(layer, other)})
                named = mistake("kink_convention", features, what="another of a tie's maxima")
                found.append(Variant(named, track.pick(passed)))
    return found


def _with_kinks(layer, kinks):
    return lambda x, y, delta, params, _kinks, ops: layer.backward(x, y, delta, params, kinks, ops)


def _other_winners(layer, x, kinks) -> list:
    """Max-pool winners with one tied window routed to another of its maxima instead of the first."""
    rows, cols = kinks
    found = []
    for window, tied in layer.ties(x):
        for _, row, col in tied[1:]:
            other_rows, other_cols = rows.copy(), cols.copy()
            other_rows[window], other_cols[window] = row, col
            found.append((other_rows, other_cols))
    return found[:16]


def symbolic_run(symbolic):
    """The backward pass on the symbols of `symbolic`, with some rules replaced."""
    arrays, network = symbolic.arrays, symbolic.network

    def run(overrides):
        params = {
            layer.name: {p: arrays[f"{layer.name}.{p}"] for p in network.params[layer.name]} for layer in network.layers
        }
        values = [arrays["input"]] + [arrays[f"{layer.name}.output"] for layer in network.layers]
        return network.run(
            symbolic.ops, inputs=values[0], params=params, target=arrays["target"], values=values, overrides=overrides
        )

    return run
