"""What the `explain` printers share: one view of the Steps model, with names, numbers and caps.

Nothing here computes gradients: values come from the Steps/Derivation records, closed forms
from Symbolic, and the only arithmetic is SymPy substituting the config's numbers into a rule.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text

from ..errors import UserError
from ..maths.layers import Cut
from ..maths.numbers import as_fraction
from .matrices import MAX_SIDE, Matrix, number, number_text
from .sympy_names import TextbookPrinter
from .terminal import value_text

MAX_CHANNELS = 4  # channels (or kernels) of one tensor shown; the rest are counted
MAX_TERMS = 6  # terms of a printed sum: the first few, …, the last ones
MAX_FORM = 400  # characters of a closed form beyond which it is summarised, not printed
ACCENT = "bold cyan"
LOCAL_WORK = 4_000  # multiply-adds of a layer up to which every element's backward rule is written out


class View:
    """The Steps model with the printing decisions: textbook names, caps, numbers for symbols."""

    def __init__(self, steps, to_input: bool = False) -> None:
        self.steps = steps
        self.to_input = to_input  # show dL/dx even where nothing before the first layer learns
        self.derivation = steps.derivation
        self.network = steps.derivation.network
        self.symbolic = steps.symbolic
        self.printer = TextbookPrinter(steps.symbolic, {"style": "textbook"})
        small = steps.symbolic is not None
        self.max_side = MAX_SIDE if small else 8
        self.max_channels = MAX_CHANNELS if small else 2
        self._local: dict = {}

    def delta_in(self, step):
        """dL/d(layer input) where it is worth showing: always, except dL/dx into a first layer that learns,
        unless asked for (--to-input) or that layer is a conv (the full convolution with the rotated
        kernel is worth seeing once)."""
        shown_anyway = self.to_input or step.layer.kind == "conv2d"
        if step.position == 0 and self.network.params[step.layer.name] and not shown_anyway:
            return None
        return step.delta_in

    def local_backward(self, step):
        """Symbolic.local_backward of a layer (dL/d(input) and dL/d(params) over dL/d(output) symbols), cached;
        None for a layer too big to write out every element's rule."""
        layer = step.layer
        if int(np.prod(layer.out_shape)) * max(1, layer.fan_in()) > LOCAL_WORK:
            return None
        if step.position not in self._local:
            self._local[step.position] = self.symbolic.local_backward(step.position)
        return self._local[step.position]

    def gradient(self, tensor, index):
        """The ElementGradient record of dL/d(one element): a parameter, the input or a layer output."""
        gradient = self.derivation.element_gradient(tensor, index, self.symbolic)
        if gradient is None:
            raise UserError(
                f"this network is too big to write ∂L/∂{tensor.element(index)} term by term; "
                "ask for a parameter, or see the backward pass of explain without --param",
                field="--param",
            )
        return gradient

    def gradient_values(self, tensor) -> tuple[np.ndarray, np.ndarray]:
        """dL/d(a whole tensor): the shown values and their floats (a parameter's gradient, or a delta)."""
        exact, floats = self.derivation.values, self.floats
        if tensor.role in ("weight", "bias"):
            return exact.grads[tensor.name], floats.grads[tensor.name]
        position = 0 if tensor.role == "input" else tensor.layer + 1
        return exact.deltas[position], floats.deltas[position]

    def chain_sum(self, tensor, index) -> sympy.Expr:
        """dL/d(parameter element) as the core's chain-rule terms: Σ dL/d(out) · (input it multiplied)."""
        sy = self.symbolic
        terms = []
        for term in self.derivation.gradient(tensor, index).terms:
            if term.cut is Cut.PADDING:
                continue
            local = 1 if term.factor is None else sy.symbol(term.factor, term.factor_index)
            terms.append(sy.deltas[term.out.name][term.out_index] * local)
        return sympy.Add(*terms)

    # expressions -----------------------------------------------------------------------------

    def show(self, expr) -> str:
        """An expression in textbook names; a long sum keeps its first and last terms around …."""
        terms = self.printer.ordered_terms(expr)
        if len(terms) <= MAX_TERMS + 1:
            return self.printer.doprint(expr)
        shown = [self.printer.doprint(t) for t in terms[: MAX_TERMS - 2]] + ["…"]
        shown += [self.printer.doprint(t) for t in terms[-2:]]
        return join_terms(shown) + f"   ({len(terms)} terms)"

    def form(self, expr) -> str | None:
        """A closed form, or None when even its capped print is too long to read."""
        text = self.show(expr)
        return text if len(text) <= MAX_FORM else None

    @cached_property
    def numbers(self) -> dict:
        """Every symbol, including each dL/d(element) symbol, -> its value in this config: exact where it is
        rational, else the float of the float pass (a SymPy Float), so that substituting stays fast."""
        found = dict(self.symbolic.numbers)
        exact, approx = self.derivation.values, self.floats
        for tensor in self.derivation.tensors.values():
            if tensor.role == "output":
                k = tensor.layer + 1
                found.update(_pick(self.symbolic.arrays[tensor.name], exact.values[k], approx.values[k]))
            if tensor.role in ("input", "output"):
                k = 0 if tensor.role == "input" else tensor.layer + 1
                found.update(_pick(self.symbolic.deltas[tensor.name], exact.deltas[k], approx.deltas[k]))
        return found

    def substituted(self, expr) -> list[str]:
        """The rule with numbers in: '= 0.2·(-0.3) + …', then each term's value '= -0.06 + …'."""
        terms = self.printer.ordered_terms(expr)
        if len(terms) > MAX_TERMS + 1:
            terms = terms[: MAX_TERMS - 2] + [None] + terms[-2:]
        factors, values = [], []
        for term in terms:
            if term is None:
                factors.append("…")
                values.append("…")
                continue
            numbers = [number_text(f.xreplace(self.numbers)) for f in self.printer.ordered_factors(term)]
            factors.append("·".join(_paren(n) for n in numbers) if len(numbers) > 1 else numbers[0])
            values.append(number_text(term.xreplace(self.numbers)))
        lines = ["= " + join_terms(factors), "= " + join_terms(values)]
        return lines if lines[0] != lines[1] else lines[:1]

    # tensors -----------------------------------------------------------------------------------

    @property
    def floats(self):
        """The float pass: the decimals of values that are not rational come from here (fast)."""
        return self.derivation.floats

    def tensor_view(self, tensor, values: np.ndarray, label: str, marked=None, dim_zeros: bool = False, approx=None):
        """A tensor as matrices: one per channel (or per kernel), capped; a vector as a named row."""
        values = np.asarray(values, dtype=object)
        marked = None if marked is None else np.asarray(marked)
        approx = None if approx is None else np.asarray(approx)
        if values.ndim == 0:
            return scalar(label, values[()])
        if values.ndim == 1:
            names = [tensor.unicode((k,)) for k in range(values.shape[0])] if tensor is not None else None
            return Matrix(label, values, marked, names, approx, max_side=self.max_side, dim_zeros=dim_zeros)
        if values.ndim == 2:
            return Matrix(label, values, marked, approx=approx, max_side=self.max_side, dim_zeros=dim_zeros)
        lead = values.shape[:-2]
        items, count = [], int(np.prod(lead))
        for n, at in enumerate(np.ndindex(*lead)):
            if n == self.max_channels:
                break
            title = _slice_title(at, values.ndim)
            mark = None if marked is None else marked[at]
            items.append(
                Matrix(
                    label,
                    values[at],
                    mark,
                    approx=None if approx is None else approx[at],
                    title=title if count > 1 else "",
                    max_side=self.max_side,
                    dim_zeros=dim_zeros,
                )
            )
        if len(items) == 1:
            return items[0]
        group = [Columns(items, padding=(0, 4))]
        if count > len(items):
            group.append(Text(f"… and {count - len(items)} more {_slice_word(values.ndim)}s", style="dim"))
        return Group(*group)


