"""The chain-rule terms of one element, built once here for every reader (explain, latex, grad, check).

SymPy is imported inside the functions: `grad --json` never builds terms and should not pay for it.
"""

from __future__ import annotations

import numpy as np

from ..maths.layers import Cut
from .names import Tensor
from .records import DecayTerm, ElementGradient, Term


def parameter_gradient(derivation, tensor: Tensor, index: tuple[int, ...], symbolic=None) -> ElementGradient:
    """dL/d(one weight or bias element): one term per output element the parameter touches.

    With `symbolic` (derivation.symbolic.Symbolic) each term also carries its closed forms.
    """
    import sympy

    position = tensor.layer
    layer = derivation.network.layers[position]
    if layer.batch_wide:  # γ and β touch every example: their terms are in explain's batch-norm block
        from ..errors import UserError

        raise UserError(
            f"{tensor.name}: a batch-norm parameter's gradient sums over the whole batch (Σ ∂L/∂n·x̂ for γ, Σ ∂L/∂n "
            "for β); see it in `explain` (the batch-norm block) or `grad --param`",
            field="--param",
        )
    values, floats = derivation.values, derivation.floats
    out_tensor, in_tensor = derivation.layer_tensor(position), derivation.input_tensor(position)
    one, zero = derivation.ops.const(1), derivation.ops.const(0)
    source = derivation.network.inputs_of(position)[0]  # a layer with parameters reads one tensor
    deltas_form = symbolic.backward.deltas[position + 1] if symbolic is not None else None
    terms = []
    for link in layer.param_terms(tensor.name.split(".")[1], index):
        if link.in_index is None:
            local = zero if link.padding else one
            local_approx = float(local)
            local_form = sympy.Integer(0 if link.padding else 1) if symbolic is not None else None
        else:
            local = values.values[source][link.in_index]
            local_approx = float(floats.values[source][link.in_index])
            local_form = symbolic.symbol(in_tensor, link.in_index) if symbolic is not None else None
        terms.append(
            Term(
                out=out_tensor,
                out_index=link.out_index,
                factor=None if link.in_index is None else in_tensor,
                factor_index=link.in_index,
                delta=values.deltas[position + 1][link.out_index],
                local=local,
                delta_approx=float(floats.deltas[position + 1][link.out_index]),
                local_approx=local_approx,
                cut=Cut.PADDING if link.padding else later_cut(derivation.network, position, link.out_index),
                delta_form=sympy.sympify(deltas_form[link.out_index]) if deltas_form is not None else None,
                local_form=local_form,
            )
        )
    value = values.grads[tensor.name][index]
    approx = float(floats.grads[tensor.name][index])
    form = symbolic.gradient(tensor, index) if symbolic is not None else None
    decay = _decay_term(derivation, tensor, index, value, approx, symbolic)
    return ElementGradient(tensor, index, tuple(terms), value, approx, form, decay)


def _decay_term(derivation, tensor: Tensor, index: tuple[int, ...], value, approx: float, symbolic) -> DecayTerm | None:
    """λ·w of a decayed parameter element, exact, with dL/dw = dJ/dw - λ·w as a float."""
    network = derivation.network
    if not network.decay.applies(tensor.name.split(".")[1]):
        return None
    from .floats import fraction_double, nearest_double

    rate, weight = network.decay.rate, network.parameter(tensor.name)[index]
    decay = rate * weight
    if isinstance(value, (float, np.floating)):  # a float derivation: the difference of the doubles
        chain_approx = approx - fraction_double(decay)
    else:  # the exact dL/dw, rounded once
        chain_approx = nearest_double(value - decay)
    form = None
    if symbolic is not None:
        import sympy

        form = sympy.Rational(rate.numerator, rate.denominator) * symbolic.symbol(tensor, index)
    return DecayTerm(rate, weight, decay, fraction_double(decay), chain_approx, form)


def intermediate_gradient(symbolic, tensor: Tensor, index: tuple[int, ...]) -> ElementGradient:
    """dL/d(an input or layer-output element): one term per element of each later layer that reads it
    (the next one in a chain; every branch after a skip connection)."""
    import sympy

    derivation, network = symbolic.derivation, symbolic.network
    position = 0 if tensor.role == "input" else tensor.layer + 1
    form = sympy.factor_terms(sympy.sympify(symbolic.backward.deltas[position][index]))
    value, approx = derivation.values.deltas[position][index], float(derivation.floats.deltas[position][index])
    symbol = symbolic.symbol(tensor, index)
    readers = network.consumers(position)
    while len(readers) == 1 and network.layers[readers[0]].passes_through:
        outputs = symbolic.arrays[f"{network.layers[readers[0]].name}.output"]
        symbol = next(s for s in outputs.flat if symbolic.definitions[s] == symbol)
        readers = network.consumers(readers[0] + 1)
    terms = [term for reader in readers for term in _next_layer_terms(symbolic, reader, symbol)]
    return ElementGradient(tensor, index, tuple(terms), value, approx, form)


def _next_layer_terms(symbolic, position: int, symbol) -> list[Term]:
    import sympy

    derivation, layer = symbolic.derivation, symbolic.network.layers[position]
    out_tensor = derivation.layer_tensor(position)
    deltas, delta_values = symbolic.backward.deltas[position + 1], derivation.values.deltas[position + 1]
    delta_floats = derivation.floats.deltas[position + 1]
    numbers, floats = symbolic.numbers, symbolic.float_numbers
    kinks = symbolic.network.kinks[position]
    _, where = symbolic.owner[symbol]
    terms = []
    for m, out in np.ndenumerate(symbolic.arrays[out_tensor.name]):
        rule = symbolic.definitions[out]
        reached = layer.reaches(where, m)
        if reached is False or (reached is None and symbol not in rule.free_symbols):
            continue
        local = sympy.diff(rule, symbol)
        cut = layer.local_cut(where, m, kinks) if local == 0 else None
        terms.append(
            Term(
                out=out_tensor,
                out_index=m,
                factor=None,
                factor_index=None,
                delta=delta_values[m],
                local=sympy.sympify(local).xreplace(numbers),
                delta_approx=float(delta_floats[m]),
                local_approx=float(sympy.sympify(local).xreplace(floats)),
                cut=cut or later_cut(derivation.network, position, m),
                delta_form=sympy.sympify(deltas[m]),
                local_form=local,
            )
        )
    return terms


def later_cut(network, position: int, index: tuple[int, ...]) -> Cut | None:
    """Why dL/d(output of layer `position`)[index] is zero because of a later kink, if it is."""
    layers, kinks = network.layers, network.kinks
    readers = network.consumers(position + 1)
    while len(readers) == 1:  # where the gradient comes back from several branches, none cuts it alone
        later = readers[0]
        reason = layers[later].cut_reason(index, kinks[later])
        if reason or not layers[later].elementwise:
            return reason
        readers = network.consumers(later + 1)
    active = getattr(network.loss, "active", None)  # the hinge's margins: an inactive class gets no gradient
    if not readers and active is not None:
        flat = int(np.ravel_multi_index(index, network.output_shape))
        if flat != network.loss.label and not active[flat]:
            return Cut.MARGIN_INACTIVE
    return None
