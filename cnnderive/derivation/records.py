"""The derivation as data: frozen records of chain-rule facts that every printer and `check` read.

Nothing here computes or prints. A `Term` is one path from an element to the loss; an
`ElementGradient` is dL/d(one element) as the sum of its terms. Values are exact where the
derivation is (fractions, SymPy numbers), with their floats alongside; `*_form` fields hold the
closed forms over intermediates (z, a, o, y) when they were asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..maths.layers import Cut
from .names import Tensor

Index = tuple[int, ...]


@dataclass(frozen=True)
class Term:
    """dL/d(out[out_index]) · d(out[out_index])/d(element): one chain-rule term."""

    out: Tensor
    out_index: Index
    factor: Tensor | None  # the element that d(out)/d(element) equals (a weight's input); None otherwise
    factor_index: Index | None
    delta: object  # dL/d(out[out_index])
    local: object  # d(out[out_index])/d(element)
    delta_approx: float
    local_approx: float
    cut: Cut | None  # why the term is zero (ReLU off, not the max-pool winner, padding), if it is
    delta_form: object | None = None  # dL/d(out) over intermediates, when closed forms were built
    local_form: object | None = None  # d(out)/d(element): a symbol, a number or a rule's derivative

    @property
    def value(self) -> object:
        return self.delta * self.local

    @property
    def approx(self) -> float:
        return self.delta_approx * self.local_approx


@dataclass(frozen=True)
class DecayTerm:
    """λ·w: the weight decay's part of dJ/dw, the derivative of the penalty λ/2·w². Exact always
    (λ and w are the config's numbers), so `value` is a Fraction."""

    rate: object  # λ
    weight: object  # w
    value: object  # λ·w
    approx: float
    chain_approx: float  # dL/dw, the chain-rule sum without λ·w, as a float
    form: object | None = None  # λ·w over the weight's symbol, when closed forms were built


@dataclass(frozen=True)
class ElementGradient:
    """dL/d(one element: a parameter, an input or a layer output) = the sum of its terms.

    With weight decay a parameter's gradient is dJ/dw = (the sum of its chain-rule terms) + λ·w:
    `value`, `approx` and `form` are the whole of dJ/dw, `decay` the second part on its own.
    """

    tensor: Tensor
    index: Index
    terms: tuple[Term, ...]
    value: object
    approx: float
    form: object | None = None  # the closed form over intermediates, common factors pulled out
    decay: DecayTerm | None = None  # λ·w, when this parameter is decayed

    @property
    def chain_value(self) -> object:
        """dL/dw: the sum of the chain-rule terms, without the decay (the value when λw is left out)."""
        return self.value if self.decay is None else self.value - self.decay.value

    @property
    def chain_approx(self) -> float:
        return self.approx if self.decay is None else self.decay.chain_approx

    @property
    def name(self) -> str:
        return self.tensor.element(self.index)

    @property
    def is_parameter(self) -> bool:
        return self.tensor.role in ("weight", "bias")

    @property
    def live_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.cut is None)

    @property
    def cut_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.cut is not None)

    def pick(self, backward) -> object:
        """This gradient out of a backward pass (a parameter's gradient, or a delta), on any track."""
        if self.is_parameter:
            return backward.grads[self.tensor.name][self.index]
        position = 0 if self.tensor.role == "input" else self.tensor.layer + 1
        return backward.deltas[position][self.index]
