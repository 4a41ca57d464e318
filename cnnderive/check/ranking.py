"""Which of the matched mistakes `check` names, and in what order: the most specific first, each once.

A value or formula often matches several constructions at once. A mistake is more specific when
fewer candidates of its kind exist: one sign error or one dropped factor 2 per gradient, one
wrong rule per layer, one dropped term per chain-rule term (so a coincidence is likeliest there).
A mistake that is another one seen from further away is not named beside it (the local factor
left out when that factor is the activation's derivative; the terms multiplied when the next
layer's gradients were). A slip on top of another comes after the plain ones, and only when no
plain one matched.
"""

from __future__ import annotations

import dataclasses

from .mistakes import Mistake

RANK = (
    "kink_convention",
    "momentum_on_gradient",
    "step_decay_left_out",
    "sign",
    "factor_two",
    "mean",
    "decay_left_out",
    "decay_twice",
    "decay_half",
    "activation_left_out",
    "softmax_diagonal",
    "maxpool_all",
    "pool_overwritten",
    "avgpool_share_left_out",
    "dropout_scale_left_out",
    "kernel_not_rotated",
    "stride_not_dilated",
    "kernel_rotated",
    "flatten_transposed",
    "next_layer_multiplied",
    "product_of_sums",
    "products",
    "local_left_out",
    "only_term",
    "dropped_term",
)
# a mistake -> the more specific ones that, when they match too, name the same slip
SUBSUMED_BY = {
    "products": {"next_layer_multiplied"},
    "local_left_out": {"activation_left_out"},
}


def ranked(found: list[Mistake]) -> tuple[Mistake, ...]:
    """The matched mistakes to name, most specific first, each key named once (with all its terms)."""
    if any(m.key == "kink_convention" for m in found):  # a convention at a kink, not a slip: say only that
        return tuple(_merged([m for m in found if m.key == "kink_convention"]))
    plain = [m for m in found if not m.also]
    chosen = plain or found
    keys = {m.key for m in chosen}
    chosen = [m for m in chosen if not SUBSUMED_BY.get(m.key, set()) & keys]
    chosen.sort(key=lambda m: (RANK.index(m.key) if m.key in RANK else len(RANK), m.also))
    return tuple(_merged(chosen))


def _merged(found: list[Mistake]) -> list[Mistake]:
    """One mistake per key and modifiers: the same slip at terms of equal value is one, naming each term."""
    merged: dict[tuple, Mistake] = {}
    for m in found:
        key = (m.key, m.also, m.title)
        if key not in merged:
            merged[key] = m
            continue
        first = merged[key]
        terms = first.about + tuple(t for t in m.about if all(t is not s for s in first.about))
        merged[key] = dataclasses.replace(first, terms=terms)
    return list(merged.values())
