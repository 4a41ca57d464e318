"""The gradients part of the LaTeX document: each parameter element's chain-rule sum with its numbers."""

from __future__ import annotations

import numpy as np

from ..derivation.budget import small_enough
from ..derivation.names import Tensor
from ..derivation.records import ElementGradient, Term
from .latex_blocks import RULE_LINES, Blocks
from .latex_math import align, fits, number, partial
from .latex_update import decay_tex
from .latex_words import PARAM_RULE, head, text, tt

MAX_TERMS = 10  # chain-rule terms written out per parameter element
MAX_CUT = 6  # zero terms listed one by one
MAX_PARAM_ELEMENTS = 48  # elements worked out per tensor with --all-elements, or --param naming a tensor


BATCH_NORM_PARAM = {
    "weight": "This example's part: the sum over its positions of $\\partial L/\\partial y$ times $\\hat{x}$ "
    "(the batch's gradient adds every example's part).",
    "bias": "This example's part: the sum over its positions of $\\partial L/\\partial y$ "
    "(the batch's gradient adds every example's part).",
}


class Gradients(Blocks):
    """dL/d(element) blocks, rendered from the ElementGradient records: parameters, inputs, layer outputs."""

    def gradients_part(self, selected=None) -> str:
        if selected is not None and selected[0].role not in ("weight", "bias"):
            return self.selected_part(*selected)
        out = [self.heading(0, "Gradients of the parameters")]
        if selected is not None:
            tensors, index = [selected[0]], selected[1]
        else:
            tensors, index = [self.derivation.tensors[name] for name in self.network.parameter_names()], None
        if not tensors:
            out.append("This network has no parameters.")
        for tensor in tensors:
            out.append(self.heading(1, f"$\\partial L/\\partial {head(tensor)}$" + self._program(tensor.name)))
            if index is not None:
                out.append(self.element_block(self.derivation.gradient(tensor, index)))
                continue
            grads = self.derivation.values.grads[tensor.name]
            out.append("All of it:")
            out.append(self.tensor_display(tensor, grads, self.floats.grads[tensor.name], gradient=True))
            if self.network.layers[tensor.layer].batch_wide:  # γ, β: sums over the batch, no one-example terms
                out.append(BATCH_NORM_PARAM[tensor.role])
                continue
            if selected is not None or self.options.all_elements:
                out += self.every_element(tensor)
                continue
            out += self.one_element(tensor)
        return "\n".join(out) + "\n"

    def _program(self, name: str) -> str:
        return f" ({tt(name)})" if self.options.program_names else ""

    def one_element(self, tensor: Tensor) -> list[str]:
        """The compact default: the rule of every element once, then one element worked in full."""
        first = (0,) * len(tensor.shape)
        picked = next((i for i in tensor.indices() if self.derivation.gradient(tensor, i).live_terms), first)
        out = []
        rule = PARAM_RULE.get(self.network.layers[tensor.layer].kind, {}).get(tensor.role)
        if rule is not None:
            out.append(f"Every element by the same rule: {rule(self, tensor)}")
        size = int(np.prod(tensor.shape))
        out.append("Worked term by term for one element:" if size > 1 else "Term by term:")
        out.append(self.element_block(self.derivation.gradient(tensor, picked)))
        if size > 1:
            last = tuple(d - 1 for d in tensor.shape)
            other = last if last != picked else first
            out.append(
                f"The other {size - 1:,} elements of ${head(tensor)}$ are worked out the same way; their values are "
                "in the matrix above. \\texttt{--all-elements} writes each of them in full, and "
                f"\\texttt{{--param {text(tensor.element(other))}}} (or any other element) one of them."
            )
        return out

    def every_element(self, tensor: Tensor) -> list[str]:
        """Each element worked in full (--all-elements, or --param with a whole tensor), up to a bound."""
        out, size = [], int(np.prod(tensor.shape))
        for k, element in enumerate(tensor.indices()):
            if k == MAX_PARAM_ELEMENTS:
                out.append(
                    f"The other {size - k:,} elements of ${head(tensor)}$ are worked out the same way; "
                    f"their values are in the matrices above, and \\texttt{{--param}} with an element name, "
                    f"such as {tt(tensor.element(element))}, writes any one of them."
                )
                break
            gradient = self.element_gradient(tensor, element)
            out.append(self.element_block(gradient) if gradient is not None else self.value_only(tensor, element))
        return out

    def selected_part(self, tensor: Tensor, index: tuple[int, ...] | None) -> str:
        """--param with the input or a layer output: dL/d(that element, or each of the tensor) and its terms."""
        position = 0 if tensor.role == "input" else tensor.layer + 1
        out = [self.heading(0, f"The gradient with respect to ${head(tensor)}$" + self._program(tensor.name))]
        if index is not None:
            gradient = self.element_gradient(tensor, index)
            out.append(self.element_block(gradient) if gradient is not None else self.value_only(tensor, index))
            return "\n".join(out) + "\n"
        out.append("All of it:")
        deltas = self.derivation.values.deltas[position]
        out.append(self.tensor_display(tensor, deltas, self.floats.deltas[position], gradient=True))
        out += self.every_element(tensor)
        return "\n".join(out) + "\n"

    def value_only(self, tensor: Tensor, index: tuple[int, ...]) -> str:
        """An intermediate element of a network too big for rules: its value, and why no terms."""
        position = 0 if tensor.role == "input" else tensor.layer + 1
        value, near = self.derivation.values.deltas[position][index], self.floats.deltas[position][index]
        return (
            f"% {tensor.element(index)}\n"
            + align(partial(tensor.latex(index)), self.value_rows(value, float(near)))
            + f"\n(The chain-rule terms of an input or layer-output element are written for networks of up to "
            f"{self.budget.rules_work:,} multiply-adds.)\n"
        )

    # -- one element ---------------------------------------------------------------------------

    def element_block(self, gradient: ElementGradient) -> str:
        tensor, index = gradient.tensor, gradient.index
        symbol = tensor.latex(index)
        live, cut = gradient.live_terms, gradient.cut_terms
        total = len(gradient.terms)
        out = [f"% {gradient.name}", self.heading(2, self.named(symbol, gradient.name) + ".")]
        out.append(self.term_sentence(gradient))
        lhs = partial(symbol)
        if live:
            picked = _picked_terms(live)
            rows = [("=", [self.term_tex(t, i) for i, t in zip(*picked)])]
            approx = any(not shown for _, shown in self._numbers(picked[1]))
            if not _only_a_delta(picked[1]):  # dL/dz alone: its number is the value in the row below
                numbers = [self.term_numbers(t, k) for k, t in enumerate(picked[1])]
                numbers = [n if i is not None else r"+ \dots" for n, i in zip(numbers, picked[0])]
                rows.append((r"\approx" if approx else "=", numbers))
            else:
                approx = False
            rows += self.value_rows(gradient.chain_value, gradient.chain_approx, approx)
        elif not gradient.terms and gradient.form is not None and self.notation is not None:
            rows = [("=", self.notation.pieces(gradient.form))] + self.value_rows(gradient.value, gradient.approx)
        else:
            rows = [("=", ["0"])]
        out.append(align(lhs, rows))
        if gradient.decay is not None:
            out.append(decay_tex(gradient))
        if live and len(live) > MAX_TERMS:
            out.append(f"({len(live)} terms in all; the ones marked $\\dots$ are left out here.)")
        if cut:
            out.append(self.cut_list(cut, total))
        closed = self.closed_form(gradient) if gradient.terms else ""
        if closed:
            out.append("In closed form, over the layer outputs:")
            out.append(closed)
        return "\n".join(out) + "\n"

    def term_sentence(self, gradient: ElementGradient) -> str:
        terms = gradient.terms
        n, cut = len(terms), len(gradient.cut_terms)
        if not n:
            return "It is an output of the network: the loss uses it directly."
        out = head(terms[0].out)
        if gradient.tensor.role == "bias":
            used, factor = "is added to", "1"
        elif gradient.is_parameter:
            used, factor = "multiplies one input in", "the input it multiplies"
        else:
            mine = gradient.tensor.latex(gradient.index)
            ones = all(t.local_form == 1 for t in gradient.live_terms) and gradient.live_terms
            used, factor = "is used by", f"$\\partial {out}/\\partial {mine}$ there" + (", which is 1" if ones else "")
        branches = list(dict.fromkeys(term.out for term in terms))
        if len(branches) > 1:  # read by several layers: the terms of every branch add
            each = ", ".join(f"{sum(1 for t in terms if t.out == o)} of ${head(o)}$" for o in branches)
            adds = any(self.network.layers[o.layer].kind == "add" for o in branches)
            plus = " (the + copies the gradient to both branches)" if adds else ""
            sentence = (
                f"It is read by {len(branches)} layers{plus}, so by the chain "
                f"rule its gradient is a sum of {n} terms over every branch ({each}): summed, not averaged."
            )
            return sentence + (f" {cut} of them {'are' if cut > 1 else 'is'} zero (listed below)." if cut else "")
        if n == 1:
            one = "one output" if gradient.is_parameter else "one element"
            return (
                f"It {used} {one}, ${terms[0].out.latex(terms[0].out_index)}$, so by the chain rule its "
                f"gradient is $\\partial L/\\partial {out}$ there times {factor}."
            )
        sentence = (
            f"It {used} each of {n} elements of ${out}$, so by the chain rule its gradient is a sum of {n} terms, "
            f"one per element: $\\partial L/\\partial {out}$ there times {factor}."
        )
        if cut:
            sentence += f" {cut} of them {'are' if cut > 1 else 'is'} zero (listed below), which leaves {n - cut}."
        return sentence

    def local_tex(self, term: Term) -> str | None:
        """d(out)/d(element) as a symbol (a weight's input, a weight, a derivative), or None when it is 1."""
        if term.factor is not None:
            return term.factor.latex(term.factor_index)
        if term.local_form is None or term.local_form == 1 or self.notation is None:
            return None
        return self.notation.tex(term.local_form)

    def term_tex(self, term: Term, position: int | None) -> str:
        if position is None:
            return r"+ \dots"
        tex = partial(term.out.latex(term.out_index))
        local = self.local_tex(term)
        if local is not None:
            tex += r"\, " + local
        return tex if position == 0 else "+ " + tex

    def _numbers(self, terms) -> list[tuple[str, bool]]:
        shown = []
        for term in terms:
            if term is None:
                shown.append(("", True))
                continue
            position = term.out.layer
            near_delta = self.floats.deltas[position + 1][term.out_index]
            delta, local = number(term.delta, approx=near_delta), number(term.local, approx=term.local_approx)
            if self.local_tex(term) is None:
                shown.append((delta.factor(), delta.exact))
            else:
                shown.append((f"{delta.factor()} \\cdot {local.factor()}", delta.exact and local.exact))
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
        if not gradient.is_parameter:
            form = gradient.form  # an intermediate's record carries its closed form
        elif small_enough(
            symbolic.backward.grads[gradient.tensor.name][gradient.index], self.budget.factored_form_nodes
        ):
            form = symbolic.gradient(gradient.tensor, gradient.index)
        else:
            return ""  # too long to print anyway, and factoring it would take SymPy minutes
        if form is None or not small_enough(form, self.budget.factored_form_nodes):
            return ""
        pieces = self.notation.pieces(form)
        if not fits(pieces, lhs, RULE_LINES):
            return ""
        return align(lhs, [("=", pieces)])


def _picked_terms(live: tuple[Term, ...]) -> tuple[list, list]:
    """Positions and terms to write out: all of them, or the first ones, a gap (None) and the last."""
    if len(live) <= MAX_TERMS:
        return list(range(len(live))), list(live)
    keep = list(range(MAX_TERMS - 2)) + [None, len(live) - 1]
    return keep, [live[i] if i is not None else None for i in keep]


def _only_a_delta(terms: list) -> bool:
    """One term that is dL/d(out) times 1: its number row would repeat the value row after it."""
    return len(terms) == 1 and terms[0] is not None and terms[0].factor is None and terms[0].local == 1
