"""The three user questions (shared/seeds/README.md), settled on their own networks in configs/.

The expected numbers are worked out here by hand, with Fractions, from the numbers in the
configs (which the first assertion of each test pins, so a changed config fails loudly).
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
import sympy

import cnnderive
from cnnderive.derivation.steps import build_steps
from cnnderive.maths.ops import RationalOps
from tests.conftest import CONFIGS


def rational(q) -> sympy.Rational:
    q = F(q)
    return sympy.Rational(q.numerator, q.denominator)


def same(a, b) -> bool:
    """Exact equality of two SymPy numbers (exp and log of rationals included)."""
    diff = sympy.sympify(a) - sympy.sympify(b)
    return diff == 0 or sympy.expand(diff) == 0 or sympy.simplify(diff) == 0


def fractions(rows) -> np.ndarray:
    return np.array([[F(str(v)) for v in row] for row in rows], dtype=object)


def load(name: str):
    return cnnderive.load(CONFIGS / name)


# --- seed 001: the chain rule gives a sum of products, not a product of sums

I = fractions([[1, 2, 0], [0, 1, 3], [2, 1, 1]])  # i_1 .. i_9, row-major
W1 = fractions([["0.5", "-0.3"], ["0.2", "0.1"]])  # w_1^1 .. w_4^1
W2 = fractions([["0.4", "0.2"], ["-0.1", "0.3"]])  # w_1^2 .. w_4^2
Y = F(1, 2)


def seed001_by_hand():
    i1, i2, i3, i4, i5, i6, i7, i8, i9 = I.flat
    w11, w21, w31, w41 = W1.flat
    w12, w22, w32, w42 = W2.flat
    o1 = [
        w11 * i1 + w21 * i2 + w31 * i4 + w41 * i5,
        w11 * i2 + w21 * i3 + w31 * i5 + w41 * i6,
        w11 * i4 + w21 * i5 + w31 * i7 + w41 * i8,
        w11 * i5 + w21 * i6 + w31 * i8 + w41 * i9,
    ]
    o = w12 * o1[0] + w22 * o1[1] + w32 * o1[2] + w42 * o1[3]
    dc_dw11 = 2 * (o - Y) * (i1 * w12 + i2 * w22 + i4 * w32 + i5 * w42)
    asker = (i1 + i2 + i4 + i5) * (w12 + w22 + w32 + w42) * 2 * (o - Y)
    return o, dc_dw11, asker


def test_seed001_config_is_the_question():
    d = load("seed001_conv_conv_mse.yaml")
    net = d.network
    assert (net.input.reshape(3, 3) == I).all()
    assert (net.params["conv1"]["weight"].reshape(2, 2) == W1).all()
    assert (net.params["conv2"]["weight"].reshape(2, 2) == W2).all()
    assert list(net.target) == [Y]
    assert set(net.params["conv1"]) == {"weight"} and set(net.params["conv2"]) == {"weight"}


def test_seed001_dc_dw11_is_the_sum_of_products_exactly():
    """dC/dw_1^1 = 2(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2), exactly, on every track."""
    o, want, asker = seed001_by_hand()
    d = load("seed001_conv_conv_mse.yaml")
    assert d.values.values[-1][0, 0, 0] == rational(o)
    assert d.values.loss == rational((o - Y) ** 2)
    assert d.values.grads["conv1.weight"][0, 0, 0, 0] == rational(want)
    assert d.gradient_floats()["conv1.weight"][0, 0, 0, 0] == float(want)
    assert d.floats.grads["conv1.weight"][0, 0, 0, 0] == pytest.approx(float(want), rel=1e-12)
    assert asker != want  # the question's product of sums is a different number


def test_seed001_chain_terms_are_the_four_products():
    """The terms of conv1.weight[0,0,0,0] are dC/do1_k * i_k over the four outputs w_1^1 touches."""
    o, want, _ = seed001_by_hand()
    d = load("seed001_conv_conv_mse.yaml")
    g = d.gradient(d.tensors["conv1.weight"], (0, 0, 0, 0))
    assert len(g.terms) == 4
    assert [t.factor.name for t in g.terms] == ["input"] * 4
    assert [t.factor_index for t in g.terms] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    assert [t.out.name for t in g.terms] == ["conv1.output"] * 4
    assert [t.out_index for t in g.terms] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    assert all(t.cut is None for t in g.terms)
    i1, i2, _, i4, i5 = list(I.flat)[:5]
    for term, i_k, w_k in zip(g.terms, [i1, i2, i4, i5], W2.flat):
        assert term.delta == rational(2 * (o - Y) * w_k)
        assert term.local == rational(i_k)
    assert sum((t.value for t in g.terms), sympy.Integer(0)) == rational(want)
    assert g.value == rational(want)


# --- seed 000: max-pool routes the gradient to the winner only


X000 = fractions([[1, 0, 2, 1, 0], [0, 1, 3, 1, 2], [2, 1, 0, 1, 1], [1, 2, 1, 0, 3], [0, 1, 2, 2, 1]])
K000 = fractions([["0.1", "-0.2"], ["0.3", "0.4"]])  # the contract's numbers: a 3-way tie
K000_FREE = fractions([["0.1", "-0.2"], ["0.4", "0.4"]])  # the shipped seed 000: no tie, no zero
B000 = F(0)
X000A = fractions([[F(r + c + 1, 10) for c in range(5)] for r in range(5)])
K000A = fractions([["0.5", "0.2"], ["0.1", "0.4"]])
B000A = F("-0.3")

SEED000 = {
    "seed000_maxpool_flatten.yaml": (X000, K000_FREE, B000, 2, 2),
    "seed000_tied_maxpool.yaml": (X000, K000, B000, 2, 2),
    "seed000_answer_maxpool3.yaml": (X000A, K000A, B000A, 3, 1),
}


def conv_by_hand(x, k, b):
    n = x.shape[0] - k.shape[0] + 1
    return np.array(
        [[b + sum(k[a, c] * x[i + a, j + c] for a in range(2) for c in range(2)) for j in range(n)] for i in range(n)],
        dtype=object,
    )


def winners_by_hand(a, size, stride):
    """The first maximum (row-major) of every pooling window: {window: (row, col)}."""
    out = {}
    n = (a.shape[0] - size) // stride + 1
    for i in range(n):
        for j in range(n):
            best = None
            for r in range(i * stride, i * stride + size):
                for c in range(j * stride, j * stride + size):
                    if best is None or a[r, c] > a[best]:
                        best = (r, c)
            out[(i, j)] = best
    return out


@pytest.mark.parametrize("name", list(SEED000))
def test_seed000_conv_output_and_routing(name):
    """dL/d(conv output) is zero exactly where max-pool did not select; the winner gets the pool's delta."""
    x, k, b, size, stride = SEED000[name]
    d = load(name)
    net = d.network
    assert (net.input[0] == x).all()
    assert (net.params["conv1"]["weight"][0, 0] == k).all() and net.params["conv1"]["bias"][0] == b
    assert [layer.kind for layer in net.layers[:3]] == ["conv2d", "relu", "maxpool2d"]
    z = conv_by_hand(x, k, b)
    assert all(d.values.values[1][0, i, j] == rational(z[i, j]) for i in range(4) for j in range(4))
    relu = np.array([[max(v, F(0)) for v in row] for row in z], dtype=object)
    winners = winners_by_hand(relu, size, stride)
    selected = set(winners.values())

    dz, da, dp = d.values.deltas[1][0], d.values.deltas[2][0], d.values.deltas[3][0]
    for r in range(4):
        for c in range(4):
            routed = [dp[w] for w, pos in winners.items() if pos == (r, c)]
            if not routed:
                assert da[r, c] == 0 and dz[r, c] == 0, (r, c)
                assert d.floats.deltas[1][0, r, c] == 0.0
            else:
                assert same(da[r, c], sum(routed, sympy.Integer(0))), (r, c)
                assert same(dz[r, c], da[r, c] if z[r, c] > 0 else 0), (r, c)
    assert {pos for pos in selected if z[pos] > 0} == {
        (r, c) for r in range(4) for c in range(4) if not same(dz[r, c], 0)
    }
    pool = net.layers[2]
    mask = pool.mask(net.kinks[2])[0]
    assert {(r, c) for r in range(4) for c in range(4) if mask[r, c]} == selected


