"""`check`: values and formulas judged right or wrong, and the common mistakes recognised by name.

Each mistake is produced here by hand (a formula written out, or a value computed from the
derivation's numbers), not by the construction in cnnderive.check.mistakes, and must be named.
"""

import io
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
import sympy

import cnnderive
from cnnderive.check.checker import Checker
from cnnderive.errors import UserError
from cnnderive.printers.check_out import CheckView
from cnnderive.printers.sympy_names import TextbookPrinter
from cnnderive.printers.terminal import make_console
from tests.conftest import CONFIGS, ROOT

SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
W1 = "conv1.weight[0,0,0,0]"
# the asker of seed question 001, as they wrote it
ASKER = "(i_1 + i_2 + i_4 + i_5) * (w_1^2 * 2(o_1^2 – y_1) + w_2^2 * 2(o_1^2 – y_1) + w_3^2 * 2(o_1^2 – y_1) + w_4^2 * 2(o_1^2 – y_1))"
ASKER_LATEX = (
    r"(i_{1}^1 + i_{2}^1 + i_{4}^1 + i_{5}^1)\left(w_1^2 \cdot 2(o_1^2 - y_1) + w_2^2 \cdot 2(o_1^2 - y_1)"
    r" + w_3^2 \cdot 2(o_1^2 - y_1) + w_4^2 \cdot 2(o_1^2 - y_1)\right)"
)
RIGHT = "2(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)"
RIGHT_LATEX = r"2\left(o^{2}_{1}-y_1\right)\left(i^1_1 w^2_1 + i^1_2 w^2_2 + i^1_4 w^2_3 + i^1_5 w^2_4\right)"


def checker(config: str, param: str) -> Checker:
    return Checker(cnnderive.load(CONFIGS / config), param)


@pytest.fixture(scope="module")
def seed001() -> Checker:
    return Checker(cnnderive.load(SEED001), W1)


def keys(verdict) -> set[str]:
    return {m.key for m in verdict.mistakes}


def render(checker: Checker, verdict) -> str:
    console = make_console(record=True, width=100)
    console.file = io.StringIO()
    console.print(CheckView(checker.derivation).render(verdict))
    return console.export_text()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnderive", "check", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


# -- seed 001 ----------------------------------------------------------------------------------


def test_seed001_asker_is_wrong_with_a_product_of_sums(seed001):
    verdict = seed001.check_expr(ASKER)
    assert verdict.verdict == "wrong" and not verdict.right
    assert keys(verdict) == {"product_of_sums"}
    comparison = verdict.comparison
    assert len(comparison.extra) == 12 and not comparison.missing and not comparison.wrong
    assert comparison.matching == 4
    x = {seed001.symbolic.symbol(seed001.derivation.tensors["input"], (0, i, j)) for i in (0, 1) for j in (0, 1)}
    for monomial, coefficient in comparison.extra:  # the cross terms: one input times one weight of conv2
        assert coefficient == 1 and len(monomial.free_symbols & x) == 1 and len(monomial.free_symbols) == 2
    text = render(seed001, verdict)
    assert "product of sums" in text and "12 extra" in text and "2·(z²₁₁ - y₁)" in text


def test_seed001_asker_on_the_command_line():
    result = run(SEED001, "--param", W1, "--expr", ASKER)
    assert result.returncode == 1, result.stderr
    assert "✗ wrong" in result.stdout and "a product of sums instead of a sum of products" in result.stdout
    assert "12 extra" in result.stdout and "x₁₂·w²₁₁" in result.stdout


@pytest.mark.parametrize(
    "formula",
    [
        RIGHT,
        RIGHT_LATEX,
        "2*(o - y)*(i1*w2_1 + i2*w2_2 + i4*w2_3 + i5*w2_4)",
        (
            "2*(conv2.output[0,0,0] - target[0])*(conv2.weight[0,0,0,0]*input[0,0,0] + conv2.weight[0,0,0,1]*input[0,0,1]"
            " + conv2.weight[0,0,1,0]*input[0,1,0] + conv2.weight[0,0,1,1]*input[0,1,1])"
        ),
        "2 w2_1 (o - y) x_1 + 2 w2_2 (o - y) x_2 + 2 w2_3 (o - y) x_4 + 2 w2_4 (o - y) x_5",
        # o written out through z¹ and the weights of conv2
        "2(z1_1_1 w2_1 + z1_1_2 w2_2 + z1_2_1 w2_3 + z1_2_2 w2_4 - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)",
    ],
)
def test_seed001_right_formulas(seed001, formula):
    verdict = seed001.check_expr(formula)
    assert verdict.verdict == "identical", formula
    assert verdict.right and not verdict.mistakes


