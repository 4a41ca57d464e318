"""Nearest doubles of the exact values: every float that is printed, and the JSON of `grad --json`.

A rational value rounds directly: Fraction -> float is correctly rounded. A value with exp, log or tanh
in it is enclosed in an interval that surely holds it (mpmath rounds outward), at rising precision,
until both ends of the interval round to the same double. An exact zero encloses 0 at every precision;
once its interval is narrower than half the smallest double, both ends round to 0.0, so it prints 0
and never float noise like -1.4e-16.

The nearest pass of a network runs the layers from the first transcendental one on (the "tail": softmax,
sigmoid, tanh and what follows) in intervals, with the loss taken from the logits (a saturated sigmoid
or softmax never makes log(0)), and the rational layers before it (the "head", most of LeNet-5) exactly,
in integers, from the midpoint of the tail's gradient; the head's error is bounded by one float pass on
absolute values.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..maths.network import Network, Pass
from ..maths.numbers import as_fraction
from ..maths.ops import FloatOps, IntervalOps, RationalOps, integer_scaled
from .budget import small_enough

# Working precisions in bits. 128 settles almost every value; 1200 is past the smallest double
# (2^-1074), so a value still around 0 there rounds to 0.0; 2400 is for values that sit near a
# rounding boundary after a large cancellation.
PRECISIONS = (128, 1200, 2400)
HEAD_WORK = 1_000_000  # exact integer backward of the rational layers up to this many multiply-adds
TAIL_WORK = 5_000  # interval arithmetic (about 100 us a multiply-add, all told) up to this many
_SAFETY = 1 + 2.0**-30  # float sums of non-negative terms are within n * 2^-53 of exact: room for n < 2^23

# --- single values ------------------------------------------------------------------------------


def fraction_double(value: Fraction) -> float:
    """The nearest double of a rational number (int / int true division rounds correctly)."""
    try:
        return value.numerator / value.denominator
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def mpf_double(raw: tuple) -> float:
    """The nearest double of an mpmath number given as its raw (sign, mantissa, exponent, bits) tuple."""
    sign, man, exp, bits = raw
    if not man:
        return _SPECIAL.get(raw, math.nan)
    if exp + bits > 1100:
        magnitude = math.inf
    elif exp + bits < -1100:
        magnitude = 0.0
    elif -1000 < exp + bits < 1000:  # int -> float rounds correctly, and a normal double scales exactly
        if bits > 64:  # keep 64 bits and a sticky bit for the rest: the rounding to 53 bits is the same
            shift = bits - 64
            man, exp = (man >> shift) | bool(man & ((1 << shift) - 1)), exp + shift
        magnitude = math.ldexp(float(man), exp)
    else:  # near the ends of the range: one correctly rounded division (subnormals, overflow)
        magnitude = fraction_double(Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp))
    return -magnitude if sign else magnitude


_SPECIAL = {(0, 0, 0, 0): 0.0, (0, 0, -456, -2): math.inf, (1, 0, -789, -3): -math.inf}  # mpmath's 0, +inf, -inf


def _finite(raw: tuple) -> bool:
    return bool(raw[1]) or raw == (0, 0, 0, 0)


def mpf_fraction(raw: tuple) -> Fraction:
    """The exact value of a finite raw mpmath number."""
    sign, man, exp, _ = raw
    value = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
    return -value if sign else value


def interval_double(value) -> float | None:
    """The double both ends of an mpmath interval round to (0.0 for a tiny interval around 0), or None
    when they round to different doubles and the interval must be narrowed first."""
    low, high = (mpf_double(end) for end in value._mpi_)
    return high + 0.0 if low == high else None  # + 0.0: -0.0 becomes 0.0


def interval_midpoint(value) -> float:
    """The nearest double of an interval's midpoint (or of its finite end): the best guess when the
    interval stays too wide to settle the rounding."""
    low, high = value._mpi_
    in_range = all(abs(end[2] + end[3]) < 1100 for end in (low, high))  # else exact ends are astronomically big
    if _finite(low) and _finite(high) and in_range:
        return fraction_double((mpf_fraction(low) + mpf_fraction(high)) / 2)
    if _finite(low) and _finite(high):
        return (mpf_double(low) + mpf_double(high)) / 2
    return mpf_double(high) if _finite(high) else mpf_double(low) if _finite(low) else math.nan


def nearest_double(value: object) -> float:
    """The nearest double of an exact number: an int, a Fraction, a float, or a SymPy value with exp,
    log or tanh in it; exactly 0.0 when the value is 0 (or smaller than half the smallest double)."""
    exact = as_fraction(value)
    if exact is not None:
        return fraction_double(exact)
    if isinstance(value, float):
        return value
    if getattr(value, "is_zero", None) is True:
        return 0.0
    for bits in PRECISIONS:
        ops = IntervalOps(bits)
        enclosure = sympy_interval(value, ops)
        double = interval_double(enclosure)
        if double is not None:
            return double
    return interval_midpoint(enclosure)


def is_exact_zero(value: object, max_nodes: int = 400) -> bool:
    """True when an exact value is proven to be 0: structurally, or, when it is 0 to 1200 bits, by
    SymPy's simplification (tried only on expressions up to `max_nodes` nodes)."""
    exact = as_fraction(value)
    if exact is not None or isinstance(value, float):
        return exact == 0 if exact is not None else value == 0.0
    if getattr(value, "is_zero", None) is not None:
        return bool(value.is_zero)
    if nearest_double(value) != 0.0 or not small_enough(value, max_nodes):
        return False
    import sympy

    return sympy.simplify(value) == 0


