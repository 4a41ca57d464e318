"""Kinks are decided exactly: ReLU'(0) = 0, leaky ReLU'(0) = slope, max-pool ties to the first maximum.

Each network is built so that float64 alone would decide the kink the other way; the tool must
follow the exact numbers (spec section 2) on the exact track and on the float track alike.
Here the values stay fractions; kinks behind tanh, sigmoid and softmax are in test_exact_kinks.py.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.maths.ops import RationalOps


def derive(text: str) -> Derivation:
    return Derivation(loads(text, "kink.yaml"))


def exact(d: Derivation):
    return d.network.run(RationalOps())


def as_floats(values) -> list:
    return [float(v) for v in np.asarray(values).flat]


# --- ReLU at exactly 0


RELU_ZERO = """
input: {values: [0.1, 0.3]}
layers:
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[3, -1]], bias: [0]}}
  - {type: %s}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_float64_premise_relu():
    """The premise: in float64, 0.1*3 - 0.3 is a tiny positive number, not 0."""
    assert np.float64(0.1) * 3 + np.float64(0.3) * -1 > 0


def test_relu_at_exact_zero_has_derivative_zero():
    """fc1's output is exactly 0 (0.1*3 - 0.3), so ReLU is off and no gradient reaches fc1."""
    d = derive(RELU_ZERO % "relu")
    assert d.network.kinks[1].tolist() == [False]
    for grads in (exact(d).grads, d.floats.grads, d.gradient_floats(), d.values.grads):
        assert as_floats(grads["fc1.weight"]) == [0.0, 0.0]
        assert as_floats(grads["fc1.bias"]) == [0.0]
        assert as_floats(grads["fc2.weight"]) == [0.0]  # ReLU's output is 0
        assert as_floats(grads["fc2.bias"]) == [1.0]  # 2 * (0.5 - 0)
    assert exact(d).values[1][0] == 0
    assert d.floats.values[2][0] == 0.0  # the float track follows the exact decision
    g = d.gradient(d.tensors["fc1.weight"], (0, 0))
    assert [t.cut is not None and "ReLU" in str(t.cut) for t in g.terms] == [True]


def test_relu_at_exact_zero_in_a_conv():
    """The same in a conv: 0.1 + 0.2 - 0.3 is 0 exactly (5.6e-17 in float64), so conv1 gets nothing there."""
    text = """
input: {values: [[0.1, 0.2], [0.3, 0.5]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: [1, 2], params: {weight: [[1, 1]], bias: [-0.3]}}
  - {type: relu}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 1]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    # conv1 outputs: [0.1 + 0.2 - 0.3, 0.3 + 0.5 - 0.3] = [0, 0.5]
    assert np.float64(0.1) + np.float64(0.2) - np.float64(0.3) > 0  # float64 would let it through
    d = derive(text)
    assert d.network.kinks[1][0].tolist() == [[False], [True]]
    r = exact(d)
    assert r.values[1][0, 0, 0] == 0 and r.values[1][0, 1, 0] == F(1, 2)
    # L = (0 + 0.5)^2, dL/dz = 1 at the live output only
    for grads in (r.grads, d.floats.grads, d.gradient_floats()):
        assert as_floats(grads["conv1.weight"]) == pytest.approx([0.3, 0.5], abs=0)
        assert as_floats(grads["conv1.bias"]) == [1.0]
        assert as_floats(grads["fc.weight"]) == pytest.approx([0.0, 0.5], abs=0)


def test_relu_just_above_zero_is_on_even_where_float64_says_zero():
    """1.00000000000000000001 - 1 is 1e-20 > 0 exactly (0.0 in float64): ReLU is on, the gradient passes."""
    text = """
