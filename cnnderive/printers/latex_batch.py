"""`latex` of a mini-batch: each example's derivation under "Example n of N" (the network once),
then "The batch": L = 1/N (ℓ₁ + … + ℓ_N) and, per parameter tensor, ∂L/∂w = 1/N Σₙ ∂ℓₙ/∂w with every
example's matrices. Reads derivation.batch records only; no maths here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..derivation.batch import BatchDerivation
from ..derivation.steps import build_steps
from .latex import PACKAGES, SETTINGS, Document
from .latex_blocks import HEADINGS, Options, dropped_axes, pack
from .latex_math import number
from .latex_words import head, text

MAX_BLOCKS = 4  # matrices of one tensor per example (kernels, channels)


def render_batch(derivation: BatchDerivation, snippet: bool = False, options: Options | None = None) -> str:
    """The whole document (or with `snippet` its body) for a batch."""
    options = options or Options(top="subsection" if snippet else "section")
    body = batch_body(derivation, options, title=not snippet)
    if snippet:
        return (
            "% written by cnnderive latex --snippet: needs \\usepackage{amsmath,amssymb}\n"
            "\\begingroup\n" + SETTINGS + body + "\\endgroup\n"
        )
    return "\\documentclass[11pt]{article}\n" + PACKAGES + SETTINGS + "\\begin{document}\n" + body + "\\end{document}\n"


def batch_body(derivation: BatchDerivation, options: Options, title: bool = True) -> str:
    top = HEADINGS.index(options.top)
    inner = replace(options, top=HEADINGS[min(top + 1, 3)])  # each example's parts one level down
    first = Document(build_steps(derivation.examples[0]), options)
    parts = [first.title()] if title else []
    parts.append(reduction_paragraph(derivation))
    for n, example in enumerate(derivation.examples, start=1):
        document = Document(build_steps(example), inner)
        parts.append(first.heading(0, f"Example {n} of {derivation.size}"))
        if n == 1:
            parts += [document.notation_paragraph(), document.network_part()]
        else:
            parts.append(example_data(document))
        parts += [document.forward_part(), document.backward_part(), document.gradients_part(None)]
    parts.append(batch_part(derivation, first))
    return "\n".join(parts)


def ell(n: int) -> str:
    return rf"\ell_{{{n}}}"


def _sum(derivation: BatchDerivation, pieces: list[str]) -> str:
    if len(pieces) > 4:
        pieces = [pieces[0], pieces[1], r"\cdots", pieces[-1]]
    scale = derivation.scale
    factor = "" if scale == 1 else rf"\frac{{{scale.numerator}}}{{{scale.denominator}}}"
    return rf"{factor}\left({' + '.join(pieces)}\right)"


def reduction_paragraph(derivation: BatchDerivation) -> str:
    n = derivation.size
    losses = _sum(derivation, [ell(k) for k in range(1, n + 1)])
    if derivation.scale == 1:
        how = "the examples' losses added (batch reduction: sum)"
    else:
        how = f"the mean of the examples' losses (batch reduction: mean, as PyTorch); every gradient is $1/{n}$ times the sum of the examples' gradients"
    batch_norm = (
        " With batch norm each loss depends on every example (through the batch mean and variance): example "
        "$n$'s part is the gradient of $\\ell_1 + \\dots + \\ell_N$ that flows through example $n$'s own values "
        "(the parts still add up to the batch gradient)."
        if derivation.batch_wide
        else ""
    )
    return (
        f"This is a batch of {n} examples through the same layers and parameters. Example $n$ has its own "
        f"input, target and loss $\\ell_n$; the batch loss is $L = {losses}$, {how}.{batch_norm}\n"
    )


def example_data(document: Document) -> str:
    tensors = document.derivation.tensors
    network = document.network
    shown = pack(
        document.matrices(tensors["input"], network.input)[0] + document.matrices(tensors["target"], network.target)[0]
    )
    return f"This example's input and target:\n{shown}\n"


def batch_part(derivation: BatchDerivation, document: Document) -> str:
    """The batch loss with its numbers, then each parameter tensor's ∂L/∂w as the scaled sum."""
    out = [document.heading(0, "The batch"), reduction_paragraph(derivation)]
    losses = [number(e.values.loss, approx=float(e.nearest.loss)).tex for e in derivation.examples]
    loss, approx = derivation.loss
    total = number(loss, approx=approx)
    names = [ell(k) for k in range(1, derivation.size + 1)]
    out.append(
        f"\\[ L = {_sum(derivation, names)} = {_sum(derivation, losses)} "
        f"{'=' if total.exact else chr(92) + 'approx'} {total.tex} \\]"
    )
    for name, record in derivation.gradients.items():
        tensor = derivation.tensors[name]
        w = head(tensor)
        terms = [rf"\frac{{\partial {ell(n)}}}{{\partial {w}}}" for n in range(1, derivation.size + 1)]
        out.append(
            f"For ${w}$ ({text(name)}):\n\\[ \\frac{{\\partial L}}{{\\partial {w}}} = {_sum(derivation, terms)} \\]"
        )
        items = []
        for n, (part, near) in enumerate(zip(record.parts, record.parts_approx), start=1):
            items += _matrices(document, tensor, part, near, rf"\partial {ell(n)}")
        items += _matrices(document, tensor, record.value, record.approx, r"\partial L")
        out.append(pack(items))
    return "\n".join(out) + "\n"


def _matrices(document: Document, tensor, array, approx, top: str) -> list[tuple[str, float]]:
    """(tex, width) items of one gradient tensor, d(top)/d(tensor), a matrix per leading index."""
    array, approx = np.asarray(array, dtype=object), np.asarray(approx)
    name = head(tensor)
    if array.ndim == 0:
        shown = number(array[()], approx=float(approx[()]))
        tex = rf"\frac{{{top}}}{{\partial {name}}} {'=' if shown.exact else chr(92) + 'approx'} {shown.tex}"
        return [(tex, 12.0)]
    if array.ndim == 1:
        blocks = [((), array[None, :], approx[None, :])]
    else:
        blocks = [(lead, array[lead], approx[lead]) for lead in np.ndindex(*array.shape[:-2])][:MAX_BLOCKS]
    drop = dropped_axes(tensor)
    items = []
    for lead, block, near in blocks:
        shown_lead = [str(i + 1) for i in lead[drop:]]
        base = name + ("_{" + ",".join(shown_lead + [r"\cdot", r"\cdot"]) + "}" if shown_lead else "")
        items.append(document.matrix_item(rf"\frac{{{top}}}{{\partial {base}}}", block, near, vector=array.ndim == 1))
    return items
