"""The problem sheet and the answer key as LaTeX documents (pdflatex; amsmath, amssymb, geometry).

The sheet has the questions only: the network, its numbers, what to compute, one variant a page.
The key has, for each variant, a compact table of the asked gradients and then the full worked
solution that `cnnderive latex` writes.
"""

from __future__ import annotations

import numpy as np

from ..printers.latex_words import text
from .words import answer_text, loss_formula, pieces, plain, question_symbol, shown_tensors, target_text

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\ifdefined\pdftrailerid \pdftrailerid{}\pdfinfoomitdate=1\fi
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip}
\setcounter{MaxMatrixCols}{20}
\setcounter{secnumdepth}{0}
"""


def matrix(array: np.ndarray) -> str:
    rows = array.reshape(1, -1) if array.ndim == 1 else array
    body = r" \\ ".join(" & ".join(plain(v) for v in row) for row in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"


def problem(template, variant) -> str:
    """One variant's problem: the layers, the loss, the numbers, and the asked gradients."""
    derivation = variant.derivation
    network = derivation.network
    layers = "\n".join(rf"  \item \texttt{{{text(layer.name)}}}: {text(layer.describe())}" for layer in network.layers)
    numbers = []
    for name, tensor, array in shown_tensors(derivation):
        for label, piece in pieces(tensor, array):
            numbers.append(rf"\[ {label} = {matrix(piece)} \quad \text{{(\texttt{{{text(name)}}})}} \]")
    asked = "\n".join(
        rf"  \item $\displaystyle {question_symbol(a)}$ \quad (\texttt{{{text(a.name)}}})" for a in variant.answers
    )
    percent = f"{float(template.tolerance) * 100:g}"
    return "\n".join(
        [
            rf"\section*{{Problem {variant.number}}}",
            rf"{text(network.name)}. The layers, in order:",
            r"\begin{enumerate}",
            layers,
            r"\end{enumerate}",
            rf"The loss is $\displaystyle {loss_formula(network)}$, with target {target_text(network)}.",
            *numbers,
            r"Indices count from 1; the superscript of $w$ and $b$ counts the convolution and linear layers.",
            rf"Compute, to within {percent}\,\%:",
            r"\begin{enumerate}",
            asked,
            r"\end{enumerate}",
        ]
    )


def sheet(template, variants) -> str:
    """The problem sheet: questions only, one variant a page."""
    pages = "\n\\clearpage\n".join(problem(template, v) for v in variants)
    return PREAMBLE + "\\begin{document}\n" + pages + "\n\\end{document}\n"


def answer_table(variant) -> str:
    rows = []
    for a in variant.answers:
        exact, decimal = answer_text(a)
        rows.append(
            rf"$\displaystyle {question_symbol(a)}$ & \texttt{{{text(a.name)}}} & ${exact or '--'}$ & ${decimal}$ \\"
        )
    return "\n".join(
        [r"\begin{tabular}{llrr}", r"gradient & name & exact & decimal \\ \hline", *rows, r"\end{tabular}"]
    )


def key(template, variants) -> str:
    """The answer key: each variant's table of asked gradients, then its full worked solution."""
    from ..derivation.steps import build_steps
    from ..printers.latex import render

    pages = "\n\\clearpage\n".join(
        "\n".join(
            [
                rf"\section*{{Answers to problem {variant.number}}}",
                answer_table(variant),
                r"\subsection*{Worked solution}",
                render(build_steps(variant.derivation), None, snippet=True),
            ]
        )
        for variant in variants
    )
    return PREAMBLE + "\\begin{document}\n" + pages + "\n\\end{document}\n"
