"""`explain --param`: the chain rule for one element, term by term, with the numbers substituted.

The element is a parameter (one term per output it touched), or the input or a layer output
(one term per element of the next layer that computes with it); the records come from the
derivation either way (View.gradient).
"""

from __future__ import annotations

from collections import defaultdict

import sympy
from rich.console import RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .explain_merge import COPIES
from .explain_update import decay_lines
from .explain_view import View, equation, indent, join_terms, prose, value_line
from .matrices import number_text, put
from .sympy_names import TextbookPrinter
from .terminal import term_text

MAX_LIVE = 12  # chain-rule terms shown one by one; the rest are counted
MAX_CUT_NAMES = 8  # names listed per reason a term is cut
MAX_ELEMENTS = 8  # elements of a whole tensor summarised on one line each
MAX_EXPANDED = 12  # terms of a fully expanded form shown
MAX_EXPANDED_CHARS = 1_500  # characters of a fully expanded form shown


def param_section(view: View, tensor, index, expand: bool = False) -> list[RenderableType]:
    """One element in full, or a whole tensor: its values, the first element in full, the rest in one line each."""
    if index is not None:
        return element_block(view, tensor, index, expand)
    grads, floats = view.gradient_values(tensor)
    items: list[RenderableType] = [
        Rule(f"∂L/∂{tensor.unicode()}  ({tensor.name}, all {grads.size} elements)", align="left"),
        view.tensor_view(tensor, grads, f"∂L/∂{tensor.unicode()}", approx=floats),
        Text(),
    ]
    indices = list(tensor.indices())
    items += element_block(view, tensor, indices[0], expand)
    rest = indices[1 : 1 + MAX_ELEMENTS]
    if rest:
        items += [Text(), Text("The other elements, the same way:", style="bold")]
        for i in rest:
            g = view.gradient(tensor, i)
            items.append(equation(f"∂L/∂{tensor.unicode(i)} = {_chain_text(view, g)} {value_line(g.value, g.approx)}"))
        left = len(indices) - 1 - len(rest)
        if left:
            items.append(
                Text(f'  … {left} more elements: ask for one with --param "{tensor.element(indices[-1])}"', style="dim")
            )
    return items


def element_block(view: View, tensor, index, expand: bool) -> list[RenderableType]:
    """dL/dw = the sum of its chain-rule terms: each symbolically, written out, with numbers; cut terms; the sum."""
    g = view.gradient(tensor, index)
    w = tensor.unicode(index)
    items: list[RenderableType] = [Rule(f"∂L/∂{w}  ({tensor.element(index)})", align="left")]
    if not g.is_parameter:
        items.append(_intermediate_prose(view, g, w))
        if g.terms:
            items.append(indent(_term_table(view, g)))
        items += _cut_lines(g) + _sum_lines(view, g, w) + _closed_form(view, g, expand)
        return items
    z = view.derivation.layer_tensor(tensor.layer).unicode()
    local = "1 (a bias is added as it is)" if tensor.role == "bias" else f"the input that {w} multiplied there"
    if len(g.terms) == 1:
        only = g.terms[0].out.unicode(g.terms[0].out_index)
        items.append(
            prose(
                f"{w} reaches L only through {only}, so the chain rule has one term: "
                f"∂L/∂{only} · ∂{only}/∂{w}, where ∂{only}/∂{w} is {local}."
            )
        )
    else:
        items.append(
            prose(
                f"{w} is used in {len(g.terms)} outputs {z}ᵢⱼ (one per position of the window), so it "
                f"reaches L along {len(g.terms)} paths and the chain rule adds one term per path: "
                f"∂L/∂{w} = Σ ∂L/∂{z}ᵢⱼ · ∂{z}ᵢⱼ/∂{w}, where ∂{z}ᵢⱼ/∂{w} is {local}. "
                "A sum of products, one product per path."
            )
        )
    items.append(indent(_term_table(view, g)))
    items += _cut_lines(g)
    items += _sum_lines(view, g, w)
    items += decay_lines(g)
    items += _closed_form(view, g, expand)
    return items


