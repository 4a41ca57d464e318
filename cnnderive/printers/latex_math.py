"""LaTeX maths for the document: textbook names for SymPy symbols, numbers, matrices, line breaks.

Nothing here knows about networks; `latex.py` assembles the document from the derivation records.
Widths are estimated in units of about one italic letter at 11pt, so that long sums and big
matrices can be broken or cut before TeX would let them run off the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy
from sympy.printing.latex import LatexPrinter

from . import numbers
from .notation import element_key

LINE = 66.0  # width of one displayed line (A4, 2 cm margins, 11pt), in letter units
EXPONENT_PLACES = 4  # a rational exponent of e with at most this many decimal places is written as a decimal
MAX_SHOWN = 8  # rows or columns of a matrix shown; more are cut to the first 6, dots and the last


def partial(tex: str) -> str:
    """dL/d(something) in the document's one notation for a gradient."""
    return rf"\frac{{\partial L}}{{\partial {tex}}}"


# -- widths ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_&]|\s+|[^\\{}^_&\s]")
_NARROW = set("(),.;:[]|'!")
_RELATION = {"=", "+", "-", "<", ">", r"\cdot", r"\approx", r"\times", r"\le", r"\ge", r"\to", r"\odot", r"\neq"}
_ARGUMENT_AS_IS = {r"\text", r"\texttt", r"\mathrm", r"\mathbf", r"\hat", r"\bar", r"\operatorname", r"\mathit"}
_SPACE = {r"\quad": 2.0, r"\qquad": 4.0, r"\,": 0.3, r"\;": 0.5, r"\:": 0.4, r"\!": -0.3, "~": 0.6}
_DELIMITER_SIZE = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\biggl", r"\biggr"}
_IGNORED = {r"\displaystyle", r"\limits", r"\nolimits", r"\begin", r"\end"}


class _Width:
    """A tiny reader of LaTeX maths that adds up widths: fractions stack, scripts shrink."""

    def __init__(self, tex: str) -> None:
        self.tokens = _TOKEN.findall(tex)
        self.at = 0

    def next(self) -> str:
        token = self.tokens[self.at] if self.at < len(self.tokens) else ""
        self.at += 1
        return token

    def argument(self) -> float:
        token = self.next()
        while token.isspace():
            token = self.next()
        return self.sequence("}") if token == "{" else self.atom(token)

    def sequence(self, until: str | None = None) -> float:
        total, last_script = 0.0, None
        while self.at < len(self.tokens):
            token = self.next()
            if token == until:
                break
            if token in ("^", "_"):
                script = 0.7 * self.argument()
                # a superscript and a subscript on the same base stack: only the wider one counts
                total += script if last_script is None else max(0.0, script - last_script)
                last_script = None if last_script is not None else script
                continue
            last_script = None
            total += self.atom(token)
        return total

    def atom(self, token: str) -> float:
        if token == "{":
            return self.sequence("}")
        if token in (r"\frac", r"\tfrac", r"\dfrac"):
            top, bottom = self.argument(), self.argument()
            return max(top, bottom) * (0.75 if token == r"\tfrac" else 1.0) + 0.4
        if token in _DELIMITER_SIZE:
            return 0.0 if self.next() == "." else 0.8
        if token in _ARGUMENT_AS_IS:
            return self.argument() * (1.1 if token == r"\texttt" else 1.0)
        if token in _IGNORED:
            self.argument()
            return 0.0
        if token in _SPACE:
            return _SPACE[token]
        if token in _RELATION:
            return 2.2
        if token.isspace() or token in ("}", "&"):
            return 0.0
        if token.startswith("\\"):
            name = token[1:]
            return 0.8 * len(name) if name in ("log", "exp", "tanh", "max", "sum") else 1.1
        return 0.55 if token in _NARROW else 1.0


def width(tex: str) -> float:
    """Rough width of a piece of maths, in letter units."""
    return _Width(tex).sequence()


