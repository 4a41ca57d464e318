"""The verdicts of `cnnderive check`: is a hand-computed gradient right, and if not, what went wrong.

A value is compared with the exact gradient; a wrong one is matched against the values that the
common mistakes give (built on numbers). A formula is compared with the right closed form as a
function of the inputs and parameters (compare.Evaluator), then term by term, and matched against
the same mistakes built on symbols. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np
import sympy

from ..derivation.build import Derivation, work
from ..derivation.names import Tensor, parse_element
from ..derivation.symbolic import Symbolic
from ..errors import UserError
from ..maths.layers import Cut
from ..maths.network import Pass
from ..maths.numbers import as_fraction
from ..maths.ops import FloatOps, RationalOps
from .compare import Comparison, Evaluator, Nearby, compare_terms
from .mistakes import Mistake, Track, Variant, symbolic_run, variants
from .values import _same_number, close, parse_value, relative_error

DEFAULT_TOL = 1e-6
CLOSED_FORM_LIMIT = 5_000  # multiply-adds up to which formulas are compared (hand-sized networks)


@dataclass(frozen=True)
class Term:
    """One chain-rule term of the asked gradient: ∂L/∂out[out_index] times ∂out/∂(asked)."""

    out: Tensor
    out_index: tuple[int, ...]
    delta: sympy.Expr | None  # ∂L/∂out[out_index] over intermediates (None without closed forms)
    local: sympy.Expr  # ∂out[out_index]/∂(asked): an element's symbol, a number, or a rule's derivative
    delta_value: object  # their values here, exact where the derivation is
    local_value: object
    cut: str | None  # why the term is zero (ReLU off, not the max-pool winner, padding)
    approx: tuple[float, float] = (0.0, 0.0)  # delta and local as floats

    @property
    def value(self) -> object:
        return self.delta_value * self.local_value


@dataclass(frozen=True)
class Asked:
    """The gradient asked about: ∂L/∂(one parameter, input or layer-output element)."""

    tensor: Tensor
    index: tuple[int, ...]
    right: sympy.Expr | None  # the closed form in textbook form (None when the network is too big)
    value: object  # its value here, exact where the derivation is
    terms: tuple[Term, ...]
    approx: float = 0.0  # the value as a float

    @property
    def name(self) -> str:
        return self.tensor.element(self.index)

    @property
    def is_parameter(self) -> bool:
        return self.tensor.role in ("weight", "bias")

    def pick(self, backward: Pass) -> object:
        """This gradient out of a backward pass (a parameter's gradient, or a delta), on any track."""
        if self.is_parameter:
            return backward.grads[self.tensor.name][self.index]
        position = 0 if self.tensor.role == "input" else self.tensor.layer + 1
        return backward.deltas[position][self.index]


@dataclass(frozen=True)
class ValueVerdict:
    """--value: the given number against the right one."""

    asked: Asked
    given: Fraction
    given_text: str
    right: bool
    exact: bool  # compared exactly (a fraction given, a rational gradient)
    relative_error: float | None
    tol: float
    mistakes: tuple[Mistake, ...]


@dataclass(frozen=True)
class ExprVerdict:
    """--expr: the given formula against the right closed form."""

    asked: Asked
    formula: str
    given: sympy.Expr
    verdict: str  # identical | same_value | wrong
    yours_value: object
    right_value: object
    nearby: Nearby | None
    comparison: Comparison | None
    mistakes: tuple[Mistake, ...]
    read_as: tuple[tuple[str, sympy.Symbol], ...] = ()  # each name as written, and what it was read as

    @property
    def right(self) -> bool:
        return self.verdict == "identical"


class Checker:
    """One network and one asked gradient; closed forms are built only when they are needed."""

    def __init__(self, derivation: Derivation, param: str) -> None:
        self.derivation = derivation
        self.tensor, self.index = asked_element(derivation.network, param)
        self.size = work(derivation.network)

    @cached_property
    def symbolic(self) -> Symbolic:
        if self.size > CLOSED_FORM_LIMIT:
            raise UserError(
                f"this network is too big for closed forms ({self.size:,} multiply-adds; check compares them up "
                f"to {CLOSED_FORM_LIMIT:,}): check a parameter with --value instead",
                field="check",
            )
        return Symbolic(self.derivation)

    @cached_property
    def asked(self) -> Asked:
        if self.tensor.role in ("weight", "bias"):
            symbolic = self.symbolic if self.size <= CLOSED_FORM_LIMIT else None
            return _parameter(self.derivation, symbolic, self.tensor, self.index)
        return _intermediate(self.symbolic, self.tensor, self.index)

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.symbolic)

    def value_variants(self) -> list[Variant]:
        """The mistaken values, computed on the derivation's own numbers."""
        asked, network = self.asked, self.derivation.network
        if network.is_rational():  # exact, so that a fraction can match exactly
            ops, right = RationalOps(), as_fraction(asked.value)
            pairs = tuple((as_fraction(t.delta_value), as_fraction(t.local_value)) for t in asked.terms)
        else:
            ops, right, pairs = FloatOps(), asked.approx, tuple(t.approx for t in asked.terms)
        track = Track(right, pairs, lambda variant: variant.run(ops), asked.pick)
        found = variants(network, asked.terms, track)
        return [v for v in found if not _same_number(v.expr, right)]

    @cached_property
    def formula_variants(self) -> list[Variant]:
        """The mistaken formulas that differ from the right one as functions."""
        asked, ev = self.asked, self.evaluator
        pairs = tuple((t.delta, t.local) for t in asked.terms)
        track = Track(asked.right, pairs, symbolic_run(self.symbolic), lambda p: sympy.sympify(asked.pick(p)))
        found = variants(self.derivation.network, asked.terms, track)
        return [v for v in found if not ev.identical(sympy.sympify(v.expr), asked.right)]

    def check_value(self, text: str, tol: float = DEFAULT_TOL) -> ValueVerdict:
        given, fraction = parse_value(text)
        if tol < 0:
            raise UserError("the tolerance must be 0 or more", field="--tol")
        right_value = self.asked.value if as_fraction(self.asked.value) is not None else self.asked.approx
        exact = fraction and as_fraction(right_value) is not None
        right = close(given, right_value, tol, exact)
        found = [] if right else [v.mistake for v in self.value_variants() if close(given, v.expr, tol, exact)]
        return ValueVerdict(
            self.asked, given, text.strip(), right, exact, relative_error(given, right_value), tol, simplest(found)
        )

    def check_expr(self, formula: str, latex: bool | None = None) -> ExprVerdict:
        from .formula.names import NameTable
        from .formula.parser import names_read, parse_formula

        table = NameTable(self.symbolic)
        written = parse_formula(formula, table, latex)
        read_as = tuple(dict.fromkeys(names_read(formula, table, latex)))
        given = self.gradients_replaced(written)
        ev, right = self.evaluator, self.asked.right
        yours_value, right_value = ev.value(given, ev.base), ev.value(right, ev.base)
        if getattr(sympy.sympify(yours_value), "is_extended_real", True) is False:
            raise UserError(
                f"your formula is not a real number at this config's values ({sympy.sympify(yours_value)}): "
                "a square root or log of a negative number?",
                field="--expr",
            )
        verdict = {"asked": self.asked, "formula": formula, "given": written, "read_as": read_as}
        verdict |= {"yours_value": yours_value, "right_value": right_value}
        if ev.identical(given, right):
            return ExprVerdict(**verdict, verdict="identical", nearby=None, comparison=None, mistakes=())
        found = simplest([v.mistake for v in self.formula_variants if ev.identical(given, sympy.sympify(v.expr))])
        if ev.equal(yours_value, right_value):
            nearby = ev.nearby(given, right)
            return ExprVerdict(**verdict, verdict="same_value", nearby=nearby, comparison=None, mistakes=found)
        comparison = compare_terms(ev, given, right)
        return ExprVerdict(**verdict, verdict="wrong", nearby=None, comparison=comparison, mistakes=found)

    @cached_property
    def gradient_forms(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Each ∂L/∂(element) symbol a formula may use -> its closed form over intermediates."""
        symbolic = self.symbolic
        backward, forms = symbolic.backward, {}
        for tensor in self.derivation.tensors.values():
            if tensor.role in ("weight", "bias"):
                array = backward.grads[tensor.name]
            elif tensor.role in ("input", "output"):
                array = backward.deltas[0 if tensor.role == "input" else tensor.layer + 1]
            elif tensor.role == "loss":
                array = np.array(1)
            else:
                continue
            for index in tensor.indices():
                forms[symbolic.deltas[tensor.name][index]] = sympy.sympify(array[index])
        return forms

    def gradients_replaced(self, written: sympy.Expr) -> sympy.Expr:
        """A formula with each ∂L/∂(element) replaced by its closed form."""
        forms = self.gradient_forms
        unknown = [s for s in written.free_symbols if s.name.startswith("dL/d") and s not in forms]
        if unknown:
            raise UserError(
                f"{unknown[0].name[4:]}: ∂L/∂ of the target is not part of the backward pass; "
                "use ∂L/∂ of the input, a parameter or a layer output",
                field="--expr",
            )
        return written.xreplace(forms)


def simplest(found: list[Mistake]) -> tuple[Mistake, ...]:
    """The matched mistakes, without duplicates, and without composite ones when a plain one matched."""
    plain = [m for m in found if not m.also]
    chosen = plain or found
    if "next_layer_multiplied" in {m.key for m in chosen}:  # the same slip, named after the layer where it happens
        chosen = [m for m in chosen if m.key != "products"]
    unique = {(m.key, m.also, id(m.term) if m.term is not None else None): m for m in chosen}
    return tuple(unique.values())


# -- the asked gradient and its chain-rule terms --------------------------------------------------


def asked_element(network, text: str) -> tuple[Tensor, tuple[int, ...]]:
    """The element whose gradient is checked: a parameter, an input or a layer output."""
    tensor, index = parse_element(network, text)
    if index is None:
        first = tensor.element(next(tensor.indices()))
        raise UserError(f"{text!r} is a whole tensor; check one element, e.g. {first}", field="--param")
    if tensor.role in ("target", "loss"):
        params = ", ".join(network.parameter_names())
        raise UserError(
            f"{text!r}: check asks for ∂L/∂(a parameter, the input or a layer output); parameters: {params}",
            field="--param",
        )
    return tensor, index


def _parameter(derivation: Derivation, symbolic: Symbolic | None, tensor: Tensor, index: tuple[int, ...]) -> Asked:
    gradient, floats = derivation.gradient(tensor, index), derivation.floats
    deltas = symbolic.backward.deltas[tensor.layer + 1] if symbolic else None
    terms = []
    for chain in gradient.terms:
        if chain.factor is not None:
            local = sympy.Symbol(chain.factor.element(chain.factor_index), real=True)  # the symbol of Symbolic
        else:
            local = sympy.Integer(0 if chain.cut is Cut.PADDING else 1)
        delta = sympy.sympify(deltas[chain.out_index]) if deltas is not None else None
        approx = (float(floats.deltas[tensor.layer + 1][chain.out_index]), _local_float(floats, tensor, chain))
        terms.append(Term(chain.out, chain.out_index, delta, local, chain.delta, chain.local, chain.cut, approx))
    right = symbolic.gradient(tensor, index) if symbolic else None
    return Asked(tensor, index, right, gradient.value, tuple(terms), gradient.approx)


def _local_float(floats: Pass, tensor: Tensor, chain) -> float:
    if chain.factor is None:
        return 0.0 if chain.cut is Cut.PADDING else 1.0
    return float(floats.values[tensor.layer][chain.factor_index])


def _intermediate(symbolic: Symbolic, tensor: Tensor, index: tuple[int, ...]) -> Asked:
    """∂L/∂(an input or layer-output element), with one term per neuron of the next layer that uses it."""
    derivation, network = symbolic.derivation, symbolic.network
    position = 0 if tensor.role == "input" else tensor.layer + 1
    right = sympy.factor_terms(sympy.sympify(symbolic.backward.deltas[position][index]))
    value, approx = derivation.values.deltas[position][index], float(derivation.floats.deltas[position][index])
    symbol = symbolic.symbol(tensor, index)
    layers = network.layers
    while position < len(layers) and layers[position].kind in ("flatten", "identity"):
        outputs = symbolic.arrays[f"{layers[position].name}.output"]
        symbol = next(s for s in outputs.flat if symbolic.definitions[s] == symbol)
        position += 1
    terms = _next_layer_terms(symbolic, position, symbol) if position < len(layers) else []
    return Asked(tensor, index, right, value, tuple(terms), approx)


def _next_layer_terms(symbolic: Symbolic, position: int, symbol: sympy.Symbol) -> list[Term]:
    derivation, layer = symbolic.derivation, symbolic.network.layers[position]
    out_tensor = derivation.layer_tensor(position)
    outputs = symbolic.arrays[out_tensor.name]
    deltas, delta_values = symbolic.backward.deltas[position + 1], derivation.values.deltas[position + 1]
    numbers, floats = symbolic.numbers, _float_numbers(symbolic)
    kinks = symbolic.network.kinks[position]
    _, where = symbolic.owner[symbol]
    terms = []
    for m, out in np.ndenumerate(outputs):
        rule = symbolic.definitions[out]
        cut = None
        if layer.kind == "maxpool2d":
            if not _in_window(layer, where, m):
                continue
            local = sympy.Integer(1 if rule == symbol else 0)
            cut = None if local else "max-pool: not the (first) maximum of its window"
        elif layer.elementwise:
            if m != where:
                continue
            local = sympy.diff(rule, symbol)
            cut = layer.cut_reason(m, kinks) if local == 0 else None
        elif symbol in rule.free_symbols:
            local = sympy.diff(rule, symbol)
        else:
            continue
        cut = cut or derivation.cut_reason(position, m)
        delta = sympy.sympify(deltas[m])
        local_value = sympy.sympify(local).xreplace(numbers)
        approx = (float(derivation.floats.deltas[position + 1][m]), float(sympy.sympify(local).xreplace(floats)))
        terms.append(Term(out_tensor, m, delta, local, delta_values[m], local_value, cut, approx))
    return terms


def _float_numbers(symbolic: Symbolic) -> dict[sympy.Symbol, sympy.Float]:
    """Every input, parameter and layer-output symbol -> its float value (from the float pass)."""
    floats, found = symbolic.derivation.floats, {}
    for tensor in symbolic.derivation.tensors.values():
        if tensor.role == "input":
            array = floats.values[0]
        elif tensor.role == "output":
            array = floats.values[tensor.layer + 1]
        elif tensor.role in ("weight", "bias"):
            array = symbolic.network.parameter(tensor.name)
        else:
            continue
        for index in tensor.indices():
            found[symbolic.symbol(tensor, index)] = sympy.Float(float(array[index]))
    return found


def _in_window(layer, where: tuple[int, ...], out: tuple[int, ...]) -> bool:
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    return where[0] == out[0] and 0 <= where[1] - out[1] * sh < kh and 0 <= where[2] - out[2] * sw < kw
