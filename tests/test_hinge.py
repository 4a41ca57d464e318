"""The multiclass hinge (SVM) loss: values worked by hand, its kinks (a margin of exactly 0) decided
exactly, PyTorch's MultiMarginLoss when torch is installed, and its config errors."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from tests.cli_support import run_cli

LINEAR = """
name: linear scores, multiclass hinge
input:
  values: [1, 2, -1]
layers:
  - type: linear
    name: fc
    out_features: 3
    params:
      weight: [[0.5, 0.2, 0.1], [0.3, -0.4, 0.2], [{w}, -0.9, -0.8]]
      bias: [0, 0.1, 0.1]
loss: {{type: hinge, target: 1{extra}}}
"""

X = [F(1), F(2), F(-1)]
B = [F(0), F("0.1"), F("0.1")]


def by_hand(w20: F, margin: F = F(1), mean: bool = False) -> tuple[F, list[F], list[list[F]]]:
    """Loss, dL/ds and dL/dW of the linear classifier above, worked with Fractions."""
    weight = [[F("0.5"), F("0.2"), F("0.1")], [F("0.3"), F("-0.4"), F("0.2")], [w20, F("-0.9"), F("-0.8")]]
    s = [sum(wi * xi for wi, xi in zip(row, X)) + b for row, b in zip(weight, B)]
    margins = {j: s[j] - s[1] + margin for j in (0, 2)}
    active = [j for j, m in margins.items() if m > 0]  # a margin of exactly 0 is inactive
    scale = F(1, 3) if mean else F(1)
    loss = scale * sum(margins[j] for j in active)
    ds = [scale * (j in active) for j in range(3)]
    ds[1] = -scale * len(active)
    return loss, ds, [[d * xi for xi in X] for d in ds]


def derive(w: str, extra: str = "") -> Derivation:
    return Derivation(loads(LINEAR.format(w=w, extra=extra), "hinge.yaml"))


@pytest.mark.parametrize(
    ("w", "extra", "margin", "mean"),
    [
        ("0.1", "", F(1), False),
        ("0.1", ", margin: 0.5, reduction: mean", F(1, 2), True),
        ("-2", "", F(1), False),
        ("-0.7", "", F(1), False),
    ],
)
def test_hinge_by_hand(w, extra, margin, mean):
    d = derive(w, extra)
    loss, ds, dw = by_hand(F(w), margin, mean)
    assert d.values.loss == loss
    assert list(d.values.deltas[-1]) == ds
    assert d.values.grads["fc.weight"].tolist() == dw
    assert d.floats.grads["fc.weight"].tolist() == [[float(v) for v in row] for row in dw]


def test_a_margin_of_exactly_zero_is_inactive():
    """w = -0.7 puts s_2 - s_1 + 1 at exactly 0 (float64 gives 1.1e-16, active): inactive, gradient 0 there."""
    s2 = F("-0.7") * 1 + F("-0.9") * 2 + F("-0.8") * -1 + F("0.1")
    s1 = F("0.3") * 1 + F("-0.4") * 2 + F("0.2") * -1 + F("0.1")
    assert s2 - s1 + 1 == 0
    assert -0.7 * 1 + -0.9 * 2 + -0.8 * -1 + 0.1 - (0.3 * 1 + -0.4 * 2 + 0.2 * -1 + 0.1) + 1 > 0
    d = derive("-0.7")
    assert d.network.kinks is not None  # decides the kinks, and the loss margins with them
    assert d.network.loss.active == (True, False, False)
    assert d.values.deltas[-1][2] == 0


AFTER_TANH = """
name: a hinge margin of exactly 0 behind tanh
input:
  values: [0.7]
layers:
  - type: tanh
  - type: linear
    name: fc
    out_features: 2
    params:
      weight: [[1], [1]]
      bias: [0, {bias}]
loss: {{type: hinge, target: 1}}
"""


@pytest.mark.parametrize(("bias", "active"), [("1", False), ("0.99999999999999999999", True)])
def test_hinge_kink_after_tanh_is_decided_exactly(bias, active):
    """s_0 - s_1 + 1 = tanh(0.7) - (tanh(0.7) + b) + 1: exactly 0 for b = 1 (inactive), 1e-20 above 0 for
    b = 1 - 1e-20 (active), where float64 cannot tell the two apart."""
    d = Derivation(loads(AFTER_TANH.format(bias=bias), "tanh.yaml"))
    assert d.network.kinks is not None  # decides the kinks, and the loss margins with them
    assert d.network.loss.active == (active, False)
    assert float(d.floats.grads["fc.bias"][0]) == (1.0 if active else 0.0)
    notes = [note.text for note in d.network.kink_notes]
    assert notes and "fc.output[0]" in notes[0]


@pytest.mark.parametrize(
    ("change", "words"),
    [(", margin: 0", "margin must be above 0"), (", reduction: half", "reduction"), (", target: [0.5, 0.5, 0]", "")],
)
def test_hinge_config_errors(tmp_path, change, words):
    text = LINEAR.format(w="0.1", extra="")
    if change.startswith(", target"):
        text = text.replace("target: 1", change[2:])
        words = "class index"
    else:
        text = text.replace("target: 1", "target: 1" + change)
    path = tmp_path / "net.yaml"
    path.write_text(text)
    code, stdout, stderr = run_cli(["grad", str(path)])
    assert (code, stdout) == (2, "") and stderr.count("\n") == 1 and words in stderr, stderr


def test_hinge_matches_pytorch_multimargin():
    """PyTorch's MultiMarginLoss divides by the number of classes: our `mean`; `sum` is C times it."""
    torch = pytest.importorskip("torch")
    for extra, times in (("", 3.0), (", reduction: mean", 1.0)):
        d = derive("0.1", extra)
        weight = torch.tensor(np.asarray(d.network.params["fc"]["weight"], dtype=float), requires_grad=True)
        bias = torch.tensor(np.asarray(d.network.params["fc"]["bias"], dtype=float), requires_grad=True)
        x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
        loss = times * torch.nn.functional.multi_margin_loss((weight @ x + bias)[None], torch.tensor([1]))
        loss.backward()
        assert float(d.floats.loss) == pytest.approx(loss.item(), rel=1e-15)
        np.testing.assert_allclose(d.floats.grads["fc.weight"], weight.grad.numpy(), rtol=1e-15)
        np.testing.assert_allclose(d.floats.grads["fc.bias"], bias.grad.numpy(), rtol=1e-15)


def test_an_inactive_margin_is_why_a_term_is_zero():
    """w = -2 makes class 2's margin -1.3 (inactive, by hand in by_hand): fc.weight[2,0]'s one term is cut
    for that reason; class 0's margin is active, so fc.weight[0,0]'s term is not cut."""
    from cnnderive.maths.layers import Cut

    d = derive("-2")
    assert by_hand(F(-2))[1] == [1, -1, 0]
    cut = d.gradient(d.tensors["fc.weight"], (2, 0)).terms[0].cut
    live = d.gradient(d.tensors["fc.weight"], (0, 0)).terms[0].cut
    assert (cut, live) == (Cut.MARGIN_INACTIVE, None)