# what the next layer does with an input or layer-output element, for ∂z/∂x in the prose
LOCAL_WORDS = {
    "conv2d": "the weight that multiplied it there",
    "linear": "the weight that multiplied it",
    "maxpool2d": "1 if it was the maximum of that window (the first one, if tied), else 0",
    "avgpool2d": "1 over the window size",
    "relu": "ReLU' there: 1 if it was positive, else 0",
    "leaky_relu": "1 if it was positive, else the slope",
    "sigmoid": "σ'= σ(1 - σ) there",
    "tanh": "1 - tanh² there",
    "softmax": "ŷₖ(δₖₘ - ŷₘ): every output depends on every input",
}


def _intermediate_prose(view: View, g, w: str) -> RenderableType:
    """Why dL/d(an input or layer-output element) has the terms it has: one per element of the next layer."""
    if not g.terms:
        return prose(f"{w} is the network's output: L is computed from it directly, so ∂L/∂{w} comes from the loss.")
    out = g.terms[0].out
    branches = list(dict.fromkeys(term.out for term in g.terms))
    if len(branches) > 1:  # read by several layers (a skip connection)
        return _branches_prose(view, g, w, branches)
    layer = view.network.layers[out.layer]
    start = 0 if g.tensor.role == "input" else g.tensor.layer + 1
    moved = [view.network.layers[k].name for k in range(start, out.layer)]
    via = f", through {', '.join(moved)}, which only move{'s' if len(moved) == 1 else ''} it" if moved else ""
    local = LOCAL_WORDS.get(layer.kind, "the local derivative of that layer")
    z = out.unicode()
    if len(g.terms) == 1:
        only = out.unicode(g.terms[0].out_index)
        return prose(
            f"{w} reaches L only through {only}{via}, so the chain rule has one term: "
            f"∂L/∂{only} · ∂{only}/∂{w}, where ∂{only}/∂{w} is {local}."
        )
    return prose(
        f"{w} feeds {len(g.terms)} elements of {z} (layer {layer.name}{via}), so it reaches L along {len(g.terms)} "
        f"paths and the chain rule adds one term per path: ∂L/∂{w} = Σ ∂L/∂{z}ₖ · ∂{z}ₖ/∂{w}, where "
        f"∂{z}ₖ/∂{w} is {local}. Add them, don't multiply: a sum of products, one per path."
    )


def _branches_prose(view: View, g, w: str, branches: list) -> RenderableType:
    """dL/d(an element that several layers read): one term per path, over every branch."""
    counts = [sum(1 for term in g.terms if term.out == out) for out in branches]
    each = ", ".join(
        f"{count} through {out.unicode()} (layer {view.network.layers[out.layer].name})"
        for out, count in zip(branches, counts)
    )
    adds = any(view.network.layers[out.layer].kind == "add" for out in branches)
    return prose(
        f"{w} is read by {len(branches)} layers{' (' + COPIES + ')' if adds else ''}, so it reaches L along "
        f"{len(g.terms)} paths: {each}. The chain rule adds one term per path, over every branch: the "
        "branches' parts are summed, not averaged."
    )


def _term_label(view: View, term, element: str) -> str:
    """∂L/∂z¹₁₂·x₁₂ for a parameter; ∂L/∂z¹₁₁·w¹₂₂ (the local derivative's form) for an input or output,
    or ∂L/∂ŷ₁·∂ŷ₁/∂z²₁ when that form is too long to read (softmax)."""
    form = term.local_form
    if term.factor is not None or form is None or form == 1:
        return term_text(term)
    out = term.out.unicode(term.out_index)
    text = view.printer.doprint(form)
    if _long(text):
        return f"∂L/∂{out}·∂{out}/∂{element}"
    return f"∂L/∂{out}·" + (f"({text})" if isinstance(form, sympy.Add) else text)


def _long(text: str) -> bool:
    return len(text) > 40


def _chain_text(view: View, g, limit: int = 4) -> str:
    """The chain-rule sum in one line, live terms first, with a count of the terms a kink cut."""
    live = [_term_label(view, t, g.tensor.unicode(g.index)) for t in g.live_terms]
    shown = " + ".join(live[:limit]) + (f" + … ({len(live)} terms)" if len(live) > limit else "")
    shown = shown or "0"
    return shown + (f"  [{len(g.cut_terms)} cut]" if g.cut_terms else "")


