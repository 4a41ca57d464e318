"""The fast routes give exactly the numbers of the plain ones.

- Exact contractions (conv, linear) run as integer arithmetic in bulk (ops.exact_tensordot):
  on the small shipped configs every exact forward value, delta and gradient is the same
  Fraction as with NumPy's object arithmetic on Fractions, and the same number as substituting
  the config's numbers into the printed SymPy rules (Symbolic.definitions and its backward pass).
- Fractions become floats in bulk (n / d in float64 when both are exact): the nearest double,
  as float(Fraction).
- Long lists of plain numbers are read by the JSON parser: the same data as YAML alone.
"""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import sympy
import yaml

from cnnderive.config import load, loads
from cnnderive.config.yaml_io import _Loader, _yaml_load
from cnnderive.derivation.budget import BUDGET, work
from cnnderive.derivation.build import Derivation
from cnnderive.maths.ops import FloatOps, NotRational, RationalOps, SympyOps, exact_tensordot, object_array
from tests.conftest import CONFIGS, ROOT

ACCEPTANCE = ROOT.parent / "shared" / "acceptance" / "cases"
SMALL = [
    path
    for path in sorted(CONFIGS.glob("*.yaml")) + sorted(ACCEPTANCE.glob("*.yaml"))
    if work(load(path)) <= BUDGET.exact_work
]


class PlainRationalOps(RationalOps):
    """The rational track with NumPy's object arithmetic for contractions: Fraction by Fraction."""

    def tensordot(self, a, b, axes, plus=None):
        out = np.tensordot(a, b, axes)
        return out if plus is None else out + plus