def _slice_title(at: tuple[int, ...], ndim: int) -> str:
    if ndim == 4:
        return f"out {at[0] + 1}, in {at[1] + 1}"
    return "channel " + ",".join(str(i + 1) for i in at)


def _slice_word(ndim: int) -> str:
    return "kernel" if ndim == 4 else "channel"


def _pick(symbols: np.ndarray, exact: np.ndarray, approx: np.ndarray):
    for symbol, value, near in zip(symbols.flat, np.asarray(exact).flat, np.asarray(approx).flat):
        yield symbol, value if as_fraction(value) is not None else sympy.Float(float(near))


def value_line(value, approx) -> str:
    """'= -11/20 = -0.55' for a rational value, '≈ -0.3397' otherwise (from the float pass: fast)."""
    if as_fraction(value) is not None:
        return "= " + value_text(value)
    return "≈ " + number_text(value, approx)


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def join_terms(pieces: list[str]) -> str:
    """Printed terms joined into a sum: 'a + b - c' (a term printed with a leading '-' is subtracted)."""
    out = pieces[0] if pieces else "0"
    for piece in pieces[1:]:
        out += f" - {piece[1:]}" if piece.startswith("-") and not piece.startswith("-(") else f" + {piece}"
    return out


class Indent:
    """Renderables shifted right by `by` columns, without padding lines out to the full width."""

    def __init__(self, *renderables, by: int = 2) -> None:
        self.group = Group(*renderables)
        self.by = by

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        inner = options.update_width(max(1, options.max_width - self.by))
        for line in console.render_lines(self.group, inner, pad=False):
            yield Segment(" " * self.by)
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        inner = Measurement.get(console, options.update_width(max(1, options.max_width - self.by)), self.group)
        return Measurement(inner.minimum + self.by, inner.maximum + self.by)


def indent(*renderables, by: int = 2) -> Indent:
    return Indent(*renderables, by=by)


def layer_head(step) -> Text:
    """'layer 3 · fc': a layer's heading, unlike the unnumbered section headings."""
    return Text(f"layer {step.position + 1} · {step.layer.name}", style=ACCENT)


def prose(text: str) -> Text:
    """A paragraph of explanation (wraps at the console width)."""
    return Text(text)


def equation(text: str, style: str = "") -> Indent:
    """One line of maths, indented; when the console is narrow it wraps under itself."""
    return Indent(Text(text, style=style))


def scalar(label: str, value) -> Text:
    """'L ≈ 1.523' or 'L = 1/16'."""
    text, exact = number(value)
    return Text(f"{label} {'=' if exact else '≈'} {text}")


def term_count(expr) -> int:
    return len(sympy.Add.make_args(expr))
