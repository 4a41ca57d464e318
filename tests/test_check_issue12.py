"""Issue 12, items 3, 5 and 6: `check` never quotes a value from across a kink, names the most
specific mistake first with paragraphs about what the network has, and accepts a formula that is
right only through this config's max-pool choices while saying which symbol the chain rule uses.

Every expected number is worked by hand below (Fractions from the config numbers), or comes from
a second network built at the moved numbers (its own kinks decided there), never from the point
that check itself evaluated.
"""

from __future__ import annotations

import io
from fractions import Fraction

import mpmath
import pytest
import sympy

import cnnderive
from cnnderive.check.checker import Checker
from cnnderive.check.explanations import EXPLANATIONS, explanation, network_features
from cnnderive.check.mistakes import Mistake
from cnnderive.check.ranking import ranked
from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.printers.check_out import CheckView
from cnnderive.printers.terminal import make_console
from tests.conftest import CONFIGS

# z¹ = 3·(1/10) - 1·(3/10) + 0 = 0 exactly: the ReLU sits on its kink
RELU_ZERO = """
input: {{values: [0.1, 0.3]}}
layers:
  - {{type: linear, name: fc1, out_features: 1, params: {{weight: [[3, -1]], bias: [{bias}]}}}}
  - {{type: relu}}
  - {{type: linear, name: fc2, out_features: 1, params: {{weight: [[2]], bias: [0.5]}}}}
loss: {{type: mse, target: [0], reduction: sum}}
"""
# one 2x2 window, x₁₁ = x₁₂ = 1: a tie, sent to x₁₁ (the first maximum)
TIE = """
input: {{values: [[1, 1], [0, {x22}]]}}
layers:
  - {{type: maxpool2d, kernel_size: 2}}
  - {{type: flatten}}
  - {{type: linear, name: fc, out_features: 1, bias: false, params: {{weight: [[2]]}}}}
loss: {{type: mse, target: [0], reduction: sum}}
"""
# a 1x1 conv halves x; 2x2 max-pool with stride 1 over a 2x3 map: both windows pick z¹₁₂ = 0.4
STRIDE_ONE = """
input: {{values: [[0.2, 0.8, 0.1], [0.4, 0.6, {x23}]]}}
layers:
  - {{type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, bias: false, params: {{weight: [[0.5]]}}}}
  - {{type: maxpool2d, kernel_size: 2, stride: 1}}
  - {{type: flatten}}
  - {{type: linear, name: fc, out_features: 1, params: {{weight: [[0.5, -0.25]], bias: [0.1]}}}}
  - {{type: sigmoid}}
loss: {{type: cross_entropy, target: [1]}}
"""


def checker(text: str, param: str) -> Checker:
    return Checker(Derivation(loads(text, "net.yaml")), param)


def render(checker: Checker, verdict) -> str:
    console = make_console(record=True, width=300)
    console.file = io.StringIO()
    console.print(CheckView(checker.derivation).render(verdict))
    return console.export_text()


# -- item 3: no value quoted from across a kink ----------------------------------------------------


