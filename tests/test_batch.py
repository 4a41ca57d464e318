"""Mini-batches: N examples through the same layers, L = 1/N Σ ℓₙ (or Σ ℓₙ), ∂L/∂w = 1/N Σ ∂ℓₙ/∂w.

Independent routes: 50-digit central differences of the batch loss (the mpmath forward pass of
test_gradients_fd, one per example), PyTorch float64 on the batch as one [N, C, H, W] tensor with
PyTorch's own losses (reduction mean and sum), and a linear batch worked by hand in Fractions.
"""

from __future__ import annotations

import json
import random
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnderive.config.build import loads_any
from cnnderive.derivation.batch import BatchDerivation
from cnnderive.maths.batch import Batch
from tests.cli_support import run_cli
from tests.test_gradients_fd import KINK_MARGIN, H, Reference, decimals, fill, mp, mpf
from tests.yaml_text import to_yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "configs" / "batch" / "conv_relu_pool_fc_batch2.yaml"

CONV_NET = [
    {"type": "conv2d", "name": "conv1", "out_channels": 2, "kernel_size": 2},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel_size": 2},
    {"type": "flatten"},
    {"type": "linear", "name": "fc", "out_features": 3},
    {"type": "softmax"},
]
LINEAR_NET = [
    {"type": "linear", "name": "fc1", "out_features": 3},
    {"type": "tanh"},
    {"type": "linear", "name": "fc2", "out_features": 2},
]


def batch_document(examples, layers, loss) -> str:
    lines = [f"input: {{examples: {to_yaml(list(examples))}}}", "layers:"]
    lines += [f"  - {to_yaml(layer)}" for layer in layers]
    lines.append(f"loss: {to_yaml(loss)}")
    return "\n".join(lines) + "\n"


def derive(text: str, exact: bool | None = False) -> BatchDerivation:
    batch = loads_any(text, "batch.yaml")
    assert isinstance(batch, Batch)
    return BatchDerivation(batch, exact=exact)


# --- 50-digit finite differences -----------------------------------------------------------------

FD_CASES = {
    "conv_relu_pool_fc_softmax_ce_mean": (2, (1, 5, 5), CONV_NET, {"type": "cross_entropy"}, [2, 0, 1], "mean"),
    "conv_relu_pool_fc_softmax_ce_sum": (2, (1, 5, 5), CONV_NET, {"type": "cross_entropy"}, [1, 1], "sum"),
    "linear_tanh_linear_mse_mean": (
        1,
        (4,),
        LINEAR_NET,
        {"type": "mse", "reduction": "mean"},
        [[Fraction(1, 2), Fraction(-1, 4)], [0, 1], [Fraction(3, 10), 0]],
        "mean",
    ),
}


@pytest.mark.parametrize("case", list(FD_CASES))
def test_batch_gradients_match_50_digit_finite_differences(case):
    """∂L/∂w of the batch (every element) against central differences of s·Σₙ ℓₙ at 50 digits."""
    seed, shape, layers, loss, targets, reduction = FD_CASES[case]
    rng = random.Random(seed * 101)
    x, layers = fill(seed, shape, layers)
    examples = [x] + [decimals(rng, shape, -100, 100) for _ in targets[1:]]
    spec = dict(loss, target=targets, batch_reduction=reduction)
    derivation = derive(batch_document([e.tolist() for e in examples], layers, spec))
    scale = mpf(Fraction(1, len(targets))) if reduction == "mean" else 1
    with mp.workdps(50):
        references = [Reference(e, layers, dict(loss, target=t)) for e, t in zip(examples, targets)]
        params = references[0].params  # perturbed in place; every example reads the same arrays

        def batch_loss():
            return scale * mp.fsum(reference.forward(params) for reference in references)

        value = batch_loss()
        assert min((m for r in references for m in r.margins), default=1) > KINK_MARGIN, (
            "near a kink: pick other numbers"
        )
        h = mpf(H)
        for (k, param), array in params.items():
            name = f"{layers[k]['name']}.{param}"
            got = derivation.nearest.grads[name]
            for index in np.ndindex(*array.shape):
                keep = array[index]
                array[index] = keep + h
                up = batch_loss()
                array[index] = keep - h
                down = batch_loss()
                array[index] = keep
                assert got[index] == pytest.approx(float((up - down) / (2 * h)), rel=1e-9, abs=1e-12), (name, index)
    assert derivation.nearest.loss == pytest.approx(float(value), rel=1e-12)


# --- PyTorch float64 -----------------------------------------------------------------------------