input: {values: [1.00000000000000000001, 1]}
layers:
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[1, -1]], bias: [0]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    d = derive(text)
    assert d.network.kinks[1].tolist() == [True]
    r = exact(d)
    x0 = F(10**20 + 1, 10**20)
    z1 = x0 - 1
    dz1 = 2 * (2 * z1 + F(1, 2)) * 2
    assert r.grads["fc1.weight"].tolist() == [[dz1 * x0, dz1]]
    assert r.grads["fc1.bias"].tolist() == [dz1]
    assert as_floats(d.floats.grads["fc1.weight"]) == pytest.approx([2.0, 2.0], rel=1e-12)
    assert as_floats(d.gradient_floats()["fc1.weight"]) == [float(dz1 * x0), float(dz1)]


# --- leaky ReLU at exactly 0


def test_leaky_relu_at_exact_zero_takes_the_slope():
    """Leaky ReLU'(0) is the negative slope: dL/dz1 = 0.25 * dL/da, exactly and in floats."""
    d = derive(RELU_ZERO % "leaky_relu, negative_slope: 0.25")
    assert d.network.kinks[1].tolist() == [False]
    # z1 = 0, a = 0, z2 = 0.5, L = 0.25, dL/dz2 = 1, dL/da = 2, dL/dz1 = 0.25 * 2 = 0.5
    r = exact(d)
    assert r.grads["fc1.weight"].tolist() == [[F(1, 20), F(3, 20)]]
    assert r.grads["fc1.bias"].tolist() == [F(1, 2)]
    for grads in (d.floats.grads, d.gradient_floats(), d.values.grads):
        assert as_floats(grads["fc1.weight"]) == pytest.approx([0.05, 0.15], rel=1e-15)
        assert as_floats(grads["fc1.bias"]) == pytest.approx([0.5], rel=1e-15)
    g = d.gradient(d.tensors["fc1.weight"], (0, 1))
    assert [t.cut for t in g.terms] == [None]


def test_leaky_relu_default_slope_at_zero():
    """Without negative_slope the slope is 0.01 (PyTorch's default), also at 0."""
    d = derive(RELU_ZERO % "leaky_relu")
    assert exact(d).grads["fc1.bias"].tolist() == [F(2, 100)]


# --- max-pool ties

TIE_FLOAT = """
input:
  values:
    - [[0.3, 0.1], [0, 0]]
    - [[0, 0.2], [0, 0]]
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, params: {weight: [[[[1]], [[1]]]], bias: [0]}}
  - {type: maxpool2d, kernel_size: 2}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[2]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_maxpool_exact_tie_that_float64_breaks_the_other_way():
    """0.3 + 0 and 0.1 + 0.2 tie exactly; float64 makes the second larger, the first (row-major) must win."""
    floats = np.float64(0.3) + 0, np.float64(0.1) + np.float64(0.2)
    assert floats[1] > floats[0]  # the premise: float64 alone would route to [0, 1]
    d = derive(TIE_FLOAT)
    rows, cols = d.network.kinks[1]
    assert (int(rows[0, 0, 0]), int(cols[0, 0, 0])) == (0, 0)
    # p = 0.3, out = 0.6, L = 0.36, dL/dp = 2 * 0.6 * 2 = 2.4, all of it to conv output [0, 0]
    r = exact(d)
    assert r.deltas[1][0].tolist() == [[F(12, 5), 0], [0, 0]]
    assert r.grads["conv1.weight"].reshape(-1).tolist() == [F(12, 5) * F(3, 10), 0]
    assert r.grads["conv1.bias"].tolist() == [F(12, 5)]
    for grads in (d.floats.grads, d.gradient_floats(), d.values.grads):
        assert as_floats(grads["conv1.weight"]) == pytest.approx([0.72, 0.0], rel=1e-15, abs=0)
    assert d.floats.deltas[1][0, 0, 1] == 0.0


def test_maxpool_tie_goes_to_first_in_row_major_order():
    """Window [[1, 2], [2, 0]]: the 2 at [0, 1] wins (row-major), not the 2 at [1, 0] (column-major)."""
    text = """
