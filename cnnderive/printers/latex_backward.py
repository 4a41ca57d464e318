"""The backward part of the LaTeX document: from the loss back through every layer to the input.

It goes on through layers without parameters (a max-pool or flatten before the first linear layer
is what a student is asked about) and shows dL/dx, except when the first layer is linear and
--to-input was not given. A first convolution gets the flipped-kernel reading of its dL/dx: a full
convolution of dL/dz with the kernel rotated 180 degrees, and one element worked with numbers.
"""

from __future__ import annotations

import numpy as np

from ..derivation.steps import LayerStep
from .latex_blocks import MAX_BLOCKS, pack
from .latex_gradients import MAX_TERMS, Gradients
from .latex_math import align, number, partial
from .latex_merge import fork_section
from .latex_words import BACKWARD, LOSS_DELTA, MASK_TEXT, head, text, tt


class Backward(Gradients):
    """dL/d(each layer's input), layer by layer, read from the LayerStep records."""

    def backward_part(self) -> str:
        loss, layers = self.steps.loss, self.steps.layers
        out = [self.heading(0, "Backward pass")]
        start = head(loss.output)
        out.append(
            f"The backward pass starts at the loss: {LOSS_DELTA.get(self.network.loss.kind, lambda d: '')(self)} "
            f"Over the whole output ${start}$:"
        )
        out.append(self.tensor_display(loss.output, loss.delta, self.floats.deltas[-1], gradient=True))
        for step in reversed(layers):
            if step.position == 0 and step.layer.kind == "linear" and not self.options.to_input:
                out.append(self.stop_sentence(step))
                break
            out.append(self.heading(1, f"Back through {tt(step.layer.name)}: {text(step.layer.describe())}"))
            out.append(self.backward_layer(step))
            if step.position == 0 and step.layer.kind == "conv2d":
                out.append(self.rotated_kernel(step))
            fork = self.steps.fork_after(step.position)
            if fork is not None:
                out.append(fork_section(self, fork))
        return "\n".join(out) + "\n"

    def stop_sentence(self, step: LayerStep) -> str:
        return (
            f"{self.heading(1, f'At {tt(step.layer.name)}')}\n{tt(step.layer.name)} is the first layer, and linear: "
            f"no parameter lies before it, so the backward pass stops at $\\partial L/\\partial {head(step.output)}$ "
            f"(\\texttt{{--to-input}} goes on to $\\partial L/\\partial {head(step.input)}$)."
        )

    def backward_layer(self, step: LayerStep) -> str:
        fused = self.steps.loss.fused is not None and step.position == len(self.steps.layers) - 1
        out = [BACKWARD[step.layer.kind](self, step, fused)]
        if step.back_rule is not None and not fused:
            lhs = partial(step.input.latex((0,) * len(step.input.shape)))
            shown = self.rule_display(lhs, step.back_rule)
            if shown and step.back_rule == 0:
                out.append("The first element of its input gets no gradient (see the mask below):")
                out.append(shown)
            elif shown:
                out.append("For the first element of its input:")
                out.append(shown)
        if step.mask is not None:
            out.append(MASK_TEXT[step.layer.kind](step))
            label = {"maxpool2d": "M", "dropout": "m"}.get(step.layer.kind, r"\mathbf{1}")
            out.append(self.tensor_display(step.input, step.mask, label=label))
        if self.steps.shared_input(step):
            out.append(
                "This layer's part of the gradient with respect to its input (other layers read it too; the parts add):"
            )
        else:
            out.append("The gradient with respect to the input of this layer:")
        out.append(self.tensor_display(step.input, step.delta_in, step.delta_in_approx, gradient=True))
        return "\n".join(out)

    # -- the first convolution: dL/dx as a full convolution with the rotated kernel --------------

    def rotated_kernel(self, step: LayerStep) -> str:
        layer = step.layer
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
        x, z = head(step.input), head(step.output)
        w = self.derivation.tensors[f"{layer.name}.weight"]
        how = f"pad $\\partial L/\\partial {z}$ with {_count(kh - 1, 'row')} and {_count(kw - 1, 'column')} of zeros on each side"
        if (sh, sw) != (1, 1):
            how = (
                f"put {_count(sh - 1, 'zero row')} and {_count(sw - 1, 'zero column')} between its neighbouring "
                f"elements (the stride), then {how}"
            )
        crop = ""
        if ph or pw:
            crop = (
                f", and drop the {_count(ph, 'outer row')} and {_count(pw, 'outer column')} of the result (the padding)"
            )
        out = [
            (
                f"\\emph{{The same, for all of ${x}$ at once.}} Written out for every element, this sum is a \\emph{{full "
                f"convolution}} of $\\partial L/\\partial {z}$ with the kernel rotated by 180 degrees (flipped upside "
                f"down and left to right): {how}, slide the rotated kernel over every position, and sum the products"
                f"{crop}. The kernel is rotated because the forward pass matched kernel row $m$ with input row $i + m - 1$; "
                "going back from an input element, the output rows that used it come in the opposite order."
            ),
        ]
        weight = np.asarray(self.derivation.array(w), dtype=object)
        near = self.derivation.array(w, exact=False)
        items = []
        pairs = [(o, c) for o in range(weight.shape[0]) for c in range(weight.shape[1])]
        for o, c in pairs[:MAX_BLOCKS]:
            shown = "" if weight.shape[0] * weight.shape[1] == 1 else f"_{{{o + 1},{c + 1},\\cdot,\\cdot}}"
            lhs = f"\\operatorname{{rot}}_{{180}}\\bigl({head(w)}{shown}\\bigr)"
            items.append(self.matrix_item(lhs, weight[o, c, ::-1, ::-1], near[o, c, ::-1, ::-1], vector=False))
        out.append(pack(items))
        if len(pairs) > MAX_BLOCKS:
            out.append(f"(The other {len(pairs) - MAX_BLOCKS} rotated kernels are not shown.)")
        out.append(f"The padded $\\partial L/\\partial {z}$ the rotated kernel slides over:")
        out.append(self.padded_display(step))
        out.append(self.rotated_element(step, weight, near))
        return "\n".join(out)

    def padded_display(self, step: LayerStep) -> str:
        """dL/dz spread out by the stride and padded with kernel - 1 zeros: what the full convolution reads."""
        layer = step.layer
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        channels, height, width = step.delta.shape
        shape = (channels, sh * (height - 1) + 2 * kh - 1, sw * (width - 1) + 2 * kw - 1)
        spread, near = np.zeros(shape, dtype=object), np.zeros(shape)
        rows, cols = slice(kh - 1, kh - 1 + sh * (height - 1) + 1, sh), slice(kw - 1, kw - 1 + sw * (width - 1) + 1, sw)
        spread[:, rows, cols], near[:, rows, cols] = step.delta, self.floats.deltas[1]
        items = []
        for o in range(min(channels, MAX_BLOCKS)):
            shown = "" if channels == 1 else f"_{{{o + 1},\\cdot,\\cdot}}"
            lhs = f"\\operatorname{{pad}}\\Bigl({partial(head(step.output) + shown)}\\Bigr)"
            items.append(self.matrix_item(lhs, spread[o], near[o], vector=False))
        more = f"\n(The other {channels - MAX_BLOCKS} channels are not shown.)" if channels > MAX_BLOCKS else ""
        return pack(items) + more

    def rotated_element(self, step: LayerStep, weight: np.ndarray, near: np.ndarray) -> str:
        """One element of dL/dx with numbers: the rotated kernel against the window of the padded dL/dz."""
        layer = step.layer
        c, i, j = _most_covered(layer)
        index = (c, i, j)
        pairs = _window_pairs(layer, index)  # (output index, kernel position) of each term, rotated order
        symbols, numbers, exact = [], [], True
        for (o, r, q), (a, b) in pairs:
            delta = number(step.delta[o, r, q], approx=self.floats.deltas[1][o, r, q])
            w = number(weight[o, c, a, b], approx=near[o, c, a, b])
            exact &= delta.exact and w.exact
            symbols.append(
                f"{partial(step.output.latex((o, r, q)))}\\, {self.derivation.tensors[f'{layer.name}.weight'].latex((o, c, a, b))}"
            )
            numbers.append(f"{delta.factor()} \\cdot {w.factor()}")
        if len(pairs) > MAX_TERMS:
            keep = list(range(MAX_TERMS - 2)) + [len(pairs) - 1]
            symbols = [symbols[k] for k in keep[:-1]] + [r"\dots", symbols[-1]]
            numbers = [numbers[k] for k in keep[:-1]] + [r"\dots", numbers[-1]]
        rows = [("=", _plus(symbols)), (r"\approx" if not exact else "=", _plus(numbers))]
        value, approx = step.delta_in[index], float(step.delta_in_approx[index])
        rows += self.value_rows(value, approx, approx_before=not exact)
        x = step.input.latex(index)
        kh, kw = layer.kernel
        return "\n".join(
            [
                (
                    f"For one element, ${x}$: the rotated kernel, placed over the padded $\\partial L/\\partial "
                    f"{head(step.output)}$ where it covers ${x}$, covers {_count(len(pairs), 'element')} of $\\partial L/\\partial {head(step.output)}$ itself; entry "
                    f"$(m, n)$ of the rotated kernel is the weight at $({kh}+1-m, {kw}+1-n)$, so each product pairs a "
                    "gradient with the weight that joined the two in the forward pass:"
                ),
                align(partial(x), rows),
            ]
        )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _plus(pieces: list[str]) -> list[str]:
    return [piece if k == 0 else "+ " + piece for k, piece in enumerate(pieces)]


def _covering(size_out: int, stride: int, padding: int, kernel: int, row: int) -> list[tuple[int, int]]:
    """(output row, kernel row) of every window that covers input row `row`, kernel rows rotated order."""
    found = []
    for a in reversed(range(kernel)):  # the rotated kernel runs over the original rows backwards
        shifted = row + padding - a
        if shifted % stride == 0 and 0 <= shifted // stride < size_out:
            found.append((shifted // stride, a))
    return found


def _window_pairs(layer, index: tuple[int, int, int]) -> list:
    _, height, width = layer.out_shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    rows = _covering(height, sh, ph, kh, index[1])
    cols = _covering(width, sw, pw, kw, index[2])
    return [((o, r, q), (a, b)) for o in range(layer.out_channels) for r, a in rows for q, b in cols]


def _most_covered(layer) -> tuple[int, int, int]:
    """The first input element (row by row) used by the most windows: every kernel entry, where one is."""
    _, height, width = layer.in_shape
    best, found = -1, (0, 0, 0)
    for i in range(height):
        for j in range(width):
            count = len(_window_pairs(layer, (0, i, j)))
            if count > best:
                best, found = count, (0, i, j)
    return found