def test_relu_exactly_zero_nearby_stays_on_the_masked_side():
    """∂L/∂w² = 2(o - y)·a¹ = 0 here (a¹ = ReLU(0) = 0). Writing z¹ for a¹ has the same value, 0.
    Moving b¹ to +0.1 makes z¹ = 0.1 > 0: there the mask flips and the true gradient is
    2·(2·0.1 + 0.5)·0.1 = 7/50, not the masked formula's 0, so that point must not be quoted.
    At b¹ = -0.1: z¹ = -0.1, the mask holds, yours = 2·(1/2)·(-1/10) = -1/10, the gradient is 0."""
    c = checker(RELU_ZERO.format(bias=0), "fc2.weight[0,0]")
    verdict = c.check_expr("2*(o - y)*z1_1")
    assert verdict.verdict == "same_value"
    near = verdict.nearby
    assert not near.across_kink
    ((symbol, old, new),) = near.changes
    assert (symbol.name, old, new) == ("fc1.bias[0]", 0, sympy.Rational(-1, 10))
    assert (near.yours, near.right) == (sympy.Rational(-1, 10), 0)
    # the quoted gradient is the gradient of the network built at those numbers (its own mask there) ...
    assert Fraction(str(checker(RELU_ZERO.format(bias=-0.1), "fc2.weight[0,0]").asked.value)) == 0
    # ... while across the kink the masked formula (0) is not the gradient
    assert Fraction(str(checker(RELU_ZERO.format(bias=0.1), "fc2.weight[0,0]").asked.value)) == Fraction(7, 50)
    text = render(c, verdict)
    assert "b¹₁ = -1/10 = -0.1 instead of 0, yours is -1/10 = -0.1 and the gradient is 0" in text
    assert "1/10 = 0.1 instead of 0" not in text.replace("-1/10 = -0.1 instead", "")


def test_tie_nearby_skips_the_points_where_the_tie_breaks():
    """Yours = 2·o·max(x₁₁, x₁₂) + x₂₂², right = 2·o·f₁ with f₁ = x₁₁ (the tie's first maximum).
    x₁₂ = 1.1 breaks the tie the other way (not quoted); x₂₂ = 0.1 keeps every choice: there
    o = 2·1 = 2, yours = 2·2·1 + 1/100 = 401/100 and the gradient 2·2·1 = 4."""
    c = checker(TIE.format(x22=0), "fc.weight[0,0]")
    verdict = c.check_expr("2*o*max(x_1_1, x_1_2) + (x_2_2)^2")
    near = verdict.nearby
    assert verdict.verdict == "same_value" and not near.across_kink
    ((symbol, old, new),) = near.changes
    assert (symbol.name, old, new) == ("input[0,1,1]", 0, sympy.Rational(1, 10))
    assert (near.yours, near.right) == (sympy.Rational(401, 100), 4)
    assert Fraction(str(checker(TIE.format(x22=0.1), "fc.weight[0,0]").asked.value)) == 4


def test_formulas_that_differ_only_across_a_tie_get_no_quoted_value():
    """2·o·max(x₁₁, x₁₂) equals 2·o·x₁₁ wherever x₁₁ stays the first maximum; they differ only where
    x₁₂ wins, where this config's routing is no longer the gradient: said as a convention, no numbers."""
    c = checker(TIE.format(x22=0), "fc.weight[0,0]")
    verdict = c.check_expr("2*o*max(x_1_1, x_1_2)")
    near = verdict.nearby
    assert near.across_kink and near.exact_kink and near.yours is None and near.right is None
    text = " ".join(render(c, verdict).split())
    assert "differ only across one" in text and "a max-pool choice changes" in text
    assert "convention (PyTorch: a tie's gradient to its first maximum)" in text
    assert "yours is" not in text and "ReLU" not in text


# -- item 5: the most specific mistake first, paragraphs about what the network has ----------------


def test_dropped_sigmoid_derivative_is_named_as_such():
    """∂L/∂z for BCE on a sigmoid is ŷ - y; without σ'(z) = ŷ(1 - ŷ) it is ∂L/∂ŷ = -y/ŷ + (1-y)/(1-ŷ).
    That is also 'the local factor left out' (the local factor is σ'), but the sigmoid is the slip."""
    c = Checker(cnnderive.load(CONFIGS / "sigmoid_bce.yaml"), "fc.output[0]")
    verdict = c.check_expr("-y_1/yhat_1 + (1 - y_1)/(1 - yhat_1)")
    assert [m.key for m in verdict.mistakes] == ["activation_left_out"]
    assert verdict.mistakes[0].title == "the sigmoid derivative left out"
    text = render(c, verdict).lower().split("mistake:")[1]
    for absent in ("pool", "relu", "softmax", "tanh"):
        assert absent not in text, absent
    assert "σ(z)(1 − σ(z))" in text and "∂l/∂z = ŷ − y" in text


