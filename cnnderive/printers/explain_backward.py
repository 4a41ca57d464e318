"""`explain`: the backward pass, from the loss to the first layer (or the input), one block per layer."""

from __future__ import annotations

import numpy as np
import sympy
from rich.console import Group, RenderableType
from rich.text import Text

from .explain_batchnorm import batchnorm_backward
from .explain_conv import full_conv_items, full_conv_sentence
from .explain_merge import add_backward, concat_backward, fork_backward
from .explain_start import fused_start, loss_start
from .explain_view import View, equation, indent, layer_head, prose
from .matrices import number_text, put


def backward(view: View) -> list[RenderableType]:
    """The loss's gradient, then every layer from the last to the first."""
    layers = list(view.steps.layers)
    fused = view.steps.loss.fused is not None
    items: list[RenderableType] = [fused_start(view) if fused else loss_start(view)]
    for step in reversed(layers[:-1] if fused else layers):
        items.append(layer_backward(view, step))
        fork = view.steps.fork_after(step.position)
        if fork is not None:
            items.append(fork_backward(view, fork))
    return items


# one layer -----------------------------------------------------------------------------------


def layer_backward(view: View, step) -> Group:
    out, x = step.output.unicode(), step.input.unicode()
    head = layer_head(step)
    put(head, f"  {step.layer.describe()}: ∂L/∂{out} → ∂L/∂{x}", "bold")
    body = BACKWARD[step.layer.kind](view, step, view.delta_in(step))
    return Group(head, indent(*body), Text())


def _result(view: View, step, delta_in, marked=None) -> list:
    if delta_in is None:
        return []
    return [
        view.tensor_view(
            step.input,
            delta_in,
            f"∂L/∂{step.input.unicode()}" + (f" from {step.layer.name}" if view.steps.shared_input(step) else ""),
            marked,
            dim_zeros=True,
            approx=step.delta_in_approx,
        )
    ]


def _rules(view: View, step, extra=(), first_too: bool = True) -> list:
    """dL/d(input element), with numbers, for the first element (unless not `first_too`), `extra` ones and the
    one with the most terms."""
    delta_in = view.delta_in(step)
    if view.symbolic is None or delta_in is None:
        return []
    local = view.local_backward(step)
    first = (0,) * len(step.input.shape)
    if local is None:  # too big a layer to write every element's rule: the first one, from the Steps model
        rules, chosen = {first: step.back_rule}, [first] if step.back_rule is not None else []
    else:
        rules = local[0]
        most = _most_terms(view, step)
        chosen = []
        for index in (first, *extra, most) if first_too else (*extra, most):
            if index not in chosen:
                chosen.append(index)
    items = []
    for index in chosen:
        rule = sympy.sympify(rules[index])
        items.append(equation(f"∂L/∂{step.input.unicode(index)} = {view.show(rule)}"))
        if rule.free_symbols:
            lines = view.substituted(rule)
            total = "= " + number_text(delta_in[index], step.delta_in_approx[index])
            items += [indent(Text(line), by=6) for line in lines + ([total] if lines[-1] != total else [])]
    return items


def _most_terms(view: View, step) -> tuple[int, ...] | None:
    """The input element worth working by hand: the most terms, then the most that are not 0 at these
    numbers, then the first, row by row."""
    local = view.local_backward(step) if view.symbolic is not None else None
    if local is None:
        return None
    rules = local[0]

    def key(i):
        terms = sympy.Add.make_args(sympy.sympify(rules[i]))
        live = sum(1 for t in terms if t.xreplace(view.numbers) != 0)
        return len(terms), live, -np.ravel_multi_index(i, rules.shape)

    return max(np.ndindex(*rules.shape), key=key)


def _generic(view: View, step, delta_in) -> list:
    return _rules(view, step) + _result(view, step, delta_in)


def _conv(view: View, step, delta_in) -> list:
    z, x = step.output.unicode(), step.input.unicode()
    name = step.layer.name
    w, grads = view.derivation.tensors[f"{name}.weight"], view.derivation.values.grads
    items = [
        prose(
            f"Weights: each {w.unicode()} element was used at every position of the window, so "
            f"∂L/∂{w.unicode()} adds one term per output {z}ᵢⱼ: ∂L/∂{z}ᵢⱼ times the input it multiplied "
            f"there. That is the correlation of the input {x} with ∂L/∂{z}: slide ∂L/∂{z} over {x} "
            "as if it were the kernel."
        )
    ]
    if view.symbolic is not None:
        first = (0,) * 4
        items.append(equation(f"∂L/∂{w.unicode(first)} = {view.show(view.chain_sum(w, first))}"))
        items.append(
            indent(Text(f'(term by term, with the numbers: --param "{w.element((0,) * 4)}")', style="dim"), by=4)
        )
    items.append(_gradient_view(view, f"{name}.weight"))
    if f"{name}.bias" in grads:
        b = view.derivation.tensors[f"{name}.bias"]
        items.append(prose(f"The bias is added to every {z}ᵢⱼ of its channel: ∂L/∂{b.unicode()} = Σᵢⱼ ∂L/∂{z}ᵢⱼ."))
        items.append(_gradient_view(view, b.name))
    if delta_in is None:  # not reached: View.delta_in always shows dL/d(input) of a conv
        return items
    items.append(full_conv_sentence(view, step))
    items += full_conv_items(view, step, _most_terms(view, step))
    return items + _rules(view, step, first_too=False) + _result(view, step, delta_in)


