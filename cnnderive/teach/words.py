"""What a problem states, shared by the LaTeX sheet, Moodle and PrairieLearn: the numbers as short
exact text, the loss as a formula, each asked gradient's symbol. Maths in LaTeX notation (MathJax
reads the same in Moodle and PrairieLearn)."""

from __future__ import annotations

import html
from fractions import Fraction

import numpy as np

from ..printers.numbers import exact_decimal, shown


def plain(value: object) -> str:
    """A config number as short exact text: 2, -0.3, 1/3."""
    q = Fraction(value)
    return exact_decimal(q, 30) or f"{q.numerator}/{q.denominator}"


def answer_text(answer) -> tuple[str, str]:
    """(exact or '', decimal) of a right value: ('-11/20', '-0.55'), ('', '0.2143')."""
    text, exact = shown(answer.value, answer.approx)
    return (text if exact else ""), f"{answer.approx:.6g}"


def loss_formula(network) -> str:
    """The loss as LaTeX, over the network output \\hat{y} and the target y."""
    loss, n = network.loss, int(np.prod(network.output_shape))
    if loss.kind == "mse":
        scale = {"mean": rf"\frac{{1}}{{{n}}}", "sum": "", "half_sum": r"\frac{1}{2}"}[loss.reduction]
        return rf"L = {scale}\sum_{{i=1}}^{{{n}}} (\hat{{y}}_i - y_i)^2"
    if loss.on == "softmax":
        return r"L = -\sum_i y_i \log \hat{y}_i"
    return r"L = -\sum_i \left[y_i \log \hat{y}_i + (1 - y_i)\log(1 - \hat{y}_i)\right]"


def target_text(network) -> str:
    """The target in words: a class index when the loss takes one, else its numbers."""
    target = [Fraction(t) for t in network.target]
    if network.loss.kind == "cross_entropy" and network.loss.on == "softmax" and max(target) == 1 and sum(target) == 1:
        k = target.index(1)
        return f"class {k + 1} of {len(target)} (y is one-hot: \\(y_{{{k + 1}}} = 1\\))"
    return "\\(y = (" + ", ".join(plain(t) for t in target) + ")\\)"


def question_symbol(answer) -> str:
    """\\partial L / \\partial w^{(1)}_{1,1}: the asked gradient in textbook notation."""
    return rf"\partial L/\partial {answer.tensor.latex(answer.index)}"


def pieces(tensor, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """A tensor as labelled 2-D (or 1-D) pieces: one matrix per channel (or per filter and channel),
    labelled w^{(1)} when there is one, w^{(1)}_{2,1,:,:} when there are several (1-based)."""
    if array.ndim <= 2:
        return [(tensor.latex(()), array)]
    lead = list(np.ndindex(*array.shape[:-2]))
    if len(lead) == 1:
        return [(tensor.latex(()), array[lead[0]])]
    return [(tensor.latex(()) + "_{" + ",".join(str(i + 1) for i in index) + ",:,:}", array[index]) for index in lead]


def shown_tensors(derivation) -> list[tuple[str, object, np.ndarray]]:
    """(canonical name, Tensor, values) of what a problem gives: the input and every parameter."""
    network, tensors = derivation.network, derivation.tensors
    names = ["input", *network.parameter_names()]
    return [(name, tensors[name], network.input if name == "input" else network.parameter(name)) for name in names]


def html_matrix(array: np.ndarray) -> str:
    """A small matrix (or vector) of exact numbers as an HTML table."""
    rows = array.reshape(1, -1) if array.ndim == 1 else array
    cells = "".join(
        "<tr>" + "".join(f'<td style="padding:2px 8px;text-align:right">{plain(v)}</td>' for v in row) + "</tr>"
        for row in rows
    )
    return f'<table style="display:inline-table;border-left:1px solid;border-right:1px solid">{cells}</table>'


def network_html(derivation) -> str:
    """The problem statement's network and numbers as HTML (Moodle and PrairieLearn)."""
    network = derivation.network
    layers = "".join(
        f"<li><code>{html.escape(layer.name)}</code>: {html.escape(layer.describe())}</li>" for layer in network.layers
    )
    parts = [f"<p>{html.escape(network.name)}</p>", f"<ol>{layers}</ol>", f"<p>Loss: \\({loss_formula(network)}\\)</p>"]
    for name, tensor, array in shown_tensors(derivation):
        for label, piece in pieces(tensor, array):
            parts.append(
                f"<p>\\({label} =\\) {html_matrix(piece)} <small>(<code>{html.escape(name)}</code>)</small></p>"
            )
    parts.append(f"<p>Target: {target_text(network)}</p>")
    return "\n".join(parts)
