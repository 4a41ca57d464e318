"""A whole worksheet checked: each answered ∂L/∂(quantity), from the loss backwards, is right, wrong,
or right given the student's own earlier answers (error carried forward).

The student's backward pass is the true one with their answers written in where they stand: the
gradient of a layer's input is that layer's rule (Layer.backward) applied to the student's gradient
of its output, through unanswered layers by the true rules, and wherever they answered an element
their number replaces it. An answer that matches what this pass gives, when it differs from the
gradient because an earlier answer was wrong, is carried forward. A wrong answer is matched against
check's named mistakes (mistakes.variants) built on the student's own pass, so that the mistake of a
step is named also when it was made on top of an earlier one. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from ..derivation.build import Derivation
from ..errors import UserError
from .checker import DEFAULT_TOL, Checker, ExprVerdict
from .mistakes import Mistake, Track, variants
from .ranking import ranked
from .rounding import rounded_match
from .values import _same_number, close, exact_rational
from .worksheet_answers import Answer, Given

RIGHT, CARRIED, WRONG = "right", "carried_forward", "wrong"
MISTAKE_DIGITS = 3  # a mistake is named on a rounded value of at least this many digits: fewer match by chance


@dataclass(frozen=True)
class Graded:
    """One answer judged: the gradient, what the student's earlier answers give, and the verdict."""

    answer: Answer
    verdict: str  # right | carried_forward | wrong
    givens: tuple[Given, ...]  # the student's numbers, a formula's value filled in
    right: tuple  # the gradient at each element of the answer (exact where the derivation is)
    expected: tuple  # at each element: what the student's own earlier answers give
    mistakes: tuple[Mistake, ...] = ()
    carried_from: Answer | None = None  # the nearest earlier answer, not right, that this one builds on
    expr: ExprVerdict | None = None  # a formula's own verdict
    differs: bool = False  # the student's earlier answers change this step's value from the gradient

    @property
    def whole(self) -> bool:
        return self.answer.index is None


@dataclass(frozen=True)
class Worksheet:
    """Every answer judged, in the order the backward pass computes them."""

    graded: tuple[Graded, ...]

    @property
    def first_wrong(self) -> Graded | None:
        return next((g for g in self.graded if g.verdict == WRONG), None)

    @property
    def all_right(self) -> bool:
        return all(g.verdict == RIGHT for g in self.graded)


@dataclass(frozen=True)
class StudentPass:
    """The backward pass as the student's answers make it; positions as in maths.network.Pass."""

    expected: list  # expected[m]: ∂L/∂values[m] from the student's answers above m (their own at m left out)
    carried: list  # the same with the student's answers at m written in: what the layer below uses
    grads: dict  # each parameter's gradient from the student's ∂L/∂(its layer's output)


