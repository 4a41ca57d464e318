"""Reading the superscript (stage) and subscripts (index) after a textbook letter: w¹₂₁, w^{(1)}_{2,1},
w1_2_1, w_3^1, x_5. The element they name is resolved by names.NameTable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sympy

from ...errors import UserError
from .names import INDEX_LIST, SUBSCRIPTS, SUPERSCRIPTS, Group, index_number

if TYPE_CHECKING:
    from .lexer import Lexer

_STAGE_PAREN = re.compile(r"\^(?:\{\s*\(\s*([0-9]+)('*)\s*\)\s*\}|\(\s*([0-9]+)('*)\s*\))")
_STAGE_PLAIN = re.compile(r"\^(?:\{\s*([0-9]+)('*)\s*\}|([0-9]+)('*))")
_TYPED_PRIMES = re.compile(r"p+(?=_)")
_DIGIT_RUN = re.compile(r"[0-9]+")
_ONE_DIGIT = re.compile(r"[0-9]")


class Textbook:
    """Reads the superscript (stage) and subscripts (index) after a textbook letter, and resolves them."""

    def __init__(self, lexer: Lexer, letter: str, start: int, pos: int) -> None:
        self.lexer, self.text, self.letter, self.start, self.pos = lexer, lexer.text, letter, start, pos
        self.stage: str | None = None
        self.groups: list[Group] = []
        self.power_fallback: int | None = None  # where the name ends if its superscript is really a power
        self.groups_before_fallback = 0  # no fallback once an index follows the superscript (w²₁)

    def read(self) -> sympy.Symbol:
        table = self.lexer.table
        self.typed_digits()
        while self.part():
            pass
        try:
            symbol = table.resolve(self.letter, self.stage, self.groups, self.text[self.start : self.pos])
        except UserError as error:
            if self.power_fallback is None or len(self.groups) != self.groups_before_fallback:
                raise self.lexer.error(error.message, self.start, self.pos) from None
            self.pos, self.stage = self.power_fallback, None
            try:
                symbol = table.resolve(self.letter, None, self.groups, self.text[self.start : self.pos])
            except UserError:
                raise self.lexer.error(error.message, self.start, self.pos) from None
        self.lexer.pos = self.pos
        return symbol

    def typed_digits(self) -> None:
        """w2_1 (stage 2), a2p_1 (stage 2'), i5 (input 5): digits typed right after an ASCII letter."""
        if not self.letter.isascii():
            return
        match = _DIGIT_RUN.match(self.text, self.pos)
        if match is None:
            return
        digits, self.pos = match.group(), match.end()
        value = self.number(digits)
        if self.lexer.table.staged(self.letter):
            primes = _TYPED_PRIMES.match(self.text, self.pos)
            if primes:
                self.pos = primes.end()
            self.stage = digits + "'" * (len(primes.group()) if primes else 0)
        else:
            self.groups.append(Group((value,), digits))

    def fallback(self, pos: int) -> None:
        if self.power_fallback is None:
            self.power_fallback, self.groups_before_fallback = pos, len(self.groups)

    def number(self, digits: str) -> int:
        """An index or stage as typed; too long is a FormulaError on the name."""
        try:
            return index_number(digits)
        except UserError as error:
            raise self.lexer.error(error.message, self.start, self.pos) from None

    def part(self) -> bool:
        """Read one superscript or subscript part; False when the name ends here."""
        text, pos = self.text, self.pos
        c = text[pos : pos + 1]
        if c and c in SUPERSCRIPTS and self.stage is None:
            end = pos
            while end < len(text) and (text[end] in SUPERSCRIPTS or text[end] in "′'"):
                end += 1
            self.fallback(pos)  # x₁² is x₁ squared when x has no stage 2
            self.stage = "".join(str(SUPERSCRIPTS.index(ch)) if ch in SUPERSCRIPTS else "'" for ch in text[pos:end])
            self.pos = end
            return True
        if c and c in SUBSCRIPTS:
            end = pos
            while end < len(text) and text[end] in SUBSCRIPTS:
                end += 1
            digits = "".join(str(SUBSCRIPTS.index(ch)) for ch in text[pos:end])
            self.pos = end
            self.groups.append(Group((self.number(digits),), digits, unicode=True))
            return True
        if c in ("'", "′") and self.stage is not None:
            self.stage += "'"
            self.pos += 1
            return True
        if c == "[" and not self.groups:
            return self.bracket_index()
        if c == "_":
            return self.subscript()
        if c == "^" and self.stage is None:
            return self.superscript()
        return False

    def bracket_index(self) -> bool:
        match = re.compile(r"\[" + INDEX_LIST.pattern + r"\]").match(self.text, self.pos)
        if match is None:
            return False
        self.pos = match.end()
        self.groups.append(Group(tuple(self.number(v.strip()) for v in match.group(1).split(","))))
        return True

    def subscript(self) -> bool:
        text, pos = self.text, self.pos + 1
        if text[pos : pos + 1] == "{":
            match = re.compile(r"\{" + INDEX_LIST.pattern + r"\}").match(text, pos)
            if match is None:
                raise self.lexer.error("an index is whole numbers separated by commas, e.g. _{1,2}", self.pos)
            values = match.group(1)
            digits = values.strip() if "," not in values else ""
            self.pos = match.end()
            self.groups.append(Group(tuple(self.number(v.strip()) for v in values.split(",")), digits))
            return True
        match = (_ONE_DIGIT if self.lexer.latex else _DIGIT_RUN).match(text, pos)
        if match is None:
            raise self.lexer.error("'_' must be followed by an index, e.g. x_1 or x_{1,2}", self.pos, pos + 1)
        self.pos = match.end()
        self.groups.append(Group((self.number(match.group()),), match.group()))
        return True

    def superscript(self) -> bool:
        """^{(2)} is always a stage; ^2 or ^{2} only next to a subscript (w^2_1, w_1^2), else it is a power."""
        paren = _STAGE_PAREN.match(self.text, self.pos)
        if paren:
            digits, primes = (paren.group(1), paren.group(2)) if paren.group(1) else (paren.group(3), paren.group(4))
            self.stage, self.pos = digits + primes, paren.end()
            return True
        plain = _STAGE_PLAIN.match(self.text, self.pos)
        if plain is None:
            return False
        digits, primes = (plain.group(1), plain.group(2)) if plain.group(1) else (plain.group(3), plain.group(4))
        if self.lexer.latex and not plain.group(1):
            digits, primes = digits[0], ""
        end = self.pos + 1 + len(digits) + len(primes) if not plain.group(1) else plain.end()
        after = self.text[end : end + 1]
        if not self.groups and not (after == "_" or (after and after in SUBSCRIPTS)):
            return False
        if self.groups:
            self.fallback(self.pos)
        self.stage, self.pos = digits + primes, end
        return True