def _term_table(view: View, g) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="dim")
    table.add_column()
    live = g.live_terms
    for term in live[:MAX_LIVE]:
        lines = Text(_term_label(view, term, g.tensor.unicode(g.index)), style="bold")
        written = _written_out(view, term)
        if written:
            put(lines, f" = {written}")
        delta, local, product = _approx(view, term)
        value = number_text(term.value, product)
        if term.factor is None and term.local == 1:
            lines.append(f"\n= {value}")
        else:
            numbers = _paren(number_text(term.delta, delta)) + "·" + _paren(number_text(term.local, local))
            lines.append(f"\n= {numbers} = {value}")
        table.add_row(term.out.unicode(term.out_index) + ":", lines)
    if len(live) > MAX_LIVE:
        table.add_row("…", Text(f"{len(live) - MAX_LIVE} more terms like these", style="dim"))
    if not live:
        table.add_row("", Text("no term carries gradient: every path is cut (below)", style="dim"))
    return table


def _approx(view: View, term) -> tuple[float, float, float]:
    """The float-pass values of a term's factors and product: the decimals of non-rational numbers."""
    return term.delta_approx, term.local_approx, term.approx


def _written_out(view: View, term) -> str | None:
    """The term in intermediates, e.g. 2·x₁₁·w²₁₁·(z²₁₁ - y₁); None when too long or not available."""
    if view.symbolic is None:
        return None
    sy = view.symbolic
    delta = sympy.factor_terms(sympy.sympify(sy.backward.deltas[term.out.layer + 1][term.out_index]))
    if term.factor is not None:
        local = sy.symbol(term.factor, term.factor_index)
    else:
        local = 1 if term.local_form is None else term.local_form
        if _long(view.printer.doprint(local)):
            return None
    text = view.form(sympy.Mul(delta, local))
    return text if text is not None and len(text) <= 160 else None


def _cut_lines(g) -> list[RenderableType]:
    cut = defaultdict(list)
    for term in g.cut_terms:
        cut[term.cut].append(term.out.unicode(term.out_index))
    if not cut:
        return []
    items: list[RenderableType] = [Text(f"Cut to zero ({len(g.cut_terms)} of {len(g.terms)} terms):", style="bold")]
    for reason, names in cut.items():
        shown = ", ".join(names[:MAX_CUT_NAMES]) + (f", … ({len(names)} in all)" if len(names) > MAX_CUT_NAMES else "")
        items.append(equation(f"{reason}: {shown}"))
    return items


def _sum_lines(view: View, g, w: str) -> list[RenderableType]:
    products = [number_text(t.value, _approx(view, t)[2]) for t in g.live_terms]
    if len(products) > MAX_LIVE:
        products = products[: MAX_LIVE - 2] + ["…"] + products[-2:]
    value = value_line(g.chain_value, g.chain_approx)
    line = f"∂L/∂{w} " + ("= " + join_terms(products) + " " if len(products) > 1 else "") + value
    return [Text("Sum:", style="bold"), equation(line, style="bold"), Text()]


def _closed_form(view: View, g, expand: bool) -> list[RenderableType]:
    tensor, index = g.tensor, g.index
    items: list[RenderableType] = []
    if view.symbolic is not None:
        form = view.form(g.form if g.form is not None else view.symbolic.gradient(tensor, index))
        items.append(Text("Collected, in terms of the intermediates:", style="bold"))
        items.append(
            equation(
                f"∂L/∂{tensor.unicode(index)} = {form}"
                if form
                else "(too long to print here; the terms above are its parts)"
            )
        )
    if not expand:
        return items
    from ..derivation.symbolic import Symbolic

    sy = view.symbolic or Symbolic(view.derivation)
    form = g.form if g.form is not None else sy.gradient(tensor, index)
    expanded = sy.expand(form, what=f"∂L/∂{tensor.element(index)}")
    printer = TextbookPrinter(sy, {"style": "textbook"})
    terms = printer.ordered_terms(expanded)
    shown: list[str] = []
    for term in terms[:MAX_EXPANDED]:
        text = printer.doprint(term)
        if sum(map(len, shown)) + len(text) > MAX_EXPANDED_CHARS:
            break
        shown.append(text)
    items.append(Text("Fully expanded, in the inputs and parameters only:", style="bold"))
    if not shown:
        items.append(
            equation(
                f"({len(terms)} terms, each too long to print: every exp() holds a whole forward pass; "
                "the collected form above is the one to read)"
            )
        )
        return items
    more = f" + …   ({len(terms)} terms in all)" if len(shown) < len(terms) else ""
    items.append(equation(f"∂L/∂{tensor.unicode(index)} = {join_terms(shown)}{more}"))
    return items


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text