def test_seed001_fully_expanded_right_formula(seed001):
    symbolic = seed001.symbolic
    expanded = sympy.expand(symbolic.in_leaves(seed001.asked.form))
    typed = {s: tensor.ascii(index) for s, (tensor, index) in symbolic.owner.items()}
    text = TextbookPrinter(typed).doprint(expanded)
    assert len(sympy.Add.make_args(expanded)) > 50 and "x_1_1" in text
    assert seed001.check_expr(text).verdict == "identical"
    result = run(SEED001, "--param", W1, "--expr", text)
    assert result.returncode == 0 and "✓ right" in result.stdout


def test_right_formula_on_the_command_line():
    result = run(SEED001, "-p", W1, "--expr", RIGHT)
    assert result.returncode == 0, result.stderr
    assert "✓ right" in result.stdout


@pytest.mark.parametrize("plain, latex", [(ASKER, ASKER_LATEX), (RIGHT, RIGHT_LATEX)])
def test_latex_and_plain_give_the_same_verdict(seed001, plain, latex):
    a, b = seed001.check_expr(plain), seed001.check_expr(latex)
    assert (a.verdict, keys(a)) == (b.verdict, keys(b))
    assert sympy.expand(a.given - b.given) == 0
    forced = seed001.check_expr(latex.replace("^{2}_{1}", "^2_1"), latex=True)
    assert forced.verdict == b.verdict


def test_same_value_but_not_the_same_formula(seed001):
    # x₂₁ = 0, so the term ∂L/∂z¹₂₁·x₂₁ left out changes the function but not the value -0.55
    verdict = seed001.check_expr("2*(o - y)*(i_1*w_1^2 + i_2*w_2^2 + i_5*w_4^2)")
    assert verdict.verdict == "same_value" and not verdict.right
    near = verdict.nearby
    assert near is not None and len(near.changes) == 1 and near.yours != near.right
    assert "They differ nearby" in render(seed001, verdict)
    # ∂L/∂w²₁₁ = 2(o - y) z¹₁₁ is 0 here (z¹₁₁ = 0): without its factor 2 it has the right value only
    verdict = checker("seed001_conv_conv_mse.yaml", "conv2.weight[0,0,0,0]").check_expr("(o - y)*z1_1_1")
    assert verdict.verdict == "same_value"


def test_wrong_formula_terms_missing_extra_and_coefficients(seed001):
    verdict = seed001.check_expr("2(o - y)(i_1 w_1^2 + i_2 w_2^2 + 3 i_4 w_3^2 + i_6 w_4^2)")
    comparison = verdict.comparison
    assert verdict.verdict == "wrong"
    assert len(comparison.missing) == 1 and len(comparison.extra) == 1 and len(comparison.wrong) == 1
    assert comparison.matching == 2
    text = render(seed001, verdict)
    assert "1 missing" in text and "1 extra" in text and "1 with the wrong coefficient" in text


@pytest.mark.parametrize(
    "formula, mistake",
    [
        ("(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)", "factor_two"),
        ("2(y - o)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)", "sign"),
        ("2(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2)", "dropped_term"),
        ("2(o - y) i_1 w_1^2", "only_term"),
        ("2(o - y)(w_1^2 + w_2^2 + w_3^2 + w_4^2)", "local_left_out"),
        ("(2(o - y))^4 i_1 w_1^2 i_2 w_2^2 i_4 w_3^2 i_5 w_4^2", "products"),
    ],
)
def test_seed001_named_slips(seed001, formula, mistake):
    verdict = seed001.check_expr(formula)
    assert not verdict.right and mistake in keys(verdict)


def test_dropped_term_names_the_term(seed001):
    verdict = seed001.check_expr("2(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2)")
    (dropped,) = [m for m in verdict.mistakes if m.key == "dropped_term"]
    assert dropped.term.out.unicode(dropped.term.out_index) == "z¹₂₂"
    assert "∂L/∂z¹₂₂·x₂₂" in render(seed001, verdict)


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["-0.55", "-11/20", "-0.5500000001", "-5.5e-1", "−0.55"])
def test_value_right(seed001, given):
    verdict = seed001.check_value(given)
    assert verdict.right


def test_fraction_is_compared_exactly(seed001):
    assert seed001.check_value("-11/20").exact
    close_fraction = seed001.check_value("-1100001/2000000")  # relative 1e-6 off, but given exactly
    assert not close_fraction.right and close_fraction.exact
    assert seed001.check_value("-1.1000001/2").right is False
    assert seed001.check_value("-0.5500005").right  # a decimal: within the relative tolerance


