"""Words for the LaTeX document: escaped text, tensor symbols, and what each layer kind does.

One entry per layer kind in each table, as in `layers/__init__.py`: FORWARD says what a layer
computes, BACKWARD how its gradient flows back, MASK_TEXT what its mask means, LOSS_DELTA where
the backward pass starts. A new layer kind is one line in each table.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import numpy as np

from ..derivation.names import Tensor
from ..derivation.steps import LayerStep
from .latex_math import number, partial

if TYPE_CHECKING:
    from .latex_blocks import Blocks as Document


_UNICODE = {"×": r"$\times$", "→": r"$\to$", "≤": r"$\le$", "≥": r"$\ge$", "–": "--", "—": "---", "·": r"$\cdot$"}
_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
}


def text(value: str) -> str:
    """Plain text for LaTeX: special characters escaped, `<=` and `->` as symbols, other Unicode folded."""
    value = value.replace("<=", "≤").replace(">=", "≥").replace("->", "→")
    out = []
    for char in value:
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif char in _UNICODE:
            out.append(_UNICODE[char])
        elif ord(char) < 128:
            out.append(char)
        elif _greek(char):
            out.append(_greek(char))
        else:
            folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(text(folded) if folded else "?")
    return "".join(out)


_CAPITAL_GREEK = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _greek(char: str) -> str:
    """A Greek letter as maths (α -> $\\alpha$), or '' for anything else."""
    words = unicodedata.name(char, "").split()
    if len(words) < 4 or words[:3] not in (["GREEK", "SMALL", "LETTER"], ["GREEK", "CAPITAL", "LETTER"]):
        return ""
    letter = words[-1].capitalize() if words[1] == "CAPITAL" else words[-1].lower()
    if letter in ("omicron", "Omicron") or (words[1] == "CAPITAL" and letter not in _CAPITAL_GREEK):
        return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?"
    return f"${chr(92)}{letter}$"


def tt(name: str) -> str:
    return rf"\texttt{{{text(name)}}}"


def head(tensor: Tensor) -> str:
    """A tensor's textbook symbol without indices: w^{(1)}, z^{(2)}, \\hat{y}."""
    return tensor.latex(())


# -- what each layer kind does, in words (forward), and how its gradient flows (backward) --------


def _io(step: LayerStep) -> tuple[str, str]:
    return head(step.input), head(step.output)


def _slope(step: LayerStep) -> str:
    return number(step.layer.negative_slope).tex


def _plus_bias(step: LayerStep) -> str:
    return ", plus the bias" if step.layer.bias else ""


FORWARD = {
    "conv2d": lambda s: (
        "Each output is the sum of weight times input over one window of the input (all input "
        f"channels){_plus_bias(s)}."
    ),
    "linear": lambda s: f"Each output is the sum of weight times input over all inputs{_plus_bias(s)}.",
    "relu": lambda s: "${1} = \\max(0, {0})$, element by element.".format(*_io(s)),
    "leaky_relu": lambda s: "${1} = {0}$ where ${0} > 0$ and ${1} = {2}\\,{0}$ elsewhere, element by element.".format(
        *_io(s), _slope(s)
    ),
    "sigmoid": lambda s: "${1} = 1/(1 + e^{{-{0}}})$, element by element.".format(*_io(s)),
    "tanh": lambda s: "${1} = \\tanh {0}$, element by element.".format(*_io(s)),
    "identity": lambda s: "${1} = {0}$.".format(*_io(s)),
    "softmax": lambda s: "${1}_k = e^{{{0}_k}} / \\sum_j e^{{{0}_j}}$.".format(*_io(s)),
    "maxpool2d": lambda s: "Each output is the largest element of its window (the first one, row by row, on a tie).",
    "avgpool2d": lambda s: "Each output is the mean of its window.",
    "adaptive_avg_pool2d": lambda s: "Each channel's output is the mean of the whole channel.",
    "dropout": lambda s: (
        "${1} = {0} \\cdot m / (1 - p)$ with the mask $m$ of the config: 1 where the element is kept, 0 where "
        "it is dropped (PyTorch in training mode, which scales the kept ones by $1/(1-p) = {2}$).".format(
            *_io(s), number(s.layer.scale).tex
        )
    ),
    "flatten": lambda s: "The values are read into one vector channel by channel, each row by row (as PyTorch does).",
    "add": lambda s: (
        f"${head(s.output)} = {' + '.join(head(x) for x in s.inputs)}$, element by element: the skip connection joins here."
    ),
    "concat": lambda s: (
        f"${head(s.output)}$ stacks the channels of {', '.join(f'${head(x)}$' for x in s.inputs)}, in this order."
    ),
    "batchnorm2d": lambda s: _bn_forward(s),
    "batchnorm1d": lambda s: _bn_forward(s),
}