def same_fractions(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return a.shape == b.shape and all(
        type(x) is Fraction and type(y) is Fraction and x == y for x, y in zip(a.flat, b.flat)
    )


def as_sympy(q: Fraction) -> sympy.Rational:
    return sympy.Rational(q.numerator, q.denominator)


def rational_prefix(network, ops) -> list[np.ndarray]:
    """Exact forward values layer by layer on `ops`, up to the first layer that leaves the rationals."""
    values = [network.input]
    for layer, kinks in zip(network.layers, network.kinks):
        try:
            values.append(
                layer.forward(network.layer_input(values, len(values) - 1), network.params[layer.name], kinks, ops)
            )
        except NotRational:
            break
    return values


def test_there_are_small_configs():
    assert len(SMALL) >= 7
    assert any("stride" in p.name for p in SMALL)  # strides and padding are covered


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_fast_forward_is_the_plain_fraction_forward(path):
    network = load(path)
    fast, plain = rational_prefix(network, RationalOps()), rational_prefix(network, PlainRationalOps())
    assert len(fast) == len(plain) == len(network.rational_values) > 1
    for a, b, c in zip(fast, plain, network.rational_values):
        assert same_fractions(a, b) and same_fractions(a, c)


@pytest.mark.parametrize("path", [p for p in SMALL if load(p).is_rational()], ids=lambda p: p.name)
def test_fast_backward_is_the_plain_fraction_backward(path):
    network = load(path)
    fast, plain = network.run(RationalOps()), network.run(PlainRationalOps())
    assert fast.loss == plain.loss
    for a, b in zip(fast.values + fast.deltas, plain.values + plain.deltas):
        assert same_fractions(a, b)
    assert list(fast.grads) == list(plain.grads)
    for name in fast.grads:
        assert same_fractions(fast.grads[name], plain.grads[name]), name


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_fast_values_are_the_printed_sympy_rules_with_numbers_substituted(path):
    """Each layer-output symbol's printed rule, with the numbers put in, is the fast exact value;
    for a rational network so is each parameter's printed gradient."""
    from cnnderive.derivation.symbolic import Symbolic

    derivation = Derivation(load(path), exact=True)
    network, symbolic = derivation.network, Symbolic(derivation)
    known = {}
    for name, array in [("input", network.input), ("target", network.target)] + [
        (qualified, network.parameter(qualified)) for qualified in network.parameter_names()
    ]:
        for symbol, value in zip(symbolic.arrays[name].flat, array.flat):
            known[symbol] = as_sympy(value)
    for position, exact in enumerate(network.rational_values[1:]):
        outputs = symbolic.arrays[f"{network.layers[position].name}.output"]
        for symbol, value in zip(outputs.flat, exact.flat):
            substituted = symbolic.definitions[symbol].xreplace(known)
            assert substituted == as_sympy(value), symbol
            known[symbol] = substituted
    if network.is_rational():
        fast = network.run(RationalOps())
        for name, grad in fast.grads.items():
            for printed, value in zip(np.asarray(symbolic.backward.grads[name]).flat, grad.flat):
                assert sympy.sympify(printed).xreplace(known) == as_sympy(value), name


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_fast_values_are_the_sympy_track(path):
    network = load(path)
    sympy_pass = network.run(SympyOps())
    for exact, symbolic in zip(network.rational_values, sympy_pass.values):
        assert all(as_sympy(q) == s for q, s in zip(exact.flat, symbolic.flat))


# --- the contraction itself, on every integer route (float64, int64, Python ints) and fallbacks


def random_fractions(rng: random.Random, shape, denominators, size=10) -> np.ndarray:
    count = int(np.prod(shape))
    return object_array([Fraction(rng.randint(-size, size), rng.choice(denominators)) for _ in range(count)], shape)


@pytest.mark.parametrize(
    "denominators, size",
    [
        ([1, 10, 100], 10),  # small: float64 BLAS is exact
        ([10**6, 7 * 10**5], 10**6),  # partial sums past 2**53: int64
        ([3, 7, 11, 13, 10**9 + 7], 10**12),  # past 2**63: Python integers
        ([2**70, 3], 2**80),  # numerators too big for int64 from the start
    ],
)
@pytest.mark.parametrize(
    "shape_a, shape_b, axes",
    [
        ((4, 3, 2, 2), (3, 5, 5, 2, 2), ([1, 2, 3], [0, 3, 4])),
        ((6, 7), (7,), 1),
        ((3,), (4,), 0),
        ((5, 2), (5, 3), ([0], [0])),
    ],
)
def test_exact_tensordot_is_object_tensordot(denominators, size, shape_a, shape_b, axes):
    rng = random.Random(f"{denominators}{shape_a}{size}")
    a, b = random_fractions(rng, shape_a, denominators, size), random_fractions(rng, shape_b, denominators, size)
    plain = np.tensordot(a, b, axes)
    assert same_fractions(exact_tensordot(a, b, axes), plain)
    # plus a bias broadcast along the leading axis (as conv and linear add theirs)
    bias = random_fractions(rng, (plain.shape[0],) + (1,) * (plain.ndim - 1), denominators[::-1] + [7], size)
    assert same_fractions(exact_tensordot(a, b, axes, bias), plain + bias)


def test_exact_tensordot_with_ints_and_zeros_gives_fractions():
    a = object_array([Fraction(0), 2, Fraction(-1, 3), 0], (2, 2))
    b = object_array([1, Fraction(1, 2), 0, 5], (2, 2))
    assert same_fractions(exact_tensordot(a, b, 1), np.tensordot(a, b, 1).astype(object) + Fraction(0))


def test_exact_tensordot_leaves_other_objects_to_numpy():
    x, y = sympy.symbols("x y")
    a = object_array([x, Fraction(1, 2)], (2,))
    b = object_array([Fraction(3), y], (2,))
    assert exact_tensordot(a, b, 1) == 3 * x + Fraction(1, 2) * y
    c = object_array([Fraction(1), Fraction(2)], (2,))
    assert exact_tensordot(c, c, 1, object_array([x], (1,)))[0] == x + 5


@pytest.mark.parametrize("scale", [1, 10**3, 10**15, 2**60, 3**50])
def test_floats_in_bulk_are_the_nearest_doubles(scale):
    rng = random.Random(scale)
    values = object_array(
        [Fraction(rng.randint(-(10**18), 10**18), rng.randint(1, scale)) for _ in range(200)], (10, 20)
    )
    got = FloatOps().array(values)
    assert got.dtype == np.float64
    assert all(x == float(q) for x, q in zip(got.flat, values.flat))


# --- reading long number lists with the JSON parser


def big_list(rng: random.Random, rows: int, columns: int, decimals: int = 2) -> str:
    rows_text = [
        "[" + ", ".join(str(round(rng.uniform(-1, 1), decimals)) for _ in range(columns)) + "]" for _ in range(rows)
    ]
    return "[" + ",\n    ".join(rows_text) + "]"


NETWORK = """\
name: fast yaml
input:
  values: {input}
layers:
  - type: flatten
  - type: linear
    name: fc
    out_features: 2
    params:
      weight: {weight}   # a comment after the list
      bias: [0.1, -0.2]
loss: {{type: mse, target: [0.5, 0.25]}}
"""


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_read_the_same(path):
    text = path.read_text()
    assert _yaml_load(text) == yaml.load(text, Loader=_Loader)


@pytest.mark.parametrize(
    "twist",
    [
        lambda s: s,
        lambda s: s.replace("\n", "\r\n"),
        lambda s: s.replace("0.1, ", "007, ", 1),  # a YAML octal: not JSON, left to YAML
        lambda s: s.replace("0.", ".", 3),  # `.5` is a YAML float but not JSON
        lambda s: s.replace("]]", ", ]]", 1),  # trailing comma
        lambda s: s.replace("name: fast yaml", 'name: "fast yaml cnnderive-number-list-0"'),
        lambda s: s.replace(
            "name: fast yaml", "name: |\n  weight: " + big_list(random.Random(1), 1, 300).replace("\n", " ")
        ),
    ],
)
def test_number_lists_read_as_yaml_reads_them(twist):
    rng = random.Random(7)
    text = twist(NETWORK.format(input=big_list(rng, 20, 30, 1), weight=big_list(rng, 2, 600)))
    try:
        expected = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        with pytest.raises(type(error)):
            _yaml_load(text)
        return
    assert _yaml_load(text) == expected


def test_a_bad_number_in_a_long_list_is_reported_on_its_line():
    rng = random.Random(3)
    text = NETWORK.format(input=big_list(rng, 20, 30, 1), weight=big_list(rng, 2, 600))
    lines = text.splitlines()
    row = next(k for k, line in enumerate(lines) if line.lstrip().startswith("[") and k > 4)
    lines[row] = lines[row].replace(",", ", abc,", 1)
    with pytest.raises(Exception) as caught:
        loads("\n".join(lines) + "\n", "net.yaml")
    assert "net.yaml" in str(caught.value) and "input" in str(caught.value)


def test_fast_and_plain_loading_give_the_same_network():
    rng = random.Random(5)
    text = NETWORK.format(input=big_list(rng, 20, 30, 1), weight=big_list(rng, 2, 600))
    fast = loads(text)
    data = yaml.load(text, Loader=_Loader)
    assert json.dumps(data, default=str) == json.dumps(yaml.load(text, Loader=_Loader), default=str)
    assert same_fractions(
        fast.params["fc"]["weight"],
        object_array([Fraction(str(v)) for row in data["layers"][1]["params"]["weight"] for v in row], (2, 600)),
    )
    assert math.isfinite(float(Derivation(fast).floats.loss))