class StudentWorld:
    """The network's true forward values, with the student's answered gradients written into the backward pass."""

    def __init__(self, derivation: Derivation, overlays: dict[int, list[tuple[tuple[int, ...], object]]]) -> None:
        self.derivation, self.overlays = derivation, overlays
        network, ops = derivation.network, derivation.ops
        self.params = {
            layer.name: {p: ops.array(v) for p, v in network.params[layer.name].items()} for layer in network.layers
        }
        self.base = self._run({}, 0)

    def run(self, overrides: dict | None = None, stop: int = 0) -> StudentPass:
        """The student's pass down to position `stop`, with backward rules replaced as Network.run takes them."""
        overrides = {k: rule for k, rule in (overrides or {}).items() if k == "fused" or k >= stop}
        return self._run(overrides, stop) if overrides else self.base

    def _run(self, overrides: dict, stop: int) -> StudentPass:
        derivation = self.derivation
        network, true, ops = derivation.network, derivation.values, derivation.ops
        n = len(network.layers)
        expected, carried, grads = [None] * (n + 1), [None] * (n + 1), {}
        expected[n] = true.deltas[n]
        carried[n] = self.written_in(n, expected[n])
        for k in range(n - 1, stop - 1, -1):
            layer, rule = network.layers[k], overrides.get(k)
            if k == n - 1 and network.fused_loss() and carried[n] is expected[n]:  # loss and softmax in one step
                fused = overrides.get("fused")
                out, target = true.values[n], ops.array(network.target)
                expected[k], layer_grads = (fused(out, target, ops) if fused else true.deltas[k]), {}
            elif rule is None and carried[k + 1] is true.deltas[k + 1]:  # nothing answered above: the true pass
                expected[k] = true.deltas[k]
                layer_grads = {p: true.grads[f"{layer.name}.{p}"] for p in network.params[layer.name]}
            else:
                backward = rule or layer.backward
                params = self.params[layer.name]
                expected[k], layer_grads = backward(
                    true.values[k], true.values[k + 1], carried[k + 1], params, network.kinks[k], ops
                )
                layer_grads = {p: self.decayed(layer, p, g) for p, g in layer_grads.items()}
            grads |= {f"{layer.name}.{p}": g for p, g in layer_grads.items()}
            carried[k] = self.written_in(k, expected[k])
        return StudentPass(expected, carried, grads)

    def decayed(self, layer, param: str, grad: np.ndarray) -> np.ndarray:
        decay = self.derivation.network.decay
        if not decay.applies(param):
            return grad
        return grad + decay.gradient(self.params[layer.name][param], self.derivation.ops)

    def written_in(self, position: int, delta: np.ndarray) -> np.ndarray:
        """delta with the student's answered elements at this position in place of the computed ones."""
        answered = self.overlays.get(position)
        if not answered:
            return delta
        ops, out = self.derivation.ops, delta.copy()
        for index, value in answered:
            out[index] = ops.const(value) if isinstance(value, Fraction) else value if ops.exact else float(value)
        return out


def check_worksheet(derivation: Derivation, answers: list[Answer], tol: float = DEFAULT_TOL) -> Worksheet:
    """Judge every answer: right, carried forward (right given the earlier answers) or wrong (with its mistake)."""
    if tol < 0:
        raise UserError("the tolerance must be 0 or more", field="--tol")
    formulas = {id(a): _formula_verdict(derivation, a) for a in answers if a.formula is not None}
    ordered = sorted(answers, key=lambda a: _backward_order(derivation, a))
    givens = {id(a): _filled(a, formulas.get(id(a))) for a in ordered}
    overlays: dict[int, list] = {}
    for answer in ordered:
        if answer.tensor.role in ("input", "output"):
            position = _position(answer)
            overlays.setdefault(position, []).extend(
                (index, g.value) for (index, _), g in zip(answer.items, givens[id(answer)])
            )
    world = StudentWorld(derivation, overlays)
    graded: list[Graded] = []
    for answer in ordered:
        before = [
            g for g in graded if g.answer.tensor.role in ("input", "output") and _position(g.answer) > _feeds(answer)
        ]
        wrong_before = [g for g in before if g.verdict != RIGHT]
        graded.append(
            _grade(derivation, world, answer, givens[id(answer)], formulas.get(id(answer)), wrong_before, tol)
        )
    return Worksheet(tuple(graded))


def _grade(derivation, world, answer, givens, expr, wrong_before, tol) -> Graded:
    indices = [index for index, _ in answer.items]
    right = tuple(_true_value(derivation, answer, index) for index in indices)
    pick = _picker(answer)
    expected = tuple(_flat(pick(world.base), answer, indices))
    differs = not all(_same_number(e, r) for e, r in zip(expected, right))
    fields = {
        "answer": answer,
        "givens": givens,
        "right": right,
        "expected": expected,
        "expr": expr,
        "differs": differs,
    }
    if expr is not None:  # a formula is right as a function (check --expr), else perhaps carried forward
        if expr.right:
            return Graded(verdict=RIGHT, **fields)
        if wrong_before and differs and agrees(givens[0], expected[0], tol):
            return Graded(verdict=CARRIED, carried_from=wrong_before[-1].answer, **fields)
        return Graded(verdict=WRONG, mistakes=tuple(expr.mistakes), **fields)
    on_right = [agrees(g, r, tol) for g, r in zip(givens, right)]
    if all(on_right):
        return Graded(verdict=RIGHT, **fields)
    if all(ok or agrees(g, e, tol) for ok, g, e in zip(on_right, givens, expected)):
        if not wrong_before:  # differs from the gradient only by the student's own rounding upstream
            return Graded(verdict=RIGHT, **fields)
        return Graded(verdict=CARRIED, carried_from=wrong_before[-1].answer, **fields)
    return Graded(verdict=WRONG, mistakes=_mistakes(derivation, world, answer, givens, tol), **fields)