def _bn_forward(s: LayerStep) -> str:
    i, o = _io(s)
    divisor = "m - 1" if s.layer.unbiased else "m"
    return (
        f"Batch norm in training mode: ${o} = \\gamma \\hat{{x}} + \\beta$ with "
        f"$\\hat{{x}} = ({i} - \\mu)/\\sqrt{{\\sigma^2 + \\varepsilon}}$, $\\varepsilon = {number(s.layer.eps).tex}$, "
        f"where $\\mu$ and $\\sigma^2 = \\sum ({i} - \\mu)^2/({divisor})$ are the mean and variance of each channel "
        "over the whole batch ($m$ numbers): every example's output depends on every example. The square root is "
        "kept exact."
    )


def _bn_backward(s: LayerStep) -> str:
    i, o = _io(s)
    divisor = "m - 1" if s.layer.unbiased else "m"
    d_xhat, d_var, d_mean = partial(r"\hat{x}"), partial(r"\sigma^2"), partial(r"\mu")
    root = r"\sqrt{\sigma^2 + \varepsilon}"
    return (
        f"Each ${i}$ reaches the loss by three paths: through $\\hat{{x}}$, through $\\sigma^2$ and through $\\mu$. "
        f"With ${d_xhat} = \\gamma\\, {partial(o)}$:\n"
        f"\\[ {partial(i)} = \\frac{{{d_xhat}}}{{{root}}} + {d_var} \\frac{{2({i} - \\mu)}}{{{divisor}}} "
        f"+ \\frac{{{d_mean}}}{{m}} \\]\n"
        f"with ${d_var} = \\sum {d_xhat} ({i} - \\mu) \\cdot (-\\tfrac12)(\\sigma^2 + \\varepsilon)^{{-3/2}}$ and "
        f"${d_mean} = -\\sum {d_xhat} / {root}$ (sums over the whole batch; the part of "
        f"$\\partial L/\\partial\\mu$ through $\\sigma^2$ is 0, as $\\sum ({i} - \\mu) = 0$). Before this layer "
        "the gradients are those of the sum of all the examples' losses."
    )


