"""A safe reader for the formulas a student types, in plain maths or LaTeX, into SymPy objects.

Nothing here evaluates user text. A hand-written tokenizer and a recursive-descent parser accept
numbers (decimals are exact), + - * / ^ ** and unary minus, brackets, implicit multiplication
(`2(o - y)`, `2 x_1`), the functions exp, log (= ln), sqrt, tanh, sigmoid, max and min, and the
names of one network (aliases.NameTable); they build SymPy objects directly. Everything else is
a UserError whose one-line message shows the formula with the offending part in ⟦ ⟧.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import sympy

from ...errors import UserError
from .names import LETTERS, SUPERSCRIPTS, NameTable, Textbook

MAX_LENGTH = 20_000  # characters
MAX_TOKENS = 10_000
MAX_DEPTH = 40  # nested brackets, signs and powers
MAX_EXPONENT = 64
MAX_DIGITS = 40  # in one number
MAX_BITS = 4_000  # in a number a power would build

FUNCTIONS = {"exp": 1, "log": 1, "ln": 1, "sqrt": 1, "tanh": 1, "sigmoid": 1, "sigma": 1, "max": 2, "min": 2}
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
LATEX_REFUSED = {
    "dots": "stands for terms that are not written: write every term (check compares the whole formula)",
    "sum": "is not read: write the terms of the sum out",
    "prod": "is not read: write the factors out",
    "partial": "belongs on the left-hand side: give only the formula for the gradient",
    "nabla": "belongs on the left-hand side: give only the formula for the gradient",
}
for _dots in ("ldots", "cdots", "vdots", "ddots"):
    LATEX_REFUSED[_dots] = LATEX_REFUSED["dots"]
OPEN, CLOSE = "([{", ")]}"
UNICODE_WORDS = {"σ": ("func", "sigma"), "π": ("const", sympy.pi), "√": ("func", "sqrt")}
# ∂L/∂NAME, dL/dNAME, \partial L/\partial NAME, \frac{\partial L}{\partial NAME}: the gradient with respect to NAME
_DELTA = re.compile(r"∂\s*L\s*/\s*∂\s*|dL\s*/\s*d\s*(?=[A-Za-z\\ŷ])|\\partial\s*L\s*/\s*\\partial\s*")
_DELTA_FRAC = re.compile(r"\\frac\s*\{\s*\\partial\s*L\s*\}\s*\{\s*\\partial\s*")
_HAT = re.compile(r"\\hat\s*(?:\{\s*y\s*\}|y)")

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_CANONICAL_PARAM = re.compile(r"\.\s*(weight|bias|output)\b")
_CANONICAL_INDEX = re.compile(r"\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")


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


def parse_formula(text: str, table: NameTable, latex: bool | None = None) -> sympy.Expr:
    """The formula as a SymPy expression over the network's symbols, or a UserError pointing at the problem."""
    if len(text) > MAX_LENGTH:
        raise UserError(f"the formula is {len(text):,} characters long; the limit is {MAX_LENGTH:,}", field="--expr")
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise UserError("the formula is empty", field="--expr")
    latex = looks_like_latex(text) if latex is None else latex
    tokens = Lexer(text, table, latex).tokens()
    try:
        expr = Parser(text, tokens, latex).parse()
    except RecursionError:
        raise FormulaError(text, "the formula is nested too deeply", 0, len(text)) from None
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise FormulaError(text, "the formula is undefined (a division by zero?)", 0, len(text))
    return expr


def names_read(text: str, table: NameTable, latex: bool | None = None) -> list[tuple[str, sympy.Symbol]]:
    """Each name as written in a formula that parse_formula accepted, with the symbol it was read as."""
    text = unicodedata.normalize("NFC", text)
    latex = looks_like_latex(text) if latex is None else latex
    tokens = Lexer(text, table, latex).tokens()
    return [(text[t.start : t.end], t.value) for t in tokens if t.kind == "name"]