# -- numbers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A number as the document shows it, and whether that text is its exact value."""

    tex: str
    exact: bool

    def factor(self) -> str:
        """The number as a factor of a product: negatives in parentheses."""
        return f"({self.tex})" if self.tex.startswith("-") else self.tex


def rounded(value: object) -> str:
    """A value rounded as every printer rounds it, very small or large ones as m \\times 10^{e}."""
    return _tex(numbers.rounded(value))


def _tex(text: str) -> str:
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def number(value: object, small: str = r"\frac", approx=None) -> Shown:
    """A value as printers/numbers.py shows it, in LaTeX: p/q as a fraction (`small`: \\frac or \\tfrac)."""
    text, exact = numbers.shown(value, approx)
    if "/" in text:
        numerator, denominator = text.lstrip("-").split("/")
        sign = "-" if text.startswith("-") else ""
        return Shown(rf"{sign}{small}{{{numerator}}}{{{denominator}}}", exact)
    return Shown(_tex(text), exact)


# -- symbols -----------------------------------------------------------------------------------


class TextbookPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the document's names, and sums that can be broken over lines."""

    def __init__(self, names: dict[sympy.Symbol, str]) -> None:
        super().__init__({"symbol_names": names})

    def _print_ExpBase(self, expr, exp=None):
        """e to a rational power: e^{1.08} when the decimal is short, else exp(27/25) at full size.

        SymPy writes e^{27/25} as a stacked fraction: a fraction in a superscript is set at about 5pt, too small to
        read or to copy by hand. A short decimal reads as it is typed; a longer fraction goes into
        exp(...) where it keeps the size of the text around it.
        """
        power = expr.args[0]
        if not (power.is_Rational and not power.is_Integer):
            return super()._print_ExpBase(expr, exp)
        decimal = numbers.exact_decimal(Fraction(int(power.p), int(power.q)), EXPONENT_PLACES)
        if decimal is not None:
            tex = f"e^{{{decimal}}}"
        else:
            sign = "-" if power < 0 else ""
            tex = rf"\exp\!\left({sign}\tfrac{{{abs(int(power.p))}}}{{{int(power.q)}}}\right)"
        return self._do_exponent(tex, exp)

    def pieces(self, expr: sympy.Expr) -> list[str]:
        """expr as pieces a line may break between: the terms of a sum, or of a long sum in a product."""
        expr = sympy.sympify(expr)
        if expr.is_Add:
            return self._terms(expr)
        if expr.is_Mul:
            sums = [factor for factor in expr.args if factor.is_Add]
            if sums:
                widest = max(sums, key=lambda s: width(self.doprint(s)))
                if width(self.doprint(widest)) > LINE / 2:
                    rest = expr / widest
                    head = {1: "", -1: "-"}.get(rest, None)
                    if head is None:
                        head = self.doprint(rest) + " "
                    inner = self._terms(widest)
                    inner[0] = head + r"\Bigl(" + inner[0]
                    inner[-1] += r"\Bigr)"
                    return inner
        return [self.doprint(expr)]

    def _terms(self, expr: sympy.Add) -> list[str]:
        """The terms of a sum, each with its sign, as SymPy's _print_Add writes them."""
        out = []
        for i, term in enumerate(self._as_ordered_terms(expr)):
            sign = ""
            if i and term.could_extract_minus_sign():
                sign, term = "- ", -term
            elif i:
                sign = "+ "
            tex = self._print(term)
            if self._needs_add_brackets(term):
                tex = rf"\left({tex}\right)"
            out.append(sign + tex)
        return out