def test_tolerance_option(seed001):
    assert not seed001.check_value("-0.5501").right
    assert seed001.check_value("-0.5501", tol=1e-3).right
    with pytest.raises(UserError):
        seed001.check_value("-0.55", tol=-1)


def test_value_wrong_by_a_dropped_term_is_named(seed001):
    terms = seed001.asked.terms
    dropped = terms[3]  # ∂L/∂z¹₂₂ · x₂₂ = -3/20
    value = Fraction(-11, 20) - Fraction(str(dropped.value))
    verdict = seed001.check_value(str(float(value)))
    assert not verdict.right
    named = [m for m in verdict.mistakes if m.key == "dropped_term"]
    assert named and named[0].term is dropped
    assert verdict.relative_error == pytest.approx(float(Fraction(3, 20) / Fraction(11, 20)))
    text = render(seed001, verdict)
    assert "-11/20 = -0.55" in text and "∂L/∂z¹₂₂·x₂₂" in text and "the chain rule" in text


@pytest.mark.parametrize(
    "given, mistake",
    [("0.55", "sign"), ("-0.275", "factor_two"), ("-1.6", "product_of_sums"), ("-8/5", "product_of_sums")],
)
def test_value_mistakes_named(seed001, given, mistake):
    verdict = seed001.check_value(given)
    assert not verdict.right and mistake in keys(verdict)


