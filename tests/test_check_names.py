"""Issue 12, item 7: the names a student writes. --param takes the textbook names `symbols` lists;
formulas take dC/do and \\partial C (C is the loss), the ReLU derivative as relu'(z), step(z), H(z)
and the Iverson bracket 1[z > 0] (also \\mathbb{1}, \\mathbf{1}), with ReLU'(0) = 0; a bare number
given to --expr points to --value.

Expected values are worked by hand from the config numbers in each test.
"""

from __future__ import annotations

import ast
import io
import re
from fractions import Fraction

import pytest
import sympy
from rich.console import Console

import cnnderive
from cnnderive.check.checker import Checker
from cnnderive.check.formula.names import NameTable
from cnnderive.check.formula.parser import parse_formula, read_formula
from cnnderive.config import load, loads
from cnnderive.derivation.build import Derivation
from cnnderive.derivation.names import parse_element, parse_parameter
from cnnderive.derivation.symbolic import Symbolic
from cnnderive.errors import UserError
from tests.cli_support import run_cli
from tests.conftest import CONFIGS, ROOT

SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
# z¹₁ = 3·0.1 - 1·0.3 + 0 = 0 exactly (a kink), z¹₂ = 1·0.1 + 2·0.3 + 0.1 = 0.8;
# o = 2·0 - 1·0.8 + 0.5 = -0.3, L = o², ∂L/∂o = -0.6
TWO_UNITS = """
input: {values: [0.1, 0.3]}
layers:
  - {type: linear, name: fc1, out_features: 2, params: {weight: [[3, -1], [1, 2]], bias: [0, 0.1]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[2, -1]], bias: [0.5]}}
loss: {type: mse, target: [0], reduction: sum}
"""


@pytest.fixture(scope="module")
def two_units() -> Checker:
    return Checker(Derivation(loads(TWO_UNITS, "two.yaml")), "fc1.weight[1,0]")


# -- --param -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("w1_1_1", "conv1.weight[0,0,0,0]"),  # typed: letter, stage, 1-based index
        ("w2_2_1", "conv2.weight[0,0,1,0]"),
        ("w¹₁₂", "conv1.weight[0,0,0,1]"),  # as printed
        (r"w^{(2)}_{1,2}", "conv2.weight[0,0,0,1]"),  # LaTeX
        ("w_3^2", "conv2.weight[0,0,1,0]"),  # the seed's flat names: weight 3 of stage 2
        ("w^1_4", "conv1.weight[0,0,1,1]"),
        ("i_5", "input[0,1,1]"),  # input 5, counted row by row on the 3x3 input
        ("x_3", "input[0,0,2]"),
        ("z1_2_1", "conv1.output[0,1,0]"),
        ("z2_1_1", "conv2.output[0,0,0]"),
        ("o", "conv2.output[0,0,0]"),
        ("  w1_1_1 ", "conv1.weight[0,0,0,0]"),
    ],
)
def test_param_takes_textbook_names(written, canonical):
    network = load(SEED001)
    tensor, index = parse_element(network, written)
    assert tensor.element(index) == canonical


def test_param_canonical_names_unchanged():
    network = load(SEED001)
    tensor, index = parse_element(network, "conv1.weight[0,0,1,1]")
    assert (tensor.name, index) == ("conv1.weight", (0, 0, 1, 1))
    assert parse_parameter(network, "conv1.weight") == (tensor, None)
    with pytest.raises(UserError, match="not a parameter"):
        parse_parameter(network, "z1_1_1")
    with pytest.raises(UserError, match=r"textbook name .* e\.g\. w1_1_1"):
        parse_element(network, "w9_1_1")


def test_every_typed_name_symbols_lists_is_a_param():
    """The `symbols` table's typed column, name by name, is read by --param as its row's element."""
    from cnnderive.cli.symbols import _short_aliases
    from cnnderive.printers.terminal import symbols_table

    derivation = cnnderive.load(SEED001)
    table = symbols_table(derivation, _short_aliases(derivation))
    canonical, printed, latex, typed = (table.columns[k]._cells for k in range(4))
    for name, *aliases in zip(canonical, printed, latex, typed):
        for alias in ", ".join(aliases).split(", "):
            tensor, index = parse_element(derivation.network, alias)
            assert tensor.element(index) == name, (alias, name)
    Console(file=io.StringIO(), width=80).print(table)


def test_check_explain_grad_latex_take_a_textbook_param(tmp_path):
    """Seed 001: ∂L/∂w¹₁₁ = -11/20 (see test_check_issue12: terms -1/5, -1/5, 0, -3/20)."""
    assert run_cli(["check", str(SEED001), "--param", "w1_1_1", "--value", "-11/20"])[0] == 0
    assert run_cli(["check", str(SEED001), "--param", "w_1^1", "--value", "-0.55"])[0] == 0
    code, stdout, _ = run_cli(["explain", str(SEED001), "--param", "w1_1_1"], env={"COLUMNS": "200"})
    assert code == 0 and "w¹₁₁" in stdout
    code, stdout, _ = run_cli(["grad", str(SEED001), "--json", "--param", "w1_2_2"])
    assert code == 0 and '"conv1.weight"' in stdout
    code, _, _ = run_cli(["latex", str(SEED001), "--param", "w^{(2)}_{1,1}", "-o", str(tmp_path / "w.tex")])
    assert code == 0 and (tmp_path / "w.tex").exists()


