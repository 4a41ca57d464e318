"""`check --value`: comparing a hand-computed number with the right one never crashes (issue 10, item 3).

It crashed (exit 3) whenever the right gradient was exactly 0 (`sympy.Float(0) == 0` is False since
SymPy 1.13, so the relative error divided by 0: "Cannot convert complex to float"), and it judged
5 "right" for a gradient beyond the float64 range. A value written as a fraction compares exactly
(README), also against an exact 0 that has exp in it. Expected numbers are computed here with mpmath.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import mpmath
import pytest
import sympy

from cnnderive.check.values import _same_number, close, exact_rational, relative_error
from tests.cli_support import run_cli
from tests.test_saturation import document, sigmoid_zero_net, softmax_net, softmax_zero_net

HALF = sympy.Rational(5, 2)


def s(z):
    return 1 / (1 + sympy.exp(-z))


EXACT_ZERO = s(HALF) * (1 - s(HALF)) - s(-HALF) * (1 - s(-HALF))  # s'(2.5) - s'(-2.5), not structurally 0
SATURATED = sympy.exp(800) / (1 + sympy.exp(800))  # a softmax probability 1 - 1e-348


@pytest.mark.parametrize("zero", [sympy.Float(0), sympy.Integer(0), 0, F(0), 0.0, EXACT_ZERO])
def test_an_exact_zero_compares_without_crashing(zero):
    assert exact_rational(zero) == 0 or isinstance(zero, float)
    assert close(F(0), zero, 1e-6, exact=True)
    assert close(F(0), zero, 0.0, exact=False)
    assert not close(F(1, 2), zero, 1e-6, exact=True)
    assert not close(F(1, 2), zero, 1e-6, exact=False)
    assert relative_error(F(0), zero) is None  # no relative error against 0
    assert relative_error(F(1, 2), zero) is None
    assert _same_number(zero, 0.0) and not _same_number(zero, 1e-9)


def test_exact_zero_is_proven_not_guessed():
    assert exact_rational(EXACT_ZERO) == 0
    assert exact_rational(sympy.exp(-sympy.Integer(2000))) is None  # below every double, but not 0
    assert exact_rational(sympy.log(2)) is None


def test_saturated_softmax_probability():
    # 1 - p = 1/(1 + e^800) = 1.4e-348: within any tolerance of 1, but not 1
    assert close(F(1), SATURATED, 1e-6, exact=False)
    assert relative_error(F(1), SATURATED) is None  # 1.4e-348 is below the smallest double
    assert not close(F(9, 10), SATURATED, 1e-6, exact=False)
    with mpmath.workdps(50):
        p = 1 / (1 + mpmath.exp(-800))
        expected = float(abs(mpmath.mpf(9) / 10 - p) / p)
    assert relative_error(F(9, 10), SATURATED) == expected
    assert _same_number(SATURATED, 1.0)


def test_relative_error_is_the_nearest_double():
    with mpmath.workdps(50):
        expected = float(abs(mpmath.mpf(1) / 3 - mpmath.log(2)) / mpmath.log(2))
    assert relative_error(F(1, 3), sympy.log(2)) == expected
    assert relative_error(F(1, 3), F(1, 4)) == 1 / 3


@pytest.mark.parametrize("right", [float("inf"), float("-inf"), float("nan")])
def test_a_right_value_beyond_float64_is_never_matched(right):
    assert not close(F(5), right, 1e-6, exact=False)
    assert not close(F(10**59), right, 1.0, exact=False)
    assert relative_error(F(5), right) is None
    assert not _same_number(right, 5.0)
    assert _same_number(right, right) == (not math.isnan(right))  # the same infinity; nan is nothing


def test_huge_exact_values():
    huge = sympy.exp(1000)  # 2e434: no double, but an exact number
    assert not close(F(10**59), huge, 1e-6, exact=False)
    assert relative_error(F(10**59), huge) == 1.0
    assert not _same_number(huge, float("inf"))
    assert _same_number(huge, huge * (1 + sympy.exp(-100)))  # equal to 12 digits


# --- through the CLI


def write(tmp_path, config: dict) -> str:
    path = tmp_path / "net.yaml"
    path.write_text(document(config))
    return str(path)


def check(path: str, param: str, value: str) -> tuple[int, str]:
    status, out, err = run_cli(["check", path, "--param", param, "--value", value])
    assert "internal error" not in err and "Traceback" not in err, err
    return status, out


@pytest.mark.parametrize("make", [softmax_zero_net, sigmoid_zero_net])
@pytest.mark.parametrize(
    ("value", "right"), [("0", True), ("0/1", True), ("1e-20", True), ("1/2", False), ("0.5", False), ("-3", False)]
)
def test_check_value_against_an_exact_zero(tmp_path, make, value, right):
    status, out = check(write(tmp_path, make()), "fc0.weight[0,0]", value)
    assert status == (0 if right else 1), out


def test_check_value_zero_on_a_relu_cut_rational_gradient(tmp_path):
    fc = {"type": "linear", "name": "fc", "out_features": 1, "params": {"weight": [[-1]], "bias": [0]}}
    config = {"input": {"values": [1]}, "layers": [fc, {"type": "relu"}], "loss": {"type": "mse", "target": [1]}}
    path = write(tmp_path, config)
    for value in ("0", "0/1", "0.0"):
        assert check(path, "fc.weight[0,0]", value)[0] == 0
    assert "exactly" in check(path, "fc.weight[0,0]", "0/1")[1]


def test_check_value_on_a_saturated_softmax(tmp_path):
    path = write(tmp_path, softmax_net([800, 0], 1))
    assert check(path, "fc.weight[0,0]", "1")[0] == 0
    assert check(path, "fc.weight[0,0]", "0.9")[0] == 1
    assert check(path, "fc.weight[1,0]", "-1")[0] == 0


def test_check_value_on_a_gradient_beyond_float64(tmp_path):
    # dL/dw1 = 2 z3 w3 w2 s'(2) with z3 ~ 1e198: about 1e396, beyond every double; 5 is not it
    layers = [
        {"type": "linear", "name": "fc1", "out_features": 1, "params": {"weight": [[2]], "bias": [0]}},
        {"type": "sigmoid"},
        {"type": "linear", "name": "fc2", "out_features": 1, "params": {"weight": [[F(10**99)]], "bias": [0]}},
        {"type": "linear", "name": "fc3", "out_features": 1, "params": {"weight": [[F(10**99)]], "bias": [0]}},
    ]
    path = write(tmp_path, {"input": {"values": [1]}, "layers": layers, "loss": {"type": "mse", "target": [0]}})
    for param in ("fc1.weight[0,0]", "fc1.bias[0]", "fc3.weight[0,0]"):
        assert check(path, param, "5")[0] == 1


def test_a_formula_undefined_at_the_config_numbers_says_so():
    """seed 001 has x₁₁ = 1, so 1/(x₁₁ - 1) divides by zero there: one line, exit 2, not 'yours is nan'."""
    from typer.testing import CliRunner

    from cnnderive.cli import app
    from tests.conftest import CONFIGS

    args = ["check", str(CONFIGS / "seed001_conv_conv_mse.yaml"), "--param", "conv1.weight[0,0,0,0]"]
    result = CliRunner().invoke(app, [*args, "--expr", "1/(i_1 - 1)"])
    assert result.exit_code == 2
    assert "undefined at this config's values" in result.stderr
