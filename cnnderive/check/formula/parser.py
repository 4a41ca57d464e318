"""A safe reader for the formulas a student types, in plain maths or LaTeX, into SymPy objects.

Nothing here evaluates user text. The lexer (lexer.py) cuts the text into tokens; a
recursive-descent parser builds SymPy objects directly from them: numbers (decimals are exact),
+ - * / ^ ** and unary minus, brackets, implicit multiplication (`2(o - y)`, `2 x_1`), the
functions exp, log (= ln), sqrt, tanh, sigmoid, max and min, the names of one network, and the
ReLU derivative as relu'(z), step(z), H(z) or an Iverson bracket 1[z > 0] (\\mathbb{1}[...]): each is
decided at this config's numbers, exactly, as the ReLU masks are (so it is 0 at z = 0: ReLU'(0) = 0).

The work SymPy does while building is bounded before it is asked for: nesting, functions inside
functions, exponents (powers of powers too), and the digits of the numbers, written or made by
powers. Anything else is a UserError whose one-line message says which limit was hit and shows
the formula with the culprit in ⟦ ⟧.
"""

from __future__ import annotations

import sympy

from ...errors import UserError
from ..numbers import MAXIMUM, MINIMUM, check_exp_argument
from .indicators import sign_here
from .lexer import FUNCTIONS, RESERVED_WORDS, FormulaError, Lexer, Token, looks_like_latex, prepared
from .names import NameTable

__all__ = [
    "FUNCTIONS",
    "MAXIMUM",
    "MINIMUM",
    "RESERVED_WORDS",
    "looks_like_latex",
    "names_read",
    "parse_formula",
    "read_formula",
]

MAX_DEPTH = 40  # nested brackets, signs and powers
MAX_FUNCTION_DEPTH = 8  # functions inside functions (e^(...) counts as exp)
MAX_EXPONENT = 64  # |numerator| of an exponent, also after SymPy multiplies the exponents of a power of a power
MAX_ROOT = 16  # denominator of an exponent: up to the 16th root
MAX_NUMBER_DIGITS = 2_000  # digits of all the numbers of a formula, those that powers of numbers build included
MAX_ROOT_DIGITS = 40  # digits of a number under a root (SymPy looks for its factors)
_DIGITS_PER_BIT = 0.30103
CLOSE_OF = {"(": ")", "[": "]", "{": "}"}


def parse_formula(text: str, table: NameTable, latex: bool | None = None) -> sympy.Expr:
    """The formula as a SymPy expression over the network's symbols, or a UserError pointing at the problem."""
    return read_formula(text, table, latex)[0]


def names_read(text: str, table: NameTable, latex: bool | None = None) -> list[tuple[str, sympy.Expr]]:
    """Each name as written in a formula that parse_formula accepted, with the symbol it was read as
    (and each indicator such as relu'(z) or 1[z > 0], with the 0 or 1 it was read as)."""
    return read_formula(text, table, latex)[1]


def read_formula(
    text: str, table: NameTable, latex: bool | None = None
) -> tuple[sympy.Expr, list[tuple[str, sympy.Expr]]]:
    """The formula as a SymPy expression, and what each name and indicator in it was read as, in order."""
    text = prepared(text)
    latex = looks_like_latex(text) if latex is None else latex
    tokens = Lexer(text, table, latex).tokens()
    parser = Parser(text, tokens, latex, table)
    try:
        expr = parser.parse()
    except RecursionError:
        raise FormulaError(text, "the formula is nested too deeply", 0, len(text)) from None
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise FormulaError(text, "the formula is undefined (a division by zero, or log(0)?)", 0, len(text))
    names = [(t.start, text[t.start : t.end], t.value) for t in tokens if t.kind == "name"]
    return expr, [(written, value) for _, written, value in sorted(names + parser.read, key=lambda r: r[0])]


def _shown(q: sympy.Rational) -> str:
    return f"{int(q):,}" if q.is_Integer else str(q)


def number_digits(expr: sympy.Expr) -> float:
    """The decimal digits of the numbers SymPy holds right at the top of an expression (2·3^(1/2)·x: 2 and 3)."""
    if expr.is_Rational:
        return (int(expr.p).bit_length() + int(expr.q).bit_length()) * _DIGITS_PER_BIT
    if expr.is_Mul:
        return sum(number_digits(arg) for arg in expr.args)
    if expr.is_Pow and expr.base.is_Rational:
        return number_digits(expr.base)
    return 0.0


