"""Ties and exact zeros at kinks are said where they happen (issue 12.2), not silently decided."""

from __future__ import annotations

from fractions import Fraction

from typer.testing import CliRunner

from cnnderive.cli import app
from cnnderive.config import load, loads
from cnnderive.derivation.build import Derivation
from cnnderive.derivation.steps import build_steps
from tests.conftest import CONFIGS

RELU_ZERO = """
input: {values: [0.1, 0.3]}
layers:
  - {type: linear, name: fc1, out_features: 1, params: {weight: [[3, -1]], bias: [0]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_seed000_three_way_tie_is_named():
    """The issue's own numbers: a¹₃₁ = a¹₃₂ = a¹₄₂ = 1.1 in one 2x2 window of seed 000."""
    steps = build_steps(Derivation(load(CONFIGS / "seed000_tied_maxpool.yaml")))
    pool = next(step for step in steps.layers if step.layer.kind == "maxpool2d")
    assert [(c.kind, c.elements, c.value) for c in pool.conventions] == [
        ("tie", ((0, 2, 0), (0, 2, 1), (0, 3, 1)), Fraction(11, 10))
    ]
    result = CliRunner().invoke(app, ["explain", str(CONFIGS / "seed000_tied_maxpool.yaml")], env={"COLUMNS": "200"})
    assert "a tie: a¹₃₁ = a¹₃₂ = a¹₄₂ = 1.1; the gradient goes to the first, a¹₃₁" in result.stdout


def test_relu_input_exactly_zero_is_named():
    """0.1·3 - 0.3 = 0 exactly (float64 says 5.6e-17): ReLU'(0) = 0 is a convention, and said so."""
    assert 0.1 * 3 - 0.3 != 0
    steps = build_steps(Derivation(loads(RELU_ZERO, "zero.yaml")))
    relu = steps.layers[1]
    assert [(c.kind, c.elements) for c in relu.conventions] == [("zero", ((0,),))]
    assert all(not step.conventions for step in steps.layers if step is not relu)


def test_no_convention_without_a_tie():
    steps = build_steps(Derivation(load(CONFIGS / "seed001_conv_conv_mse.yaml")))
    assert all(not step.conventions for step in steps.layers)


TIE = """
input: {values: [[1, 1], [0, 0]]}
layers:
  - {type: maxpool2d, kernel_size: 2}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, bias: false, params: {weight: [[2]]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def check(tmp_path, text, *args):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return CliRunner().invoke(app, ["check", str(path), *args], env={"COLUMNS": "200"})


def test_a_value_from_another_tied_maximum_is_called_a_convention(tmp_path):
    """By hand: o = 2·max = 2, L = o² = 4, ∂L/∂p = 2·2·2 = 8; PyTorch sends it to x₁₁, so ∂L/∂x₁₂ = 0.
    A student who routes the tie to x₁₂ says 8: not a chain-rule mistake, another convention."""
    result = check(tmp_path, TIE, "--param", "input[0,0,1]", "--value", "8")
    assert result.exit_code == 1
    assert "the other convention at a kink (another of a tie's maxima)" in result.stdout
    assert "left out" not in result.stdout
    assert check(tmp_path, TIE, "--param", "input[0,0,0]", "--value", "8").exit_code == 0


def test_relu_derivative_one_at_zero_is_called_a_convention(tmp_path):
    """By hand with ReLU'(0) = 1: z² = 0.5, ∂L/∂z² = 1, ∂L/∂a¹ = 2, ∂L/∂z¹ = 2, ∂L/∂w¹₁₁ = 2·0.1 = 0.2.
    Under PyTorch's ReLU'(0) = 0 the gradient is 0."""
    result = check(tmp_path, RELU_ZERO, "--param", "fc1.weight[0,0]", "--value", "0.2")
    assert result.exit_code == 1
    assert "the other convention at a kink (derivative 1 at an input exactly 0)" in result.stdout
    assert check(tmp_path, RELU_ZERO, "--param", "fc1.weight[0,0]", "--value", "0").exit_code == 0