def _back_linear(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    w = head(doc.derivation.tensors[f"{s.layer.name}.weight"])
    return (
        "Every input feeds every output, so its gradient is the sum over the outputs $k$ of "
        f"$\\partial L/\\partial {o}_k$ times the weight that joins them:\n"
        f"\\[ {partial(i + '_j')} = \\sum_k {partial(o + '_k')}\\, {w}_{{k,j}} \\]"
    )


def _back_conv(doc: Document, s: LayerStep, fused: bool) -> str:
    return (
        "An input element is used by every output whose window covers it, once per such output, so its "
        f"gradient is the sum over those outputs of $\\partial L/\\partial {head(s.output)}$ times the weight "
        "that multiplied it there (the contributions add; they are not multiplied)."
    )


def _back_flatten(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    return (
        f"Flattening only moves values, so the gradient moves back the same way: $\\partial L/\\partial {o}$ "
        f"is read back into the shape of ${i}$, channel by channel, row by row."
    )


def _back_relu(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    return (
        f"ReLU lets the gradient through where ${i} > 0$ and stops it elsewhere (ReLU$'(0) = 0$): "
        f"$\\partial L/\\partial {i} = \\partial L/\\partial {o} \\odot \\mathbf{{1}}[{i} > 0]$, element by element."
    )


def _back_leaky(doc: Document, s: LayerStep, fused: bool) -> str:
    return (
        f"Leaky ReLU passes the gradient unchanged where ${head(s.input)} > 0$ and multiplies it by the slope "
        f"${_slope(s)}$ elsewhere (the slope also at 0, as PyTorch does)."
    )


def _back_sigmoid(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    if fused:
        return (
            f"With binary cross-entropy, the loss and the sigmoid together give "
            f"$\\partial L/\\partial {i} = {o} - y$ (the factors ${o}(1 - {o})$ cancel)."
        )
    return f"$\\partial {o}/\\partial {i} = {o}(1 - {o})$, element by element."


def _back_tanh(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    return f"$\\partial {o}/\\partial {i} = 1 - ({o})^2$, element by element."


def _back_softmax(doc: Document, s: LayerStep, fused: bool) -> str:
    i, o = _io(s)
    if fused:
        total = "" if getattr(doc.network.loss, "target_sums_to_one", True) else "\\textstyle\\sum_j y_j"
        return (
            f"With cross-entropy, the loss and the softmax together give $\\partial L/\\partial {i}_k = "
            f"{o}_k{total} - y_k$: the $-y_k/{o}_k$ of the loss times the softmax's derivatives simplify to this."
        )
    return (
        f"Each output depends on every input: $\\partial L/\\partial {i}_m = {o}_m (\\partial L/\\partial {o}_m"
        f" - \\sum_k \\partial L/\\partial {o}_k\\, {o}_k)$."
    )


def _back_maxpool(doc: Document, s: LayerStep, fused: bool) -> str:
    return (
        "Only the maximum of each window reached the output, so each window's gradient goes back to that one "
        "element (the first maximum on a tie) and every other element gets 0; an element that is the maximum "
        "of several overlapping windows gets the sum of their gradients."
    )


def _back_avgpool(doc: Document, s: LayerStep, fused: bool) -> str:
    kh, kw = s.layer.kernel
    return (
        f"Each element of a ${kh} \\times {kw}$ window gets $1/{kh * kw}$ of the window's gradient, summed over "
        "the windows that cover it."
    )


BACKWARD = {
    "linear": _back_linear,
    "conv2d": _back_conv,
    "flatten": _back_flatten,
    "relu": _back_relu,
    "leaky_relu": _back_leaky,
    "sigmoid": _back_sigmoid,
    "tanh": _back_tanh,
    "identity": lambda doc, s, fused: "The gradient passes through unchanged.",
    "softmax": _back_softmax,
    "maxpool2d": _back_maxpool,
    "avgpool2d": _back_avgpool,
    "adaptive_avg_pool2d": _back_avgpool,
    "dropout": lambda doc, s, fused: (
        f"The gradient of a kept element is multiplied by the same ${number(s.layer.scale).tex}$; a dropped element gets 0."
    ),
    "add": lambda doc, s, fused: (
        f"Each input enters ${head(s.output)}$ with derivative 1, so the + copies the gradient to both branches: "
        + ", ".join(f"${partial(head(x))} = {partial(head(s.output))}$" for x in s.inputs)
        + ", element by element (nothing is halved)."
    ),
    "concat": lambda doc, s, fused: (
        f"Concatenation only moved channels, so ${partial(head(s.output))}$ is cut back into its pieces, "
        "one per input, channel by channel."
    ),
    "batchnorm2d": lambda doc, s, fused: _bn_backward(s),
    "batchnorm1d": lambda doc, s, fused: _bn_backward(s),
}

MASK_TEXT = {
    "relu": lambda s: f"The mask, 1 where ${head(s.input)} > 0$ and 0 where not:",
    "leaky_relu": lambda s: (
        f"The mask, 1 where ${head(s.input)} > 0$ (gradient unchanged) and 0 where not (times the slope):"
    ),
    "dropout": lambda s: f"The dropout mask, 1 where an element of ${head(s.input)}$ was kept and 0 where dropped:",
    "maxpool2d": lambda s: (
        f"The routing mask $M$ over ${head(s.input)}$: 1 where a window's maximum sits, 0 where the gradient is cut:"
    ),
}


# -- each parameter's gradient, once for all its elements (indices as in the notation: 1-based) ----


def _sub(tensor: Tensor, letters: list[str]) -> str:
    """Index letters as the textbook writes them: leading axes of size 1 left out, as Tensor.latex does."""
    shown = len(tensor.shown_index((0,) * len(tensor.shape)))
    return "_{" + ",".join(letters[len(letters) - shown :]) + "}"


def _position(stride: int, padding: int, out: str, kernel: str) -> str:
    """The input row (1-based) that kernel row `kernel` meets at output row `out`: s(i-1) + m - p."""
    if stride == 1:
        return f"{out}+{kernel}" + (f"-{1 + padding}" if 1 + padding else "")
    return f"{stride}({out}-1)+{kernel}" + (f"-{padding}" if padding else "")


def _conv_weight_rule(doc: Document, w: Tensor) -> str:
    layer = doc.network.layers[w.layer]
    z, x = doc.derivation.layer_tensor(w.layer), doc.derivation.input_tensor(w.layer)
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    rows, cols = _position(sh, ph, "i", "m"), _position(sw, pw, "j", "n")
    pad = " (an $x$ in the zero padding counts as 0)" if ph or pw else ""
    return (
        f"\\[ {partial(head(w) + _sub(w, ['o', 'c', 'm', 'n']))} = \\sum_{{i,j}} "
        f"{partial(head(z) + _sub(z, ['o', 'i', 'j']))}\\, {head(x)}{_sub(x, ['c', rows, cols])} \\]\n"
        f"summed over every position $(i, j)$ of the output{pad}."
    )


def _conv_bias_rule(doc: Document, b: Tensor) -> str:
    z = doc.derivation.layer_tensor(b.layer)
    return f"\\[ {partial(head(b) + _sub(b, ['o']))} = \\sum_{{i,j}} {partial(head(z) + _sub(z, ['o', 'i', 'j']))} \\]"


def _linear_weight_rule(doc: Document, w: Tensor) -> str:
    z, v = doc.derivation.layer_tensor(w.layer), doc.derivation.input_tensor(w.layer)
    return f"\\[ {partial(head(w) + '_{k,j}')} = {partial(head(z) + '_k')}\\, {head(v)}_j \\]"


def _linear_bias_rule(doc: Document, b: Tensor) -> str:
    z = doc.derivation.layer_tensor(b.layer)
    return f"\\[ {partial(head(b) + '_k')} = {partial(head(z) + '_k')} \\]"


PARAM_RULE = {
    "conv2d": {"weight": _conv_weight_rule, "bias": _conv_bias_rule},
    "linear": {"weight": _linear_weight_rule, "bias": _linear_bias_rule},
}


def _mse_delta(doc: Document) -> str:
    scale = 2 * doc.network.loss.scale(int(np.prod(doc.network.output_shape)))
    c = "" if scale == 1 else number(scale, small=r"\tfrac").tex + r"\,"
    o = head(doc.steps.loss.output)
    return f"$\\partial L/\\partial {o}_k = {c}({o}_k - y_k)$."


def _ce_delta(doc: Document) -> str:
    o = head(doc.steps.loss.output)
    if getattr(doc.network.loss, "on", "softmax") == "sigmoid":
        return f"$\\partial L/\\partial {o}_k = -y_k/{o}_k + (1 - y_k)/(1 - {o}_k)$."
    return f"$\\partial L/\\partial {o}_k = -y_k/{o}_k$."


def _hinge_delta(doc: Document) -> str:
    o, loss = head(doc.steps.loss.output), doc.network.loss
    y = loss.label + 1
    scale = "" if loss.reduction == "sum" else rf", all times $\tfrac{{1}}{{{len(loss.active)}}}$"
    return (
        f"each margin ${o}_j - {o}_{{{y}}} + {number(loss.margin).tex}$ of a wrong class $j$ that is above 0 "
        rf"adds 1 to $\partial L/\partial {o}_j$ and $-1$ to $\partial L/\partial {o}_{{{y}}}$ (a margin of "
        f"exactly 0 counts as inactive){scale}."
    )


LOSS_DELTA = {"mse": _mse_delta, "cross_entropy": _ce_delta, "hinge": _hinge_delta}
