"""Kinks decided exactly past exp, tanh and softmax (spec section 2).

While the forward values are fractions, Network decides ReLU signs and max-pool winners on them.
Past the first transcendental layer, each layer input is screened in float64: every value gets an
error radius, REL_ERROR times the magnitude of the terms it sums (float64's own error is a tiny
fraction of that). A comparison the radii cannot turn keeps its float answer; the others, and only
they, are decided exactly, in this order:

1. the exact SymPy forms (of the compared elements only, while they stay small) are equal, or
   differ by a rational number;
2. intervals that surely hold the exact values, at rising precision (30, 60, 120, 240 digits),
   until the difference leaves 0;
3. a proof that the difference is 0: when every exp has a rational argument, the difference is a
   rational function of t = e^(1/L), and t is transcendental (Lindemann), so the difference is 0
   exactly when that function is; otherwise SymPy's simplify;
4. else it is taken as 0, and its note says that this is not proved.

Each comparison decided past float64 leaves a KinkNote, for the printers to say how it was decided.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .exact_track import ExactTrack, ParamsOn
from .ops import FloatOps, RationalOps

REL_ERROR = 2.0**-30  # generous: float64 loses about 2**-52 of the terms' magnitude per operation
TINY = 2.0**-1000  # the least radius of a value that is not exactly 0 (float64 may underflow)
PRECISIONS = (100, 200, 400, 800)  # bits: about 30, 60, 120 and 240 digits
MORE_PRECISIONS = (1600, 3200, 6400)  # when a proof says the difference is not 0 but is smaller still
PROOF_OPS_LIMIT = 400  # the largest difference (in SymPy operations) that simplify is tried on
IDENTITY_DEGREE_LIMIT = 4_000  # the largest sum of powers of t = e^(1/L) in the polynomial identity


# what an element is compared with: another element's index, (index, offset) for it plus a constant, or a constant
Other = tuple[int, ...] | tuple[tuple[int, ...], Fraction] | Fraction


class KinkNote(NamedTuple):
    """How one kink was decided past float64: layer position, element of the layer's input, a sentence."""

    position: int
    index: tuple[int, ...]
    text: str


class Screened:
    """One element of a layer input as a float64 value with an error radius (0: exactly this value).

    Comparisons are exact: the judge keeps the float answer when the radii cannot turn it.
    """

    __slots__ = ("flat", "judge", "radius", "value")

    def __init__(self, value: float, radius: float, flat: int, judge: KinkJudge) -> None:
        self.value, self.radius, self.flat, self.judge = value, radius, flat, judge

    def __gt__(self, other: object) -> bool:
        return self.judge.compare(self, other, ">")

    def __lt__(self, other: object) -> bool:
        return self.judge.compare(self, other, "<")

    def __ge__(self, other: object) -> bool:
        return not self.judge.compare(self, other, "<")

    def __le__(self, other: object) -> bool:
        return not self.judge.compare(self, other, ">")

    def __sub__(self, other: Screened) -> Gap:
        return Gap(self, other)


class Shifted(NamedTuple):
    """An element plus an exact constant: what a - b is compared with, as a > b + c."""

    element: Screened
    offset: Fraction


