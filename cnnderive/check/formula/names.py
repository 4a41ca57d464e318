"""Every name a formula may use for one element, resolved to that element's SymPy symbol.

The names come from names.Tensor (canonical, unicode, typed, LaTeX) and from the symbols of
Symbolic, so what `cnnderive symbols` prints is what `cnnderive check --expr` reads. On top of
the textbook letters, a few letters that students use are accepted where they do not clash:
i for the input x, o for the network's output (o^k: the last output of stage k), y or t for the
target, p for a final softmax, C for the loss; and a single 1-based index counted row by row
(x_5, w^1_3) for a tensor whose textbook index has two numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from math import prod

import sympy

from ...derivation.names import LETTER_ALIASES, Tensor, TextbookNames
from ...errors import UserError
from ..compare import Evaluator

LETTERS = ("yhat", "x", "i", "w", "b", "z", "a", "s", "c", "p", "f", "y", "t", "o", "L", "C", "ŷ")  # s, c: add, concat
SUPERSCRIPTS, SUBSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹", "₀₁₂₃₄₅₆₇₈₉"
MAX_INDEX_DIGITS = 9  # in one index or stage number
INDEX_LIST = re.compile(r"\s*([0-9]+(?:\s*,\s*[0-9]+)*)\s*")


def brief(text: str, limit: int = 60) -> str:
    """The text, or its start and end around an ellipsis when it is longer than limit (for messages)."""
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-(limit // 2) :]


def index_number(digits: str) -> int:
    """A run of digits as an index or stage; a UserError (not a 4,300-digit int) when it is too long."""
    if len(digits.lstrip("0")) > MAX_INDEX_DIGITS:
        raise UserError(f"the index or superscript {brief(digits)} is too long (at most {MAX_INDEX_DIGITS} digits)")
    return int(digits)


@dataclass(frozen=True)
class Group:
    """One index group read after a letter: `_{1,2}` is (1, 2); `_12` or `₁₂` is one run of digits."""

    values: tuple[int, ...]
    digits: str = ""  # the digit run when the group was written without commas
    unicode: bool = False  # written with subscript digits (each digit one index, as printed)


class NameTable:
    """The element symbols of one network, looked up by canonical or textbook name."""

    def __init__(self, symbolic, evaluator: Evaluator | None = None) -> None:
        self.symbolic = symbolic
        self._evaluator = evaluator
        self.tensors: dict[str, Tensor] = symbolic.derivation.tensors
        self.by_stage: dict[tuple[str, str], Tensor] = {}
        for tensor in self.tensors.values():
            self.by_stage.setdefault((tensor.letter, tensor.stage), tensor)
        self.layer_names = {layer.name for layer in symbolic.network.layers}
        self.letters = {t.letter for t in self.tensors.values()}  # a new layer kind's letter too (r: dropout)
        self.textbook = TextbookNames(self.tensors)
        self.final = self.textbook.final
        self.stage_outputs = self.textbook.stage_outputs  # the last output of each stage

    def symbol(self, tensor: Tensor, index: tuple[int, ...]) -> sympy.Symbol:
        return self.symbolic.symbol(tensor, index)

    @cached_property
    def evaluator(self) -> Evaluator:
        return self._evaluator or Evaluator(self.symbolic)

    @cached_property
    def constant_gradients(self) -> dict[sympy.Symbol, Fraction]:
        """The ∂L/∂ symbols whose gradient is a plain number (∂L/∂L = 1; 0 behind a dead ReLU): once the
        checker replaces them, exp(exp(10^40·∂L/∂L)) is a constant, which SymPy evaluates without end."""
        backward, found = self.symbolic.backward, {}
        for tensor in self.tensors.values():
            if tensor.role == "loss":
                found[self.symbolic.deltas[tensor.name][()]] = Fraction(1)
                continue
            if tensor.role in ("weight", "bias"):
                array = backward.grads[tensor.name]
            elif tensor.role in ("input", "output"):
                array = backward.deltas[0 if tensor.role == "input" else tensor.layer + 1]
            else:
                continue
            for index in tensor.indices():
                value = sympy.sympify(array[index])
                if value.is_Rational:
                    found[self.symbolic.deltas[tensor.name][index]] = Fraction(int(value.p), int(value.q))
        return found

    def staged(self, letter: str) -> bool:
        """True when the letter carries a stage superscript (w¹, z²), so typed digits after it are the stage."""
        letter = LETTER_ALIASES.get(letter, letter)
        return letter == "o" or any(stage for (known, stage) in self.by_stage if known == letter)

    def tensor(self, letter: str, stage: str | None) -> tuple[Tensor | None, int | None]:
        """The tensor a textbook letter and superscript mean, and a channel the superscript gave, if any."""
        letter = LETTER_ALIASES.get(letter, letter)
        if letter == "o":
            return (self.final if stage is None else self.stage_outputs.get(stage)), None
        if letter == "p" and stage is None and ("p", "") not in self.by_stage and self.final.letter == "ŷ":
            letter = "ŷ"
        found = self.by_stage.get((letter, stage or ""))
        plain = self.by_stage.get((letter, ""))
        if found is None and stage and stage.isdigit() and plain is not None and plain.role == "input":
            return plain, index_number(stage)  # x^1_5: the superscript is the channel
        return found, None

    def resolve(self, letter: str, stage: str | None, groups: list[Group], shown: str) -> sympy.Symbol:
        """The symbol of a textbook reference; a UserError (with the name as written) when there is none."""
        shown = brief(shown)
        tensor, channel = self.tensor(letter, stage)
        if tensor is None:
            raise UserError(f"unknown name {shown!r}: {self._no_tensor(letter, stage)}")
        drop = len(tensor.shape) - len(tensor.shown_index((0,) * len(tensor.shape)))
        shape = tensor.shape[drop:]
        prefix: tuple[int, ...] = ()
        if channel is not None:
            if drop:  # one channel, dropped from the textbook index
                if channel != 1:
                    raise UserError(f"{shown!r}: {tensor.unicode()} has one channel, so its superscript can only be 1")
            else:
                if not 1 <= channel <= shape[0]:
                    raise UserError(f"{shown!r}: channel {channel} is not between 1 and {shape[0]}")
                prefix, shape = (channel,), shape[1:]
        index = prefix + shown_index(groups, shape, shown, tensor)
        return self.symbol(tensor, (0,) * drop + tuple(i - 1 for i in index))

    def _no_tensor(self, letter: str, stage: str | None) -> str:
        letter = LETTER_ALIASES.get(letter, letter)
        stages = sorted(s or "none" for (known, s) in self.by_stage if known == letter)
        if letter == "o":
            stages = sorted(self.stage_outputs)
        if not stages:
            return f"this network has no {letter!r} (see `cnnderive symbols NET.yaml`)"
        return f"the superscripts of {letter!r} in this network are: {', '.join(stages)}"

    def canonical(self, name: str, index: tuple[int, ...] | None, shown: str) -> sympy.Symbol:
        """`conv1.weight` with index (0, 0, 1, 1) -> its symbol (0-based, as the spec's names)."""
        shown = brief(shown)
        tensor = self.tensors.get(name)
        if tensor is None:
            raise UserError(
                f"unknown name {shown!r}: a canonical name is input, target, loss or LAYER.weight/bias/output"
            )
        if index is None:
            if tensor.shape and prod(tensor.shape) != 1:
                first = tensor.element((0,) * len(tensor.shape))
                raise UserError(f"{shown!r} is a whole tensor: name one element, e.g. {first}")
            index = (0,) * len(tensor.shape)
        if len(index) != len(tensor.shape) or any(not 0 <= i < d for i, d in zip(index, tensor.shape)):
            shape = "".join(f"[{d}]" for d in tensor.shape)
            raise UserError(f"{shown!r}: {name} has shape {shape}; its index is {len(tensor.shape)} numbers, 0-based")
        return self.symbol(tensor, index)


def shown_index(groups: list[Group], shape: tuple[int, ...], shown: str, tensor: Tensor) -> tuple[int, ...]:
    """The 1-based textbook index that the index groups of a name mean, for a tensor of this shape."""
    size = prod(shape)
    if not groups:
        if size == 1:
            return (1,) * len(shape)
        raise UserError(f"{shown!r} needs an index: {tensor.unicode(next(tensor.indices()))} is its first element")
    if len(groups) > 1:
        if any(len(g.values) != 1 for g in groups):
            raise UserError(f"{shown!r}: write the index once, e.g. {tensor.latex(next(tensor.indices()))}")
        candidates = [tuple(g.values[0] for g in groups)]
    else:
        candidates = _readings(groups[0], shape)
    valid = [
        c for c in dict.fromkeys(candidates) if len(c) == len(shape) and all(1 <= i <= d for i, d in zip(c, shape))
    ]
    if len(valid) == 1:
        return valid[0]
    sizes = "x".join(map(str, shape))
    if len(valid) > 1:
        options = " or ".join(f"_{{{','.join(map(str, c))}}}" for c in valid)
        raise UserError(f"{shown!r} is ambiguous on this {sizes} tensor: write {options}")
    raise UserError(
        f"{shown!r}: no such element; {tensor.unicode(next(tensor.indices()))} has shape {sizes} "
        f"(indices 1-based{', or one index counted row by row' if len(shape) == 2 else ''})"
    )


def _readings(group: Group, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """What one index group can mean: the index itself, one number counted row by row, or one digit per axis."""
    values, digits = group.values, group.digits
    if not digits:
        return [values]
    per_digit = tuple(int(c) for c in digits)
    if group.unicode and len(per_digit) == len(shape):
        return [per_digit]
    number = values[0]
    readings = []
    if len(shape) == 1:
        readings.append((number,))
    elif len(shape) == 2 and 1 <= number <= prod(shape):
        readings.append(divmod(number - 1, shape[1]))
        readings[-1] = (readings[-1][0] + 1, readings[-1][1] + 1)
    if len(digits) == len(shape) and len(shape) > 1:
        readings.append(per_digit)
    return readings


def names_table(symbolic) -> dict[str, sympy.Symbol]:
    """Alias -> symbol for every element: canonical, unicode, typed and LaTeX names, and the short aliases."""
    table = NameTable(symbolic)
    found: dict[str, sympy.Symbol] = {}
    for tensor in table.tensors.values():
        for index in tensor.indices():
            symbol = table.symbol(tensor, index)
            for alias in element_aliases(table, tensor, index):
                found.setdefault(alias, symbol)
    return found


def element_aliases(table: NameTable, tensor: Tensor, index: tuple[int, ...]) -> list[str]:
    """The names of one element: the four printed forms first, then the short ones a student types."""
    return table.textbook.aliases(tensor, index)