class Notation:
    """Each SymPy symbol of the derivation -> its textbook name, printed in textbook order.

    SymPy's LaTeX printer orders factors and terms by symbol name; the program's names
    (`input[0,0,10]`) would sort `x_{1,11}` before `x_{1,2}`. So each symbol is swapped, for
    printing only, for one whose name sorts in the one textbook order of `notation.element_key`.
    """

    def __init__(self, owner: dict, delta_owner: dict) -> None:
        self.swap: dict[sympy.Symbol, sympy.Symbol] = {}
        names: dict[sympy.Symbol, str] = {}
        for table, is_delta in ((owner, False), (delta_owner, True)):
            for symbol, (tensor, index) in table.items():
                rank, layer, _ = element_key(tensor, index, is_delta)
                flat = int(np.ravel_multi_index(index, tensor.shape)) if tensor.shape else 0
                stand_in = sympy.Symbol(f"s{rank}_{layer + 1:04d}_{flat:08d}", real=True)
                self.swap[symbol] = stand_in
                tex = tensor.latex(index)
                names[stand_in] = partial(tex) if is_delta else tex
        self.printer = TextbookPrinter(names)

    def tex(self, expr: object) -> str:
        return self.printer.doprint(sympy.sympify(expr).xreplace(self.swap))

    def pieces(self, expr: object) -> list[str]:
        return self.printer.pieces(sympy.sympify(expr).xreplace(self.swap))


# -- layout ------------------------------------------------------------------------------------


def break_lines(pieces: list[str], room: float) -> list[str]:
    """Pack pieces greedily into lines at most `room` wide (a piece wider than that gets a line)."""
    lines, line, used = [], "", 0.0
    for piece in pieces:
        w = width(piece)
        if line and used + w > room:
            lines.append(line)
            line, used = "", 0.0
        line = f"{line} {piece}" if line else piece
        used += w + 0.3
    if line:
        lines.append(line)
    return lines


def align(lhs: str, rows: list[tuple[str, list[str]]]) -> str:
    """An align* display: lhs, then each row (relation, pieces) on its own line, broken to fit."""
    room = LINE - width(lhs) - 3.0
    out = []
    for k, (relation, pieces) in enumerate(rows):
        lines = break_lines(pieces, room - 2.0)
        head = lhs if k == 0 else ""
        out.append(f"{head} &{relation} {lines[0]}")
        out.extend(rf"&\quad {line}" for line in lines[1:])
    return "\\begin{align*}\n" + " \\\\\n".join(out) + "\n\\end{align*}"


def fits(pieces: list[str], lhs: str = "", max_lines: int = 6) -> bool:
    """Whether pieces break into at most max_lines lines, none of them running off the page."""
    room = LINE - width(lhs) - 5.0
    lines = break_lines(pieces, room)
    return len(lines) <= max_lines and all(width(line) <= room for line in lines)


def _picked(size: int, limit: int) -> list[int | None]:
    if size <= limit:
        return list(range(size))
    return list(range(limit - 2)) + [None, size - 1]


def matrix(array: np.ndarray, approx=None, max_cols: int = MAX_SHOWN) -> tuple[str, bool, float]:
    """A 2-D array as a bmatrix, cut to at most 8 rows and max_cols columns: tex, all exact, width.

    `approx` is the same array from the float pass, for the decimals of irrational values.
    """
    rows, cols = _picked(array.shape[0], MAX_SHOWN), _picked(array.shape[1], max_cols)
    exact, lines = True, []
    widths = [0.0] * len(cols)
    for i in rows:
        cells = []
        for k, j in enumerate(cols):
            if i is None:
                cell = r"\ddots" if j is None else r"\vdots"
            elif j is None:
                cell = r"\cdots"
            else:
                near = None if approx is None else approx[i, j]
                shown = number(array[i, j], small=r"\tfrac", approx=near)
                exact &= shown.exact
                cell = shown.tex
            widths[k] = max(widths[k], width(cell))
            cells.append(cell)
        lines.append(" & ".join(cells))
    tex = "\\begin{bmatrix}\n" + " \\\\\n".join(lines) + "\n\\end{bmatrix}"
    return tex, exact, sum(widths) + 1.8 * len(cols) + 1.0
