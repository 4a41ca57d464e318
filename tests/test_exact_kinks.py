"""Kinks past tanh, sigmoid and softmax are decided exactly (spec section 2; issue 10, item 1),
and tiny numbers do not crash the exact arithmetic (issue 10, item 5).

Each network puts a kink (ReLU at 0, a max-pool tie, a near-tie) behind a transcendental layer.
Each test first shows that float64 (as PyTorch computes) decides it the other way, so that it
cannot pass by accident; then checks the decision, the gradients against values worked out here
by hand with SymPy or mpmath, and `grad --json` through the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.maths import exact_track
from cnnderive.maths.kinks import prove_zero
from cnnderive.maths.ops import IntervalOps, RationalOps, exact_tensordot

ROOT = Path(__file__).resolve().parent.parent
f64 = np.float64


@pytest.fixture(autouse=True)
def digits():
    """The hand-worked references in mpmath at 60 digits (this module only)."""
    with mpmath.workdps(60):
        yield


def derive(text: str) -> Derivation:
    return Derivation(loads(text, "kink.yaml"))


def grad_json(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "cnnderive", "grad", str(path), "--json"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flat(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=object).flat]


def exact_grads(d: Derivation) -> dict[str, list]:
    """The exact (SymPy) gradients of a small network, flattened."""
    assert d.exact
    return {name: list(np.asarray(grad, dtype=object).flat) for name, grad in d.values.grads.items()}


def sigmoid64(x):
    with np.errstate(over="ignore"):  # as PyTorch: exp overflows to inf, and the sigmoid is 0
        return 1 / (1 + np.exp(-x))


def softmax64(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# --- ReLU at an exact 0 behind tanh, sigmoid, softmax

TANH_RELU = """
input: {values: [0.1, 0.3]}
layers:
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[3, -1]], bias: [0]}}
  - {type: tanh}
  - {type: %s}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_float64_premise_tanh_relu():
    """float64: 0.1*3 - 0.3 = 5.6e-17, tanh keeps it positive, so ReLU would be on."""
    assert np.tanh(f64(0.1) * 3 + f64(0.3) * -1) > 0


def test_tanh_of_exact_zero_into_relu(tmp_path):
    """tanh(0) = 0 exactly, ReLU'(0) = 0: nothing reaches fc1; L = 0.5^2, dL/d(fc2.bias) = 1."""
    text = TANH_RELU % "relu"
    d = derive(text)
    assert d.network.kinks[2].tolist() == [False]
    want = {"fc1.weight": [0, 0], "fc1.bias": [0], "fc2.weight": [0], "fc2.bias": [1]}
    assert exact_grads(d) == want
    out = grad_json(tmp_path, text)
    assert out["loss"] == 0.25
    assert {name: flat(g) for name, g in out["gradients"].items()} == want
    [note] = d.network.kink_notes
    assert note.position == 2 and note.index == (0,)
    assert note.text.startswith("tanh_2.output[0] = 0 exactly")


def test_leaky_relu_after_tanh_takes_the_slope(tmp_path):
    """Leaky ReLU'(0) = 0.25 behind tanh(0): dL/dz1 = 0.25 * 2 * tanh'(0) = 1/2 (float64 would use slope 1)."""
    text = TANH_RELU % "leaky_relu, negative_slope: 0.25"
    d = derive(text)
    assert d.network.kinks[2].tolist() == [False]
    # z1 = 0, a = tanh(0) = 0, out = 0.5, dL/dout = 1, dL/da = 2, dL/d(tanh) = 1/2, tanh'(0) = 1
    want = {"fc1.weight": [F(1, 20), F(3, 20)], "fc1.bias": [F(1, 2)], "fc2.weight": [0], "fc2.bias": [1]}
    assert {name: [F(int(v.p), int(v.q)) for v in g] for name, g in exact_grads(d).items()} == want
    out = grad_json(tmp_path, text)
    got = {name: flat(g) for name, g in out["gradients"].items()}
    for name, values in want.items():  # fc2.weight is 0 exactly; 1e-17 of float noise is issue 10, item 2
        assert got[name] == pytest.approx(flat(values), rel=0, abs=1e-15 if name == "fc2.weight" else 0)
    assert got["fc1.bias"] == [0.5]  # float64's own decision (slope 1) would give 2


