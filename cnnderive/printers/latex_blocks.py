"""Building blocks of the LaTeX document: values, rules and matrices of the derivation records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..derivation.budget import small_enough
from ..derivation.names import Tensor
from ..derivation.records import ElementGradient
from ..derivation.steps import Steps
from ..maths.numbers import as_fraction
from .latex_math import LINE, Notation, align, fits, matrix, number, partial, width
from .latex_words import head, tt
from .numbers import full_decimal

MAX_BLOCKS = 3  # matrices shown per tensor (channels, or filters of a weight)
RULE_LINES = 5  # a rule or closed form longer than this many lines is left out
HEADINGS = ("chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")


@dataclass(frozen=True)
class Options:
    """What the document adds to its compact default, and the level of its top headings."""

    to_input: bool = False  # dL/dx even when the first layer is linear (always shown otherwise)
    all_elements: bool = False  # every parameter element worked in full, not one per tensor
    program_names: bool = False  # the program's name in typewriter type after each symbol
    top: str = "section"  # the top heading; the parts below it use the next levels down


def dropped_axes(tensor: Tensor) -> int:
    """How many leading axes of size 1 the textbook index leaves out."""
    return len(tensor.shape) - len(tensor.shown_index((0,) * len(tensor.shape)))


def shape_text(shape: tuple[int, ...]) -> str:
    return "$" + r" \times ".join(map(str, shape)) + "$" if shape else "scalar"


class Blocks:
    """What every part of the document is built from: numbers, rules, tensors as matrices."""

    def __init__(self, steps: Steps, options: Options = Options()) -> None:
        self.steps = steps
        self.options = options
        self.derivation = steps.derivation
        self.budget = steps.derivation.budget
        self.network = steps.derivation.network
        self.floats = steps.derivation.floats  # the float pass: decimals of values that are not rational
        symbolic = steps.symbolic
        self.notation = Notation(symbolic.owner, symbolic.delta_owner) if symbolic is not None else None

    # -- building blocks -----------------------------------------------------------------------

    def heading(self, depth: int, title: str) -> str:
        """A heading `depth` levels below the top one: numbered at the top, starred below it."""
        top = HEADINGS.index(self.options.top)
        if depth == 0:
            return f"\\{HEADINGS[top]}{{{title}}}"
        if depth == 1:
            return f"\\{HEADINGS[top + 1]}*{{{title}}}"
        return f"\\{HEADINGS[max(top + 2, 4)]}{{{title}}}"

    def named(self, symbol_tex: str, name: str) -> str:
        """A symbol in maths, with the program's name after it when --program-names asks for that."""
        return f"${symbol_tex}$" + (f" ({tt(name)})" if self.options.program_names else "")

    def element_gradient(self, tensor: Tensor, index: tuple[int, ...]) -> ElementGradient | None:
        """The chain-rule record of one element: a parameter's always, an intermediate's when rules are built."""
        return self.derivation.element_gradient(tensor, index, self.steps.symbolic)

    def value_rows(self, value: object, approx: float, approx_before: bool = False) -> list[tuple[str, list[str]]]:
        """The rows that end an equation: the exact value and its decimal, or the decimal alone."""
        f = as_fraction(value)
        rounded = number(value, approx=approx)
        if f is not None and not approx_before:
            if f.denominator == 1:
                return [("=", [str(f.numerator)])]
            sign = "-" if f < 0 else ""
            fraction = rf"{sign}\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"
            full = full_decimal(f)
            if full is not None:
                return [("=", [fraction, "= " + full])]
            return [("=", [fraction, r"\approx " + rounded.tex])]
        symbolic = f is None and not isinstance(value, (float, np.floating)) and self.notation is not None
        if (
            symbolic
            and not rounded.exact
            and not approx_before
            and small_enough(value, self.budget.shown_form_nodes_latex)
        ):
            exact_tex = self.notation.tex(value)
            if width(exact_tex) < LINE / 2:
                return [("=", [exact_tex, r"\approx " + rounded.tex])]
        return [("=" if rounded.exact else r"\approx", [rounded.tex])]

    def rule_display(self, lhs: str, rule) -> str:
        if self.notation is None:
            return ""
        pieces = self.notation.pieces(rule)
        if not fits(pieces, lhs, RULE_LINES):
            return ""
        return align(lhs, [("=", pieces)])

    def tensor_display(self, tensor: Tensor, array, approx=None, gradient: bool = False, label=None) -> str:
        """A tensor's values as matrices, one per leading index (channel, filter), cut when big."""
        items, notes = self.matrices(tensor, array, approx, gradient, label)
        return "\n".join([pack(items)] + notes)

    def matrices(self, tensor: Tensor, array, approx=None, gradient: bool = False, label=None):
        """The (tex, width) items of a tensor's matrices, and a note when some are left out."""
        array = np.asarray(array, dtype=object)
        approx = array if approx is None else np.asarray(approx)
        name = head(tensor)
        if array.ndim == 0:
            shown = number(array[()], approx=approx[()])
            lhs = partial(name) if gradient else name
            tex = f"{lhs} {'=' if shown.exact else chr(92) + 'approx'} {shown.tex}"
            return [(tex, width(tex))], []
        if array.ndim == 1:
            blocks = [((), array[None, :], approx[None, :])]
        else:
            blocks = [(lead, array[lead], approx[lead]) for lead in np.ndindex(*array.shape[:-2])]
        drop = dropped_axes(tensor)
        items = []
        for lead, block, near in blocks[:MAX_BLOCKS]:
            shown_lead = [str(i + 1) for i in lead[drop:]]
            base = name + ("_{" + ",".join(shown_lead + [r"\cdot", r"\cdot"]) + "}" if shown_lead else "")
            if label in ("M", "m"):  # a routing or dropout mask: its own letter, not an indicator
                base = label + (f"_{{{','.join(shown_lead)}}}" if shown_lead else "")
            elif label is not None:
                base = f"{label}[{base} > 0]"
            lhs = partial(base) if gradient else base
            items.append(self.matrix_item(lhs, block, near, vector=array.ndim == 1))
        notes = []
        if len(blocks) > MAX_BLOCKS:
            notes.append(
                f"(The other {len(blocks) - MAX_BLOCKS} of the {len(blocks)} matrices of ${name}$ are not shown.)"
            )
        return items, notes

    def matrix_item(self, lhs: str, block: np.ndarray, approx: np.ndarray, vector: bool) -> tuple[str, float]:
        room = LINE - width(lhs) - 4.0
        for cols in (8, 7, 6, 5, 4, 3):
            tex, exact, w = matrix(block, approx, max_cols=cols)
            if w <= room:
                break
        relation = "=" if exact else r"\approx"
        top = "^{\\top}" if vector else ""
        return f"{lhs} {relation} {tex}{top}", width(lhs) + 3.0 + w


def pack(items: list[tuple[str, float]]) -> str:
    """Matrices side by side while they fit on a line, in one gather* display."""
    lines, line, used = [], [], 0.0
    for tex, w in items:
        if line and used + w + 4.0 > LINE:
            lines.append(r" \qquad ".join(line))
            line, used = [], 0.0
        line.append(tex)
        used += w + 4.0
    if line:
        lines.append(r" \qquad ".join(line))
    return "\\begin{gather*}\n" + " \\\\\n".join(lines) + "\n\\end{gather*}"
