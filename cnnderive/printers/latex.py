"""The derivation as a LaTeX document: the network, the forward pass, the backward pass layer by
layer, and each parameter's chain-rule sum with its numbers, exact and decimal.

Rendered only from the records of `steps.py` and `derivation.py`, never re-derived. The document
uses amsmath, amssymb and geometry (all in Debian's texlive-latex-base) and stays bounded for big
networks: matrices, channels, chain-rule terms and worked elements are cut, and the text says so.
"""

from __future__ import annotations

import numpy as np

from ..derivation.budget import small_enough, work
from ..derivation.names import Tensor
from ..derivation.records import ElementGradient, Term
from ..derivation.steps import LayerStep, Steps
from ..maths.numbers import as_fraction
from .latex_math import LINE, Notation, align, fits, matrix, number, partial, width
from .latex_words import BACKWARD, FORWARD, LOSS_DELTA, MASK_TEXT, head, text, tt
from .numbers import full_decimal

MAX_BLOCKS = 3  # matrices shown per tensor (channels, or filters of a weight)
MAX_TERMS = 10  # chain-rule terms written out per parameter element
MAX_CUT = 6  # zero terms listed one by one
MAX_ELEMENTS = 6  # elements worked out per parameter tensor in the whole document
MAX_PARAM_ELEMENTS = 48  # elements worked out when --param names a whole tensor
RULE_LINES = 5  # a rule or closed form longer than this many lines is left out

PACKAGES = r"""\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
"""
SETTINGS = r"""\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\setlength{\emergencystretch}{3em}
"""


def render(steps: Steps, selected=None, snippet: bool = False) -> str:
    """The whole document, or with `snippet` only its body (in a group, so its settings stay inside)."""
    document = Document(steps)
    if snippet:
        body = document.body(selected, title=False)
        return (
            "% written by cnnderive latex --snippet: needs \\usepackage{amsmath,amssymb}\n"
            "\\begingroup\n" + SETTINGS + body + "\\endgroup\n"
        )
    body = document.body(selected)
    return "\\documentclass[11pt]{article}\n" + PACKAGES + SETTINGS + "\\begin{document}\n" + body + "\\end{document}\n"


def _dropped(tensor: Tensor) -> int:
    """How many leading axes of size 1 the textbook index leaves out."""
    return len(tensor.shape) - len(tensor.shown_index((0,) * len(tensor.shape)))


def _shape(shape: tuple[int, ...]) -> str:
    return "$" + r" \times ".join(map(str, shape)) + "$" if shape else "scalar"


