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

from ..derivation.budget import work
from ..derivation.build import Derivation
from ..derivation.names import Tensor, parse_differentiable
from ..derivation.records import ElementGradient
from ..derivation.symbolic import Symbolic
from ..derivation.terms import intermediate_gradient, parameter_gradient
from ..errors import UserError
from ..maths.numbers import as_fraction
from ..maths.ops import FloatOps, RationalOps
from .compare import Evaluator, Nearby
from .mistakes import Mistake, Track, Variant, symbolic_run, variants
from .ranking import ranked
from .rounding import rounded_match
from .stand_ins import StandIn, stand_ins
from .term_by_term import Comparison, compare_terms
from .values import _same_number, close, exact_rational, parse_value, relative_error

DEFAULT_TOL = 1e-6


@dataclass(frozen=True)
class ValueVerdict:
    """--value: the given number against the right one."""

    asked: ElementGradient
    given: Fraction
    given_text: str
    right: bool
    exact: bool  # compared exactly (a fraction given, a rational gradient)
    relative_error: float | None
    tol: float
    mistakes: tuple[Mistake, ...]
    rounded_to: int | None = None  # right as the exact value rounded to this many significant digits


@dataclass(frozen=True)
class ExprVerdict:
    """--expr: the given formula against the right closed form."""

    asked: ElementGradient
    formula: str
    given: sympy.Expr
    verdict: str  # identical | same_value | wrong
    yours_value: object
    right_value: object
    nearby: Nearby | None
    comparison: Comparison | None
    mistakes: tuple[Mistake, ...]
    read_as: tuple[tuple[str, sympy.Symbol], ...] = ()  # each name as written, and what it was read as
    stand_ins: tuple[StandIn, ...] = ()  # right, but with a symbol equal to the chain rule's only here

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
        if self.size > self.derivation.budget.closed_form_work:
            raise UserError(
                f"this network is too big for closed forms ({self.size:,} multiply-adds; check compares them up "
                f"to {self.derivation.budget.closed_form_work:,}): check a parameter with --value instead",
                field="check",
            )
        return Symbolic(self.derivation)

    @cached_property
    def asked(self) -> ElementGradient:
        if self.tensor.role in ("weight", "bias"):
            symbolic = self.symbolic if self.size <= self.derivation.budget.closed_form_work else None
            return parameter_gradient(self.derivation, self.tensor, self.index, symbolic)
        return intermediate_gradient(self.symbolic, self.tensor, self.index)

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.symbolic)

    def value_variants(self) -> list[Variant]:
        """The mistaken values, computed on the derivation's own numbers."""
        asked, network = self.asked, self.derivation.network
        if network.is_rational():  # exact, so that a fraction can match exactly
            ops, right = RationalOps(), as_fraction(asked.value)
            pairs = tuple((as_fraction(t.delta), as_fraction(t.local)) for t in asked.terms)
        else:
            ops, right, pairs = FloatOps(), asked.approx, tuple((t.delta_approx, t.local_approx) for t in asked.terms)
        decay = None if asked.decay is None else asked.decay.value if ops.exact else asked.decay.approx
        forward = network.run(ops).values  # once: a mistake replaces backward rules only
        track = Track(
            right, pairs, lambda overrides: network.run(ops, values=forward, overrides=overrides), asked.pick, decay
        )
        found = variants(network, asked.terms, track)
        return [v for v in found if not _same_number(v.expr, right)]

    @cached_property
    def formula_variants(self) -> list[Variant]:
        """The mistaken formulas that differ from the right one as functions."""
        asked, ev = self.asked, self.evaluator
        pairs = tuple((t.delta_form, t.local_form) for t in asked.terms)
        decay = None if asked.decay is None else asked.decay.form
        track = Track(asked.form, pairs, symbolic_run(self.symbolic), lambda p: sympy.sympify(asked.pick(p)), decay)
        found = variants(self.derivation.network, asked.terms, track)
        return [v for v in found if not ev.identical(sympy.sympify(v.expr), asked.form)]

    def check_value(self, text: str, tol: float = DEFAULT_TOL) -> ValueVerdict:
        given, fraction = parse_value(text)
        if tol < 0:
            raise UserError("the tolerance must be 0 or more", field="--tol")
        right_value = self.asked.value
        exact = fraction and exact_rational(right_value) is not None
        right = close(given, right_value, tol, exact)
        rounded_to = None if right or fraction else rounded_match(text, right_value)
        right = right or rounded_to is not None
        found = [] if right else [v.mistake for v in self.value_variants() if close(given, v.expr, tol, exact)]
        error = relative_error(given, right_value)
        return ValueVerdict(self.asked, given, text.strip(), right, exact, error, tol, ranked(found), rounded_to)

    def check_expr(self, formula: str, latex: bool | None = None) -> ExprVerdict:
        from .formula.names import NameTable
        from .formula.parser import read_formula

        refuse_a_number(formula)
        written, read = read_formula(formula, NameTable(self.symbolic, self.evaluator), latex)
        read_as = tuple(dict.fromkeys(read))
        given = self.gradients_replaced(written)
        ev, right = self.evaluator, self.asked.form
        yours_value, right_value = ev.value(given, ev.base), ev.value(right, ev.base)
        shown = sympy.sympify(yours_value)
        if shown is sympy.nan or shown.has(sympy.zoo, sympy.nan):
            raise UserError("your formula is undefined at this config's values (a division by zero?)", field="--expr")
        if getattr(shown, "is_extended_real", True) is False:
            raise UserError(
                f"your formula is not a real number at this config's values ({sympy.sympify(yours_value)}): "
                "a square root or log of a negative number?",
                field="--expr",
            )
        verdict = {"asked": self.asked, "formula": formula, "given": written, "read_as": read_as}
        verdict |= {"yours_value": yours_value, "right_value": right_value}
        if ev.identical(given, right):
            notes = stand_ins(ev, written, right)
            return ExprVerdict(
                **verdict, verdict="identical", nearby=None, comparison=None, mistakes=(), stand_ins=notes
            )
        found = ranked([v.mistake for v in self.formula_variants if ev.identical(given, sympy.sympify(v.expr))])
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


def refuse_a_number(formula: str) -> None:
    """--expr 0.25: a value, not a formula; said in one line that points to --value."""
    if not formula.replace("−", "-").isascii():  # Fraction reads other digits too; the formula reader refuses them
        return
    try:
        parse_value(formula)
    except UserError:
        return
    raise UserError(
        f"{formula.strip()!r} is a number, not a formula: check a value with --value {formula.strip()}", field="--expr"
    )


# -- the asked gradient and its chain-rule terms --------------------------------------------------


def asked_element(network, text: str) -> tuple[Tensor, tuple[int, ...]]:
    """The element whose gradient is checked: a parameter, an input or a layer output."""
    tensor, index = parse_differentiable(network, text)
    if index is None:
        first = tensor.element(next(tensor.indices()))
        raise UserError(f"{text!r} is a whole tensor; check one element, e.g. {first}", field="--param")
    return tensor, index