def agrees(given: Given, value: object, tol: float, digits: int = 1) -> bool:
    """The student's number is this value: within tol, exactly (a fraction), or this value rounded to
    the digits given (at least `digits` of them)."""
    if given.formula:
        return _same_number(given.value, value)
    exact = given.fraction and exact_rational(value) is not None
    if close(given.value, value, tol, exact):
        return True
    rounded = None if given.fraction else rounded_match(given.text, value)
    return rounded is not None and rounded >= digits


def _mistakes(derivation, world, answer, givens, tol) -> tuple[Mistake, ...]:
    """check's named mistakes that give the student's value, each built on the student's own pass."""
    terms = _chain_terms(derivation, answer)
    carried = world.base.carried
    pairs = tuple((carried[t.out.layer + 1][t.out_index], t.local) for t in terms)
    whole = answer.index is None
    right = _picker(answer)(world.base)
    stop = _feeds(answer)
    track = Track(right, pairs, lambda overrides: world.run(overrides, stop), _picker(answer))
    found = []
    for variant in variants(derivation.network, terms, track):
        values = list(np.asarray(variant.expr, dtype=object).flat) if whole else [variant.expr]
        if len(values) == len(givens) and all(agrees(g, v, tol, MISTAKE_DIGITS) for g, v in zip(givens, values)):
            found.append(variant.mistake)
    return ranked(found)


def _chain_terms(derivation, answer) -> tuple:
    """The chain-rule terms of one answered element (for the mistakes that combine them wrongly)."""
    if answer.index is None:
        return ()
    try:
        return Checker(derivation, answer.name).asked.terms
    except UserError:  # too big for closed forms: the rules done wrong are still tried
        return ()


def _formula_verdict(derivation, answer: Answer) -> ExprVerdict:
    """check --expr on a formula answer; its errors point at the answer's line."""
    try:
        return Checker(derivation, answer.name).check_expr(answer.formula, answer.latex)
    except UserError as error:
        raise replace_location(error, answer) from None


def replace_location(error: UserError, answer: Answer) -> UserError:
    """The same error, said at the answer's line of answers.yaml."""
    return UserError(f"{answer.written}: {error.message}", file=answer.source, line=answer.line)


def _filled(answer: Answer, expr: ExprVerdict | None) -> tuple[Given, ...]:
    givens = tuple(g for _, g in answer.items)
    if expr is None:
        return givens
    return tuple(replace(g, value=expr.yours_value) for g in givens)


def _true_value(derivation, answer: Answer, index):
    true, tensor = derivation.values, answer.tensor
    if tensor.role in ("weight", "bias"):
        return true.grads[tensor.name][index]
    return true.deltas[_position(answer)][index]


def _picker(answer: Answer):
    """StudentPass -> this answer's value (an element, or the whole array)."""
    tensor, index = answer.tensor, answer.index
    if tensor.role in ("weight", "bias"):
        return lambda p: p.grads[tensor.name] if index is None else p.grads[tensor.name][index]
    position = _position(answer)
    return lambda p: p.expected[position] if index is None else p.expected[position][index]


def _flat(value, answer: Answer, indices) -> list:
    return [value[i] for i in indices] if answer.index is None else [value]


def _position(answer: Answer) -> int:
    """Where ∂L/∂(this tensor) sits in the pass: values[0] the input, values[k + 1] layer k's output."""
    return 0 if answer.tensor.role == "input" else answer.tensor.layer + 1


def _feeds(answer: Answer) -> int:
    """The position below which this answer is computed: its own for a gradient, its layer's for a parameter."""
    return answer.tensor.layer if answer.tensor.role in ("weight", "bias") else _position(answer)


def _backward_order(derivation, answer: Answer) -> tuple:
    """From the loss backwards: a layer's output, then its parameters, then its input."""
    n, tensor = len(derivation.network.layers), answer.tensor
    rank = 2 * (n - _feeds(answer)) - (1 if tensor.role in ("weight", "bias") else 0)
    names = list(derivation.tensors)
    return rank, names.index(tensor.name), answer.items[0][0]
