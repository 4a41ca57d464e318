"""The derivation as a LaTeX document: the network, the forward pass, the backward pass layer by
layer, and each parameter's chain-rule sum with its numbers, exact and decimal.

Rendered only from the records of `steps.py` and `derivation.py`, never re-derived. The document
uses amsmath, amssymb and geometry (all in Debian's texlive-latex-base) and stays bounded for big
networks: matrices, channels, chain-rule terms and worked elements are cut, and the text says so.
"""

from __future__ import annotations

from ..derivation.budget import work
from ..derivation.steps import LayerStep, Steps
from .latex_backward import Backward
from .latex_blocks import RULE_LINES, Options, pack, shape_text
from .latex_math import align, fits, number
from .latex_update import update_part
from .latex_words import FORWARD, head, text, tt
from .notation import convention_sentence

MAX_CONVENTIONS = 6  # exact ties and zeros named per layer; big networks drawn from a seed have hundreds

PACKAGES = r"""\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
"""
SETTINGS = r"""\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\setlength{\emergencystretch}{3em}
"""


def render(steps: Steps, selected=None, snippet: bool = False, options: Options | None = None) -> str:
    """The whole document, or with `snippet` only its body (in a group, so its settings stay inside).

    A snippet goes into someone's document, one heading level down (\\subsection for the parts)
    unless `options.top` says otherwise.
    """
    options = options or Options(top="subsection" if snippet else "section")
    document = Document(steps, options)
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


class Document(Backward):
    """Builds the body from the steps: one method per part, each returning LaTeX."""

    # -- the parts -----------------------------------------------------------------------------

    def body(self, selected=None, title: bool = True) -> str:
        parts = [self.title()] if title else []
        parts += [self.notation_paragraph(), self.network_part(), self.forward_part()]
        parts += [self.backward_part(), self.gradients_part(selected)]
        update = update_part(self, selected[0].name if selected else None)
        parts += [update] if update else []
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
        lines.append(
            "The program's own names (the ones \\texttt{cnnderive} options and formulas take) count from 0; "
            "the table after the network gives each symbol's."
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
        out = [self.heading(0, "The network"), table, self.names_table()]
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

    def names_table(self) -> str:
        """Each symbol with the program's name for it, once (--program-names also writes them inline)."""
        rows = []
        for tensor in self.derivation.tensors.values():
            first = (0,) * len(tensor.shape)
            example = f"${tensor.latex(first)}$ is {tt(tensor.element(first))}" if tensor.shape else ""
            rows.append(f"${head(tensor)}$ & {tt(tensor.name)} & {example} \\\\")
        return (
            "The symbols and the program's names for them (indices from 1 in the maths, from 0 in the program):\n"
            "\\begin{center}\n\\begin{tabular}{lll}\n\\hline\n"
            "symbol & program name & first element \\\\\n\\hline\n" + "\n".join(rows) + "\n\\hline\n"
            "\\end{tabular}\n\\end{center}\n"
        )

    def forward_part(self) -> str:
        out = [self.heading(0, "Forward pass")]
        for step in self.steps.layers:
            out.append(self.heading(1, f"{step.position + 1}. {tt(step.layer.name)}: {text(step.layer.describe())}"))
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
            shown = step.conventions[:MAX_CONVENTIONS]
            out += [rf"\emph{{Convention:}} {convention_tex(step, c)}" for c in shown]
            if len(step.conventions) > MAX_CONVENTIONS:
                more = len(step.conventions) - MAX_CONVENTIONS
                out.append(f"({more:,} more like these in this layer are not listed.)")
        out.append(self.loss_forward())
        return "\n".join(out) + "\n"

    def loss_forward(self) -> str:
        loss = self.steps.loss
        out = [self.heading(1, "The loss")]
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