class Parser:
    """Recursive descent over the tokens, building SymPy objects directly.

    sum := product (('+' | '-') product)*     product := signed (('*' | '/') signed | power)*
    signed := ('+' | '-') signed | power      power := atom ('^' signed)?
    atom := number | name | constant | function | '(' sum ')' | \\frac{sum}{sum} | \\sqrt[n]{sum}
    """

    def __init__(self, text: str, tokens: list[Token], latex: bool, table: NameTable) -> None:
        self.text, self.tokens, self.latex, self.table = text, tokens, latex, table
        self.i = 0
        self.depth = 0  # brackets, signs and powers open around the current token
        self.functions = 0  # functions open around it
        self.digits = 0.0  # of the numbers read or built so far
        self.read: list[tuple[int, str, sympy.Expr]] = []  # each indicator: where, as written, the 0 or 1 read

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def last_end(self) -> int:
        return self.tokens[self.i - 1].end

    def error(self, message: str, start: int, end: int | None = None) -> FormulaError:
        return FormulaError(self.text, message, start, start + 1 if end is None else end)

    def deeper(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the formula is nested more than {MAX_DEPTH} levels deep", token.start, token.end)

    def inside_function(self, token: Token) -> None:
        self.functions += 1
        if self.functions > MAX_FUNCTION_DEPTH:
            raise self.error(
                f"functions are nested more than {MAX_FUNCTION_DEPTH} deep (exp, log, tanh, ... inside each other)",
                token.start,
                token.end,
            )

    def spend_digits(self, digits: float, start: int, end: int) -> None:
        self.digits += digits
        if self.digits > MAX_NUMBER_DIGITS:
            raise self.error(
                f"the numbers in this formula have more than {MAX_NUMBER_DIGITS:,} digits in all "
                "(a power of a number counts the digits it makes)",
                start,
                end,
            )

    def parse(self) -> sympy.Expr:
        expr = self.sum()
        token = self.peek()
        if token.kind != "end":
            what = (
                "a closing bracket without its opening one"
                if token.kind == "close"
                else f"unexpected {self.show(token)}"
            )
            raise self.error(self.misplaced_comparison(token) or what, token.start, token.end)
        return expr

    def misplaced_comparison(self, token: Token) -> str | None:
        if token.kind != "cmp":
            return None
        return f"{self.show(token)} is read only inside an Iverson bracket, as in 1[z > 0] (1 where z > 0, else 0)"

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
        factors = [self.signed()]
        while True:
            token = self.peek()
            if token.kind == "op" and token.value in "*/":
                self.take()
                start = self.peek().start
                factor = self.signed()
                if token.value == "/":
                    if factor == 0:
                        raise self.error("division by zero", start, self.last_end())
                    factor = sympy.Pow(factor, -1)
                factors.append(factor)
            elif token.kind in ("num", "name", "const", "func", "open", "frac", "sqrt"):
                if token.kind == "num" and self.tokens[self.i - 1].kind == "num":
                    raise self.error("two numbers in a row: put an operator between them", token.start, token.end)
                factors.append(self.power())
            else:
                return sympy.Mul(*factors)  # at once: one factor at a time is quadratic in SymPy

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
        level = 1 if base == sympy.E else 0  # e^(...) is exp(...): a function inside the others
        self.deeper(token)
        if level:
            self.inside_function(token)
        start = self.peek().start
        exponent = self.signed()
        self.depth -= 1
        self.functions -= level
        return self.build_power(base, exponent, start, self.last_end())

    def build_exp(self, argument: sympy.Expr, start: int, end: int) -> sympy.Expr:
        """exp(argument), once a constant argument is known to be within ±23,000 (else SymPy may never end)."""
        gradients = any(symbol.name.startswith("dL/d") for symbol in argument.free_symbols)
        try:
            check_exp_argument(argument, self.table.constant_gradients if gradients else {})
        except UserError as error:
            raise self.error(error.message, start, end) from None
        return sympy.exp(argument)

    def build_power(self, base: sympy.Expr, exponent: sympy.Expr, start: int, end: int) -> sympy.Expr:
        if base == sympy.E:
            return self.build_exp(exponent, start, end)
        if not exponent.is_Rational:
            raise self.error("an exponent must be a number (write exp(...) for e to a power)", start, end)
        if abs(exponent.p) > MAX_EXPONENT or exponent.q > MAX_ROOT:
            raise self.error(
                f"exponent too large (the limit is {MAX_EXPONENT}, and roots up to the {MAX_ROOT}th)", start, end
            )
        if base == 0 and exponent < 0:
            raise self.error("division by zero", start, end)
        digits = number_digits(base)
        if exponent.q != 1 and digits > MAX_ROOT_DIGITS:
            raise self.error(f"a root of a number with more than {MAX_ROOT_DIGITS} digits", start, end)
        self.spend_digits(digits * max(abs(int(exponent.p)) - 1, 0), start, end)
        result = sympy.Pow(base, exponent)
        for power in [result, *result.args] if result.is_Mul else [result]:
            if power.is_Pow and power.exp.is_Rational and abs(power.exp) > MAX_EXPONENT:
                raise self.error(
                    f"powers of powers multiply their exponents: this is a power {_shown(power.exp)} in all; "
                    f"the limit is {MAX_EXPONENT}",
                    start,
                    end,
                )
        return result

    def atom(self) -> sympy.Expr:
        token = self.take()
        if token.kind == "num":
            self.spend_digits(number_digits(token.value), token.start, token.end)
            if token.value == 1 and self.peek().kind == "open" and self.peek().value == "[":
                return self.iverson(token)
            return token.value
        if token.kind in ("name", "const"):
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

    def iverson(self, one: Token) -> sympy.Expr:
        """1[z > 0]: 1 where the comparison holds at this config's numbers, else 0; 1[a + b] is 1·(a + b)."""
        opening = self.take()
        self.deeper(opening)
        left = self.sum()
        if self.peek().kind != "cmp":
            self.close(opening)
            self.depth -= 1
            return left
        comparison = self.take().value
        right = self.sum()
        self.close(opening)
        self.depth -= 1
        return self.indicator(left - right, comparison, one.start, self.last_end())

    def indicator(self, difference: sympy.Expr, comparison: str, start: int, end: int) -> sympy.Expr:
        """0 or 1: the comparison `difference > 0` (or <, >=, <=) decided exactly at this config's numbers,
        as the ReLU masks are (so relu'(z) is 0 at z = 0, as ReLU'(0) = 0)."""
        try:
            sign = sign_here(self.table.symbolic, self.table.evaluator, difference)
        except UserError as error:
            raise self.error(error.message, start, end) from None
        holds = {">": sign > 0, ">=": sign >= 0, "<": sign < 0, "<=": sign <= 0}[comparison]
        value = sympy.Integer(1 if holds else 0)
        self.read.append((start, self.text[start:end], value))
        return value

    def close(self, opening: Token) -> None:
        token = self.take()
        want = CLOSE_OF[opening.value]
        if token.kind == "cmp":
            raise self.error(self.misplaced_comparison(token), token.start, token.end)
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
            raise self.error("division by zero", start, self.last_end())
        return sympy.Pow(denominator, -1)

    def root(self, token: Token) -> sympy.Expr:
        degree = sympy.Integer(2)
        if self.peek().kind == "open" and self.peek().value == "[":
            opening = self.take()
            degree = self.sum()
            self.close(opening)
            if not (degree.is_Integer and 2 <= degree <= MAX_ROOT):
                raise self.error(
                    f"the degree of a root must be a whole number from 2 to {MAX_ROOT}", opening.start, self.last_end()
                )
        self.inside_function(token)
        radicand = self.braced(token)
        self.functions -= 1
        return self.build_power(radicand, 1 / degree, token.start, token.end)

    def function(self, token: Token) -> sympy.Expr:
        name = token.value
        self.inside_function(token)
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
        self.functions -= 1
        want = FUNCTIONS.get(name, 1)
        if (want == 1 and len(args) != 1) or len(args) < want:
            need = "one argument" if want == 1 else "at least two arguments"
            raise self.error(f"{name} takes {need}", token.start, self.last_end())
        return self.apply(name, args, token.start, self.last_end())

    def apply(self, name: str, args: list[sympy.Expr], start: int, end: int) -> sympy.Expr:
        """The SymPy object of an allowed function; sigmoid(x) is 1 / (1 + exp(-x))."""
        if name == "sqrt":
            return self.build_power(args[0], sympy.Rational(1, 2), start, end)
        if name == "exp":
            return self.build_exp(args[0], start, end)
        if name in ("sigmoid", "sigma"):
            return 1 / (1 + self.build_exp(-args[0], start, end))
        if name == "step":
            return self.indicator(args[0], ">", start, end)
        if name in ("max", "min"):
            if all(arg.is_Rational for arg in args):
                return max(args) if name == "max" else min(args)
            return (MAXIMUM if name == "max" else MINIMUM)(*args)
        return {"log": sympy.log, "ln": sympy.log, "tanh": sympy.tanh}[name](args[0])
