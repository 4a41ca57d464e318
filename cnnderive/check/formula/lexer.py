"""Cutting a formula into tokens: numbers, names, operators, brackets, functions and LaTeX commands.

Nothing here evaluates user text. Every character either becomes part of a token or is refused
with a FormulaError: one line that shows the formula with the culprit in ⟦ ⟧. Digits are the
ASCII 0-9; superscript digits are a power after a number, a bracket or a name (o², (o - y)²)
or the stage of a textbook name (w¹₂₁); subscript digits are an index after a name (x₂₁).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import sympy

from ...errors import UserError
from .names import LETTERS, SUBSCRIPTS, SUPERSCRIPTS, NameTable, brief
from .textbook import Textbook

MAX_LENGTH = 20_000  # characters
MAX_TOKENS = 4_000  # SymPy needs seconds to build a sum of a few thousand terms
MAX_DIGITS = 40  # in one number

DIGITS = "0123456789"
SUPERSCRIPT_SIGNS = {"⁻": "-", "⁺": "+"}
FUNCTIONS = {"exp": 1, "log": 1, "ln": 1, "sqrt": 1, "tanh": 1, "sigmoid": 1, "sigma": 1, "max": 2, "min": 2}
CONSTANTS = {"e": sympy.E, "pi": sympy.pi}
CANONICAL_HEADS = ("input", "target", "loss")
RESERVED_WORDS = frozenset(FUNCTIONS) | frozenset(CONSTANTS)  # words a formula reads as a function or constant
LATEX_FUNCTIONS = {"exp", "log", "ln", "tanh", "sigma", "max", "min"}
OPERATORS = {
    "+": "+",
    "-": "-",
    "−": "-",
    "–": "-",
    "*": "*",
    "·": "*",
    "⋅": "*",
    "×": "*",
    "/": "/",
    "÷": "/",
    "^": "^",
}
LATEX_OPERATORS = {"cdot": "*", "times": "*", "div": "/"}
LATEX_IGNORED = {
    ",",
    ";",
    ":",
    "!",
    " ",
    "quad",
    "qquad",
    "left",
    "right",
    "big",
    "Big",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
}
_DOTS = "stands for terms that are not written: write every term (check compares the whole formula)"
LATEX_REFUSED = {
    "sum": "is not read: write the terms of the sum out",
    "prod": "is not read: write the factors out",
    "partial": (
        "is read only in a gradient, \\partial L/\\partial NAME or \\frac{\\partial L}{\\partial NAME} (L or C for "
        "the loss); for the left-hand side give only the formula"
    ),
    "nabla": "belongs on the left-hand side: give only the formula for the gradient",
} | {dots: _DOTS for dots in ("dots", "ldots", "cdots", "vdots", "ddots")}
OPEN, CLOSE = "([{", ")]}"
UNICODE_WORDS = {"σ": ("func", "sigma"), "π": ("const", sympy.pi), "√": ("func", "sqrt")}
# ∂L/∂NAME, dL/dNAME, \partial L/\partial NAME, \frac{\partial L}{\partial NAME}, and the same with C (the
# loss as seed 001 calls it): the gradient with respect to NAME
_DELTA = re.compile(
    r"∂\s*[LC]\s*/\s*∂\s*|d[LC]\s*/\s*d\s*(?=[A-Za-z\\ŷ])|\\partial\s*[LC]\s*/\s*\\partial\s*", re.ASCII
)
_DELTA_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(?:\\partial|d)\s*[LC]\s*\}\s*\{\s*(?:\\partial|d)\s*(?=[A-Za-z\\ŷ])")
# the ReLU derivative, 1 where z > 0 and 0 elsewhere (ReLU'(0) = 0): relu'(z), step(z), H(z), 1[z > 0]
STEP_WORDS = {"step", "H", "heaviside", "Heaviside"}
_RELU_PRIME = re.compile(r"(?:relu|ReLU|Relu|RELU)\s*['′]")
_STEP_CALL = re.compile(r"\s*\(")
COMPARISONS = {">=": ">=", "<=": "<=", "≥": ">=", "≤": "<=", ">": ">", "<": "<"}
LATEX_COMPARISONS = {"gt": ">", "lt": "<", "geq": ">=", "ge": ">=", "leq": "<=", "le": "<="}
# \mathbb{1} or \mathbf{1} (the 1 of an Iverson bracket), \mathrm{ReLU}'(z), \operatorname{step}(z)
_LATEX_WORD = re.compile(r"\\(mathbb|mathbf|mathds|mathrm|text|operatorname|boldsymbol)\s*\{\s*([A-Za-z]+|1)\s*\}")
_HAT = re.compile(r"\\hat\s*(?:\{\s*y\s*\}|y)")

_NUMBER = re.compile(r"([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?", re.ASCII)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_COMMAND = re.compile(r"\\([A-Za-z]+|.)", re.ASCII)
_CANONICAL_PARAM = re.compile(r"\.\s*(weight|bias|output)\b", re.ASCII)
_CANONICAL_INDEX = re.compile(r"\s*\[\s*([0-9]+(?:\s*,\s*[0-9]+)*)\s*\]", re.ASCII)
_LETTER = re.compile(r"[A-Za-z]*", re.ASCII)


def _digit(c: str) -> bool:
    return len(c) == 1 and c in DIGITS


@dataclass(frozen=True)
class Token:
    """A piece of the formula: num, name, const, func, op, open, close, comma, frac, sqrt or end."""

    kind: str
    value: object
    start: int
    end: int


def looks_like_latex(text: str) -> bool:
    """LaTeX is assumed when the formula has a backslash or a braced superscript or subscript."""
    return "\\" in text or "^{" in text or "_{" in text


def prepared(text: str) -> str:
    """The formula in NFC form, or a UserError when it is empty or longer than the limit."""
    if len(text) > MAX_LENGTH:
        raise UserError(f"the formula is {len(text):,} characters long; the limit is {MAX_LENGTH:,}", field="--expr")
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise UserError("the formula is empty", field="--expr")
    return text


class FormulaError(UserError):
    """A formula that cannot be read, in one line: the message, then the formula with the culprit in ⟦ ⟧."""

    def __init__(self, text: str, message: str, start: int, end: int) -> None:
        end = min(max(end, start + 1), len(text))
        left, right = max(0, start - 40), min(len(text), end + 40)
        shown = (
            ("…" if left else "")
            + text[left:start]
            + "⟦"
            + brief(text[start:end])
            + "⟧"
            + text[end:right]
            + ("…" if right < len(text) else "")
        )
        super().__init__(f"{message} (at column {start + 1}): {shown}", field="--expr")


class Lexer:
    """Cuts a formula into tokens; names are resolved here, against the network's table."""

    def __init__(self, text: str, table: NameTable, latex: bool) -> None:
        self.text, self.table, self.latex = text, table, latex
        self.pos = 0
        self.out: list[Token] = []

    def error(self, message: str, start: int, end: int | None = None) -> FormulaError:
        return FormulaError(self.text, message, start, start + 1 if end is None else end)

    def add(self, kind: str, value: object, start: int, end: int) -> None:
        if len(self.out) >= MAX_TOKENS:
            raise self.error(f"the formula has more than {MAX_TOKENS:,} parts (numbers, names, operators)", start)
        self.out.append(Token(kind, value, start, end))
        self.pos = end

    def tokens(self) -> list[Token]:
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                self.out.append(Token("end", None, len(text), len(text)))
                return self.out
            self.one(text[self.pos])

    def one(self, c: str) -> None:
        text, pos = self.text, self.pos
        delta = _DELTA_FRAC.match(text, pos) or _DELTA.match(text, pos)
        latex_word = _LATEX_WORD.match(text, pos) if c == "\\" else None
        if delta:
            self.delta(delta)
        elif latex_word:
            self.latex_word(latex_word)
        elif c in "<>≤≥":
            self.comparison()
        elif _digit(c) or (c == "." and _digit(text[pos + 1 : pos + 2])):
            self.number()
        elif text.startswith("**", pos):
            self.add("op", "^", pos, pos + 2)
        elif c in OPERATORS:
            self.add("op", OPERATORS[c], pos, pos + 1)
        elif c in OPEN:
            self.add("open", c, pos, pos + 1)
        elif c in CLOSE:
            self.add("close", c, pos, pos + 1)
            self.unicode_power()
        elif c == ",":
            self.add("comma", c, pos, pos + 1)
        elif c == "\\":
            self.command()
        elif c.isascii() and (c.isalpha() or c == "_"):
            self.word()
        elif c == "ŷ":
            self.name(pos)
        elif c in UNICODE_WORDS:
            self.add(*UNICODE_WORDS[c], pos, pos + 1)
        else:
            raise self.error(self.unexpected(c), pos)

    def unexpected(self, c: str) -> str:
        if c == "=":
            return "'=' is not allowed: give only the right-hand side, the formula for the gradient"
        if c in "'\"":
            return "quotes are not allowed: a formula has numbers, names, operators and brackets only"
        if c in SUPERSCRIPTS or c in SUPERSCRIPT_SIGNS:
            return (
                f"the superscript {c!r} must follow a number, a name or a closing bracket, "
                "as in o² or (o - y)² (or write ^2)"
            )
        if c in SUBSCRIPTS:
            return f"the subscript {c!r} must follow a name, as in x₂ (or write x_2)"
        if unicodedata.category(c)[0] == "N":
            return f"unexpected character {c!r}: write numbers with the digits 0-9"
        return f"unexpected character {c!r}"

    def comparison(self) -> None:
        """>, <, >=, <=, ≥, ≤: read only inside an Iverson bracket 1[z > 0] (the parser says so elsewhere)."""
        pos = self.pos
        two = self.text[pos : pos + 2]
        written = two if two in COMPARISONS else self.text[pos]
        self.add("cmp", COMPARISONS[written], pos, pos + len(written))

    def latex_word(self, match: re.Match) -> None:
        """\\mathbb{1} / \\mathbf{1}: the 1 of an Iverson bracket; \\mathrm{ReLU}'(z), \\operatorname{step}(z)."""
        start, word = self.pos, match.group(2)
        if word == "1":
            self.add("num", sympy.Integer(1), start, match.end())
        elif _RELU_PRIME.match(word + self.text[match.end() : match.end() + 1]):
            self.add("func", "step", start, match.end() + 1)
        elif word in STEP_WORDS or word in FUNCTIONS:
            self.add("func", "step" if word in STEP_WORDS else word, start, match.end())
        else:
            raise self.error(f"\\{match.group(1)}{{{brief(word)}}} is not read here", start, match.end())

    def number(self) -> None:
        start = self.pos
        after_power = bool(self.out) and self.out[-1].kind == "op" and self.out[-1].value == "^"
        if self.latex and after_power and _digit(self.text[start + 1 : start + 2]):
            digits = re.compile(r"[0-9]+").match(self.text, start).group()
            raise self.error(
                f"in LaTeX ^{brief(digits)} is ^{digits[0]} followed by {brief(digits[1:])}: "
                f"write ^{{{brief(digits)}}}",
                start,
                start + len(digits),
            )
        match = _NUMBER.match(self.text, start)
        whole, decimals, exponent = match.group(1), match.group(2), match.group(3) or "0"
        if len(whole + decimals) > MAX_DIGITS:
            raise self.error(f"number too long (the limit is {MAX_DIGITS} digits)", start, match.end())
        power = exponent.lstrip("+-").lstrip("0") or "0"
        if len(power) > 2 or int(power) > MAX_DIGITS:
            raise self.error(f"the exponent of this number is beyond ±{MAX_DIGITS}", start, match.end())
        power = -int(power) if exponent.startswith("-") else int(power)
        value = sympy.Integer(int(whole + decimals)) * sympy.Integer(10) ** (power - len(decimals))
        self.add("num", value, start, match.end())
        self.unicode_power()

    def unicode_power(self) -> None:
        """(o - y)², o⁻¹: a power written with superscript digits after a number, a bracket or a name."""
        start = end = self.pos
        text = self.text
        if text[end : end + 1] in SUPERSCRIPT_SIGNS and text[end + 1 : end + 2] in tuple(SUPERSCRIPTS):  # o⁻¹, o⁺²
            end += 1
        while end < len(text) and text[end] in SUPERSCRIPTS:
            end += 1
        if end == start:
            return
        if end - start > 3:
            raise self.error("exponent too large (the limit is 64)", start, end)
        self.add("op", "^", start, start)
        if text[start] in SUPERSCRIPT_SIGNS:
            self.add("op", SUPERSCRIPT_SIGNS[text[start]], start, start + 1)
            start += 1
        self.add("num", sympy.Integer(int("".join(str(SUPERSCRIPTS.index(ch)) for ch in text[start:end]))), start, end)

    def command(self) -> None:
        start = self.pos
        match = _COMMAND.match(self.text, start)
        if match is None:
            raise self.error("a backslash must start a LaTeX command", start)
        name, end = match.group(1), match.end()
        if name in LATEX_IGNORED:
            self.pos = end + (1 if name in ("left", "right") and self.text[end : end + 1] == "." else 0)
        elif name in LATEX_OPERATORS:
            self.add("op", LATEX_OPERATORS[name], start, end)
        elif name in LATEX_COMPARISONS:
            self.add("cmp", LATEX_COMPARISONS[name], start, end)
        elif name in ("frac", "dfrac", "tfrac"):
            self.add("frac", name, start, end)
        elif name == "sqrt":
            self.add("sqrt", name, start, end)
        elif name in LATEX_FUNCTIONS:
            self.add("func", name, start, end)
        elif name == "pi":
            self.add("const", sympy.pi, start, end)
        elif name == "hat":
            self.name(start)
        elif name in LATEX_REFUSED:
            raise self.error(f"\\{name} {LATEX_REFUSED[name]}", start, end)
        else:
            raise self.error(f"unknown LaTeX command \\{brief(name)}", start, end)

    def word(self) -> None:
        start = self.pos
        ident = _IDENT.match(self.text, start).group()
        end = start + len(ident)
        relu_prime = _RELU_PRIME.match(self.text, start)
        if ident in self.table.layer_names and _CANONICAL_PARAM.match(self.text, end):
            self.name(start)  # LAYER.weight[...]: a layer may even be called exp or e
        elif relu_prime:
            self.add("func", "step", start, relu_prime.end())
        elif ident in STEP_WORDS and _STEP_CALL.match(self.text, end):
            self.add("func", "step", start, end)
        elif ident.lower() == "relu":
            raise self.error("relu(...) is not read: write max(0, z) for ReLU, relu'(z) for its derivative", start, end)
        elif ident in FUNCTIONS:
            self.add("func", ident, start, end)
        elif ident in CONSTANTS:
            self.add("const", CONSTANTS[ident], start, end)
        else:
            self.name(start)

    def name(self, start: int) -> None:
        symbol, end = self.name_at(start)
        self.add("name", symbol, start, end)
        self.unicode_power()

    def name_at(self, pos: int) -> tuple[sympy.Symbol, int]:
        """The element named at pos (canonical or textbook, any spelling), and where its name ends."""
        text = self.text
        hat = _HAT.match(text, pos)
        if text.startswith("ŷ", pos) or hat:
            return self.textbook("ŷ", pos, hat.end() if hat else pos + 1)
        if text.startswith("\\hat", pos):
            raise self.error(r"\hat is read only as \hat{y}, the network's output", pos, pos + 4)
        match = _IDENT.match(text, pos)
        if match is None:
            raise self.error("a name is expected here", pos)
        ident = match.group()
        end = pos + len(ident)
        if ident in self.table.layer_names and _CANONICAL_PARAM.match(text, end):
            return self.canonical(ident, pos, end)
        if ident in CANONICAL_HEADS:
            return self.canonical(ident, pos, end)
        letter = _LETTER.match(ident).group()
        if letter not in LETTERS and letter not in self.table.letters:
            raise self.error(self.unknown(ident), pos, end)
        return self.textbook(letter, pos, pos + len(letter))

    def delta(self, prefix: re.Match) -> None:
        """∂L/∂NAME: the symbol of the gradient with respect to that element."""
        start = self.pos
        symbol, end = self.name_at(prefix.end())
        if prefix.re is _DELTA_FRAC:
            close = re.compile(r"\s*\}").match(self.text, end)
            if close is None:
                raise self.error(r"write \frac{\partial L}{\partial NAME}", start, end)
            end = close.end()
        self.add("name", sympy.Symbol("dL/d" + symbol.name, real=True), start, end)

    def unknown(self, ident: str) -> str:
        known = list(FUNCTIONS) + list(CANONICAL_HEADS) + sorted(self.table.layer_names)
        close = difflib.get_close_matches(ident, known, n=3) if len(ident) <= 40 else []
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return (
            f"unknown name {brief(ident)!r}{hint} "
            "(names: `cnnderive symbols NET.yaml`; put a space or * between two names)"
        )

    def canonical(self, ident: str, start: int, end: int) -> tuple[sympy.Symbol, int]:
        name = ident
        if ident not in CANONICAL_HEADS or ident in self.table.layer_names:
            param = _CANONICAL_PARAM.match(self.text, end)
            if param is not None:
                name, end = f"{ident}.{param.group(1)}", param.end()
        index = None
        bracket = _CANONICAL_INDEX.match(self.text, end)
        if bracket:
            parts = [part.strip() for part in bracket.group(1).split(",")]
            if any(len(part.lstrip("0")) > 9 for part in parts):
                raise self.error("an index is too long (at most 9 digits)", end, bracket.end())
            index, end = tuple(int(part) for part in parts), bracket.end()
        try:
            return self.table.canonical(name, index, self.text[start:end]), end
        except UserError as error:
            raise self.error(error.message, start, end) from None

    def textbook(self, letter: str, start: int, pos: int) -> tuple[sympy.Symbol, int]:
        """A textbook name: letter, then stage and index in unicode, typed or LaTeX form, in either order."""
        reader = Textbook(self, letter, start, pos)
        return reader.read(), reader.pos