def torch_batch(path: Path, reduction: str = "mean", only: int | None = None):
    """The shipped conv-ReLU-pool-FC-softmax batch in PyTorch: loss and gradients (of example `only` alone)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    config = yaml.safe_load(path.read_text())
    layers = {layer.get("name"): layer for layer in config["layers"]}
    as_tensor = lambda raw: torch.tensor(raw, dtype=torch.float64)
    w1 = as_tensor(layers["conv1"]["params"]["weight"]).requires_grad_()
    b1 = as_tensor(layers["conv1"]["params"]["bias"]).requires_grad_()
    w2 = as_tensor(layers["fc"]["params"]["weight"]).requires_grad_()
    b2 = as_tensor(layers["fc"]["params"]["bias"]).requires_grad_()
    x = as_tensor(config["input"]["examples"])
    target = torch.tensor(config["loss"]["target"])
    if only is not None:
        x, target = x[only : only + 1], target[only : only + 1]
    z = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2).flatten(1)
    p = F.softmax(F.linear(z, w2, b2), dim=1)
    loss = F.nll_loss(torch.log(p), target, reduction=reduction)
    loss.backward()
    grads = {"conv1.weight": w1.grad, "conv1.bias": b1.grad, "fc.weight": w2.grad, "fc.bias": b2.grad}
    return loss.item(), p.detach().numpy(), {k: v.numpy() for k, v in grads.items()}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_shipped_batch_agrees_with_torch_float64(reduction):
    text = SHIPPED.read_text().replace("batch_reduction: mean", f"batch_reduction: {reduction}")
    derivation = derive(text)
    loss, outputs, grads = torch_batch(SHIPPED, reduction)
    assert derivation.nearest.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(derivation.nearest.values[-1], outputs, rtol=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(derivation.nearest.grads[name], grad, rtol=1e-9, atol=1e-14, err_msg=name)


def test_mse_batch_mean_is_torch_mse_loss_mean_on_n_by_k():
    """batch_reduction: mean with reduction: mean is PyTorch's MSELoss(mean) on the [N][K] outputs."""
    torch = pytest.importorskip("torch")
    rng = random.Random(3)
    x, layers = fill(3, (4,), [{"type": "linear", "name": "fc", "out_features": 2}])
    examples = [x] + [decimals(rng, (4,), -100, 100) for _ in range(2)]
    targets = [[Fraction(1, 2), 0], [0, 1], [Fraction(-1, 5), Fraction(3, 10)]]
    text = batch_document([e.tolist() for e in examples], layers, {"type": "mse", "target": targets})
    derivation = derive(text)
    w = torch.tensor(np.array(layers[0]["params"]["weight"], dtype=float), requires_grad=True)
    b = torch.tensor(np.array(layers[0]["params"]["bias"], dtype=float), requires_grad=True)
    inputs = torch.tensor(np.array([e.astype(float) for e in examples]))
    loss = torch.nn.MSELoss()(inputs @ w.T + b, torch.tensor(np.array(targets, dtype=float)))
    loss.backward()
    assert derivation.nearest.loss == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(derivation.nearest.grads["fc.weight"], w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(derivation.nearest.grads["fc.bias"], b.grad.numpy(), rtol=1e-12)


# --- exact, by hand ------------------------------------------------------------------------------

HAND = """
input:
  values: [[1, 2], [3, -1]]      # two examples of a network that starts with linear
layers:
  - {type: linear, name: fc, out_features: 1, params: {weight: [[0.5, -0.25]], bias: [0.1]}}
loss: {type: mse, target: [1, 0], reduction: sum}
"""


def test_linear_batch_worked_by_hand_exactly():
    """o₁ = 0.5 - 0.5 + 0.1 = 1/10, o₂ = 1.5 + 0.25 + 0.1 = 37/20; ∂L/∂w = 1/2 Σ 2(oₙ - tₙ) xₙ."""
    o = [Fraction(1, 10), Fraction(37, 20)]
    x = [(1, 2), (3, -1)]
    t = [1, 0]
    want_w = [Fraction(1, 2) * sum(2 * (o[n] - t[n]) * x[n][j] for n in range(2)) for j in range(2)]
    want_b = Fraction(1, 2) * sum(2 * (o[n] - t[n]) for n in range(2))
    want_loss = Fraction(1, 2) * sum((o[n] - t[n]) ** 2 for n in range(2))
    derivation = derive(HAND, exact=True)
    records = derivation.gradients
    assert [Fraction(str(v)) for v in records["fc.weight"].value.flat] == want_w
    assert Fraction(str(records["fc.bias"].value[0])) == want_b
    assert Fraction(str(derivation.loss[0])) == want_loss
    # each example's own part is kept: ∂ℓ₁/∂b = 2(o₁ - t₁)
    assert Fraction(str(records["fc.bias"].parts[0][0])) == 2 * (o[0] - t[0])


# --- reading the config --------------------------------------------------------------------------


def test_the_three_ways_to_write_a_batch_agree():
    config = yaml.safe_load(SHIPPED.read_text())
    examples = config["input"]["examples"]
    as_values = SHIPPED.read_text().replace("  examples:", "  values:")
    a, b = derive(SHIPPED.read_text()), derive(as_values)
    assert a.size == b.size == 2
    for name in a.network.parameter_names():
        np.testing.assert_array_equal(a.nearest.grads[name], b.nearest.grads[name])
    assert np.asarray(examples).shape == (2, 2, 4, 4)


def test_a_3d_input_stays_one_example_and_2d_is_one_image_before_a_conv():
    text = "input: {values: [[[1, 2], [3, 4]]]}\nlayers: [{type: flatten}]\nloss: {type: mse, target: [1, 2, 3, 4]}\n"
    assert not isinstance(loads_any(text), Batch)
    image = "input: {values: [[1, 2], [3, 4]]}\nlayers: [{type: flatten}]\nloss: {type: mse, target: [1, 2, 3, 4]}\n"
    assert not isinstance(loads_any(image), Batch)


@pytest.mark.parametrize(
    "change, words",
    [
        (("target: [2, 0]", "target: 2"), "expected a list of 2 targets"),
        (("target: [2, 0]", "target: [2, 0, 1]"), "expected a list of 2 targets"),
        (("target: [2, 0]", "target: [2, 3]"), "class index 3 is out of range"),
        (("batch_reduction: mean", "batch_reduction: median"), "expected one of mean, sum"),
        (("batch_reduction: mean", "weight_decay: 0.1"), "weight_decay is not available for a batch"),
    ],
)
def test_batch_config_errors_are_one_line(tmp_path, change, words):
    path = tmp_path / "bad.yaml"
    path.write_text(SHIPPED.read_text().replace(*change))
    code, _, err = run_cli(["grad", str(path)])
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_command_that_takes_one_example_refuses_a_batch_in_one_line():
    code, _, err = run_cli(["symbols", str(SHIPPED)])
    assert code == 2 and "batch of 2 examples" in err and len(err.strip().splitlines()) == 1


# --- the commands --------------------------------------------------------------------------------


def test_grad_json_keeps_the_contract_keys_with_the_batch_values():
    code, out, _ = run_cli(["grad", str(SHIPPED), "--json"])
    document = json.loads(out)
    assert code == 0 and set(document) == {"loss", "output", "gradients"}
    loss, _, grads = torch_batch(SHIPPED)
    assert document["loss"] == pytest.approx(loss, rel=1e-12)
    assert np.asarray(document["output"]).shape == (2, 3)
    for name, grad in grads.items():
        np.testing.assert_allclose(document["gradients"][name], grad, rtol=1e-9, atol=1e-14)


def test_grad_table_shows_each_example_and_the_half():
    code, out, _ = run_cli(["grad", str(SHIPPED), "--param", "fc.bias"])
    assert code == 0
    assert "∂ℓ₁/∂θ" in out and "∂ℓ₂/∂θ" in out and "1/2 (∂ℓ₁/∂θ" in out.replace("\n", " ").replace("┃", " ")


def test_explain_shows_each_example_then_the_batch():
    code, out, _ = run_cli(["explain", str(SHIPPED), "--width", "120"])
    assert code == 0
    assert out.index("example 1 of 2") < out.index("example 2 of 2") < out.index("The batch")
    assert out.count("The network at a glance") == 1
    assert "∂L/∂w¹ = 1/2 (∂ℓ₁/∂w¹ + ∂ℓ₂/∂w¹)" in out
    assert "L = 1/2 (ℓ₁ + ℓ₂)" in out


def test_explain_example_n_is_that_example_alone(tmp_path):
    """--example 2 prints what the one-example config of example 2 prints."""
    config = yaml.safe_load(SHIPPED.read_text())
    config["input"] = {"values": config["input"]["examples"][1]}
    config["loss"] = {"type": "cross_entropy", "target": config["loss"]["target"][1]}
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump(config))
    code, out, _ = run_cli(["explain", str(SHIPPED), "--example", "2", "--width", "120"])
    assert code == 0
    assert out == run_cli(["explain", str(single), "--width", "120"])[1]
    code, _, err = run_cli(["explain", str(SHIPPED), "--example", "3"])
    assert code == 2 and "examples 1 to 2" in err