class Document:
    """Builds the body from the steps: one method per part, each returning LaTeX."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.derivation = steps.derivation
        self.budget = steps.derivation.budget
        self.network = steps.derivation.network
        self.floats = steps.derivation.floats  # the float pass: decimals of values that are not rational
        symbolic = steps.symbolic
        self.notation = Notation(symbolic.owner, symbolic.delta_owner) if symbolic is not None else None

    # -- the parts -----------------------------------------------------------------------------

    def body(self, selected=None, title: bool = True) -> str:
        parts = [self.title()] if title else []
        parts += [self.notation_paragraph(), self.network_part(), self.forward_part()]
        parts += [self.backward_part(), self.gradients_part(selected)]
        return "\n".join(parts)

    def title(self) -> str:
        return (
            "\\begin{center}\n{\\Large Backpropagation, step by step}\\\\[4pt]\n"
            f"{text(self.network.name)}\\\\[2pt]\n"
            "{\\small written by \\texttt{cnnderive latex}}\n\\end{center}\n"
        )

    def notation_paragraph(self) -> str:
        lines = [
            r"\paragraph{Notation.} Each quantity has one symbol, used throughout. $x$ is the input;",
            r"$w^{(k)}$ and $b^{(k)}$ are the weights and biases of the $k$-th convolution or linear layer",
            r"(the superscript is the stage: it counts those layers, and the activation, pooling and",
            r"flattening after one share its stage); $z^{(k)}$ is that layer's output, $a^{(k)}$ an",
            r"activation of it, $p^{(k)}$ a pooling output, $f^{(k)}$ the flattened vector, $\hat{y}$ the",
            r"network's output, $y$ the target and $L$ the loss. Indices count from 1, as in the output of",
            r"\texttt{cnnderive explain}: $z^{(1)}_{i,j}$ is row $i$, column $j$; with several channels the",
            r"channel comes first ($z^{(1)}_{c,i,j}$); a convolution weight is $w^{(k)}_{o,c,m,n}$ (output",
            r"channel, input channel, kernel row, kernel column); leading axes of size 1 are left out.",
            r"$\partial L/\partial z^{(1)}_{i,j}$ is the gradient of the loss with respect to that one",
            r"element (often written $\delta$).",
        ]
        names = self.network.parameter_names()
        if names:
            tensor = self.derivation.tensors[names[0]]
            first = (0,) * len(tensor.shape)
            lines.append(
                f"The program's own names, in typewriter type, count from 0: {tt(tensor.element(first))} "
                f"is ${tensor.latex(first)}$."
            )
        lines.append(
            r"Numbers are exact (fractions, or decimals that end) unless written after $\approx$: those are"
            r" rounded to 4 significant digits. A matrix with more than 8 rows or columns"
            r" shows the first ones, dots, and the last."
        )
        if self.derivation.exact and not self.network.is_rational():
            lines.append(
                "The exact values of this network involve $e$ (through exp, log or tanh); where such an exact "
                "form is long, only its decimal is given."
            )
        if not self.derivation.exact:
            lines.append(
                f"This network is big ({work(self.network):,} multiply-adds; exact arithmetic is used up to "
                f"{self.derivation.budget.exact_limit(self.network):,} for a network like it), so its values are computed in floating "
                "point and the rules are described in words."
            )
        return "\n".join(lines) + "\n"

    def network_part(self) -> str:
        rows = [r"0 & input & & $x$ & " + _shape(self.network.input.shape) + r" & \\"]
        for step in self.steps.layers:
            params = ", ".join(
                f"${head(self.derivation.tensors[f'{step.layer.name}.{p}'])}$"
                for p in self.network.params[step.layer.name]
            )
            rows.append(
                f"{step.position + 1} & {tt(step.layer.name)} & {text(step.layer.describe())} & "
                f"${head(step.output)}$ & {_shape(step.output.shape)} & {params} \\\\"
            )
        table = (
            "\\begin{center}\n\\begin{tabular}{rlllll}\n\\hline\n"
            "& layer & kind & output & shape & parameters \\\\\n\\hline\n" + "\n".join(rows) + "\n\\hline\n"
            "\\end{tabular}\n\\end{center}\n"
        )
        out = ["\\section{The network}", table]
        out.append(f"The loss is {text(self.network.loss.describe())}, against the target $y$.")
        out.append("The input, the parameters and the target:")
        tensors = self.derivation.tensors  # the config's exact numbers, whatever the size of the network
        shown = [(tensors["input"], self.network.input)]
        shown += [(tensors[name], self.network.parameter(name)) for name in self.network.parameter_names()]
        shown.append((tensors["target"], self.network.target))
        items, notes = [], []
        for tensor, array in shown:
            more_items, more_notes = self.matrices(tensor, array)
            items += more_items
            notes += more_notes
        out += [_pack(items)] + notes
        return "\n".join(out) + "\n"

    def forward_part(self) -> str:
        out = ["\\section{Forward pass}"]
        for step in self.steps.layers:
            out.append(f"\\subsection*{{{step.position + 1}. {tt(step.layer.name)}: {text(step.layer.describe())}}}")
            out.append(FORWARD.get(step.layer.kind, lambda s: "")(step))
            lhs = step.output.latex(step.first)
            shown = self.rule_display(lhs, step.rule) if step.rule is not None else ""
            if shown:
                out += [f"For the first element, ${lhs}$, the rule reads", shown]
                out.append("and the same for every element. The values:")
            elif step.rule is not None:
                out.append(f"The rule of ${lhs}$ is too long to print here. The values:")
            else:
                out.append("The values:")
            out.append(self.tensor_display(step.output, step.values, self.floats.values[step.position + 1]))
        out.append(self.loss_forward())
        return "\n".join(out) + "\n"

    def loss_forward(self) -> str:
        loss = self.steps.loss
        out = ["\\subsection*{The loss}"]
        rows = []
        if (
            loss.rule is not None
            and self.notation is not None
            and fits(self.notation.pieces(loss.rule), "L", RULE_LINES)
        ):
            rows.append(("=", self.notation.pieces(loss.rule)))
        rows += self.value_rows(loss.value, self.floats.loss)
        out.append(align("L", rows))
        return "\n".join(out)

    def backward_part(self) -> str:
        loss, layers = self.steps.loss, self.steps.layers
        out = ["\\section{Backward pass}"]
        start = head(loss.output)
        out.append(
            f"The backward pass starts at the loss: {LOSS_DELTA.get(self.network.loss.kind, lambda d: '')(self)} "
            f"Over the whole output ${start}$:"
        )
        out.append(self.tensor_display(loss.output, loss.delta, self.floats.deltas[-1], gradient=True))
        for step in reversed(layers):
            if step.delta_in is None:
                out.append(self.stop_sentence(step))
                break
            out.append(f"\\subsection*{{Back through {tt(step.layer.name)}: {text(step.layer.describe())}}}")
            out.append(self.backward_layer(step))
        return "\n".join(out) + "\n"

    def stop_sentence(self, step: LayerStep) -> str:
        if self.network.params[step.layer.name]:
            return (
                f"\\subsection*{{At {tt(step.layer.name)}}}\nNo layer before {tt(step.layer.name)} has parameters, "
                f"so the backward pass stops at $\\partial L/\\partial {head(step.output)}$: the gradients of "
                f"{tt(step.layer.name)}'s own parameters follow from it, in the last section."
            )
        return (
            f"\\subsection*{{At {tt(step.layer.name)}}}\nNo layer up to {tt(step.layer.name)} has parameters, "
            "so the backward pass stops here."
        )

    def backward_layer(self, step: LayerStep) -> str:
        fused = self.steps.loss.fused is not None and step.position == len(self.steps.layers) - 1
        out = [BACKWARD.get(step.layer.kind, lambda doc, s, f: "")(self, step, fused)]
        if step.back_rule is not None and not fused:
            lhs = partial(step.input.latex((0,) * len(step.input.shape)))
            shown = self.rule_display(lhs, step.back_rule)
            if shown and step.back_rule == 0:
                out.append("The first element of its input gets no gradient (see the mask below):")
                out.append(shown)
            elif shown:
                out.append("For the first element of its input:")
                out.append(shown)
        if step.mask is not None:
            out.append(MASK_TEXT[step.layer.kind](step))
            label = "M" if step.layer.kind == "maxpool2d" else r"\mathbf{1}"
            out.append(self.tensor_display(step.input, step.mask, label=label))
        out.append("The gradient with respect to the input of this layer:")
        near = self.floats.deltas[step.position]
        out.append(self.tensor_display(step.input, step.delta_in, near, gradient=True))
        return "\n".join(out)

    def gradients_part(self, selected=None) -> str:
        out = ["\\section{Gradients of the parameters}"]
        if selected is not None:
            tensor, index = selected
            tensors = [tensor]
        else:
            tensors = [self.derivation.tensors[name] for name in self.network.parameter_names()]
            index = None
        if not tensors:
            out.append("This network has no parameters.")
        for tensor in tensors:
            out.append(f"\\subsection*{{$\\partial L/\\partial {head(tensor)}$ ({tt(tensor.name)})}}")
            if index is not None:
                out.append(self.element_block(self.derivation.gradient(tensor, index)))
                continue
            out.append("All of it:")
            grads = self.derivation.values.grads[tensor.name]
            out.append(self.tensor_display(tensor, grads, self.floats.grads[tensor.name], gradient=True))
            limit = MAX_PARAM_ELEMENTS if selected is not None else MAX_ELEMENTS
            size = int(np.prod(tensor.shape))
            for k, element in enumerate(tensor.indices()):
                if k == limit:
                    out.append(
                        f"The other {size - limit:,} elements of ${head(tensor)}$ are worked out the same way; "
                        f"their values are in the matrices above, and \\texttt{{--param}} with an element name, "
                        f"such as {tt(tensor.element(element))}, writes any one of them."
                    )
                    break
                out.append(self.element_block(self.derivation.gradient(tensor, element)))
        return "\n".join(out) + "\n"

    # -- one parameter element -----------------------------------------------------------------

    def element_block(self, gradient: ElementGradient) -> str:
        tensor, index = gradient.tensor, gradient.index
        symbol = tensor.latex(index)
        live, cut = gradient.live_terms, gradient.cut_terms
        total = len(gradient.terms)
        out = [f"% {gradient.name}", f"\\paragraph{{${symbol}$ ({tt(gradient.name)}).}}"]
        out.append(self.term_sentence(gradient))
        lhs = partial(symbol)
        if live:
            picked = _picked_terms(live)
            rows = [("=", [self.term_tex(t, i) for i, t in zip(*picked)])]
            numbers = [self.term_numbers(t, k) for k, t in enumerate(picked[1])]
            numbers = [n if i is not None else r"+ \dots" for n, i in zip(numbers, picked[0])]
            approx = any(not shown for _, shown in self._numbers(picked[1]))
            rows.append((r"\approx" if approx else "=", [n for n in numbers]))
            rows += self.value_rows(gradient.value, gradient.approx, approx)
        else:
            rows = [("=", ["0"])]
        out.append(align(lhs, rows))
        if live and len(live) > MAX_TERMS:
            out.append(f"({len(live)} terms in all; the ones marked $\\dots$ are left out here.)")
        if cut:
            out.append(self.cut_list(cut, total))
        closed = self.closed_form(gradient)
        if closed:
            out.append("In closed form, over the layer outputs:")
            out.append(closed)
        return "\n".join(out) + "\n"

    def term_sentence(self, gradient: ElementGradient) -> str:
        terms = gradient.terms
        n, cut = len(terms), len(gradient.cut_terms)
        out = head(terms[0].out)
        if gradient.tensor.role == "bias":
            used, factor = "is added to", "1"
        else:
            used, factor = "multiplies one input in", "the input it multiplies"
        if n == 1:
            return (
                f"It {used} one output, ${terms[0].out.latex(terms[0].out_index)}$, so by the chain rule its "
                f"gradient is $\\partial L/\\partial {out}$ there times {factor}."
            )
        sentence = (
            f"It {used} each of {n} elements of ${out}$, so by the chain rule its gradient is a sum of {n} terms, "
            f"one per element: $\\partial L/\\partial {out}$ there times {factor}."
        )
        if cut:
            sentence += f" {cut} of them {'are' if cut > 1 else 'is'} zero (listed below), which leaves {n - cut}."
        return sentence

    def term_tex(self, term: Term, position: int | None) -> str:
        if position is None:
            return r"+ \dots"
        tex = partial(term.out.latex(term.out_index))
        if term.factor is not None:
            tex += r"\, " + term.factor.latex(term.factor_index)
        return tex if position == 0 else "+ " + tex

    def _numbers(self, terms) -> list[tuple[str, bool]]:
        shown = []
        for term in terms:
            if term is None:
                shown.append(("", True))
                continue
            position = term.out.layer
            near_delta = self.floats.deltas[position + 1][term.out_index]
            near_local = None if term.factor_index is None else self.floats.values[position][term.factor_index]
            delta, local = number(term.delta, approx=near_delta), number(term.local, approx=near_local)
            tex = delta.factor() if term.factor is None else f"{delta.factor()} \\cdot {local.factor()}"
            shown.append((tex, delta.exact and local.exact))
        return shown

    def term_numbers(self, term: Term | None, position: int) -> str:
        tex, _ = self._numbers([term])[0]
        return tex if position == 0 else "+ " + tex

    def cut_list(self, cut: tuple[Term, ...], total: int) -> str:
        """The zero terms, grouped by why they are zero, naming the outputs they come from."""
        groups: dict[str, list[Term]] = {}
        for term in cut:
            groups.setdefault(term.cut, []).append(term)
        items = []
        for reason, terms in groups.items():
            names = [f"${t.out.latex(t.out_index)}$" for t in terms[:MAX_CUT]]
            if len(terms) > MAX_CUT:
                names.append(f"and {len(terms) - MAX_CUT} more")
            count = f"{len(terms)} term{'s' if len(terms) > 1 else ''}"
            items.append(f"\\item {text(str(reason))}: {count}, at {', '.join(names)}")
        return "The terms that are zero, and why:\n\\begin{itemize}\n" + "\n".join(items) + "\n\\end{itemize}"

    def closed_form(self, gradient: ElementGradient) -> str:
        symbolic = self.steps.symbolic
        if symbolic is None or self.notation is None:
            return ""
        lhs = partial(gradient.tensor.latex(gradient.index))
        if not small_enough(
            symbolic.backward.grads[gradient.tensor.name][gradient.index], self.budget.factored_form_nodes
        ):
            return ""  # too long to print anyway, and factoring it would take SymPy minutes
        pieces = self.notation.pieces(symbolic.gradient(gradient.tensor, gradient.index))
        if not fits(pieces, lhs, RULE_LINES):
            return ""
        return align(lhs, [("=", pieces)])

    # -- building blocks -----------------------------------------------------------------------

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
        return "\n".join([_pack(items)] + notes)

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
        drop = _dropped(tensor)
        items = []
        for lead, block, near in blocks[:MAX_BLOCKS]:
            shown_lead = [str(i + 1) for i in lead[drop:]]
            base = name + ("_{" + ",".join(shown_lead + [r"\cdot", r"\cdot"]) + "}" if shown_lead else "")
            if label == "M":
                base = "M" + (f"_{{{','.join(shown_lead)}}}" if shown_lead else "")
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


def _pack(items: list[tuple[str, float]]) -> str:
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


def _picked_terms(live: tuple[Term, ...]) -> tuple[list, list]:
    """Positions and terms to write out: all of them, or the first ones, a gap (None) and the last."""
    if len(live) <= MAX_TERMS:
        return list(range(len(live))), list(live)
    keep = list(range(MAX_TERMS - 2)) + [None, len(live) - 1]
    return keep, [live[i] if i is not None else None for i in keep]