def _gradient_view(view: View, name: str):
    """dL/d(a parameter tensor) as matrices: exact values where known, the float pass beside."""
    tensor = view.derivation.tensors[name]
    grads = view.derivation.values.grads
    return view.tensor_view(tensor, grads[name], f"∂L/∂{tensor.unicode()}", approx=view.floats.grads[name])


def _linear(view: View, step, delta_in) -> list:
    z, f = step.output.unicode(), step.input.unicode()
    name = step.layer.name
    w, grads = view.derivation.tensors[f"{name}.weight"], view.derivation.values.grads
    wn = w.unicode()
    items = [
        prose(
            f"Weights: {wn}ₖⱼ multiplies {f}ⱼ into {z}ₖ only, so ∂L/∂{wn}ₖⱼ = ∂L/∂{z}ₖ · {f}ⱼ "
            f"(the gradient times the input: an outer product)."
        ),
        _gradient_view(view, w.name),
    ]
    if f"{name}.bias" in grads:
        items.append(_gradient_view(view, f"{name}.bias"))
    if delta_in is None:
        items.append(
            Text(f"(∂L/∂{f} is not needed: nothing before this layer learns; --to-input shows it.)", style="dim")
        )
        return items
    items.append(
        prose(
            f"Input: {f}ⱼ feeds every output {z}ₖ, so it collects one term from each: "
            f"∂L/∂{f}ⱼ = Σₖ ∂L/∂{z}ₖ · {wn}ₖⱼ. Add them, don't multiply: the chain rule adds one term per path "
            f"from {f}ⱼ to L. Each {f}ⱼ has its own weights {wn}ₖⱼ, so different {f}ⱼ get different gradients."
        )
    )
    return items + _rules(view, step) + _result(view, step, delta_in)


def _flatten(view: View, step, delta_in) -> list:
    return [
        prose(
            f"Flatten only moved numbers, so the backward pass moves them back: ∂L/∂{step.output.unicode()}ₖ "
            f"goes to the position that became {step.output.unicode()}ₖ (channel, row, column). Nothing is "
            "added or multiplied."
        )
    ] + _result(view, step, delta_in)


def _maxpool(view: View, step, delta_in) -> list:
    p, a = step.output.unicode(), step.input.unicode()
    layer = step.layer
    text = (
        f"Only the maximum of each window reached {p}; the other elements did not change it. So "
        f"∂{p}/∂{a} is 1 for the window's maximum (the first one, row by row, if tied) and 0 for the rest: "
        f"each window's gradient goes, unchanged, to the element that won it, and every other element gets 0. "
        "The 0/1 routing mask marks the winners."
    )
    if layer.stride[0] < layer.kernel[0] or layer.stride[1] < layer.kernel[1]:
        text += " The windows overlap here: an element that wins several windows collects the sum of their gradients."
    items = [prose(text), view.tensor_view(step.input, step.mask, "routing mask", marked=step.mask.astype(bool))]
    winners = [tuple(int(i) for i in w) for w in np.argwhere(step.mask)[:1]]
    return items + _rules(view, step, winners) + _result(view, step, delta_in, marked=step.mask.astype(bool))


def _avgpool(view: View, step, delta_in) -> list:
    kh, kw = step.layer.kernel
    return [
        prose(
            f"Every element of a window counted 1/{kh * kw} in its average, so it gets 1/{kh * kw} of the "
            "window's gradient (summed over the windows that contain it)."
        )
    ] + _generic(view, step, delta_in)


def _relu(view: View, step, delta_in) -> list:
    z, a = step.input.unicode(), step.output.unicode()
    items = [
        prose(
            f"ReLU'({z}) is 1 where {z} > 0 and 0 where {z} ≤ 0 (ReLU'(0) = 0): the gradient passes where "
            f"the ReLU was on and stops where it was off. ∂L/∂{z} = ∂L/∂{a} · ReLU'({z}), element by element."
        ),
        view.tensor_view(step.input, step.mask, f"ReLU'({z})", dim_zeros=True),
    ]
    return items + _result(view, step, delta_in)


def _leaky(view: View, step, delta_in) -> list:
    z = step.input.unicode()
    slope = step.layer.negative_slope
    items = [
        prose(
            f"The derivative is 1 where {z} > 0 and {slope} elsewhere: the gradient passes where {z} > 0 "
            f"and is scaled by {slope} where it is not."
        ),
        view.tensor_view(step.input, step.mask, f"[{z} > 0]", dim_zeros=True),
    ]
    return items + _rules(view, step) + _result(view, step, delta_in)


def _dropout(view: View, step, delta_in) -> list:
    z, r = step.input.unicode(), step.output.unicode()
    scale = number_text(step.layer.scale)
    items = [
        prose(
            f"∂{r}/∂{z} is m·{scale}, element by element: the gradient passes, scaled by 1/(1 - p), where the "
            "element was kept, and is 0 where it was dropped."
        ),
        view.tensor_view(step.input, step.mask, "m", dim_zeros=True),
    ]
    return items + _result(view, step, delta_in)


BACKWARD = {
    "conv2d": _conv,
    "linear": _linear,
    "flatten": _flatten,
    "maxpool2d": _maxpool,
    "avgpool2d": _avgpool,
    "adaptive_avg_pool2d": _avgpool,
    "dropout": _dropout,
    "relu": _relu,
    "leaky_relu": _leaky,
    "sigmoid": _generic,
    "tanh": _generic,
    "identity": _generic,
    "softmax": _generic,
    "add": add_backward,
    "concat": concat_backward,
    "batchnorm2d": batchnorm_backward,
    "batchnorm1d": batchnorm_backward,
}