def test_check_value_names_the_batch_mistakes():
    """The right value, the sum without 1/N, and one example's gradient: all from PyTorch."""
    _, _, mean = torch_batch(SHIPPED, "mean")
    _, _, total = torch_batch(SHIPPED, "sum")
    _, _, second = torch_batch(SHIPPED, "sum", only=1)
    element = ["-p", "fc.bias[0]"]
    code, out, _ = run_cli(["check", str(SHIPPED), *element, "--value", repr(float(mean["fc.bias"][0]))])
    assert code == 0 and "right" in out
    code, out, _ = run_cli(["check", str(SHIPPED), *element, "--value", repr(float(total["fc.bias"][0]))])
    assert code == 1 and "the batch 1/N left out" in out
    code, out, _ = run_cli(["check", str(SHIPPED), *element, "--value", repr(float(second["fc.bias"][0]))])
    assert code == 1 and "one example only (example 2)" in out
    code, _, err = run_cli(["check", str(SHIPPED), *element, "--expr", "p_1 - 1"])
    assert code == 2 and "--example n" in err


def test_latex_of_a_batch_has_the_batch_section_and_compiles(tmp_path):
    code, out, _ = run_cli(["latex", str(SHIPPED)])
    assert code == 0
    assert "Example 1 of 2" in out and "Example 2 of 2" in out and "The batch" in out
    assert r"\frac{1}{2}\left(\frac{\partial \ell_{1}}{\partial w^{(1)}}" in out
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    code, _, err = run_cli(["latex", str(SHIPPED), "-o", str(tmp_path / "b.tex"), "--pdf"])
    assert code == 0, err
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