SIGMOID_RELU = """
input: {values: [3, -3]}
layers:
  - {type: sigmoid}
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[1, 1]], bias: [-1]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_float64_premise_sigmoid_sum():
    """float64: sigmoid(3) + sigmoid(-3) - 1 = 2.2e-16 > 0; exactly it is 0 (to 60 digits here)."""
    assert sigmoid64(f64(3)) + sigmoid64(f64(-3)) - 1 > 0
    exact = 1 / (1 + mpmath.exp(-3)) + 1 / (1 + mpmath.exp(3)) - 1
    assert abs(exact) < mpmath.mpf(10) ** -55


def test_sigmoid_sum_minus_one_into_relu(tmp_path):
    """sigmoid(3) + sigmoid(-3) - 1 = 0 is proved, so ReLU is off and fc1 gets nothing."""
    d = derive(SIGMOID_RELU)
    assert d.network.kinks[2].tolist() == [False]
    want = {"fc1.weight": [0, 0], "fc1.bias": [0], "fc2.weight": [0], "fc2.bias": [1]}
    assert exact_grads(d) == want
    out = grad_json(tmp_path, SIGMOID_RELU)
    assert {name: flat(g) for name, g in out["gradients"].items()} == want
    [note] = d.network.kink_notes
    assert (note.position, note.index) == (2, (0,))
    assert "= 0 exactly, proved" in note.text and "2.22e-16" in note.text


SOFTMAX_RELU = """
input: {values: [0.1, 0.2, 0.3]}
layers:
  - {type: linear, name: fc1, out_features: 2, params: {weight: [[0, 0, 1], [1, 1, 0]], bias: [0, 0]}}
  - {type: softmax}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[-1, 1]], bias: [0]}}
  - {type: relu}
  - {type: linear, name: fc3, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_float64_premise_softmax_difference():
    """float64: the logits 0.3 and 0.1 + 0.2 differ, and p1 - p0 = 5.6e-17 > 0 would switch ReLU on."""
    x = np.array([0.1, 0.2, 0.3])
    p = softmax64(np.array([[0, 0, 1], [1, 1, 0]], dtype=float) @ x)
    assert p[1] - p[0] > 0


def test_softmax_equal_probabilities_into_relu(tmp_path):
    """Equal logits give p0 = p1 = 1/2 exactly: p1 - p0 = 0, ReLU is off, fc1 and fc2 get nothing."""
    d = derive(SOFTMAX_RELU)
    assert d.network.kinks[3].tolist() == [False]
    want = {
        "fc1.weight": [0] * 6,
        "fc1.bias": [0, 0],
        "fc2.weight": [0, 0],
        "fc2.bias": [0],
        "fc3.weight": [0],
        "fc3.bias": [1],
    }
    assert exact_grads(d) == want
    out = grad_json(tmp_path, SOFTMAX_RELU)
    assert {name: flat(g) for name, g in out["gradients"].items()} == want
    assert [(n.position, n.index) for n in d.network.kink_notes] == [(3, (0,))]


# --- max-pool ties behind tanh and sigmoid

POOL = """
input:
  values:
    - [[%s, %s]]
    - [[0, %s]]
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, params: {weight: [[[[1]], [[1]]]], bias: [0]}}
  - {type: %s}
  - {type: maxpool2d, kernel_size: [1, 2]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[2]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
# conv1 gives [x00, x01 + x11]; the tests choose them equal exactly but not in float64


def pool_expected(first: str, second: tuple[str, str], activation, slope) -> dict[str, list]:
    """The gradients when the max-pool winner is the first element (the exact tie rule), by hand:
    p = act(z), out = 2p, L = 4p^2, dL/dp = 8p, dL/dz00 = 8p act'(z), conv1.weight = dz00 * [x00, 0]."""
    z = mpmath.mpf(F(first).numerator) / F(first).denominator
    p = activation(z)
    dz = 8 * p * slope(p)
    return {"conv1.weight": [dz * z, 0], "conv1.bias": [dz], "fc.weight": [4 * p * p], "fc.bias": [4 * p]}


@pytest.mark.parametrize(
    "kind, first, second, activation, slope, float_act",
    [
        ("tanh", "0.3", ("0.1", "0.2"), mpmath.tanh, lambda p: 1 - p * p, np.tanh),
        ("sigmoid", "-1.8", ("-4.0", "2.2"), lambda z: 1 / (1 + mpmath.exp(-z)), lambda p: p * (1 - p), sigmoid64),
    ],
)
def test_maxpool_exact_tie_behind_activation(tmp_path, kind, first, second, activation, slope, float_act):
    """act(x00) and act(x01 + x11) tie exactly; float64 makes the second larger; the first must win."""
    assert F(first) == F(second[0]) + F(second[1])
    assert float_act(f64(second[0]) + f64(second[1])) > float_act(f64(first))  # the premise
    text = POOL % (first, second[0], second[1], kind)
    d = derive(text)
    rows, cols = d.network.kinks[2]
    assert (int(rows[0, 0, 0]), int(cols[0, 0, 0])) == (0, 0)
    want = pool_expected(first, second, activation, slope)
    got = exact_grads(d)
    for name, values in want.items():
        assert [sp.N(v, 40) for v in got[name]] == pytest.approx([mpmath.mpf(v) for v in values], rel=1e-35, abs=0)
    out = grad_json(tmp_path, text)
    for name, values in want.items():
        assert flat(out["gradients"][name]) == pytest.approx([float(v) for v in values], rel=1e-14, abs=0)
    [note] = d.network.kink_notes
    assert (note.position, note.index) == (2, (0, 0, 1))
    assert f"{kind}_2.output[0,0,1] = {kind}_2.output[0,0,0] exactly" in note.text


# --- near-ties that float64 flattens: the exact order wins

NEAR_RELU = """
input: {values: [1.00000000000000000001, 1]}
layers:
  - {type: tanh}
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[1, -1]], bias: [0]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_near_tie_into_relu_is_on(tmp_path):
    """r = tanh(1 + 1e-20) - tanh(1) is about 4.2e-21 > 0 (0 in float64): ReLU is on, fc1 gets its gradient."""
    x0 = 1 + mpmath.mpf(10) ** -20
    assert np.tanh(f64("1.00000000000000000001")) - np.tanh(f64(1)) == 0  # the premise: float64 says off
    r = mpmath.tanh(x0) - mpmath.tanh(1)
    assert r > 0
    dz = 4 * (2 * r + mpmath.mpf(1) / 2)  # dL/d(fc1.output), ReLU on
    want = {
        "fc1.weight": [dz * mpmath.tanh(x0), dz * mpmath.tanh(1)],
        "fc1.bias": [dz],
        "fc2.weight": [2 * (2 * r + mpmath.mpf(1) / 2) * r],
        "fc2.bias": [2 * (2 * r + mpmath.mpf(1) / 2)],
    }
    d = derive(NEAR_RELU)
    assert d.network.kinks[2].tolist() == [True]
    got = exact_grads(d)
    for name, values in want.items():
        assert [sp.N(v, 40) for v in got[name]] == pytest.approx(values, rel=1e-35, abs=0)
    out = grad_json(tmp_path, NEAR_RELU)
    for name in ("fc1.weight", "fc1.bias", "fc2.bias"):
        assert flat(out["gradients"][name]) == pytest.approx([float(v) for v in want[name]], rel=1e-15, abs=0)
    [note] = d.network.kink_notes
    assert (note.position, note.index) == (2, (0,))
    assert "fc1.output[0] > 0 for certain: decided at 30 digits" in note.text


NEAR_POOL = """
input:
  values:
    - [[1, 0.5]]
    - [[0, 0.50000000000000000001]]
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, params: {weight: [[[[1]], [[1]]]], bias: [0]}}
  - {type: sigmoid}
  - {type: maxpool2d, kernel_size: [1, 2]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[2]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_near_tie_in_maxpool_goes_to_the_larger(tmp_path):
    """sigmoid(1 + 1e-20) > sigmoid(1): the second element wins (float64 ties them and picks the first)."""
    assert f64(0.5) + f64("0.50000000000000000001") == f64(1)  # the premise: a float64 tie
    z = 1 + mpmath.mpf(10) ** -20
    p = 1 / (1 + mpmath.exp(-z))
    dz = 8 * p * p * (1 - p)  # L = (2p)^2
    half = mpmath.mpf(1) / 2
    want = {"conv1.weight": [dz * half, dz * (half + mpmath.mpf(10) ** -20)], "conv1.bias": [dz]}
    d = derive(NEAR_POOL)
    rows, cols = d.network.kinks[2]
    assert (int(rows[0, 0, 0]), int(cols[0, 0, 0])) == (0, 1)
    got = exact_grads(d)
    for name, values in want.items():
        assert [sp.N(v, 40) for v in got[name]] == pytest.approx(values, rel=1e-35, abs=0)
    out = grad_json(tmp_path, NEAR_POOL)
    for name, values in want.items():
        assert flat(out["gradients"][name]) == pytest.approx([float(v) for v in values], rel=1e-15, abs=0)


SATURATED = """
input: {values: [-800]}
layers:
  - {type: sigmoid}
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[1]], bias: [0]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_saturated_sigmoid_is_still_positive(tmp_path):
    """sigmoid(-800) = 1/(1 + e^800) > 0, though float64 rounds it to 0: ReLU is on, and fc1.bias gets
    dL/dz = 4 (2 s + 1/2), 2 to double precision (float64's own decision would give 0)."""
    assert sigmoid64(f64(-800)) == 0  # the premise
    s = 1 / (1 + mpmath.exp(800))
    d = derive(SATURATED)
    assert d.network.kinks[2].tolist() == [True]
    got = exact_grads(d)
    assert sp.N(got["fc1.bias"][0], 40) == pytest.approx(4 * (2 * s + mpmath.mpf(1) / 2), rel=1e-35)
    assert sp.N(got["fc1.weight"][0], 40) == pytest.approx(4 * (2 * s + mpmath.mpf(1) / 2) * s, rel=1e-35)
    assert grad_json(tmp_path, SATURATED)["gradients"]["fc1.bias"] == [2.0]
    [note] = d.network.kink_notes
    assert "fc1.output[0] > 0 for certain" in note.text


def test_a_difference_below_every_precision_is_still_ordered():
    """tanh(9e99 * 9e99) - 1 = -2/(e^(1.62e200) + 1) is far below 240 digits; its enclosure still ends at 0
    from below, which proves it is not > 0: ReLU is off for certain, not 'taken as equal'."""
    text = """
input: {values: ["9e99"]}
layers:
  - {type: linear, name: fc1, out_features: 1, params: {weight: [["9e99"]], bias: [0]}}
  - {type: tanh}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[1]], bias: [-1]}}
  - {type: relu}
loss: {type: mse, target: [0], reduction: sum}
"""
    network = loads(text, "kink.yaml")
    assert network.kinks[3].tolist() == [False]
    [note] = network.kink_notes
    assert note.text.startswith("fc2.output[0] <= 0 for certain")


# --- how the exact route decides, piece by piece


def test_without_sympy_forms_an_unseparable_tie_is_taken_as_equal(monkeypatch):
    """When the exact forms would be too big, intervals to 240 digits cannot separate an exact 0:
    it is taken as 0 (the right answer here), and the note says that it is not proved."""
    monkeypatch.setattr(exact_track, "SYMPY_TERM_LIMIT", -1)
    network = loads(SIGMOID_RELU, "kink.yaml")
    assert network.kinks[2].tolist() == [False]
    [note] = network.kink_notes
    assert "taken as equal" in note.text and "not proved" in note.text and "240 digits" in note.text


def test_exact_zeros_behind_a_conv_over_tanh_are_proved():
    """conv2 takes tanh(a) - tanh(a) at every position (a constant image, kernel [1, -1]): each output is 0
    exactly, ReLU is off everywhere, and each zero is shown from the exact forms of that element alone."""
    text = """
input: {values: [[[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 2, kernel_size: 2, params: {weight: [[[[0.1, 0.2], [0.3, -0.4]]], [[[0.7, 0.1], [0.2, 0.3]]]], bias: [0.1, 0.2]}}
  - {type: tanh}
  - {type: conv2d, name: conv2, out_channels: 1, kernel_size: [1, 2], params: {weight: [[[[1, -1]], [[2, -2]]]], bias: [0]}}
  - {type: relu}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 1, 1, 1, 1, 1]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    x = f64(0.5)
    a0, a1 = np.tanh(x * (0.1 + 0.2 + 0.3 - 0.4) + 0.1), np.tanh(x * (0.7 + 0.1 + 0.2 + 0.3) + 0.2)
    assert (a0 - a0) + 2 * (a1 - a1) == 0  # float64 agrees here: the test is of the proof and the cost
    network = loads(text, "kink.yaml")
    assert network.kinks[3].reshape(-1).tolist() == [False] * 6
    notes = network.kink_notes
    assert len(notes) == 6 and all(n.position == 3 and "= 0 exactly" in n.text for n in notes)
    assert all(as_float(g) == 0 for name, g in Derivation(network).values.grads.items() if name != "fc.bias")


def as_float(values) -> float:
    return max(abs(float(v)) for v in np.asarray(values, dtype=object).flat)


def test_affine_forms_read_off_a_layer_exactly():
    """A conv layer run on Affine forms gives each output as its exact weights times its window, plus the bias."""
    text = """
input: {values: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: [2, 2], padding: [0, 1], params: {weight: [[[[0.5, -1], ["1/3", 2]]]], bias: [0.25]}}
  - {type: relu}
loss: {type: mse, target: [0, 0, 0, 0], reduction: sum}
"""
    network = loads(text, "kink.yaml")
    conv = network.layers[0]
    basis = np.empty(conv.in_shape, dtype=object)
    for j in np.ndindex(conv.in_shape):
        basis[j] = exact_track.Affine(j)
    out = conv.forward(basis, network.params["conv1"], None, RationalOps())
    w = {(0, 0): F(1, 2), (0, 1): F(-1), (1, 0): F(1, 3), (1, 1): F(2)}
    for col in range(4):  # padding 1 left and right: window columns col - 1 and col
        want = {(0, r, col - 1 + c): w[r, c] for r in range(2) for c in range(2) if 0 <= col - 1 + c < 3}
        terms, offset = out[0, 0, col].collect()
        assert dict(terms) == want and offset == F(1, 4)


def test_far_from_the_kinks_floats_decide_and_leave_no_note():
    """A transcendental network whose kinks are clear needs no exact work: no notes."""
    text = TANH_RELU.replace("[[3, -1]]", "[[3, 1]]") % "relu"
    network = loads(text, "kink.yaml")
    assert network.kinks[2].tolist() == [True]
    assert network.kink_notes == []


def test_rational_networks_have_no_notes():
    network = loads(TANH_RELU.replace("  - {type: tanh}\n", "") % "relu", "kink.yaml")
    assert network.kinks[1].tolist() == [False]
    assert network.kink_notes == []


def test_relu_zeros_tie_exactly_in_a_maxpool_after_tanh():
    """ReLU outputs that are exactly 0 tie exactly in the next max-pool (the first wins) without notes."""
    text = """
input: {values: [[-0.5, -0.25, 0.1, 0.2]]}
layers:
  - {type: tanh}
  - {type: relu}
  - {type: maxpool2d, kernel_size: [1, 2]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 2, params: {weight: [[1, 0], [0, 1]], bias: [0, 0]}}
loss: {type: mse, target: [0, 0], reduction: sum}
"""
    network = loads(text, "kink.yaml")
    _, cols = network.kinks[2]
    assert cols.reshape(-1).tolist() == [0, 3]
    assert network.kinks[1].reshape(-1).tolist() == [False, False, True, True]
    assert network.kink_notes == []


def test_prove_zero_decides_identities_of_exp_with_rational_arguments():
    """sigmoid(a) + sigmoid(-a) = 1 and tanh(1/2) = (e - 1)/(e + 1) are proved; cosh(1/3) = 1 is refuted."""
    a = sp.Rational(3)
    assert prove_zero(1 / (1 + sp.exp(-a)) + 1 / (1 + sp.exp(a)) - 1)[0] is True
    assert prove_zero(sp.tanh(sp.Rational(1, 2)) - (sp.E - 1) / (sp.E + 1))[0] is True
    assert prove_zero(sp.exp(sp.Rational(1, 3)) + sp.exp(sp.Rational(-1, 3)) - 2)[0] is False
    assert prove_zero(sp.tanh(sp.tanh(sp.Rational(1, 3))) - sp.Rational(1, 3))[0] is not True


@pytest.mark.parametrize("bits", [53, 100, 400])
def test_intervals_hold_the_exact_values(bits):
    """IntervalOps: exp, tanh, log and the arithmetic of a sigmoid enclose the values mpmath gives at 60 digits."""
    ops = IntervalOps(bits)
    x = ops.array(np.array([F(3, 10), F(-7, 3), F(1, 10**20), F(40)], dtype=object))
    mpmath.mp.prec = bits + 100  # the references, far more precise (the fixture restores it)
    exact = [mpmath.mpf(3) / 10, mpmath.mpf(-7) / 3, mpmath.mpf(10) ** -20, mpmath.mpf(40)]
    checks = [
        (ops.tanh(x), [mpmath.tanh(v) for v in exact]),
        (ops.exp(x), [mpmath.exp(v) for v in exact]),
        (1 / (1 + ops.exp(-x)), [1 / (1 + mpmath.exp(-v)) for v in exact]),
        (ops.log(ops.exp(x)), exact),
    ]
    for intervals, values in checks:
        for interval, value in zip(intervals, values):
            assert interval.a <= value <= interval.b
            assert interval.delta < mpmath.mpf(2) ** (-bits + 10) * max(1, abs(value))


# --- tiny numbers in the exact arithmetic (issue 10, item 5)

TINY = """
input: {values: ["%s"]}
layers:
  - {type: linear, name: fc, out_features: 1, params: {weight: [["%s"]], bias: ["%s"]}}
  - {type: relu}
loss: {type: mse, target: [0], reduction: sum}
"""


@pytest.mark.parametrize(
    "x, w, b",
    [("1e-19", "1", "0"), ("1e-19", "1e-30", "3e-25"), ("1/3", "1e-40", "-1/7"), ("1e-90", "1e-90", "0")],
)
def test_tiny_numbers_are_exact_and_do_not_crash(tmp_path, x, w, b):
    """The exact pass and `grad --json` on numbers whose common denominators pass 2**63: by hand,
    z = w x + b, relu on iff z > 0, L = relu(z)^2, dL/dw = 2 z x, dL/db = 2 z when on."""
    x_, w_, b_ = F(x), F(w), F(b)
    z = w_ * x_ + b_
    on = z > 0
    text = TINY % (x, w, b)
    d = derive(text)
    assert d.network.kinks[1].tolist() == [on]
    r = d.network.run(RationalOps())
    want = {"fc.weight": [2 * z * x_ if on else 0], "fc.bias": [2 * z if on else 0]}
    assert {name: list(g.flat) for name, g in r.grads.items()} == want
    assert r.loss == (z * z if on else 0)
    out = grad_json(tmp_path, text)
    assert out["loss"] == float(z * z if on else 0)
    assert {name: flat(g) for name, g in out["gradients"].items()} == {
        k: [float(v) for v in vs] for k, vs in want.items()
    }


def test_tiny_numbers_explain_runs(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY % ("1e-19", "1", "0"))
    result = subprocess.run(
        [sys.executable, "-m", "cnnderive", "explain", str(path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_exact_tensordot_with_denominators_past_int64():
    """Fractions whose common denominators pass 2**63 (and zero operands) contract like plain Fraction arithmetic."""
    rng = np.random.default_rng(0)
    pick = [F(0), F(1, 10**19), F(-3, 10**25), F(7, 3), F(10**30), F(1, 7 * 10**40)]
    for _ in range(20):
        a = np.array([pick[i] for i in rng.integers(0, len(pick), 6)], dtype=object).reshape(2, 3)
        b = np.array([pick[i] for i in rng.integers(0, len(pick), 3)], dtype=object)
        plus = np.array([pick[i] for i in rng.integers(0, len(pick), 2)], dtype=object)
        want = [sum((a[k, j] * b[j] for j in range(3)), F(0)) + plus[k] for k in range(2)]
        assert exact_tensordot(a, b, 1, plus).tolist() == want
        assert exact_tensordot(a, b * 0, 1, plus).tolist() == plus.tolist()


SOFTMAX_POOL = """
name: softmax, ReLU and max-pool over ties and a near-tie of the logits
input:
  values:
    - [1, 1, 2, "2.00000000000000000001"]
    - [0, 0, 0, 1]
    - [3, 0, 0, 0]
    - [0, 3, 0, 0]
layers:
  - type: softmax
  - type: relu
  - type: maxpool2d
    kernel_size: 2
  - type: flatten
  - type: linear
    out_features: 1
    params: {weight: [[1, 2, 3, 4]], bias: [0]}
loss: {type: mse, target: [0]}
"""


def test_ties_after_softmax_are_decided_on_the_logits():
    """Softmax (one shared denominator) and ReLU (both on) keep the order of two elements, so a tie
    of p is decided exactly on the logits: 1 = 1 ties (the first wins), 2 < 2 + 1e-20 does not
    (float64 sees a tie and would pick the first), 3 = 3 and 0 = 0 tie."""
    d = derive(SOFTMAX_POOL)
    z = np.array([[1, 1, 2, 2 + 1e-20], [0, 0, 0, 1], [3, 0, 0, 0], [0, 3, 0, 0]], dtype=f64)
    p = np.exp(z) / np.exp(z).sum()
    assert p[0, 2] == p[0, 3]  # float64 cannot tell the near-tie
    kinks = d.network.kinks[2]
    mask = d.network.layers[2].mask(kinks)[0]
    assert mask.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    notes = [note.text for note in d.network.kink_notes if note.position == 2]
    assert notes and all("keep the order" in text for text in notes)
    assert any("-1/100000000000000000000" in text or "1/100000000000000000000" in text for text in notes)