def sympy_interval(expr, ops: IntervalOps):
    """An interval holding the value of a SymPy number built from rationals, +, *, powers, exp, log, tanh."""
    import sympy

    ctx = ops.ctx
    if expr.is_Rational:
        return ops.convert(Fraction(int(expr.p), int(expr.q)))
    if expr.is_Float:
        return ops.convert(mpf_fraction(expr._mpf_))
    if expr is sympy.E:
        return ctx.exp(ctx.mpf(1))
    if expr is sympy.pi:
        return ctx.pi
    args = [sympy_interval(arg, ops) for arg in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        product = args[0]
        for arg in args[1:]:
            product = product * arg
        return product
    if expr.is_Pow and expr.exp.is_Integer:
        return args[0] ** int(expr.exp)
    if expr.is_Pow:
        return ctx.exp(args[1] * ctx.log(args[0]))
    functions = {sympy.exp: ctx.exp, sympy.log: ctx.log, sympy.tanh: ops.tanh_one}
    if expr.func in functions and len(args) == 1:
        return functions[expr.func](args[0])
    # anything else (the layers make none): SymPy's own evaluation, widened far beyond its error
    value = mpf_fraction(sympy.Float(expr.evalf(ops.bits // 3 + 10), ops.bits // 3 + 10)._mpf_)
    width = abs(value) / 2 ** (ops.bits // 2)
    return ctx.mpf([ops.convert(value - width).a, ops.convert(value + width).b])


# --- number tracks ------------------------------------------------------------------------------


class ScaledOps(RationalOps):
    """Exact integers that stand for value * scale (the number track of the nearest pass's head).

    A layer's backward multiplies dL/d(output) only by exact numbers (its weight, its input, constants),
    so with dL/d(output) held as integers and every tensordot dividing out the exact operand's common
    denominator, each result stays an integer when the scale holds that denominator (the caller makes
    it so), and is an exact Fraction otherwise: never rounded.
    """

    name = "scaled"

    def __init__(self) -> None:
        self._known: dict[int, tuple[np.ndarray, tuple]] = {}

    def remember(self, values: np.ndarray) -> tuple:
        """The integer form (numerators, denominator, largest |numerator|) of an array used many times."""
        known = self._known.get(id(values))
        if known is None or known[0] is not values:
            known = self._known[id(values)] = (values, _integer_form(values))
        return known[1]

    def const(self, q: Fraction | int) -> Fraction | int:
        q = Fraction(q)
        return q.numerator if q.denominator == 1 else q

    def tensordot(self, a: np.ndarray, b: np.ndarray, axes, plus: np.ndarray | None = None) -> np.ndarray:
        (na, da, ma), (nb, db, mb) = self.remember(a), self.remember(b)
        count = 1
        for axis in _contracted_axes(a, axes):
            count *= a.shape[axis]
        bound = count * max(ma, 1) * max(mb, 1)
        if bound < 2**53:
            out = np.tensordot(na.astype(np.float64), nb.astype(np.float64), axes).astype(np.int64).astype(object)
        elif bound < 2**63:
            out = np.tensordot(na.astype(np.int64), nb.astype(np.int64), axes).astype(object)
        else:
            out = np.tensordot(na.astype(object), nb.astype(object), axes)
        out = _divide(out, da * db)
        return out if plus is None else out + plus


def _integer_form(values: np.ndarray) -> tuple:
    """integer_scaled, faster for the usual operand here: an array of Python ints (a scaled gradient)."""
    flat = values.ravel().tolist()
    if flat and set(map(type, flat)) == {int}:
        return values, 1, max(max(flat), -min(flat))
    return integer_scaled(values)


def _contracted_axes(a: np.ndarray, axes) -> list[int]:
    if isinstance(axes, int):
        return list(range(a.ndim - axes, a.ndim))
    return list(axes[0]) if isinstance(axes[0], (list, tuple)) else [axes[0]]


def _divide(numbers: np.ndarray, denominator: int) -> np.ndarray:
    """numbers / denominator: integers when it divides them all (the usual case), else exact Fractions."""
    if denominator == 1:
        return numbers
    quotient = numbers // denominator
    if (quotient * denominator == numbers).all():
        return quotient
    return _map(numbers, lambda n: Fraction(n, denominator))


def _map(values: np.ndarray, f) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [f(v) for v in values.flat]
    return out


# --- the nearest pass ---------------------------------------------------------------------------


def nearest_pass(network: Network, head_work: int = HEAD_WORK, tail_work: int = TAIL_WORK) -> Pass | None:
    """The whole pass (values, loss, dL/d every layer output, gradients) as the nearest doubles of the
    exact values, or None when the network is too big for it (then the float pass is the best there is)."""
    if network.is_rational():
        return _rational_nearest(network) if _work(network.layers) <= head_work else None
    start = len(network.rational_values) - 1  # the first transcendental layer
    if not network.chain_from(start):  # a skip, add or concat after it: the float64 pass is what there is
        return None
    if _work(network.layers[:start]) > head_work or _work(network.layers[start:]) > tail_work:
        return None
    try:
        head = _Head(network, start)
        for bits in PRECISIONS:
            rounded, settled = _transcendental_pass(network, head, bits)
            if settled:
                break
    except OverflowError:  # exact values far beyond the float64 range: no double is near them
        return None
    return rounded


def _work(layers) -> int:
    return sum(layer.work() for layer in layers)


def _rational_nearest(network: Network) -> Pass:
    """One exact pass in fractions, each number then rounded once."""
    rational, floats = network.run(RationalOps()), FloatOps()
    return Pass(
        values=[floats.array(v) for v in rational.values],
        loss=fraction_double(as_fraction(rational.loss)),
        deltas=[None if d is None else floats.array(d) for d in rational.deltas],
        grads={name: floats.array(grad) for name, grad in rational.grads.items()},
        penalty=None if rational.penalty is None else fraction_double(rational.penalty),
        shared={v: tuple((k, floats.array(part)) for k, part in found) for v, found in rational.shared.items()},
    )


def _transcendental_pass(network: Network, head: _Head, bits: int) -> tuple[Pass, bool]:
    """The nearest pass at one precision, and whether every value was certain at it."""
    rounding = _Rounding()
    values, loss, deltas, grads = _tail(network, head.start, IntervalOps(bits))
    rounded = Pass(
        values=head.values() + [rounding.intervals(v) for v in values],
        loss=rounding.intervals(_scalar(loss))[()],
        deltas=[None if d is None else rounding.intervals(d) for d in deltas],
        grads={name: rounding.intervals(g) for name, g in grads.items()},
        penalty=fraction_double(network.decay.exact_penalty(network.params)) if network.decay.rate else None,
    )
    if head.start:
        head_deltas, head_grads, rounded.shared = head.backward(deltas[head.start], rounding)
        rounded.deltas[: head.start] = head_deltas
        rounded.grads.update(head_grads)
    rounded.grads = {name: rounded.grads[name] for name in network.parameter_names()}
    return rounded, rounding.settled


def _tail(network: Network, start: int, ops: IntervalOps):
    """Forward from the first transcendental layer's (exact) input, then backward to it, in intervals.

    Returns the tail's values (from that input on), the loss, dL/d(each layer output) (None before
    `start`) and the tail's gradients. With a fused loss, all three come from the logits.
    """
    layers, kinks = network.layers, network.kinks
    params = {layer.name: {k: ops.array(v) for k, v in network.params[layer.name].items()} for layer in layers[start:]}
    values = [ops.array(network.rational_values[start])]
    for layer, decided in zip(layers[start:], kinks[start:]):
        values.append(layer.forward(values[-1], params[layer.name], decided, ops))
    deltas: list = [None] * (len(layers) + 1)
    last = len(layers) - 1
    if network.fused_loss():
        loss, deltas[-1], deltas[-2] = network.loss.from_logits(values[-2], network.target, ops)
        last -= 1
    else:
        target = ops.array(network.target)
        loss, deltas[-1] = network.loss.value(values[-1], target, ops), network.loss.delta(values[-1], target, ops)
    grads: dict[str, np.ndarray] = {}
    for k in range(last, start - 1, -1):
        layer, x, y = layers[k], values[k - start], values[k - start + 1]
        deltas[k], layer_grads = layer.backward(x, y, deltas[k + 1], params[layer.name], kinks[k], ops)
        for name, g in layer_grads.items():
            decay = _decay(network, layer.name, name)
            grads[f"{layer.name}.{name}"] = g if decay is None else g + ops.array(decay)
    if network.decay.rate:  # the penalty λ/2·Σw² is rational: exact, then enclosed
        loss = loss + ops.const(network.decay.exact_penalty(network.params))
    return values, loss, deltas, grads


def _decay(network: Network, layer: str, param: str) -> np.ndarray | None:
    """λ·w exactly (Fractions) for a decayed parameter tensor, else None."""
    if not network.decay.applies(param):
        return None
    return network.decay.gradient(network.params[layer][param], RationalOps())


def _scalar(value) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = value
    return out


class _Rounding:
    """Rounds arrays to doubles and remembers whether every element was certain."""

    def __init__(self) -> None:
        self.settled = True

    def intervals(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(values.shape, dtype=np.float64)
        for position, value in np.ndenumerate(values):
            double = interval_double(value)
            if double is None:
                self.settled = False
                double = interval_midpoint(value)
            out[position] = double
        return out

    def scaled(self, numbers: np.ndarray, scale: int, error: np.ndarray | None) -> np.ndarray:
        """Each integer / scale, the exact value being within error / scale of it (None: unbounded)."""
        if error is not None:
            low, high = _quotients(numbers - error, scale), _quotients(numbers + error, scale)
            if (low == high).all():
                return high + 0.0  # + 0.0: -0.0 becomes 0.0
        self.settled = False
        return _quotients(numbers, scale)


def _quotients(numbers: np.ndarray, scale: int) -> np.ndarray:
    """Each integer / scale as its nearest double (int / int true division rounds correctly)."""
    try:
        return np.asarray(numbers / scale, dtype=np.float64)
    except OverflowError:
        out = np.empty(numbers.shape, dtype=np.float64)
        out.flat[:] = [fraction_double(Fraction(n, scale)) for n in numbers.flat]
        return out


# --- the head: rational layers before the first transcendental one, exactly in integers -----------


class _Head:
    """The layers before `start`, whose values are exact fractions (network.rational_values).

    Their backward is linear in the boundary gradient g = dL/d(input of layer `start`), with exact
    coefficients: it runs exactly, in integers, on the midpoints m of g's intervals, and each result
    moves by at most (largest radius of g) * (the same backward on absolute values, from 1 where g's
    interval has a width and 0 where it is exact, such as a 0 the max-pool routing put there).
    """

    def __init__(self, network: Network, start: int) -> None:
        self.network, self.start = network, start
        self.ops = ScaledOps()  # keeps the integer form of every value and parameter array

    def floats(self, exact: np.ndarray) -> np.ndarray:
        """The nearest doubles of an exact array of the head."""
        numbers, denominator, largest = self.ops.remember(exact)
        if largest < 2**53 and denominator < 2**53:  # both exact in float64, and IEEE division rounds correctly
            return numbers.astype(np.float64) / float(denominator)
        return FloatOps().array(exact)

    def values(self) -> list[np.ndarray]:
        return [self.floats(v) for v in self.network.rational_values[: self.start]]

    def backward(self, boundary: np.ndarray, rounding: _Rounding) -> tuple[list, dict, dict]:
        """dL/d(each head layer output), the head's gradients, and the parts of dL/d(a value several
        layers read) (Pass.shared), rounded (uncertain ones noted in `rounding`)."""
        middles, radius, wide = _middles(boundary)
        delta_bounds, grad_bounds, part_bounds = self._bounds(wide)
        numbers, scale, _ = integer_scaled(middles)
        network, ops = self.network, self.ops
        layers, kinks, values = network.layers, network.kinks, network.rational_values
        deltas: list = [None] * self.start
        grads: dict[str, np.ndarray] = {}
        known = {self.start: (np.asarray(numbers, dtype=object), scale)}  # value -> its dL/d as (integers, scale)
        pending: dict[int, list] = {}  # value -> [(layer, integers, scale)] sent back by the layers that read it
        shared: dict[int, tuple] = {}
        for k in range(self.start - 1, -1, -1):
            layer, sources = layers[k], network.inputs_of(k)
            params = network.params[layer.name]
            delta, scale = known.pop(k + 1)
            denominators = [ops.remember(values[v])[1] for v in sources]
            common = math.lcm(*denominators, *(ops.remember(p)[1] for p in params.values()))
            delta, scale = delta * common, scale * common  # every tensordot below then divides exactly
            x = network.layer_input(values, k)
            delta_in, layer_grads = layer.backward(x, values[k + 1], delta, params, kinks[k], ops)
            for name, grad in layer_grads.items():
                qualified = f"{layer.name}.{name}"
                grad_numbers, grad_scale = _integers(grad, scale)
                if network.decay.applies(name):  # λ·w is exact, so it adds no error
                    decay, extra = network.decay.scaled_gradient(params[name], grad_scale)
                    grad_numbers, grad_scale = grad_numbers.astype(object) * extra + decay, grad_scale * extra
                error = _error_units(grad_bounds[qualified], radius, grad_scale)
                grads[qualified] = rounding.scaled(grad_numbers, grad_scale, error)
            for source, part in zip(sources, delta_in if layer.merges else (delta_in,)):
                pending.setdefault(source, []).append((k, *_integers(part, scale)))
            if k not in pending:
                continue
            parts = pending.pop(k)
            if len(parts) > 1:
                shared[k] = tuple(
                    (j, rounding.scaled(n, s, _error_units(part_bounds[k, j], radius, s)))
                    for j, n, s in reversed(parts)
                )
            delta, scale = _sum_scaled(parts)
            deltas[k] = rounding.scaled(delta, scale, _error_units(delta_bounds[k], radius, scale))
            known[k] = (delta, scale)
        return deltas, grads, shared

    def _bounds(self, wide: np.ndarray) -> tuple[list, dict, dict]:
        """For each head array, how far it moves per unit of change of the boundary gradient's `wide`
        elements: the backward in floats on absolute values (float rounding covered by _SAFETY)."""
        floats, network = FloatOps(), self.network
        values = [np.abs(self.floats(v)) for v in network.rational_values]
        known = {self.start: wide.astype(np.float64)}
        deltas: list = [None] * self.start
        grads: dict[str, np.ndarray] = {}
        pending: dict[int, list] = {}
        part_bounds: dict[tuple[int, int], np.ndarray] = {}  # (value, layer) -> bound of that layer's part
        for k in range(self.start - 1, -1, -1):
            layer = network.layers[k]
            params = {name: np.abs(self.floats(p)) for name, p in network.params[layer.name].items()}
            x = network.layer_input(values, k)
            delta_in, layer_grads = layer.backward(x, values[k + 1], known.pop(k + 1), params, network.kinks[k], floats)
            grads.update({f"{layer.name}.{name}": np.abs(g) * _SAFETY for name, g in layer_grads.items()})
            for source, part in zip(network.inputs_of(k), delta_in if layer.merges else (delta_in,)):
                part_bounds[source, k] = np.abs(part) * _SAFETY
                pending.setdefault(source, []).append(part_bounds[source, k])
            if k in pending:
                parts = pending.pop(k)
                total = parts[0]
                for part in parts[1:]:
                    total = total + part
                known[k] = deltas[k] = total if len(parts) == 1 else total * _SAFETY
        return deltas, grads, part_bounds


def _sum_scaled(parts: list) -> tuple[np.ndarray, int]:
    """The sum of exact arrays given as (layer, integers, scale), as (integers, common scale)."""
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    scale = math.lcm(*(s for _, _, s in parts))
    total = sum(
        (np.asarray(n, dtype=object) * (scale // s) for _, n, s in parts[1:]), parts[0][1] * (scale // parts[0][2])
    )
    return total, scale


def _middles(boundary: np.ndarray) -> tuple[np.ndarray, Fraction | None, np.ndarray]:
    """The exact midpoints of an array of intervals, the largest radius (None if one is unbounded), and
    where the intervals have a width."""
    middles = np.empty(boundary.shape, dtype=object)
    radius: Fraction | None = Fraction(0)
    wide = np.zeros(boundary.shape, dtype=bool)
    for position, value in np.ndenumerate(boundary):
        low, high = value._mpi_
        wide[position] = low != high
        if _finite(low) and _finite(high):
            middles[position] = (mpf_fraction(low) + mpf_fraction(high)) / 2
            if radius is not None:
                radius = max(radius, (mpf_fraction(high) - mpf_fraction(low)) / 2)
        else:  # an infinite end: this precision bounds nothing
            guess = interval_midpoint(value)
            middles[position] = Fraction(guess) if math.isfinite(guess) else Fraction(0)
            radius = None
    return middles, radius, wide


def _integers(values: np.ndarray, scale: int) -> tuple[np.ndarray, int]:
    """An exact array of value * scale (ints, or Fractions after a constant like 1/4) as (integers, new scale)."""
    flat = values.ravel().tolist()
    if set(map(type, flat)) <= {int}:
        return np.asarray(values, dtype=object), scale
    numbers, extra, _ = integer_scaled(np.array([Fraction(v) for v in flat], dtype=object).reshape(values.shape))
    return np.asarray(numbers, dtype=object), scale * extra


def _error_units(bound: np.ndarray, radius: Fraction | None, scale: int) -> np.ndarray | None:
    """ceil(bound * radius * scale) for each element, as integers: the error in units of 1/scale."""
    if radius is None or not np.isfinite(bound).all():
        return None
    units = radius * scale
    if units == 0:
        return np.zeros(bound.shape, dtype=object)
    shift = units.numerator.bit_length() - units.denominator.bit_length()  # units < 2^(shift + 1)
    # bound * 2^(shift + 1) >= bound * units: 2 * bound in units of 2^shift, rounded up
    whole = _PYTHON_INT(np.ceil(bound * (2.0 * _SAFETY)))
    return whole << shift if shift >= 0 else -((-whole) >> -shift)


_PYTHON_INT = np.frompyfunc(int, 1, 1)  # floats -> exact Python ints, element by element
