"""Symbols of a right formula that stand in for the chain rule's own, equal only at this config.

With stride-1 max-pooling two windows can pick the same element, so f¹₁ and f¹₂ are one number;
where a ReLU is on, a¹₁ is z¹₁. A formula that writes f¹₂ where the chain-rule term has f¹₁ is
then right here (the same function, with this config's masks and max-pool choices), but only
because of them: `check` accepts it and says which symbol the chain rule uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

MOST_PAIRS = 2_500  # symbols of yours x symbols of the chain rule compared
RESHAPES = ("flatten", "identity")  # layers whose output is their input, for every config


@dataclass(frozen=True)
class StandIn:
    """`yours` written where the chain rule has `chain`; both are `element` here (None when they are
    equal without being one element, e.g. equal numbers)."""

    yours: sympy.Symbol
    chain: sympy.Symbol
    element: sympy.Symbol | None


def stand_ins(evaluator, written: sympy.Expr, right: sympy.Expr) -> tuple[StandIn, ...]:
    """Each symbol of yours that the right formula does not use, paired with one of the right formula's
    that is the same function of the inputs and parameters (and not the same element by a reshape)."""
    symbolic = evaluator.symbolic
    mine = {s for s in written.free_symbols if s in symbolic.owner} - right.free_symbols
    theirs = sorted({s for s in right.free_symbols if s in symbolic.owner} - written.free_symbols, key=str)
    if not mine or not theirs or len(mine) * len(theirs) > MOST_PAIRS:
        return ()
    found = []
    for symbol in sorted(mine, key=str):
        for chain in theirs:
            if _root(symbolic, symbol, RESHAPES) == _root(symbolic, chain, RESHAPES):
                continue  # f₁ for p₁₁: one element, whatever the numbers
            if evaluator.identical(symbol, chain):
                same = _root(symbolic, symbol, None)
                found.append(StandIn(symbol, chain, same if same == _root(symbolic, chain, None) else None))
                break
    return tuple(found)


def _root(symbolic, symbol: sympy.Symbol, through: tuple[str, ...] | None) -> sympy.Symbol:
    """The element a symbol is defined as, followed through layers that pass one element on (only the
    `through` kinds, or any: a max-pool winner, a ReLU that is on)."""
    definitions, layers = symbolic.definitions, symbolic.network.layers
    for _ in range(len(layers) + 1):
        rule = definitions.get(symbol)
        tensor, _index = symbolic.owner[symbol]
        if rule is None or not rule.is_Symbol or tensor.layer is None:
            return symbol
        if through is not None and layers[tensor.layer].kind not in through:
            return symbol
        symbol = rule
    return symbol
