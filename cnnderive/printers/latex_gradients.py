"""The gradients part of the LaTeX document: each parameter element's chain-rule sum with its numbers."""

from __future__ import annotations

import numpy as np

from ..derivation.budget import small_enough
from ..derivation.records import ElementGradient, Term
from .latex_blocks import RULE_LINES, Blocks
from .latex_math import align, fits, number, partial
from .latex_words import head, text, tt

MAX_TERMS = 10  # chain-rule terms written out per parameter element
MAX_CUT = 6  # zero terms listed one by one
MAX_ELEMENTS = 6  # elements worked out per parameter tensor in the whole document
MAX_PARAM_ELEMENTS = 48  # elements worked out when --param names a whole tensor


class Gradients(Blocks):
    """dL/d(parameter element) blocks, rendered from the ElementGradient records."""

    def gradients_part(self, selected=None) -> str:
        out = ["\\section{Gradients of the parameters}"]
        if selected is not None:
            tensor, index = selected
            tensors = [tensor]
        else:
            tensors = [self.derivation.tensors[name] for name in self.network.parameter_names()]
            index = None
        if not tensors:
            out.append("This network has no parameters.")
        for tensor in tensors:
            out.append(f"\\subsection*{{$\\partial L/\\partial {head(tensor)}$ ({tt(tensor.name)})}}")
            if index is not None:
                out.append(self.element_block(self.derivation.gradient(tensor, index)))
                continue
            out.append("All of it:")
            grads = self.derivation.values.grads[tensor.name]
            out.append(self.tensor_display(tensor, grads, self.floats.grads[tensor.name], gradient=True))
            limit = MAX_PARAM_ELEMENTS if selected is not None else MAX_ELEMENTS
            size = int(np.prod(tensor.shape))
            for k, element in enumerate(tensor.indices()):
                if k == limit:
                    out.append(
                        f"The other {size - limit:,} elements of ${head(tensor)}$ are worked out the same way; "
                        f"their values are in the matrices above, and \\texttt{{--param}} with an element name, "
                        f"such as {tt(tensor.element(element))}, writes any one of them."
                    )
                    break
                out.append(self.element_block(self.derivation.gradient(tensor, element)))
        return "\n".join(out) + "\n"

    # -- one parameter element -----------------------------------------------------------------

    def element_block(self, gradient: ElementGradient) -> str:
        tensor, index = gradient.tensor, gradient.index
        symbol = tensor.latex(index)
        live, cut = gradient.live_terms, gradient.cut_terms
        total = len(gradient.terms)
        out = [f"% {gradient.name}", f"\\paragraph{{${symbol}$ ({tt(gradient.name)}).}}"]
        out.append(self.term_sentence(gradient))
        lhs = partial(symbol)
        if live:
            picked = _picked_terms(live)
            rows = [("=", [self.term_tex(t, i) for i, t in zip(*picked)])]
            numbers = [self.term_numbers(t, k) for k, t in enumerate(picked[1])]
            numbers = [n if i is not None else r"+ \dots" for n, i in zip(numbers, picked[0])]
            approx = any(not shown for _, shown in self._numbers(picked[1]))
            rows.append((r"\approx" if approx else "=", [n for n in numbers]))
            rows += self.value_rows(gradient.value, gradient.approx, approx)
        else:
            rows = [("=", ["0"])]
        out.append(align(lhs, rows))
        if live and len(live) > MAX_TERMS:
            out.append(f"({len(live)} terms in all; the ones marked $\\dots$ are left out here.)")
        if cut:
            out.append(self.cut_list(cut, total))
        closed = self.closed_form(gradient)
        if closed:
            out.append("In closed form, over the layer outputs:")
            out.append(closed)
        return "\n".join(out) + "\n"

    def term_sentence(self, gradient: ElementGradient) -> str:
        terms = gradient.terms
        n, cut = len(terms), len(gradient.cut_terms)
        out = head(terms[0].out)
        if gradient.tensor.role == "bias":
            used, factor = "is added to", "1"
        else:
            used, factor = "multiplies one input in", "the input it multiplies"
        if n == 1:
            return (
                f"It {used} one output, ${terms[0].out.latex(terms[0].out_index)}$, so by the chain rule its "
                f"gradient is $\\partial L/\\partial {out}$ there times {factor}."
            )
        sentence = (
            f"It {used} each of {n} elements of ${out}$, so by the chain rule its gradient is a sum of {n} terms, "
            f"one per element: $\\partial L/\\partial {out}$ there times {factor}."
        )
        if cut:
            sentence += f" {cut} of them {'are' if cut > 1 else 'is'} zero (listed below), which leaves {n - cut}."
        return sentence

    def term_tex(self, term: Term, position: int | None) -> str:
        if position is None:
            return r"+ \dots"
        tex = partial(term.out.latex(term.out_index))
        if term.factor is not None:
            tex += r"\, " + term.factor.latex(term.factor_index)
        return tex if position == 0 else "+ " + tex

    def _numbers(self, terms) -> list[tuple[str, bool]]:
        shown = []
        for term in terms:
            if term is None:
                shown.append(("", True))
                continue
            position = term.out.layer
            near_delta = self.floats.deltas[position + 1][term.out_index]
            near_local = None if term.factor_index is None else self.floats.values[position][term.factor_index]
            delta, local = number(term.delta, approx=near_delta), number(term.local, approx=near_local)
            tex = delta.factor() if term.factor is None else f"{delta.factor()} \\cdot {local.factor()}"
            shown.append((tex, delta.exact and local.exact))
        return shown

    def term_numbers(self, term: Term | None, position: int) -> str:
        tex, _ = self._numbers([term])[0]
        return tex if position == 0 else "+ " + tex

    def cut_list(self, cut: tuple[Term, ...], total: int) -> str:
        """The zero terms, grouped by why they are zero, naming the outputs they come from."""
        groups: dict[str, list[Term]] = {}
        for term in cut:
            groups.setdefault(term.cut, []).append(term)
        items = []
        for reason, terms in groups.items():
            names = [f"${t.out.latex(t.out_index)}$" for t in terms[:MAX_CUT]]
            if len(terms) > MAX_CUT:
                names.append(f"and {len(terms) - MAX_CUT} more")
            count = f"{len(terms)} term{'s' if len(terms) > 1 else ''}"
            items.append(f"\\item {text(str(reason))}: {count}, at {', '.join(names)}")
        return "The terms that are zero, and why:\n\\begin{itemize}\n" + "\n".join(items) + "\n\\end{itemize}"

    def closed_form(self, gradient: ElementGradient) -> str:
        symbolic = self.steps.symbolic
        if symbolic is None or self.notation is None:
            return ""
        lhs = partial(gradient.tensor.latex(gradient.index))
        if not small_enough(
            symbolic.backward.grads[gradient.tensor.name][gradient.index], self.budget.factored_form_nodes
        ):
            return ""  # too long to print anyway, and factoring it would take SymPy minutes
        pieces = self.notation.pieces(symbolic.gradient(gradient.tensor, gradient.index))
        if not fits(pieces, lhs, RULE_LINES):
            return ""
        return align(lhs, [("=", pieces)])


def _picked_terms(live: tuple[Term, ...]) -> tuple[list, list]:
    """Positions and terms to write out: all of them, or the first ones, a gap (None) and the last."""
    if len(live) <= MAX_TERMS:
        return list(range(len(live))), list(live)
    keep = list(range(MAX_TERMS - 2)) + [None, len(live) - 1]
    return keep, [live[i] if i is not None else None for i in keep]