def test_seed000_answer_routing_mask():
    """The answer's 3x3 window, stride 1, on the 4x4 map: the mask [[0,0,0,0],[0,0,0,0],[0,0,1,1],[0,0,1,1]]."""
    d = load("seed000_answer_maxpool3.yaml")
    pool = d.network.layers[2]
    expected = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert pool.mask(d.network.kinks[2])[0].tolist() == expected
    nonzero = [[int(not same(v, 0)) for v in row] for row in d.values.deltas[1][0]]
    assert nonzero == expected
    assert (np.asarray(d.floats.deltas[1][0] != 0, dtype=int) == np.array(expected)).all()


@pytest.mark.parametrize("name", list(SEED000))
def test_seed000_conv_gradient_is_the_sum_of_surviving_terms(name):
    """Every conv1 weight and bias gradient is the sum of its non-cut chain terms; cut terms carry delta 0."""
    d = load(name)
    for pname in ("conv1.weight", "conv1.bias"):
        tensor = d.tensors[pname]
        for index in tensor.indices():
            g = d.gradient(tensor, index)
            assert len(g.terms) == 16
            assert g.live_terms, "every conv parameter keeps some term here"
            assert all(same(t.delta, 0) for t in g.cut_terms)
            total = sum((t.value for t in g.live_terms), sympy.Integer(0))
            assert same(total, g.value), (pname, index)
            assert same(g.value, d.values.grads[pname][index])
            assert float(total) == pytest.approx(d.floats.grads[pname][index], rel=1e-12, abs=1e-15)


