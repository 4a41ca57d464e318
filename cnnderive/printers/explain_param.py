"""`explain --param`: the chain rule for one parameter, term by term, with the numbers substituted."""

from __future__ import annotations

from collections import defaultdict

import sympy
from rich.console import RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .explain_view import View, equation, indent, join_terms, prose, value_line
from .matrices import number_text, put
from .sympy_names import TextbookPrinter
from .terminal import chain_text, term_text

MAX_LIVE = 12  # chain-rule terms shown one by one; the rest are counted
MAX_CUT_NAMES = 8  # names listed per reason a term is cut
MAX_ELEMENTS = 8  # elements of a whole tensor summarised on one line each
MAX_EXPANDED = 12  # terms of a fully expanded form shown
MAX_EXPANDED_CHARS = 1_500  # characters of a fully expanded form shown


def param_section(view: View, tensor, index, expand: bool = False) -> list[RenderableType]:
    """One element in full, or a whole tensor: its values, the first element in full, the rest in one line each."""
    if index is not None:
        return element_block(view, tensor, index, expand)
    grads = view.derivation.values.grads[tensor.name]
    items: list[RenderableType] = [
        Rule(f"∂L/∂{tensor.unicode()}  ({tensor.name}, all {grads.size} elements)", align="left"),
        view.tensor_view(tensor, grads, f"∂L/∂{tensor.unicode()}", approx=view.floats.grads[tensor.name]),
        Text(),
    ]
    indices = list(tensor.indices())
    items += element_block(view, tensor, indices[0], expand)
    rest = indices[1 : 1 + MAX_ELEMENTS]
    if rest:
        items += [Text(), Text("The other elements, the same way:", style="bold")]
        for i in rest:
            g = view.derivation.gradient(tensor, i)
            items.append(equation(f"∂L/∂{tensor.unicode(i)} = {chain_text(g)} {value_line(g.value, g.approx)}"))
        left = len(indices) - 1 - len(rest)
        if left:
            items.append(
                Text(f'  … {left} more elements: ask for one with --param "{tensor.element(indices[-1])}"', style="dim")
            )
    return items


def element_block(view: View, tensor, index, expand: bool) -> list[RenderableType]:
    """dL/dw = the sum of its chain-rule terms: each symbolically, written out, with numbers; cut terms; the sum."""
    g = view.derivation.gradient(tensor, index)
    w = tensor.unicode(index)
    out = view.derivation.layer_tensor(tensor.layer)
    z = out.unicode()
    items: list[RenderableType] = [Rule(f"∂L/∂{w}  ({tensor.element(index)})", align="left")]
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
    items += _closed_form(view, tensor, index, expand)
    return items


def _term_table(view: View, g) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="dim")
    table.add_column()
    live = g.live_terms
    for term in live[:MAX_LIVE]:
        lines = Text(term_text(term), style="bold")
        written = _written_out(view, term)
        if written:
            put(lines, f" = {written}")
        delta, local, product = _approx(view, term)
        value = number_text(term.value, product)
        if term.factor is None:
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
    floats = view.floats
    delta = float(floats.deltas[term.out.layer + 1][term.out_index])
    local = 1.0 if term.factor is None else float(floats.values[term.out.layer][term.factor_index])
    return delta, local, delta * local


def _written_out(view: View, term) -> str | None:
    """The term in intermediates, e.g. 2·x₁₁·w²₁₁·(z²₁₁ - y₁); None when too long or not available."""
    if view.symbolic is None:
        return None
    sy = view.symbolic
    delta = sympy.factor_terms(sympy.sympify(sy.backward.deltas[term.out.layer + 1][term.out_index]))
    local = 1 if term.factor is None else sy.symbol(term.factor, term.factor_index)
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
    value = value_line(g.value, g.approx)
    line = f"∂L/∂{w} " + ("= " + join_terms(products) + " " if len(products) > 1 else "") + value
    return [Text("Sum:", style="bold"), equation(line, style="bold"), Text()]


def _closed_form(view: View, tensor, index, expand: bool) -> list[RenderableType]:
    items: list[RenderableType] = []
    if view.symbolic is not None:
        form = view.form(view.symbolic.gradient(tensor, index))
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
    expanded = sy.expand(sy.gradient(tensor, index), what=f"∂L/∂{tensor.element(index)}")
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