LINEAR_SIGN = """
input: {values: [1]}
layers:
  - {type: linear, name: fc1, out_features: 3, bias: false, params: {weight: [[2], [2], [-3]]}}
  - {type: linear, name: fc2, out_features: 1, bias: false, params: {weight: [[1, 1, 1]]}}
loss: {type: mse, target: [0.5], reduction: half_sum}
"""


def test_sign_error_comes_before_a_coincidental_term_left_out():
    """o = 2 + 2 - 3 = 1, ∂L/∂o = o - y = 1/2; ∂L/∂x = Σ_k (1/2)·W_k = (1/2)(2 + 2 - 3) = 1/2.
    The terms are 1, 1 and -3/2: leaving out either term 1 gives 1/2 - 1 = -1/2, which is also the
    sign error. The sign error is named first, the dropped term once, with both terms."""
    c = checker(LINEAR_SIGN, "input[0]")
    assert [Fraction(str(t.value)) for t in c.asked.terms] == [1, 1, Fraction(-3, 2)]
    verdict = c.check_value("-1/2")
    assert [m.key for m in verdict.mistakes] == ["sign", "dropped_term"]
    assert len(verdict.mistakes[1].about) == 2
    text = render(c, verdict)
    assert text.index("a sign error") < text.index("one chain-rule term left out")
    assert text.count("one chain-rule term left out") == 1 and "(each = 1)" in text


def test_seed001_terms_of_equal_value_are_one_mistake():
    """Seed 001, ∂L/∂w¹₁₁ = Σ x·∂L/∂z¹: ∂L/∂z¹ = 2(o - y)·w² = -(1/2)·[0.4, 0.2, -0.1, 0.3] and the
    terms are 1·(-1/5), 2·(-1/10), 0·(1/20), 1·(-3/20): -11/20 in all. Leaving out either -1/5 term
    and flipping the sign gives 11/20 - 1/5 = 7/20: one mistake naming both terms, not two."""
    c = Checker(cnnderive.load(CONFIGS / "seed001_conv_conv_mse.yaml"), "conv1.weight[0,0,0,0]")
    values = [Fraction(str(t.value)) for t in c.asked.terms]
    assert values == [Fraction(-1, 5), Fraction(-1, 5), 0, Fraction(-3, 20)]
    verdict = c.check_value("7/20")
    assert [(m.key, m.also) for m in verdict.mistakes] == [("dropped_term", ("sign",))]
    assert {t.out_index for t in verdict.mistakes[0].about} == {(0, 0, 0), (0, 0, 1)}
    assert [m.key for m in c.check_value("0.55").mistakes] == ["sign"]


def _mistake(key: str, term=None, also=()) -> Mistake:
    return Mistake(key, EXPLANATIONS[key][0], "", term, also)


def test_ranking_most_specific_first_and_no_duplicates():
    t1, t2 = object(), object()
    found = [
        _mistake("dropped_term", t1),
        _mistake("local_left_out"),
        _mistake("dropped_term", t2),
        _mistake("sign"),
        _mistake("activation_left_out"),
        _mistake("products"),
        _mistake("next_layer_multiplied"),
        _mistake("only_term", t1, ("sign",)),
    ]
    chosen = ranked(found)
    assert [m.key for m in chosen] == ["sign", "activation_left_out", "next_layer_multiplied", "dropped_term"]
    assert chosen[-1].about == (t1, t2)
    assert [m.key for m in ranked([_mistake("kink_convention"), _mistake("sign")])] == ["kink_convention"]
    composite = ranked([_mistake("only_term", t1, ("sign",)), _mistake("factor_two", None, ("sign",))])
    assert [m.key for m in composite] == ["factor_two", "only_term"]


