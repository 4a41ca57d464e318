"""What a variant asks: each asked gradient's right value, and the value of every named mistake
that applies to it (its formula differs from the right one), grouped by value.

Built on the checker (check/checker.py): the same mistakes `cnnderive check` recognises, so the
Moodle feedback and the PrairieLearn grading name the same ones.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..check.checker import Checker
from ..check.mistakes import Track, variants
from ..check.ranking import ranked
from ..maths.numbers import as_fraction
from ..maths.ops import object_array
from .screen import too_close


@dataclass(frozen=True)
class WrongAnswer:
    """One value that one or more named mistakes give."""

    names: tuple[str, ...]
    explanation: str  # the paragraph of the first (simplest) of them
    exact: Fraction | None  # exact, when the network is rational
    approx: float


@dataclass(frozen=True)
class Answer:
    """One asked gradient: dL/d(element), right and wrong."""

    name: str  # canonical: conv1.weight[0,0,0,0]
    tensor: object  # derivation.names.Tensor
    index: tuple[int, ...]
    value: object  # exact (a Fraction or SymPy number) where the derivation is exact, else a float
    approx: float
    mistakes: tuple[WrongAnswer, ...]


def quick_reject(network, questions: tuple[str, ...], relative: float) -> str | None:
    """Why a variant is rejected by the mistake screen, or None; on floats, without closed forms.

    A mistake within the tolerance of the right value rejects the variant, unless it is equal at
    a nearby point too (every input and parameter moved by up to 1e-6, the kinks kept): then the
    mistake cannot change this gradient at all (the ReLU derivative left out where every ReLU on
    the way is on), which is no accident of the numbers.
    """
    base = _float_mistakes(network, questions)
    nearby = None
    for k, (question, (right, found)) in enumerate(zip(questions, base)):
        for m, (name, wrong) in enumerate(found):
            if not too_close(right, wrong, relative):
                continue
            reason = f"{question}: '{name}' gives {wrong:.6g}, too close to {right:.6g}"
            if not _equal(right, wrong):
                return reason
            nearby = nearby or _float_mistakes(_moved(network), questions)
            near_right, near_found = nearby[k]
            if len(near_found) != len(found) or not _equal(near_right, near_found[m][1]):
                return reason + " (equal at these numbers only)"
    return None


def _equal(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-10 * (1 + abs(a) + abs(b))


def _float_mistakes(network, questions) -> list[tuple[float, list[tuple[str, float]]]]:
    """For each question: the right value and every named mistake's value, as floats."""
    from ..derivation.build import Derivation
    from ..derivation.names import parse_parameter
    from ..maths.ops import FloatOps

    derivation, found = Derivation(network, exact=False), []
    for question in questions:
        asked = derivation.gradient(*parse_parameter(network, question))
        pairs = tuple((t.delta_approx, t.local_approx) for t in asked.terms)
        decay = asked.decay.approx if asked.decay is not None else None  # λ·w: its mistakes are screened too
        track = Track(
            asked.approx, pairs, lambda overrides: network.run(FloatOps(), overrides=overrides), asked.pick, decay
        )
        mistakes = [(v.mistake.name, float(v.expr)) for v in variants(network, asked.terms, track)]
        found.append((float(asked.approx), mistakes))
    return found


def _moved(network):
    """The network with every input and parameter moved by up to 1e-6 (its kinks decided anew:
    the screen has ruled out ties and zeros, and values differ by far more than the move)."""
    rng = random.Random(2016)

    def move(array: np.ndarray) -> np.ndarray:
        flat = [Fraction(v) + Fraction(rng.randint(-1000, 1000), 10**9) for v in array.flat]
        return object_array(flat, array.shape)

    params = {layer: {p: move(v) for p, v in tensors.items()} for layer, tensors in network.params.items()}
    return dataclasses.replace(
        network,
        input=move(network.input),
        params=params,
        _kinks=None,
        _rational_values=None,
        _kink_notes=[],
        _float_arrays={},
    )


def ask(derivation, questions: tuple[str, ...], relative: float) -> tuple[tuple[Answer, ...], str | None]:
    """The answers of a screened variant, or why it is rejected after all (a mistake too close)."""
    answers = []
    for question in questions:
        answer = _answer(derivation, question)
        for wrong in answer.mistakes:
            if too_close(answer.approx, wrong.approx, relative):
                return (), f"{question}: '{wrong.names[0]}' gives {wrong.approx:.6g}, too close to {answer.approx:.6g}"
        answers.append(answer)
    return tuple(answers), None


def _answer(derivation, question: str) -> Answer:
    """The right value and the mistakes' values, as `cnnderive check --value` compares them."""
    checker = Checker(derivation, question)
    checker.__dict__["asked"] = asked = derivation.gradient(checker.tensor, checker.index)  # no closed forms needed
    groups: dict[object, list] = {}
    for variant in checker.value_variants():
        exact = as_fraction(variant.expr)
        approx = float(variant.expr)
        groups.setdefault(exact if exact is not None else round(approx, 12), []).append(
            (variant.mistake, exact, approx)
        )
    wrong = []
    for members in groups.values():
        named = ranked([m for m, _, _ in members])
        wrong.append(WrongAnswer(tuple(m.name for m in named), named[0].explanation, members[0][1], members[0][2]))
    return Answer(asked.name, asked.tensor, asked.index, asked.value, float(asked.approx), tuple(wrong))
