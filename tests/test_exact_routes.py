"""The three number tracks agree: float64, exact SymPy (what is shown), and exact fractions.

On every shipped config small enough for the exact SymPy pass: the SymPy numbers contain no
floats, evaluate (at 40 digits, by a small evaluator here) to the float pass within 1e-12, and
where the values are rational they equal the Fraction track exactly.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy
from mpmath import mp

import cnnderive
from cnnderive.maths.ops import RationalOps
from tests.conftest import CONFIGS

PATHS = sorted(CONFIGS.glob("*.yaml"))
SMALL = [p for p in PATHS if p.stat().st_size < 20_000]  # the big generated nets never get an exact pass

_FUNCTIONS = {sympy.exp: mp.exp, sympy.log: mp.log, sympy.tanh: mp.tanh}


def evaluate(expr, memo: dict):
    """An exact SymPy number as an mpmath float, sharing the work of repeated subexpressions."""
    if expr in memo:
        return memo[expr]
    if expr.is_Rational:
        value = mp.mpf(expr.p) / expr.q
    elif expr.is_Add:
        value = mp.fsum(evaluate(a, memo) for a in expr.args)
    elif expr.is_Mul:
        value = mp.mpf(1)
        for a in expr.args:
            value *= evaluate(a, memo)
    elif expr.is_Pow:
        value = evaluate(expr.base, memo) ** evaluate(expr.exp, memo)
    elif expr.func in _FUNCTIONS:
        value = _FUNCTIONS[expr.func](evaluate(expr.args[0], memo))
    else:
        value = mp.mpf(str(expr.evalf(50)))
    memo[expr] = value
    return value


def tracks(d):
    """(name, exact array, float array) for every value, delta, gradient and the loss."""
    exact, floats = d.values, d.floats
    for k, (a, b) in enumerate(zip(exact.values, floats.values)):
        yield f"values[{k}]", a, b
    for k, (a, b) in enumerate(zip(exact.deltas, floats.deltas)):
        if a is not None:
            yield f"deltas[{k}]", a, b
    for name in floats.grads:
        yield name, exact.grads[name], floats.grads[name]
    yield "loss", np.array(exact.loss, dtype=object), np.array(floats.loss, dtype=float)


def load_small(path):
    d = cnnderive.load(path)
    if not d.exact:
        pytest.skip("too big for the exact SymPy pass")
    return d


def test_small_configs_get_the_exact_pass():
    """The seed configs are small, so they are shown exactly."""
    names = {p.name for p in SMALL}
    for seed in ("seed000_tied_maxpool.yaml", "seed001_conv_conv_mse.yaml", "seed002_pool_to_fc.yaml"):
        assert seed in names
        assert cnnderive.load(CONFIGS / seed).exact


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_sympy_pass_is_exact_and_matches_floats(path):
    """No float inside the SymPy numbers; each one evaluates to the float pass within 1e-12."""
    d = load_small(path)
    memo: dict = {}
    with mp.workdps(40):
        for name, exact, approx in tracks(d):
            exact, approx = np.asarray(exact, dtype=object), np.asarray(approx, dtype=float)
            assert exact.shape == approx.shape, name
            for index in np.ndindex(exact.shape):
                value = sympy.sympify(exact[index])
                assert not value.atoms(sympy.Float), f"{name}{index} holds a float: {value}"
                want = float(evaluate(value, memo))
                assert approx[index] == pytest.approx(want, rel=1e-12, abs=1e-12), f"{name}{index}"


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_rational_prefix_is_the_same_fraction(path):
    """Up to the first exp/tanh, the SymPy values are the Fractions that decided the kinks, exactly."""
    d = load_small(path)
    rational = d.network.rational_values
    assert len(rational) >= 1
    for k, fractions in enumerate(rational):
        shown = d.values.values[k]
        assert shown.shape == fractions.shape
        for index in np.ndindex(fractions.shape):
            assert isinstance(fractions[index], Fraction)
            q = fractions[index]
            assert shown[index] == sympy.Rational(q.numerator, q.denominator), f"values[{k}]{index}"


@pytest.mark.parametrize("path", [p for p in SMALL if cnnderive.load(p).network.is_rational()], ids=lambda p: p.name)
def test_rational_network_all_three_tracks_agree(path):
    """A rational network: Fractions == SymPy exactly everywhere, floats within 1e-12, JSON floats nearest."""
    d = load_small(path)
    r = d.network.run(RationalOps())
    exact = d.values
    pairs = list(zip(r.values, exact.values, d.floats.values)) + [
        (a, b, c) for a, b, c in zip(r.deltas, exact.deltas, d.floats.deltas) if a is not None
    ]
    pairs += [(r.grads[n], exact.grads[n], d.floats.grads[n]) for n in r.grads]
    pairs.append((np.array(r.loss, dtype=object), np.array(exact.loss, dtype=object), np.array(d.floats.loss)))
    for fractions, shown, approx in pairs:
        for index in np.ndindex(np.shape(fractions)):
            q = np.asarray(fractions)[index]
            assert isinstance(q, Fraction)
            assert np.asarray(shown)[index] == sympy.Rational(q.numerator, q.denominator)
            assert float(np.asarray(approx)[index]) == pytest.approx(float(q), rel=1e-12, abs=1e-12)
    best = d.gradient_floats()
    for name, grad in r.grads.items():
        assert best[name].tolist() == np.vectorize(float, otypes=[float])(grad).tolist(), name


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_chain_terms_are_another_route_to_every_gradient(path):
    """For every parameter element, the sum of its chain terms is its gradient; cut terms are zero."""
    d = load_small(path)
    rational = d.network.is_rational()
    memo: dict = {}
    with mp.workdps(40):
        for name in d.network.parameter_names():
            tensor = d.tensors[name]
            for index in tensor.indices():
                g = d.gradient(tensor, index)
                assert g.value == d.values.grads[name][index]
                assert g.approx == d.floats.grads[name][index]
                for term in g.cut_terms:
                    assert term.value == 0, (name, index, term.cut)
                    if term.cut == "zero padding":
                        assert term.factor is None and term.local == 0
                total = sum((t.value for t in g.terms), sympy.Integer(0))
                if rational:
                    assert total == g.value, (name, index)
                else:
                    got, want = evaluate(sympy.sympify(total), memo), evaluate(sympy.sympify(g.value), memo)
                    assert abs(got - want) <= mp.mpf(10) ** -30 * max(1, abs(want)), (name, index)
