"""check --value: a decimal that is the right value rounded is right to the digits it gives (issue 12.4)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from typer.testing import CliRunner

from cnnderive.check.rounding import rounded_match
from cnnderive.cli import app
from tests.conftest import CONFIGS


@pytest.mark.parametrize(
    ("text", "right", "digits"),
    [
        ("0.3333", Fraction(1, 3), 4),
        ("0.333", Fraction(1, 3), 3),
        ("-0.6667", Fraction(-2, 3), 4),
        ("0.12", Fraction(1, 8), 2),  # a tie: half to even
        ("0.13", Fraction(1, 8), 2),  # ... or half up
        ("1.10", Fraction(11, 10), 3),
        ("2.718", 2.718281828459045, 4),
        ("3.3e-05", Fraction(1, 30303), 2),
    ],
)
def test_a_rounded_value_matches_to_its_digits(text, right, digits):
    assert rounded_match(text, right) == digits


@pytest.mark.parametrize(
    ("text", "right"),
    [("0.3334", Fraction(1, 3)), ("0.33", Fraction(1, 2)), ("1/3", Fraction(1, 3)), ("0", Fraction(0)), ("abc", 1)],
)
def test_anything_else_does_not_match(text, right):
    assert rounded_match(text, right) is None


def run(*args):
    return CliRunner().invoke(app, ["check", str(CONFIGS / "seed000_tied_maxpool.yaml"), *args])


def test_the_value_explain_prints_is_right_to_its_digits():
    """explain prints -0.3397 for this gradient (4 digits): that is right, to 4 digits, exit 0."""
    param = ["--param", "conv1.weight[0,0,0,0]"]
    result = run(*param, "--value", "-0.3397")
    assert result.exit_code == 0, result.output
    assert "right to 4 significant digits" in result.output
    wrong = run(*param, "--value", "-0.3398")
    assert wrong.exit_code == 1
    assert "-0.339657" in wrong.output  # more digits than were given, to show where they differ
