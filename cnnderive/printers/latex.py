"""The derivation as a LaTeX document: the network, the forward pass, the backward pass layer by
layer, and each parameter's chain-rule sum with its numbers, exact and decimal.

Rendered only from the records of `steps.py` and `derivation.py`, never re-derived. The document
uses amsmath, amssymb and geometry (all in Debian's texlive-latex-base) and stays bounded for big
networks: matrices, channels, chain-rule terms and worked elements are cut, and the text says so.
"""

from __future__ import annotations

from ..derivation.budget import work
from ..derivation.steps import LayerStep, Steps
from .latex_blocks import RULE_LINES, pack, shape_text
from .latex_gradients import Gradients
from .latex_math import align, fits, number, partial
from .latex_words import BACKWARD, FORWARD, LOSS_DELTA, MASK_TEXT, head, text, tt
from .notation import convention_sentence

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


def convention_tex(step: LayerStep, convention) -> str:
    name, value = (lambda x, i: f"${x.latex(i)}$"), (lambda v: f"${number(v).tex}$")
    return convention_sentence(convention, step.layer.kind == "relu", name, value) + "."


class Document(Gradients):
    """Builds the body from the steps: one method per part, each returning LaTeX."""

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
        rows = [r"0 & input & & $x$ & " + shape_text(self.network.input.shape) + r" & \\"]
        for step in self.steps.layers:
            params = ", ".join(
                f"${head(self.derivation.tensors[f'{step.layer.name}.{p}'])}$"
                for p in self.network.params[step.layer.name]
            )
            rows.append(
                f"{step.position + 1} & {tt(step.layer.name)} & {text(step.layer.describe())} & "
                f"${head(step.output)}$ & {shape_text(step.output.shape)} & {params} \\\\"
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
        out += [pack(items)] + notes
        return "\n".join(out) + "\n"

    def forward_part(self) -> str:
        out = ["\\section{Forward pass}"]
        for step in self.steps.layers:
            out.append(f"\\subsection*{{{step.position + 1}. {tt(step.layer.name)}: {text(step.layer.describe())}}}")
            out.append(FORWARD[step.layer.kind](step))
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
            out += [rf"\emph{{Kink decided exactly:}} {text(note)}" for note in step.kink_notes]
            out += [rf"\emph{{Convention:}} {convention_tex(step, c)}" for c in step.conventions]
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
            if not step.feeds_params:
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
        out = [BACKWARD[step.layer.kind](self, step, fused)]
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
