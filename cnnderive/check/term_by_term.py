"""Two formulas term by term: the factors they share taken out, the rest expanded and compared.

Nothing is expanded before its size is estimated (expansion_size), so that whatever a student
types the comparison ends in seconds; beyond the limits it is skipped and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from ..derivation.budget import tree_size
from .compare import Evaluator
from .numbers import _negated

MAX_COMPARED_TERMS = 2_000  # expanded forms compared term by term up to this size ...
MAX_COEFFICIENT_BITS = 10_000  # ... with coefficients up to this size
MAX_COMPARED_NODES = 5_000  # a formula bigger than this is not taken apart (factor_terms takes seconds)


@dataclass(frozen=True)
class Comparison:
    """Two formulas term by term, after taking out the factors they share."""

    common: sympy.Expr  # the shared factor (1 when there is none)
    missing: tuple[tuple[sympy.Expr, object], ...]  # (monomial, right coefficient)
    extra: tuple[tuple[sympy.Expr, object], ...]  # (monomial, your coefficient)
    wrong: tuple[tuple[sympy.Expr, object, object], ...]  # (monomial, yours, right)
    matching: int
    skipped: str | None = None  # why there is no comparison (too many terms)


@dataclass(frozen=True)
class Size:
    """An upper estimate of an expanded form: its terms, the bits of its largest coefficient, and the
    terms that expand makes inside function arguments and denominators on the way (`work`)."""

    terms: int
    bits: int
    work: int = 0

    def too_big(self) -> bool:
        return self.terms + self.work > MAX_COMPARED_TERMS or self.bits > MAX_COEFFICIENT_BITS


_TOO_BIG = Size(MAX_COMPARED_TERMS + 1, MAX_COEFFICIENT_BITS + 1)


def expansion_size(expr: sympy.Basic, forms: dict, memo: dict) -> Size:
    """What sympy.expand(expr.xreplace(forms)) would give at most, without building it."""
    if expr in memo:
        return memo[expr]
    if expr.is_Symbol and expr in forms:
        size = expansion_size(forms[expr], forms, memo)
    elif expr.is_Rational:
        size = Size(1, int(expr.p).bit_length() + int(expr.q).bit_length())
    elif not expr.args:
        size = Size(1, 0)
    else:
        parts = [expansion_size(arg, forms, memo) for arg in expr.args]
        work = sum(p.work for p in parts)
        if any(part.too_big() for part in parts):
            size = _TOO_BIG
        elif expr.is_Add:
            size = Size(sum(p.terms for p in parts), max(p.bits for p in parts) + len(parts).bit_length(), work)
        elif expr.is_Mul:
            terms = 1
            for part in parts:
                terms = min(terms * part.terms, MAX_COMPARED_TERMS + 1)
            size = Size(terms, sum(p.bits for p in parts), work)
        elif expr.is_Pow and expr.exp.is_Rational:
            size = _power_size(parts[0], expr.exp)
        else:  # a function is one factor, its arguments expanded inside it
            size = Size(1, 0, work + sum(p.terms for p in parts))
    size = _TOO_BIG if size.too_big() else size
    memo[expr] = size
    return size


def _power_size(base: Size, exponent: sympy.Rational) -> Size:
    """(a + b)^n expands to (terms)^n terms; a denominator or a root is expanded inside the power."""
    n = abs(int(exponent.p)) // int(exponent.q)
    if base.terms > 1 and n * math.log2(base.terms) > math.log2(MAX_COMPARED_TERMS + 1):
        return _TOO_BIG
    expanded = Size(base.terms**n, base.bits * n + n * base.terms.bit_length(), base.work)
    if exponent.is_Integer and exponent > 0:
        return expanded
    inside = max(expanded.terms, base.terms)
    return Size(expanded.terms if exponent > 0 else 1, expanded.bits if exponent > 0 else 0, base.work + inside)


def compare_terms(ev: Evaluator, given: sympy.Expr, right: sympy.Expr) -> Comparison:
    """Take out the factors both formulas share, expand the rest and compare them term by term."""
    if tree_size(given, MAX_COMPARED_NODES) > MAX_COMPARED_NODES:
        reason = f"your formula has more than {MAX_COMPARED_NODES:,} parts"
        return Comparison(sympy.Integer(1), (), (), (), 0, reason)
    given_coeff, given_factors = _factors(given)
    right_coeff, right_factors = _factors(right)
    right_values = [[ev.number(f, p) for p in ev.random] for f in right_factors]
    common: list[sympy.Expr] = []
    rest: list[sympy.Expr] = []
    for factor in given_factors:
        values = [ev.number(factor, p) for p in ev.random]
        match, sign = _matching(ev, values, right_values)
        if match is None:
            rest.append(factor)
            continue
        given_coeff *= sign
        common.append(right_factors.pop(match))
        right_values.pop(match)
    if given_coeff == right_coeff and common:
        common.insert(0, right_coeff)
        given_coeff = right_coeff = sympy.Integer(1)
    yours = sympy.sympify(given_coeff * sympy.Mul(*rest))
    theirs = sympy.sympify(right_coeff * sympy.Mul(*right_factors))
    shared = sympy.Mul(*common, evaluate=False) if common else sympy.Integer(1)
    defined = ev.symbolic.definitions
    forms: dict = {}
    if not {s for s in yours.free_symbols if s in defined} <= {s for s in theirs.free_symbols if s in defined}:
        forms = ev.polynomial_forms  # other intermediates than the chain rule's: compare over the leaves
    memo: dict = {}
    if expansion_size(yours, forms, memo).too_big() or expansion_size(theirs, forms, memo).too_big():
        reason = (
            f"the expanded forms would have more than {MAX_COMPARED_TERMS:,} terms "
            f"(or coefficients of more than {MAX_COEFFICIENT_BITS:,} bits)"
        )
        return Comparison(shared, (), (), (), 0, reason)
    mine, good = _coefficients(yours.xreplace(forms)), _coefficients(theirs.xreplace(forms))
    missing = tuple((m, c) for m, c in good.items() if m not in mine)
    extra = tuple((m, c) for m, c in mine.items() if m not in good)
    wrong = tuple((m, mine[m], c) for m, c in good.items() if m in mine and mine[m] != c)
    matching = sum(1 for m, c in good.items() if m in mine and mine[m] == c)
    return Comparison(shared, missing, extra, wrong, matching)


def _matching(ev: Evaluator, values: list, candidates: list[list]) -> tuple[int | None, int]:
    """The first candidate equal to the values, or to minus the values, and which sign it took."""
    for sign in (1, -1):
        for k, theirs in enumerate(candidates):
            if all(ev.equal(a, _negated(b, sign)) for a, b in zip(values, theirs)):
                return k, sign
    return None, 1


def _factors(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Expr]]:
    """The numeric coefficient and the other factors (a power counted as repeated factors)."""
    coeff, factors = sympy.factor_terms(sympy.sympify(expr)).as_coeff_mul()
    flat = []
    for factor in factors:
        if factor.is_Pow and factor.exp.is_Integer and 0 < factor.exp <= 8:
            flat += [factor.base] * int(factor.exp)
        else:
            flat.append(factor)
    return coeff, flat


def _coefficients(expr: sympy.Expr) -> dict[sympy.Expr, object]:
    expanded = sympy.expand(expr)
    if expanded == 0:
        return {}
    return {m: c for m, c in expanded.as_coefficients_dict().items() if c != 0}
