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
    steps = build_steps(Derivation(load(CONFIGS / "seed000_maxpool_flatten.yaml")))
    pool = next(step for step in steps.layers if step.layer.kind == "maxpool2d")
    assert [(c.kind, c.elements, c.value) for c in pool.conventions] == [
        ("tie", ((0, 2, 0), (0, 2, 1), (0, 3, 1)), Fraction(11, 10))
    ]
    result = CliRunner().invoke(app, ["explain", str(CONFIGS / "seed000_maxpool_flatten.yaml")], env={"COLUMNS": "200"})
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
