"""The LaTeX update section (the config's `train:`) and the "+ λ·w" part of one gradient.

Rendered from derivation/update.py's records and ElementGradient.decay, with the document's own
building blocks (latex_blocks.Blocks: headings, matrices; latex_math: numbers, align); no arithmetic.
"""

from __future__ import annotations

import numpy as np

from ..derivation.records import ElementGradient
from .latex_blocks import MAX_BLOCKS, pack
from .latex_math import align, number
from .latex_words import head

HOW = {
    "exact": "Every number in this section is exact: the network stays in the rationals.",
    "nearest": (
        r"The new weights are irrational (the network computes $e^x$ or $\tanh$); rounded values are "
        r"those of the exact ones (\texttt{cnnderive grad --json} gives their nearest doubles)."
    ),
    "float64": (
        "This network is too big for exact values: the step is computed in double precision from the "
        "gradient's nearest doubles, as PyTorch's SGD would."
    ),
}


def update_part(doc, only: str | None = None) -> str:
    """The SGD step(s) as a section of the document `doc` (a latex_blocks.Blocks), every parameter tensor
    or `only` one (fc.weight); "" without `train:`."""
    update = doc.derivation.update
    if update is None:
        return ""
    eta, mu, lam = (number(q).tex for q in (update.lr, update.momentum, update.rate))
    j = "J" if update.rate else "L"
    out = [doc.heading(0, "The update step (SGD)")]
    sentences = []
    if update.rate:
        sentences.append(
            rf"With weight decay $\lambda = {lam}$ the loss is $J = L + \tfrac{{\lambda}}{{2}}\sum w^2$, so "
            r"$\partial J/\partial w = \partial L/\partial w + \lambda w$ (biases "
            + ("included" if _decays_bias(update) else "excluded")
            + ")."
        )
    if update.momentum:
        sentences.append(
            rf"With momentum $\mu = {mu}$ and learning rate $\eta = {eta}$ (PyTorch's SGD, dampening 0): "
            rf"$v \leftarrow \mu v + \partial {j}/\partial w$, then $w \leftarrow w - \eta\, v$."
        )
    else:
        sentences.append(
            rf"Each parameter moves against its gradient, with learning rate $\eta = {eta}$: "
            rf"$w \leftarrow w - \eta\, \partial {j}/\partial w$."
        )
    out.append(" ".join(sentences + [HOW[update.how]]))
    for step in update.steps:
        if len(update.steps) > 1:
            out.append(doc.heading(1, f"Step {step.number}"))
        start = "the config's" if step.number == 1 else f"step {step.number - 1}'s"
        out.append(f"At {start} weights ${j} {_value(step.loss, step.loss_approx)}$.")
        for tensor in step.tensors:
            if only is None or tensor.name == only:
                out.append(_tensor_display(doc, update, tensor))
    if update.loss_after is not None:
        count = len(update.steps)
        after = "the step" if count == 1 else f"{count} steps"
        out.append(f"After {after}, ${j} {_value(update.loss_after, update.loss_after_approx)}$.")
    return "\n".join(out) + "\n"


def decay_tex(gradient: ElementGradient) -> str:
    """∂J/∂w = ∂L/∂w + λw with the numbers, as an align* display; "" when the element is not decayed."""
    decay = gradient.decay
    if decay is None:
        return ""
    symbol = gradient.tensor.latex(gradient.index)
    chain = number(gradient.chain_value, approx=gradient.chain_approx)
    lam, weight, total = number(decay.rate), number(decay.weight), number(gradient.value, approx=gradient.approx)
    rows = [
        ("=", [rf"\frac{{\partial L}}{{\partial {symbol}}} + \lambda\, {symbol}"]),
        (r"\approx" if not chain.exact else "=", [f"{chain.tex} + {lam.tex} \\cdot {weight.factor()}"]),
        ("=" if total.exact else r"\approx", [total.tex]),
    ]
    sentence = rf"With weight decay ($\lambda = {lam.tex}$) the gradient of $J = L + \tfrac{{\lambda}}{{2}}\sum w^2$ adds $\lambda {symbol}$:"
    return sentence + "\n" + align(rf"\frac{{\partial J}}{{\partial {symbol}}}", rows) + "\n"


def _decays_bias(update) -> bool:
    return any(t.decay is not None and t.name.endswith(".bias") for t in update.steps[0].tensors)


def _tensor_display(doc, update, tensor) -> str:
    """One parameter tensor in one step: w, (λw, ∂L/∂w), ∂J/∂w, (v, v'), the new w, as matrices."""
    symbol = head(doc.derivation.tensors[tensor.name])
    j = "J" if update.rate else "L"
    grad = rf"\frac{{\partial {j}}}{{\partial {symbol}}}"
    quantities = [(symbol, tensor.weight)]
    if tensor.decay is not None:
        quantities += [
            (rf"\lambda {symbol}", tensor.decay),
            (rf"\frac{{\partial L}}{{\partial {symbol}}}", tensor.loss_gradient),
        ]
    quantities.append((grad, tensor.gradient))
    new = rf"{symbol}_{{\text{{new}}}} = {symbol}"
    if tensor.velocity is not None:
        quantities += [("v", tensor.velocity), (rf"v_{{\text{{new}}}} = \mu v + {grad}", tensor.new_velocity)]
        quantities.append((rf"{new} - \eta\, v_{{\text{{new}}}}", tensor.new_weight))
    else:
        quantities.append((rf"{new} - \eta\, {grad}", tensor.new_weight))
    items, notes = [], []
    for lhs, values in quantities:
        more_items, more_notes = _matrices(doc, lhs, values)
        items += more_items
        notes += more_notes
    name = tensor.name.replace("_", r"\_")
    return f"\\texttt{{{name}}}:\n" + "\n".join([pack(items)] + sorted(set(notes)))


def _matrices(doc, lhs: str, values) -> tuple[list[tuple[str, float]], list[str]]:
    """A vector or matrix; a 3-D or 4-D tensor as its first MAX_BLOCKS kernels (channels)."""
    exact, approx = np.asarray(values.exact, dtype=object), np.asarray(values.approx)
    if exact.ndim <= 2:
        block = exact[None, :] if exact.ndim == 1 else exact
        near = approx[None, :] if exact.ndim == 1 else approx
        return [doc.matrix_item(lhs, block, near, vector=exact.ndim == 1)], []
    leads = list(np.ndindex(*exact.shape[:-2]))
    items = []
    for at in leads[:MAX_BLOCKS]:
        label = lhs if len(leads) == 1 else rf"\left({lhs}\right)_{{{','.join(str(i + 1) for i in at)},\cdot,\cdot}}"
        items.append(doc.matrix_item(label, exact[at], approx[at], vector=False))
    notes = (
        [f"(The other {len(leads) - MAX_BLOCKS} matrices of each tensor are not shown.)"]
        if len(leads) > MAX_BLOCKS
        else []
    )
    return items, notes


def _value(value, approx) -> str:
    shown = number(value, approx=approx)
    return ("= " if shown.exact else r"\approx ") + shown.tex