@pytest.mark.parametrize("config", ["seed001_conv_conv_mse.yaml", "sigmoid_bce.yaml"])
def test_paragraphs_mention_only_what_the_network_has(config):
    """Seed 001 has two convolutions and MSE; sigmoid_bce a conv, tanh, flatten, FC and a sigmoid."""
    network = cnnderive.load(CONFIGS / config).network
    features = network_features(network)
    kinds = {layer.kind for layer in network.layers}
    for key in EXPLANATIONS:
        if key in ("maxpool_all", "softmax_diagonal"):  # built only for networks with that layer
            continue
        text = explanation(key, features).lower()
        assert "pool" not in text and "relu" not in text and "softmax" not in text, (key, text)
        if "sigmoid" not in kinds:
            assert "sigmoid" not in text, key
    assert "a relu cuts" not in explanation("dropped_term", features).lower()


def test_paragraphs_name_the_kinks_the_network_has():
    relu = network_features(loads(RELU_ZERO.format(bias=0), "net.yaml"))
    assert "Only the terms that a ReLU cuts are zero" in explanation("dropped_term", relu)
    kink = explanation("kink_convention", relu)
    assert "ReLU'(0) = 0" in kink and "max-pool" not in kink
    pooled = explanation("kink_convention", network_features(loads(TIE.format(x22=0), "net.yaml")))
    assert "first maximum" in pooled and "ReLU" not in pooled


# -- item 6: right only through this config's max-pool choices --------------------------------------


def _sigmoid(x: Fraction) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-mpmath.mpf(x.numerator) / x.denominator))


def test_same_pooled_element_through_two_windows_is_right_with_a_note():
    """z¹ = x/2 = [[0.1, 0.4, 0.05], [0.2, 0.3, 0.15]]; both 2x2 windows (stride 1) have their
    maximum at z¹₁₂ = 0.4, so f¹₁ = f¹₂ = 0.4. z² = 0.5·0.4 - 0.25·0.4 + 0.1 = 1/5 and
    ∂L/∂w²₁₁ = (σ(1/5) - 1)·f¹₁: writing f¹₂ is right here, and check says the chain rule has f¹₁."""
    c = checker(STRIDE_ONE.format(x23=0.3), "fc.weight[0,0]")
    verdict = c.check_expr("(yhat_1 - y_1)*f1_2")
    assert verdict.verdict == "identical"
    with mpmath.workdps(40):
        expected = (_sigmoid(Fraction(1, 5)) - 1) * mpmath.mpf("0.4")
        assert abs(mpmath.mpf(str(sympy.N(verdict.right_value, 40))) - expected) < mpmath.mpf("1e-35")
    ((note,),) = [verdict.stand_ins]
    assert (note.yours.name, note.chain.name, note.element.name) == (
        "flatten_3.output[1]",
        "flatten_3.output[0]",
        "conv1.output[0,0,1]",
    )
    text = " ".join(render(c, verdict).split())
    assert "✓ right" in text
    assert "note: the chain-rule term uses f¹₁, not f¹₂: both are z¹₁₂ here (through this config's max-pool" in text
    assert "ReLU" not in text
    assert c.check_expr("(yhat_1 - y_1)*f1_1").stand_ins == ()  # the chain rule's own symbol: no note
    assert c.check_expr("(yhat_1 - y_1)*p1_1_1").stand_ins == ()  # f¹₁ is p¹₁₁ flattened, for any numbers


def test_when_the_windows_pick_different_elements_the_other_symbol_is_wrong():
    """With x₂₃ = 0.9 the second window's maximum is z¹₂₃ = 0.45, so f¹₂ ≠ f¹₁: the same formula is wrong."""
    c = checker(STRIDE_ONE.format(x23=0.9), "fc.weight[0,0]")
    assert c.check_expr("(yhat_1 - y_1)*f1_2").verdict == "wrong"
    assert c.check_expr("(yhat_1 - y_1)*f1_1").verdict == "identical"