class Gap:
    """a - b of two screened elements, compared exactly with a constant (a hinge loss's margin)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Screened, b: Screened) -> None:
        self.a, self.b = a, b

    def __gt__(self, c: object) -> bool:
        return self.a.judge.compare(self.a, Shifted(self.b, Fraction(c)), ">")

    def __lt__(self, c: object) -> bool:
        return self.a.judge.compare(self.a, Shifted(self.b, Fraction(c)), "<")


class KinkJudge:
    """Decides the kinks of the layers from `start` on (the first one past the fractions).

    It carries the float64 values with their magnitudes (sums of |terms|) and an exact-zero mask
    through the layers, and an ExactTrack for the comparisons that floats cannot settle.
    """

    def __init__(self, layers: list, params_on: ParamsOn, start: int, start_values: np.ndarray, kinks: list) -> None:
        self.layers, self._params_on, self.kinks = layers, params_on, kinks
        self.notes: list[KinkNote] = []
        self._exact = ExactTrack(layers, params_on, start, start_values, kinks)
        self._floats = FloatOps()
        self.approx = self._floats.array(start_values)
        self.magnitude = np.abs(self.approx)
        self.live = np.array(start_values != 0, dtype=np.float64)  # 0 where the value is exactly 0
        self._position = start
        self._answers: dict[tuple, bool] = {}

    # --- the float screen, layer by layer

    def advance(self, position: int) -> None:
        """Carry the floats, magnitudes and exact zeros through layer `position`, its kinks decided."""
        layer, kinks, floats = self.layers[position], self.kinks[position], self._floats
        params = self._params_on(layer, floats)
        with np.errstate(all="ignore"):
            out = layer.forward(self.approx, params, kinks, floats)
            if layer.rational:  # sums of products: the same rule on |values| bounds |terms|
                absolute = {name: np.abs(value) for name, value in params.items()}
                nonzero = {name: self._nonzero(layer, name, value) for name, value in params.items()}
                self.magnitude = np.abs(layer.forward(self.magnitude, absolute, kinks, floats))
                self.live = (layer.forward(self.live, nonzero, kinks, floats) != 0).astype(np.float64)
            else:  # sigmoid, tanh (slope <= 1) and softmax (<= 2 in all): errors do not grow
                spread = self.magnitude if layer.elementwise else 2 * np.max(self.magnitude, initial=0.0)
                self.magnitude = spread + np.abs(out)
                self.live = np.ones(out.shape)
        self.approx = out

    def _nonzero(self, layer, name: str, floats: np.ndarray) -> np.ndarray:
        """1 where the exact parameter is not 0 (its float may have underflowed to 0), else 0."""
        nonzero = (floats != 0).astype(np.float64)
        zeros = np.flatnonzero(floats == 0)
        if zeros.size:
            exact = self._params_on(layer, RationalOps())[name].ravel()
            nonzero.ravel()[zeros] = [float(exact[k] != 0) for k in zeros]
        return nonzero

    def decide(self, position: int) -> object:
        """layer.decide on the screened values: float answers where sure, exact ones elsewhere."""
        layer = self.layers[position]
        self._position, self._answers = position, {}
        with np.errstate(all="ignore"):  # nan and inf go the exact route; so do float flags raised there
            if layer.decide(self.approx) is None:  # no kinks in this layer
                return None
            return layer.decide(self._screened())

    def decide_loss(self, loss, target) -> object:
        """loss.decide (a hinge loss's active margins) on the screened network output."""
        self._position, self._answers = len(self.layers), {}
        with np.errstate(all="ignore"):
            return loss.decide(self._screened(), target)

    def _screened(self) -> np.ndarray:
        live = self.live != 0
        values = np.where(live, self.approx, 0.0).ravel().tolist()
        with np.errstate(all="ignore"):
            radii = np.where(live, np.maximum(REL_ERROR * self.magnitude, TINY), 0.0).ravel().tolist()
        out = np.empty(len(values), dtype=object)
        out[:] = [Screened(v, r, k, self) for k, (v, r) in enumerate(zip(values, radii))]
        return out.reshape(self.approx.shape)

    def compare(self, a: Screened, b: object, op: str) -> bool:
        """a > b (op ">") or a < b (op "<"), exactly."""
        if isinstance(b, Screened):
            b_value, b_radius = b.value, b.radius
        elif isinstance(b, Shifted):  # another element plus a constant
            b_value = b.element.value + float(b.offset)
            b_radius = b.element.radius + abs(b_value) * 2.0**-52
        else:  # a constant such as ReLU's 0
            b_value = float(b)
            b_radius = abs(b_value) * 2.0**-52
        diff, radius = a.value - b_value, a.radius + b_radius
        # both exactly their floats (IEEE subtraction keeps the sign), or too far apart for the radii to matter;
        # inf and nan fail both tests and go the exact route
        if radius == 0.0 or abs(diff) > 2 * radius:
            return diff > 0 if op == ">" else diff < 0
        key = (a.flat, _key(b), op)
        if key not in self._answers:
            self._answers[key] = self._exact_compare(a, b, op, diff)
        return self._answers[key]

    # --- the exact route

    def _exact_compare(self, a: Screened, b: object, op: str, float_diff: float) -> bool:
        """a op b by the exact route (steps 1-4 above), with a note of how it was found."""
        shape = self.approx.shape
        a_index = _index(a.flat, shape)
        if isinstance(b, Screened):
            other: object = _index(b.flat, shape)
        elif isinstance(b, Shifted):
            other = (_index(b.element.flat, shape), b.offset)
        else:
            other = Fraction(b)
        relation, how = self._settle(a_index, other, op)
        if isinstance(b, Shifted):
            rhs = f"{self._name(other[0])} {'-' if b.offset < 0 else '+'} {abs(b.offset)}"
            seen = f"in float64 the difference is {float_diff:.3g}"
        elif isinstance(other, tuple):
            rhs, seen = self._name(other), f"in float64 the difference is {float_diff:.3g}"
        else:
            rhs, seen = str(other), f"float64 gives {a.value:.3g}"
        self.notes.append(KinkNote(self._position, a_index, f"{self._name(a_index)} {relation} {rhs} {how} ({seen})"))
        return relation == op  # "=", "<=" and the opposite all answer no

    def _settle(self, a_index: tuple[int, ...], other: Other, op: str) -> tuple[str, str]:
        """The relation of a to other that answers `op` (">", "<", "=", "<=" or ">="), and how it was found."""
        source = self._order_source(a_index, other)
        if source != self._position:  # compare where the forms are smaller: before softmax, tanh, sigmoid
            difference = self._difference("sympy", a_index, other, source)
            if difference is not None and difference.is_Rational:
                kinds = list(dict.fromkeys(layer.kind for layer in self.layers[source : self._position]))
                keep = (
                    f"{kinds[0]} keeps the order, and before it"
                    if len(kinds) == 1
                    else (f"{', '.join(kinds[:-1])} and {kinds[-1]} keep the order, and before them")
                )
                relation = ">" if difference > 0 else "<" if difference < 0 else "="
                return relation, f"exactly: {keep} the difference is {difference}"
        difference = self._difference("sympy", a_index, other)
        if difference is not None and difference.is_Rational:
            if difference != 0:
                return (">" if difference > 0 else "<"), f"exactly: the difference is {difference}"
            if _is_element(other):
                return "=", "exactly: their exact forms are equal"
            return "=", "exactly: its exact form is 0"
        relation, bits = self._interval_relation(a_index, other, op, PRECISIONS)
        if relation:
            return relation, f"for certain: decided at {_digits(bits)} digits"
        proved, how = prove_zero(difference) if difference is not None else (None, "")
        if proved:
            return "=", f"exactly, proved: {how}"
        if proved is False:  # not 0, only smaller than the precisions tried so far
            relation, bits = self._interval_relation(a_index, other, op, MORE_PRECISIONS)
            if relation:
                return relation, f"for certain: decided at {_digits(bits)} digits ({how})"
        digits = _digits(MORE_PRECISIONS[-1] if proved is False else PRECISIONS[-1])
        return "=", f"taken as equal: they agree to {digits} digits, but that is not proved"

    def _order_source(self, a_index: tuple[int, ...], other: Other) -> int:
        """The earliest layer input whose two elements are in the same order as the current one's:
        back through every layer that keeps the order (two elements, not an element and a constant)."""
        position = self._position
        if _is_element(other):  # another element, not shifted
            while position > self._exact.start and self.layers[position - 1].keeps_order_of(
                a_index, other, self.kinks[position - 1]
            ):
                position -= 1
        return position

    def _difference(
        self, key: object, a_index: tuple[int, ...], other: Other, position: int | None = None
    ) -> object | None:
        """a - other on the exact track `key` ("sympy", or intervals at `key` bits) at the current layer input
        (or at `position`); None without SymPy forms."""
        exact = self._exact
        position = self._position if position is None else position
        first = exact.element(key, position, a_index)
        if _is_element(other):
            second = exact.element(key, position, other)
        elif isinstance(other, tuple):  # (element, offset)
            second = exact.element(key, position, other[0])
            second = None if second is None else second + exact.constant(key, other[1])
        else:
            second = exact.constant(key, other)
        return None if first is None or second is None else first - second

    def _interval_relation(self, a_index, other, op: str, precisions: tuple[int, ...]) -> tuple[str, int]:
        """The first relation the enclosures of a - other prove that answers `op`, or "", and the bits used."""
        for bits in precisions:
            difference = self._difference(bits, a_index, other)
            if difference.a > 0:
                return ">", bits
            if difference.b < 0:
                return "<", bits
            if op == ">" and difference.b == 0:  # a <= other: not greater, whether equal or not
                return "<=", bits
            if op == "<" and difference.a == 0:
                return ">=", bits
        return "", precisions[-1]

    def _name(self, index: tuple[int, ...]) -> str:
        """The canonical name of an element of the current layer's input: relu_2.output[0,1]."""
        position = self._position
        tensor = "input" if position == 0 else f"{self.layers[position - 1].name}.output"
        return f"{tensor}[{','.join(map(str, index))}]"


def prove_zero(difference) -> tuple[bool | None, str]:
    """(True, how) when the SymPy number `difference` is proved 0, (False, how) when proved not 0,
    (None, "") when neither could be shown."""
    import sympy

    if sympy.count_ops(difference) > PROOF_OPS_LIMIT:  # too big to try in reasonable time
        return None, ""
    verdict = _exp_identity(difference)
    if verdict is not None:
        return verdict
    if sympy.simplify(difference) == 0:
        return True, "SymPy simplifies the difference to 0"
    return None, ""


def _exp_identity(difference) -> tuple[bool, str] | None:
    """Decide difference == 0 when it is built from rationals and exp of rationals by + - * /:
    with exp(r) = t**(r*L), it is a rational function of t = e^(1/L), which is transcendental."""
    import sympy

    form = difference.rewrite(sympy.exp)
    powers = {atom: atom.args[0] for atom in form.atoms(sympy.exp)}
    if form.has(sympy.E):
        powers[sympy.E] = sympy.Integer(1)
    if not all(r.is_Rational for r in powers.values()):
        return None
    lcm = math.lcm(*(int(r.q) for r in powers.values())) if powers else 1
    if sum(abs(r * lcm) for r in powers.values()) > IDENTITY_DEGREE_LIMIT:  # bounds the degree of the numerator
        return None
    t = sympy.Dummy("t", positive=True)
    rational_function = form.xreplace({atom: t ** (r * lcm) for atom, r in powers.items()})
    if rational_function.free_symbols - {t} or rational_function.atoms(sympy.Function, sympy.NumberSymbol):
        return None
    numerator, _ = sympy.fraction(sympy.cancel(sympy.together(rational_function)))
    base = "e" if lcm == 1 else f"e^(1/{lcm})"
    if numerator == 0:
        return True, f"the difference is 0 as a rational function of {base}"
    return False, f"it is a nonzero rational function of {base}, which is transcendental"


def _digits(bits: int) -> int:
    return int(bits * math.log10(2))


def _is_element(other: object) -> bool:
    """`other` of a comparison is an element's index (not a constant, not an element plus a constant)."""
    return isinstance(other, tuple) and all(isinstance(i, int) for i in other)


def _key(b: object) -> object:
    """What a compared `b` is, for the memo of answers."""
    if isinstance(b, Screened):
        return b.flat
    if isinstance(b, Shifted):
        return ("shifted", b.element.flat, b.offset)
    return ("constant", b)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))