def test_derivation_names_imports_nothing_from_check():
    """The dependency arrow: config -> maths -> derivation -> check/printers -> cli."""
    tree = ast.parse((ROOT / "cnnderive" / "derivation" / "names.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [m for m in imported if "check" in m or "printers" in m or "cli" in m], imported


# -- C for the loss ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "dC/do",
        "dC/d o",
        "∂C/∂o",
        r"\partial C/\partial o",
        r"\frac{\partial C}{\partial o}",
        r"\frac{dC}{do}",
        "dL/do",
        r"\frac{\partial L}{\partial o^{(2)}_{1}}",
    ],
)
def test_gradient_of_the_loss_alias_c(written):
    table = NameTable(Symbolic(cnnderive.load(SEED001)))
    assert parse_formula(written, table) == sympy.Symbol("dL/dconv2.output[0,0,0]", real=True)


def test_dC_do_in_a_whole_formula_is_right():
    """Seed 001: ∂C/∂w²₁₂ = ∂C/∂o · z¹₁₂ (o = Σ z¹·w²): right, by the chain rule itself."""
    c = Checker(cnnderive.load(SEED001), "conv2.weight[0,0,0,1]")
    assert c.check_expr("dC/do * o1_2").right
    assert c.check_expr(r"\frac{\partial C}{\partial o} z^{(1)}_{1,2}").right


def test_partial_alone_says_how_a_gradient_is_written():
    table = NameTable(Symbolic(cnnderive.load(SEED001)))
    with pytest.raises(UserError, match=r"read only in a gradient, \\partial L/\\partial NAME"):
        parse_formula(r"\partial o", table)


# -- the ReLU derivative ----------------------------------------------------------------------


RELU_PRIME = [
    "relu'(z1_2)",
    "ReLU'(z1_2)",
    "relu′(z1_2)",
    "step(z1_2)",
    "H(z1_2)",
    "1[z1_2>0]",
    "1[z1_2 > 0]",
    "1[0 < z1_2]",
    r"\mathbb{1}[z^{(1)}_{2} > 0]",
    r"\mathbf{1}[z^{(1)}_{2} > 0]",
    r"\mathrm{ReLU}'(z^{(1)}_{2})",
]


@pytest.mark.parametrize("indicator", RELU_PRIME)
def test_relu_derivative_written_as_an_indicator(two_units, indicator):
    """∂L/∂w¹₂₁ = ∂L/∂o · w²₁₂ · ReLU'(z¹₂) · x₁ = (-0.6)(-1)(1)(0.1) = 3/50, as z¹₂ = 0.8 > 0."""
    latex = "\\" in indicator
    x1, w = ("x_1", "w^{(2)}_{1,2}") if latex else ("x_1", "w2_1_2")
    verdict = two_units.check_expr(f"2*(o - y)*{w}*{indicator}*{x1}")
    assert verdict.right, indicator
    assert sympy.Rational(verdict.right_value) == sympy.Rational(3, 50)
    assert (indicator, 1) in verdict.read_as  # shown as read: relu'(z1_2) = 1


@pytest.mark.parametrize("indicator", ["relu'(z1_1)", "step(z1_1)", "H(z1_1)", "1[z1_1 > 0]"])
def test_relu_derivative_is_zero_at_exactly_zero(indicator):
    """z¹₁ = 0 exactly: ReLU'(0) = 0 (PyTorch's convention), so ∂L/∂w¹₁₁ = 0 and so is the formula."""
    c = Checker(Derivation(loads(TWO_UNITS, "two.yaml")), "fc1.weight[0,0]")
    assert Fraction(str(c.asked.value)) == 0
    verdict = c.check_expr(f"2*(o - y)*w2_1_1*{indicator}*x_1")
    assert verdict.right
    table = NameTable(c.symbolic)
    assert read_formula(indicator, table)[0] == 0


def test_the_other_convention_at_zero_is_named():
    """1[z ≥ 0] takes the derivative 1 at z¹₁ = 0: 2·(-0.3)·2·1·0.1 = -3/25, the other convention."""
    c = Checker(Derivation(loads(TWO_UNITS, "two.yaml")), "fc1.weight[0,0]")
    verdict = c.check_expr("2*(o - y)*w2_1_1*1[z1_1 >= 0]*x_1")
    assert sympy.Rational(verdict.yours_value) == sympy.Rational(-3, 25)
    assert [m.key for m in verdict.mistakes] == ["kink_convention"]


def test_a_bracket_without_a_comparison_is_a_bracket(two_units):
    table = NameTable(two_units.symbolic)
    x1, x2 = sympy.Symbol("input[0]", real=True), sympy.Symbol("input[1]", real=True)
    assert parse_formula("1[x_1 + x_2]", table) == x1 + x2
    assert parse_formula("2[x_1 + x_2]", table) == 2 * (x1 + x2)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("z1_2 > 0", "read only inside an Iverson bracket"),
        ("(z1_2 > 0)", "read only inside an Iverson bracket"),
        ("1[dL/dz1_2 > 0]", "compares forward values, not gradients"),
        ("relu(z1_2)", re.escape("write max(0, z) for ReLU, relu'(z) for its derivative")),
        (r"\mathbb{R}", r"\\mathbb{R} is not read here"),
    ],
)
def test_indicators_refused_with_a_pointed_message(two_units, formula, message):
    with pytest.raises(UserError, match=message) as error:
        parse_formula(formula, NameTable(two_units.symbolic))
    assert error.value.field == "--expr" and "\n" not in str(error.value)


# -- a number is a value ------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["0.25", "-11/20", " 3 ", "1e-3", "−0.55"])
def test_a_bare_number_points_to_value(number):
    code, stdout, stderr = run_cli(["check", str(SEED001), "--param", "w1_1_1", "--expr", number])
    assert code == 2 and stdout == ""
    assert f"is a number, not a formula: check a value with --value {number.strip()}" in stderr