def test_shipped_seed000_teaches_without_accidents():
    """The shipped seed 000 has no tied window and no ReLU input at 0 (by hand), and says none."""
    x, k, b, _, _ = SEED000["seed000_maxpool_flatten.yaml"]
    z = conv_by_hand(x, k, b)
    assert all(v != 0 for v in z.flat) and any(v < 0 for v in z.flat)
    relu = np.array([[max(v, F(0)) for v in row] for row in z], dtype=object)
    for i in range(2):
        for j in range(2):
            window = list(relu[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].flat)
            assert window.count(max(window)) == 1
    steps = build_steps(load("seed000_maxpool_flatten.yaml"))
    assert not any(step.conventions for step in steps.layers)


@pytest.mark.parametrize("name", ["seed000_maxpool_flatten.yaml", "seed000_tied_maxpool.yaml"])
def test_seed000_cut_reasons_name_the_kink(name):
    """A term is cut for max-pool (not the winner) or for ReLU (off), matching the exact numbers."""
    x, k, b, size, stride = SEED000[name]
    z = conv_by_hand(x, k, b)
    winners = set(
        winners_by_hand(np.array([[max(v, F(0)) for v in row] for row in z], dtype=object), size, stride).values()
    )
    d = load(name)
    g = d.gradient(d.tensors["conv1.weight"], (0, 0, 0, 0))
    for t in g.terms:
        pos = t.out_index[1:]
        if z[pos] <= 0:
            assert t.cut is not None and "ReLU" in str(t.cut)
        elif pos not in winners:
            assert t.cut is not None and "max-pool" in str(t.cut)
        else:
            assert t.cut is None


# --- seed 002: add the gradients from the next layer; pooling neurons differ


def test_seed002_pool_to_fc_adds_and_neurons_differ():
    """dL/dp_j = sum_k dL/dz_k W_kj (a sum, not a product), and the two pooling neurons differ."""
    d = load("seed002_pool_to_fc.yaml")
    net = d.network
    x = fractions([["0.2", "0.9", "0.4", "0.1"], ["0.5", "0.3", "0.8", "0.6"]])
    w = fractions([["0.5", "-0.2"], ["0.3", "0.8"], ["-0.6", "0.4"]])
    bias = [F("0.1"), F(0), F("-0.1")]
    t = [F(1), F(0), F(1)]
    assert (net.input[0] == x).all() and (net.params["fc"]["weight"] == w).all()
    assert list(net.params["fc"]["bias"]) == bias and list(net.target) == t
    p = [max(x[0, 0], x[0, 1], x[1, 0], x[1, 1]), max(x[0, 2], x[0, 3], x[1, 2], x[1, 3])]
    z = [bias[k] + w[k, 0] * p[0] + w[k, 1] * p[1] for k in range(3)]
    dz = [z[k] - t[k] for k in range(3)]  # half_sum: L = 1/2 sum (z - t)^2
    dp = [sum(dz[k] * w[k, j] for k in range(3)) for j in range(2)]

    exact = d.values
    assert [exact.values[-1][k] for k in range(3)] == [rational(v) for v in z]
    assert [exact.deltas[3][k] for k in range(3)] == [rational(v) for v in dz]
    assert [exact.deltas[2][j] for j in range(2)] == [rational(v) for v in dp]  # dL/d(flatten output)
    assert [exact.deltas[1][0, 0, j] for j in range(2)] == [rational(v) for v in dp]  # dL/d(pool output)
    product = [np.prod([dz[k] * w[k, j] for k in range(3)]) for j in range(2)]
    assert dp != product
    assert dp[0] != dp[1]
    assert exact.deltas[1][0, 0, 0] != exact.deltas[1][0, 0, 1]
    # the input gets it only at the two winners (0.9 at [0,1] and 0.8 at [1,2])
    dx = exact.deltas[0][0]
    assert {(r, c) for r in range(2) for c in range(4) if dx[r, c] != 0} == {(0, 1), (1, 2)}
    assert dx[0, 1] == rational(dp[0]) and dx[1, 2] == rational(dp[1])


def test_seed002_pool_to_conv_adds_over_filter_positions():
    """A pooling neuron feeding a conv gets sum over the filter positions that touch it of dL/dz * w."""
    d = load("seed002_pool_to_conv.yaml")
    net = d.network
    assert [layer.kind for layer in net.layers[:2]] == ["maxpool2d", "conv2d"]
    v = d.network.run(RationalOps())
    w = net.params["conv1"]["weight"][0, 0]
    dz = v.deltas[2][0]  # dL/d(conv output), 2x2
    dp = v.deltas[1][0]  # dL/d(pool output), 3x3
    for r in range(3):
        for c in range(3):
            want = sum(
                (dz[i, j] * w[r - i, c - j] for i in range(2) for j in range(2) if 0 <= r - i < 2 and 0 <= c - j < 2),
                F(0),
            )
            assert dp[r, c] == want, (r, c)
    assert len({dp[r, c] for r in range(3) for c in range(3)}) > 1