def test_value_on_the_command_line():
    right = run(SEED001, "--param", W1, "--value", "-11/20")
    assert right.returncode == 0 and "✓ right" in right.stdout and "exactly" in right.stdout
    wrong = run(SEED001, "--param", W1, "--value", "-0.4")
    assert wrong.returncode == 1 and "one chain-rule term left out" in wrong.stdout
    bad = run(SEED001, "--param", W1, "--value", "abc")
    assert bad.returncode == 2 and "--value" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", W1], "exactly one of --value"),
        (["--param", W1, "--value", "1", "--expr", "o"], "exactly one of --value"),
        (["--param", "conv1.weight", "--value", "1"], "whole tensor"),
        (["--param", "target[0]", "--value", "1"], "not the target"),
        (["--param", "conv7.weight[0,0,0,0]", "--value", "1"], "unknown name"),
    ],
)
def test_bad_input_exits_2(args, message):
    result = run(SEED001, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


# -- each named mistake, produced by hand on a shipped config -----------------------------------


def test_maxpool_gradient_to_every_element_of_the_window():
    c = checker("seed000_tied_maxpool.yaml", W1)
    values, deltas = c.derivation.values.values, c.derivation.values.deltas
    x, z, pool_delta = values[0][0], values[1][0], deltas[3][0]
    # every conv output of a window gets the window's gradient (ReLU still applied): wrong
    wrong_value = sum(
        (pool_delta[i // 2, j // 2] * x[i, j] for i in range(4) for j in range(4) if z[i, j] > 0), sympy.Integer(0)
    )
    verdict = c.check_value(repr(float(sympy.N(wrong_value, 30))))
    assert not verdict.right and "maxpool_all" in keys(verdict)
    terms = []
    for i in range(4):
        for j in range(4):
            if z[i, j] > 0:
                k = (i // 2) * 2 + j // 2 + 1
                terms.append(
                    f"x_{i + 1}_{j + 1}*((yhat_1 - y_1)*w2_1_{k} + (yhat_2 - y_2)*w2_2_{k} + (yhat_3 - y_3)*w2_3_{k})"
                )
    verdict = c.check_expr(" + ".join(terms))
    assert verdict.verdict == "wrong" and "maxpool_all" in keys(verdict)
    assert "max-pool gradient sent to every element" in render(c, verdict)


def test_flatten_order_transposed():
    c = checker("seed000_tied_maxpool.yaml", "maxpool2d_3.output[0,0,1]")  # p¹₁₂ is f¹₂, not f¹₃
    right = c.check_expr("(yhat_1 - y_1)*w2_1_2 + (yhat_2 - y_2)*w2_2_2 + (yhat_3 - y_3)*w2_3_2")
    assert right.verdict == "identical"
    verdict = c.check_expr("(yhat_1 - y_1)*w2_1_3 + (yhat_2 - y_2)*w2_2_3 + (yhat_3 - y_3)*w2_3_3")
    assert not verdict.right and "flatten_transposed" in keys(verdict)


def test_softmax_cross_terms_dropped():
    c = checker("seed000_tied_maxpool.yaml", "maxpool2d_3.output[0,0,1]")
    # dL/dz²_k = dL/dŷ_k · ŷ_k(1 - ŷ_k) = -y_k(1 - ŷ_k): only the target class (k = 2) is left
    verdict = c.check_expr("-y_2*(1 - yhat_2)*w2_2_2 - y_1*(1 - yhat_1)*w2_1_2 - y_3*(1 - yhat_3)*w2_3_2")
    assert not verdict.right and "softmax_diagonal" in keys(verdict)
    c = checker("seed000_tied_maxpool.yaml", W1)
    value = c.evaluator.value(_softmax_diagonal_by_hand(c), c.evaluator.base)
    verdict = c.check_value(repr(float(value)))
    assert not verdict.right and "softmax_diagonal" in keys(verdict)


def _softmax_diagonal_by_hand(c: Checker) -> sympy.Expr:
    """∂L/∂w¹₁₁ of seed 000 with ∂L/∂z²_k = -y_k(1 - ŷ_k), routed back as the right pass does."""
    symbolic = c.symbolic
    arrays = symbolic.arrays
    p, y, w2 = arrays["softmax_6.output"], arrays["target"], arrays["fc.weight"]
    dz2 = [-y[k] * (1 - p[k]) for k in range(3)]
    df = [sum(dz2[k] * w2[k, j] for k in range(3)) for j in range(4)]
    rows, cols = c.derivation.network.kinks[2]
    relu = c.derivation.network.kinks[1]
    x = arrays["input"]
    total = 0
    for a in range(2):
        for b in range(2):
            i, j = rows[0, a, b], cols[0, a, b]
            if relu[0, i, j]:
                total += df[a * 2 + b] * x[0, i, j]
    return total


def test_tanh_derivative_left_out():
    c = checker("sigmoid_bce.yaml", W1)
    # dL/dw = sum over the conv positions of dL/da · x: the factor (1 - a²) between a and z left out
    delta_a, x = c.derivation.floats.deltas[2], c.derivation.floats.values[0]
    wrong_value = sum(delta_a[0, i, j] * x[0, i, j] for i in range(3) for j in range(3))
    verdict = c.check_value(repr(float(wrong_value)))
    assert not verdict.right and "activation_left_out" in keys(verdict)
    assert "the tanh derivative left out" in render(c, verdict)


def test_relu_derivative_left_out(tmp_path):
    # seed 001 with a ReLU after the first conv: z¹₁₁ = 0 and z¹₂₂ = -0.1 are switched off
    text = SEED001.read_text().replace(
        "  - type: conv2d\n    name: conv2", "  - type: relu\n  - type: conv2d\n    name: conv2"
    )
    config = tmp_path / "relu.yaml"
    config.write_text(text)
    c = Checker(cnnderive.load(config), W1)
    assert c.check_expr("2(o - y)(i_2 w_2^2 + i_4 w_3^2)").verdict == "identical"
    verdict = c.check_expr(RIGHT)  # the chain rule of the network without the ReLU
    assert not verdict.right and "activation_left_out" in keys(verdict)
    assert "the ReLU derivative left out" in render(c, verdict)


def test_leaky_relu_derivative_left_out_on_a_value():
    c = checker("multichannel_stride_pad.yaml", "conv1.bias[0]")
    deltas = c.derivation.floats.deltas
    wrong_value = float(np.sum(deltas[2][0]))  # dL/da summed over the map: the slope left out
    verdict = c.check_value(repr(wrong_value))
    assert not verdict.right and "activation_left_out" in keys(verdict)


def test_next_layer_gradients_multiplied_pool_to_fc():
    c = checker("seed002_pool_to_fc.yaml", "maxpool2d_1.output[0,0,0]")
    right = c.check_expr("(z1_1 - y_1)*w1_1_1 + (z1_2 - y_2)*w1_2_1 + (z1_3 - y_3)*w1_3_1")
    assert right.verdict == "identical"
    multiplied = c.check_expr("((z1_1 - y_1)*w1_1_1) * ((z1_2 - y_2)*w1_2_1) * ((z1_3 - y_3)*w1_3_1)")
    assert not multiplied.right and keys(multiplied) == {"next_layer_multiplied"}
    same_for_all = c.check_expr("(z1_1 - y_1) + (z1_2 - y_2) + (z1_3 - y_3)")  # seed 002: "the same gradient?"
    assert not same_for_all.right and "local_left_out" in keys(same_for_all)


def test_next_layer_gradients_multiplied_pool_to_conv():
    c = checker("seed002_pool_to_conv.yaml", "maxpool2d_1.output[0,1,1]")  # used by all four conv positions
    paths = ["w2_1_1*w1_2_2", "w2_1_2*w1_2_1", "w2_1_3*w1_1_2", "w2_1_4*w1_1_1"]
    assert c.check_expr(" + ".join(f"2(z2_1 - y_1)*{p}" for p in paths)).verdict == "identical"
    verdict = c.check_expr(" * ".join(f"(2(z2_1 - y_1)*{p})" for p in paths))
    assert not verdict.right and "next_layer_multiplied" in keys(verdict)
    corner = checker("seed002_pool_to_conv.yaml", "maxpool2d_1.output[0,0,2]")  # used once
    assert len(corner.asked.terms) == 1
    assert corner.check_value(str(float(corner.asked.value))).right


def test_cut_terms_are_listed_with_their_reason():
    c = checker("seed000_tied_maxpool.yaml", W1)
    cuts = [str(t.cut) for t in c.asked.terms if t.cut]
    assert len(c.asked.terms) == 16 and len(cuts) == 12
    assert any("max-pool" in cut for cut in cuts) and any("ReLU" in cut for cut in cuts)
    text = render(c, c.check_value("0.1"))
    assert "not the (first) maximum" in text


BIG = """
name: 20x20 input, conv 4@3x3, ReLU, max-pool 2, flatten, FC 10, softmax, CE
seed: 5
input: {shape: [1, 20, 20]}
layers:
  - {type: conv2d, name: conv1, out_channels: 4, kernel_size: 3}
  - {type: relu}
  - {type: maxpool2d, kernel_size: 2}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 10}
  - {type: softmax}
loss: {type: cross_entropy, target: 3}
"""


def test_a_big_network_checks_values_quickly_and_refuses_formulas(tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text(BIG)
    derivation = cnnderive.load(config)
    value = float(derivation.gradient_floats()["conv1.weight"][0, 0, 0, 0])
    start = time.perf_counter()
    right = run(config, "--param", W1, "--value", repr(value))
    wrong = run(config, "--param", W1, "--value", repr(-value))
    assert time.perf_counter() - start < 60
    assert right.returncode == 0, right.stderr
    assert wrong.returncode == 1 and "a sign error" in wrong.stdout
    assert "more terms" in wrong.stdout and len(wrong.stdout.splitlines()) < 80
    formula = run(config, "--param", W1, "--expr", "x_1_1")
    assert formula.returncode == 2 and "too big for closed forms" in formula.stderr


def test_latex_flag_on_the_command_line():
    result = run(SEED001, "--param", W1, "--latex", "--expr", RIGHT.replace("w_1^2", "w^2_1"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "formula, verdict, mistake",
    [
        ("∂L/∂z¹₁₁·x₁₁ + ∂L/∂z¹₁₂·x₁₂ + ∂L/∂z¹₂₁·x₂₁ + ∂L/∂z¹₂₂·x₂₂", "identical", None),
        ("dL/dconv1.output[0,0,0] * x_1 + dL/do^1_2 x_2 + dL/dz1_2_1 x_4 + dL/dz1_2_2 x_5", "identical", None),
        (
            r"\frac{\partial L}{\partial z^{(1)}_{1,1}} x_{1,1} + \frac{\partial L}{\partial z^{(1)}_{1,2}} x_{1,2}",
            "wrong",
            None,
        ),
        ("(dL/dz1_1_1 + dL/dz1_1_2 + dL/dz1_2_1 + dL/dz1_2_2)(x_1 + x_2 + x_4 + x_5)", "wrong", "product_of_sums"),
        ("∂L/∂z¹₁₁·x₁₁ + ∂L/∂z¹₁₂·x₁₂ + ∂L/∂z¹₂₁·x₂₁", "wrong", "dropped_term"),
        ("2(o - y) w2_1 x_1 + ∂L/∂z¹₁₂·x₁₂ + ∂L/∂z¹₂₁·x₂₁ + ∂L/∂z¹₂₂·x₂₂", "identical", None),
    ],
)
def test_formulas_with_gradients_of_intermediates(seed001, formula, verdict, mistake):
    result = seed001.check_expr(formula)
    assert result.verdict == verdict
    assert mistake is None or mistake in keys(result)
    if "∂" in formula and verdict != "identical":
        assert "the chain rule, one step: ∂L/∂z¹₁₁·x₁₁ + ∂L/∂z¹₁₂·x₁₂" in render(seed001, result)


def test_gradient_of_the_target_is_refused(seed001):
    with pytest.raises(UserError, match="target"):
        seed001.check_expr("dL/dy_1")