class FormulaError(UserError):
    """A formula that cannot be read, in one line: the message, then the formula with the culprit in ⟦ ⟧."""

    def __init__(self, text: str, message: str, start: int, end: int) -> None:
        end = max(end, start + 1)
        left, right = max(0, start - 40), min(len(text), end + 40)
        shown = (
            ("…" if left else "") + text[left:start] + "⟦" + text[start:end] + "⟧" + text[end:right]
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
            raise self.error(f"the formula has more than {MAX_TOKENS:,} parts", start)
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
        if delta:
            self.delta(delta)
        elif c.isdigit() or (c == "." and text[pos + 1 : pos + 2].isdigit()):
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
        return f"unexpected character {c!r}"

    def number(self) -> None:
        start = self.pos
        if self.latex and self.out and self.out[-1].value == "^":
            match = re.compile(r"\d").match(self.text, start)
            if self.text[match.end() : match.end() + 1].isdigit():  # TeX reads x^23 as x^2 times 3
                digits = re.compile(r"\d+").match(self.text, start).group()
                raise self.error(
                    f"in LaTeX ^{digits} is ^{digits[0]} followed by {digits[1:]}: write ^{{{digits}}}", start
                )
        else:
            match = _NUMBER.match(self.text, start)
        digits = match.group()
        if sum(ch.isdigit() for ch in digits) > MAX_DIGITS or abs(_exponent(digits)) > MAX_DIGITS:
            raise self.error(f"number too long (more than {MAX_DIGITS} digits)", start, match.end())
        value = sympy.Rational(_fraction(digits))
        self.add("num", value, start, match.end())
        self.unicode_power()

    def unicode_power(self) -> None:
        """(o - y)² after a bracket or a number: a power written with superscript digits."""
        start = self.pos
        end = start
        while end < len(self.text) and self.text[end] in SUPERSCRIPTS:
            end += 1
        if end > start:
            self.add("op", "^", start, start)
            digits = "".join(str(SUPERSCRIPTS.index(ch)) for ch in self.text[start:end])
            self.add("num", sympy.Integer(int(digits)), start, end)

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
            raise self.error(f"unknown LaTeX command \\{name}", start, end)

    def word(self) -> None:
        start = self.pos
        ident = _IDENT.match(self.text, start).group()
        end = start + len(ident)
        if ident in FUNCTIONS:
            self.add("func", ident, start, end)
        elif ident in ("e", "pi"):
            self.add("const", sympy.E if ident == "e" else sympy.pi, start, end)
        else:
            self.name(start)

    def name(self, start: int) -> None:
        symbol, end = self.name_at(start)
        self.add("name", symbol, start, end)

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
        if ident in ("input", "target", "loss") or (
            ident in self.table.layer_names and _CANONICAL_PARAM.match(text, end)
        ):
            return self.canonical(ident, pos, end)
        letter = re.match(r"[A-Za-z]*", ident).group()
        if letter not in LETTERS:
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
        known = list(FUNCTIONS) + ["input", "target", "loss"] + sorted(self.table.layer_names)
        close = difflib.get_close_matches(ident, known, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return f"unknown name {ident!r}{hint} (names: `cnnderive symbols NET.yaml`; put a space or * between two names)"

    def canonical(self, ident: str, start: int, end: int) -> tuple[sympy.Symbol, int]:
        name = ident
        if ident not in ("input", "target", "loss"):
            param = _CANONICAL_PARAM.match(self.text, end)
            name, end = f"{ident}.{param.group(1)}", param.end()
        index = None
        bracket = _CANONICAL_INDEX.match(self.text, end)
        if bracket:
            index = tuple(int(part) for part in bracket.group(1).split(","))
            end = bracket.end()
        try:
            return self.table.canonical(name, index, self.text[start:end]), end
        except UserError as error:
            raise self.error(error.message, start, end) from None

    def textbook(self, letter: str, start: int, pos: int) -> tuple[sympy.Symbol, int]:
        """A textbook name: letter, then stage and index in unicode, typed or LaTeX form, in either order."""
        reader = Textbook(self, letter, start, pos)
        return reader.read(), reader.pos


class Parser:
    """Recursive descent over the tokens, building SymPy objects directly.

    sum := product (('+' | '-') product)*     product := signed (('*' | '/') signed | power)*
    signed := ('+' | '-') signed | power      power := atom ('^' signed)?
    atom := number | name | constant | function | '(' sum ')' | \\frac{sum}{sum} | \\sqrt[n]{sum}
    """

    def __init__(self, text: str, tokens: list[Token], latex: bool) -> None:
        self.text, self.tokens, self.latex = text, tokens, latex
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, message: str, start: int, end: int | None = None) -> FormulaError:
        return FormulaError(self.text, message, start, start + 1 if end is None else end)

    def deeper(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the formula is nested more than {MAX_DEPTH} levels deep", token.start, token.end)

    def parse(self) -> sympy.Expr:
        expr = self.sum()
        token = self.peek()
        if token.kind != "end":
            what = (
                "a closing bracket without its opening one"
                if token.kind == "close"
                else f"unexpected {self.show(token)}"
            )
            raise self.error(what, token.start, token.end)
        return expr

    def show(self, token: Token) -> str:
        return "end of the formula" if token.kind == "end" else repr(self.text[token.start : token.end] or token.value)

    def sum(self) -> sympy.Expr:
        terms = [self.product()]
        while self.peek().kind == "op" and self.peek().value in "+-":
            sign = self.take().value
            term = self.product()
            terms.append(-term if sign == "-" else term)
        return sympy.Add(*terms)

    def product(self) -> sympy.Expr:
        value = self.signed()
        while True:
            token = self.peek()
            if token.kind == "op" and token.value in "*/":
                self.take()
                start = self.peek().start
                factor = self.signed()
                if token.value == "/":
                    if factor == 0:
                        raise self.error("division by zero", start, self.tokens[self.i - 1].end)
                    factor = sympy.Pow(factor, -1)
                value = sympy.Mul(value, factor)
            elif token.kind in ("num", "name", "const", "func", "open", "frac", "sqrt"):
                if token.kind == "num" and self.tokens[self.i - 1].kind == "num":
                    raise self.error("two numbers in a row: put an operator between them", token.start, token.end)
                value = sympy.Mul(value, self.power())
            else:
                return value

    def signed(self) -> sympy.Expr:
        token = self.peek()
        if token.kind == "op" and token.value in "+-":
            self.take()
            self.deeper(token)
            value = self.signed()
            self.depth -= 1
            return -value if token.value == "-" else value
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if not (self.peek().kind == "op" and self.peek().value == "^"):
            return base
        token = self.take()
        self.deeper(token)
        start = self.peek().start
        exponent = self.signed()
        self.depth -= 1
        return self.build_power(base, exponent, start, self.tokens[self.i - 1].end)

    def build_power(self, base: sympy.Expr, exponent: sympy.Expr, start: int, end: int) -> sympy.Expr:
        if base == sympy.E:
            return sympy.exp(exponent)
        if not exponent.is_Rational:
            raise self.error("an exponent must be a number (write exp(...) for e to a power)", start, end)
        if abs(exponent) > MAX_EXPONENT or exponent.q > 16:
            raise self.error(f"exponent too large (the limit is {MAX_EXPONENT})", start, end)
        if base.is_Rational:
            if base == 0 and exponent < 0:
                raise self.error("division by zero", start, end)
            bits = max(int(base.p).bit_length(), int(base.q).bit_length()) * abs(int(exponent.p))
            if bits > MAX_BITS:
                raise self.error("this power makes a number too large to work with", start, end)
        return sympy.Pow(base, exponent)

    def atom(self) -> sympy.Expr:
        token = self.take()
        if token.kind in ("num", "name", "const"):
            return token.value
        if token.kind == "open":
            return self.bracketed(token)
        if token.kind == "func":
            return self.function(token)
        if token.kind == "frac":
            numerator = self.braced(token)
            return sympy.Mul(numerator, self.reciprocal(token))
        if token.kind == "sqrt":
            return self.root(token)
        if token.kind == "end":
            raise self.error("the formula ends too early: a number, name or bracket is missing", token.start)
        raise self.error(f"expected a number, a name or a bracket, found {self.show(token)}", token.start, token.end)

    def bracketed(self, token: Token) -> sympy.Expr:
        self.deeper(token)
        value = self.sum()
        self.close(token)
        self.depth -= 1
        return value

    def close(self, opening: Token) -> None:
        token = self.take()
        want = CLOSE[OPEN.index(opening.value)]
        if token.kind != "close":
            raise self.error(
                f"expected {want!r} to close the {opening.value!r} opened here", opening.start, token.start + 1
            )
        if token.value != want:
            raise self.error(f"{token.value!r} closes a {opening.value!r}: expected {want!r}", token.start, token.end)

    def braced(self, command: Token) -> sympy.Expr:
        """The {argument} of \\frac or \\sqrt."""
        token = self.take()
        if token.kind != "open":
            raise self.error(f"write \\{command.value}{{...}} with braces", command.start, token.end)
        return self.bracketed(token)

    def reciprocal(self, frac: Token) -> sympy.Expr:
        start = self.peek().start
        denominator = self.braced(frac)
        if denominator == 0:
            raise self.error("division by zero", start, self.tokens[self.i - 1].end)
        return sympy.Pow(denominator, -1)

    def root(self, token: Token) -> sympy.Expr:
        degree = sympy.Integer(2)
        if self.peek().kind == "open" and self.peek().value == "[":
            opening = self.take()
            degree = self.sum()
            self.close(opening)
            if not (degree.is_Integer and 2 <= degree <= MAX_EXPONENT):
                raise self.error(
                    "the degree of a root must be a whole number from 2", opening.start, self.tokens[self.i - 1].end
                )
        return self.build_power(self.braced(token), 1 / degree, token.start, token.end)

    def function(self, token: Token) -> sympy.Expr:
        name = token.value
        if self.peek().kind != "open":
            if not self.latex:
                raise self.error(f"write {name}(...) with brackets", token.start, token.end)
            self.deeper(token)
            args = [self.power()]  # LaTeX: \log p_1
            self.depth -= 1
        else:
            opening = self.take()
            self.deeper(opening)
            args = [self.sum()]
            while self.peek().kind == "comma":
                self.take()
                args.append(self.sum())
            self.close(opening)
            self.depth -= 1
        want = FUNCTIONS.get(name, 1)
        if (want == 1 and len(args) != 1) or len(args) < want:
            need = "one argument" if want == 1 else "at least two arguments"
            raise self.error(f"{name} takes {need}", token.start, self.tokens[self.i - 1].end)
        return apply_function(name, args)


def apply_function(name: str, args: list[sympy.Expr]) -> sympy.Expr:
    """The SymPy object of an allowed function; sigmoid(x) is 1 / (1 + exp(-x))."""
    if name in ("sigmoid", "sigma"):
        return 1 / (1 + sympy.exp(-args[0]))
    if name == "max":
        return sympy.Max(*args)
    if name == "min":
        return sympy.Min(*args)
    return {"exp": sympy.exp, "log": sympy.log, "ln": sympy.log, "sqrt": sympy.sqrt, "tanh": sympy.tanh}[name](args[0])


def _exponent(digits: str) -> int:
    match = re.search(r"[eE]([+-]?\d+)$", digits)
    return int(match.group(1)) if match else 0


def _fraction(digits: str):
    from fractions import Fraction

    return Fraction(digits)