input: {values: [[1, 2, 5, 5], [2, 0, 5, 5]]}
layers:
  - {type: maxpool2d, kernel_size: 2}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 1]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    d = derive(text)
    r = exact(d)
    dx = r.deltas[0][0]
    live = {(i, j) for i in range(2) for j in range(4) if dx[i, j] != 0}
    assert live == {(0, 1), (0, 2)}  # four equal 5s: the first one, top left
    assert as_floats(d.floats.deltas[0][0].reshape(-1)) == as_floats(dx.reshape(-1))


def test_maxpool_tie_in_later_window_positions_with_stride():
    """The first maximum is found per window, in the window's own row-major order, for every window."""
    text = """
input: {values: [[0, 1, 1, 0, 0], [3, 3, 0, 3, 3], [3, 3, 1, 2, 1]]}
layers:
  - {type: maxpool2d, kernel_size: [2, 2], stride: [1, 3]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 10, 100, 1000]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    d = derive(text)
    rows, cols = d.network.kinks[0]
    winners = [(int(r), int(c)) for r, c in zip(rows.flat, cols.flat)]
    assert winners == [(1, 0), (1, 3), (1, 0), (1, 3)]
    dx = exact(d).deltas[0][0]
    dp = exact(d).deltas[1][0]
    assert dx[1, 0] == dp[0, 0] + dp[1, 0] and dx[1, 3] == dp[0, 1] + dp[1, 1]
    assert sum(1 for v in dx.flat if v != 0) == 2


# --- overlapping max-pool windows


def test_overlapping_maxpool_windows_accumulate():
    """With stride 1 the center is the max of all four 2x2 windows: it gets the sum of their four deltas."""
    text = """
input: {values: [[0.1, 0.2, 0.3], [0.4, 0.9, 0.5], [0.6, 0.7, 0.8]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, params: {weight: [[2]], bias: [0.1]}}
  - {type: maxpool2d, kernel_size: 2, stride: 1}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[0.1, 0.2, 0.3, 0.4]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    d = derive(text)
    r = exact(d)
    z_center = 2 * F(9, 10) + F(1, 10)  # 1.9, the maximum of every window
    out = z_center * (F(1, 10) + F(2, 10) + F(3, 10) + F(4, 10))
    dp = [2 * out * w for w in (F(1, 10), F(2, 10), F(3, 10), F(4, 10))]
    dz = r.deltas[1][0]
    assert dz[1, 1] == sum(dp)
    assert sum(1 for v in dz.flat if v != 0) == 1
    assert r.grads["conv1.weight"].reshape(-1).tolist() == [sum(dp) * F(9, 10)]
    assert r.grads["conv1.bias"].tolist() == [sum(dp)]
    assert d.gradient_floats()["conv1.weight"].reshape(-1).tolist() == [float(sum(dp) * F(9, 10))]
    assert as_floats(d.floats.grads["conv1.weight"]) == pytest.approx([float(sum(dp) * F(9, 10))], rel=1e-14)
    mask = d.network.layers[1].mask(d.network.kinks[1])[0]
    assert mask.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_overlapping_windows_partly_shared():
    """An element that wins two of its windows gets exactly those two deltas."""
    text = """
input: {values: [[1, 9, 2], [3, 4, 5], [6, 7, 8]]}
layers:
  - {type: maxpool2d, kernel_size: 2, stride: 1}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 2, 3, 4]], bias: [0]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    d = derive(text)
    r = exact(d)
    # windows: [[1,9],[3,4]] -> 9, [[9,2],[4,5]] -> 9, [[3,4],[6,7]] -> 7, [[4,5],[7,8]] -> 8
    out = 9 * 1 + 9 * 2 + 7 * 3 + 8 * 4
    dp = [2 * out * w for w in (1, 2, 3, 4)]
    dx = r.deltas[0][0]
    assert dx.tolist() == [[0, dp[0] + dp[1], 0], [0, 0, 0], [0, dp[2], dp[3]]]
    assert d.floats.deltas[0][0].tolist() == [[0, dp[0] + dp[1], 0], [0, 0, 0], [0, dp[2], dp[3]]]
