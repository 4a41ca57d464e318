"""Graphs, not only chains: `from:`, add and concat.

Every expected number comes from PyTorch float64 (autograd on a copy of each branch's input, so
each branch's part of a shared gradient is PyTorch's own), or from exact Fractions worked here.
Parameter gradients of add and concat are also checked against 50-digit finite differences
(tests/test_gradients_fd.py) and the shipped config in tests/test_torch.py.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.derivation.steps import build_steps
from cnnderive.errors import UserError
from cnnderive.maths.ops import RationalOps
from tests.cli_support import run_cli
from tests.conftest import CONFIGS

RESNET = CONFIGS / "resnet_basic_block.yaml"

BRANCHES = """\
input:
  values:
    - [[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [0.2, 0.7, -0.1]]
layers:
  - {type: conv2d, name: left, out_channels: 2, kernel_size: 2,
     params: {weight: [[[[0.3, -0.1], [0.2, 0.4]]], [[[-0.2, 0.5], [0.1, 0.3]]]], bias: [0.1, -0.1]}}
  - {type: relu, name: left_relu}
  - {type: conv2d, name: right, from: input, out_channels: 1, kernel_size: 2,
     params: {weight: [[[[0.2, 0.2], [-0.3, 0.1]]]], bias: [0.05]}}
  - {type: concat, name: cat, from: [left_relu, right]}
  - {type: conv2d, name: mix, out_channels: 1, kernel_size: 1, params: {weight: [[[[0.5]], [[-0.4]], [[0.3]]]], bias: [0]}}
  - {type: add, name: res, from: [mix, right]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 2, params: {weight: [[0.3, -0.2, 0.1, 0.4], [0.2, 0.1, -0.5, 0.3]], bias: [0, 0.1]}}
  - {type: softmax}
loss: {type: cross_entropy, target: 0}
"""


def _torch_branches():
    """BRANCHES in PyTorch, each read of a shared tensor on its own copy: dL/d(each copy) is that
    reader's part, and their sum is dL/d(the tensor)."""
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    t = lambda v: torch.tensor(v, dtype=torch.float64)
    x = t([[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [0.2, 0.7, -0.1]]])
    x_left, x_right = x.clone().requires_grad_(), x.clone().requires_grad_()
    left = f.relu(f.conv2d(x_left[None], t([[[[0.3, -0.1], [0.2, 0.4]]], [[[-0.2, 0.5], [0.1, 0.3]]]]), t([0.1, -0.1])))
    right = f.conv2d(x_right[None], t([[[[0.2, 0.2], [-0.3, 0.1]]]]), t([0.05]))
    right_cat, right_add = right.detach().clone().requires_grad_(), right.detach().clone().requires_grad_()
    cat = torch.cat([left, right_cat], dim=1)
    mix = f.conv2d(cat, t([[[[0.5]], [[-0.4]], [[0.3]]]]), t([0.0]))
    res = mix + right_add
    logits = f.linear(res.reshape(-1), t([[0.3, -0.2, 0.1, 0.4], [0.2, 0.1, -0.5, 0.3]]), t([0.0, 0.1]))
    loss = f.cross_entropy(logits[None], torch.tensor([0]))
    loss.backward()
    right_grad = (right_cat.grad + right_add.grad)[0]
    right.backward(right_grad[None])  # on into x_right
    return {
        "input": (x_left.grad.numpy(), x_right.grad.numpy()),
        "right": (right_cat.grad[0].numpy(), right_add.grad[0].numpy()),
    }


def test_each_branch_part_and_their_sum_agree_with_torch():
    network = loads(BRANCHES, "branches.yaml")
    derivation = Derivation(network)
    steps = build_steps(derivation)
    want = _torch_branches()
    forks = {fork.tensor.name: fork for fork in steps.forks}
    assert set(forks) == {"input", "right.output"}
    for name, key in (("input", "input"), ("right.output", "right")):
        fork = forks[name]
        assert [step.layer.name for step in fork.readers] == (["left", "right"] if key == "input" else ["cat", "res"])
        for part, expected in zip(fork.parts_approx, want[key]):
            np.testing.assert_allclose(part, expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(fork.total_approx, sum(want[key]), rtol=1e-12, atol=1e-15)
    # the forks come in backward order: right.output (value 3) is complete before the input
    assert [fork.tensor.name for fork in steps.forks] == ["right.output", "input"]


def test_resnet_input_gradient_is_the_sum_of_both_branches_in_torch():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    network = loads(RESNET.read_text(), str(RESNET))
    derivation = Derivation(network)
    x = torch.tensor(np.asarray(network.input, dtype=float))
    x_conv, x_skip = x.clone().requires_grad_(), x.clone().requires_grad_()
    p = {n: torch.tensor(np.asarray(network.parameter(n), dtype=float)) for n in network.parameter_names()}
    a = f.relu(f.conv2d(x_conv[None], p["conv1.weight"], p["conv1.bias"], padding=1))
    s = f.relu(f.conv2d(a, p["conv2.weight"], p["conv2.bias"], padding=1) + x_skip[None])
    logits = f.linear(s.mean(dim=(2, 3)), p["fc.weight"], p["fc.bias"])
    f.cross_entropy(logits, torch.tensor([1])).backward()
    (fork,) = build_steps(derivation).forks
    np.testing.assert_allclose(fork.parts_approx[0], x_conv.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fork.parts_approx[1], x_skip.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(derivation.floats.deltas[0], (x_conv.grad + x_skip.grad).numpy(), rtol=1e-12)


def test_exact_kink_at_the_join_and_exact_sum():
    """The add's output is exactly 0 at one element (0.1·3 + 0.3·(-1)... = 0): ReLU'(0) = 0 there,
    decided on fractions; the exact dL/dx is worked here by hand with Fractions."""
    text = """\
input: {values: [[0.3, -0.2], [0.5, 0.1]]}
layers:
  - {type: conv2d, name: conv, out_channels: 1, kernel_size: 1, params: {weight: [[[[-1]]]], bias: [0.1]}}
  - {type: add, name: join, from: [conv, input]}
  - {type: relu}
loss: {type: mse, target: [0, 0, 0, 0], reduction: sum}
"""
    network = loads(text, "kink.yaml")
    # join = (-x + 0.1) + x = 0.1 everywhere: no kink; change the bias to 0 for an exact 0
    network = loads(text.replace("bias: [0.1]", "bias: [0]"), "kink.yaml")
    run = network.run(RationalOps())
    assert all(v == 0 for v in run.values[2].flat)  # -x + x, exactly 0 (float64 agrees here, but it is decided exactly)
    assert not np.asarray(network.kinks[2]).any()  # ReLU'(0) = 0 at every element
    assert all(d == 0 for d in run.deltas[0].flat)
    # with bias 0.1 every join is 0.1 > 0: dL/dy = 2·0.1, dL/dx = (-1)·0.2 from conv + 0.2 from the skip = 0
    network = loads(text, "kink.yaml")
    run = network.run(RationalOps())
    assert [run.shared[0][0][1][0, 0, 0], run.shared[0][1][1][0, 0, 0]] == [Fraction(-1, 5), Fraction(1, 5)]
    assert all(d == 0 for d in run.deltas[0].flat)
    assert run.grads["conv.bias"][0] == 4 * Fraction(1, 5)


def test_chains_have_no_forks_and_unchanged_sources():
    network = loads((CONFIGS / "lenet5.yaml").read_text(), "lenet5.yaml")
    assert network.is_chain() and all(not layer.sources for layer in network.layers)
    assert build_steps(Derivation(network, exact=False)).forks == ()


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("from: [conv2, input]", "from: [conv2, nowhere]", "`from` names an earlier layer or input"),
        ("from: [conv2, input]", "from: conv2", "add takes `from: [a, b]`"),
        ("from: [conv2, input]", "from: [conv2, fc]", "`from` names an earlier layer"),
        ("from: [conv2, input]", "from: [conv2, relu1, input, gap]", "`from` names an earlier layer"),
    ],
    ids=["unknown", "not-a-list", "later-layer", "not-yet"],
)
def test_bad_from_is_one_clear_line(tmp_path, old, new, message):
    path = tmp_path / "bad.yaml"
    path.write_text(RESNET.read_text().replace(old, new))
    status, _, err = run_cli(["grad", str(path)])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "replace, message",
    [
        (("from: [conv2, input]", "from: [relu1, input]"), "no later layer reads the output of conv2"),
        (
            ("padding: 1\n    params:\n      weight: [[0.2", "padding: 0\n    params:\n      weight: [[0.2"),
            "add needs inputs of one shape",
        ),
    ],
    ids=["unread-output", "shape-mismatch"],
)
def test_graph_shape_errors(tmp_path, replace, message):
    path = tmp_path / "bad.yaml"
    text = RESNET.read_text()
    assert replace[0] in text
    path.write_text(text.replace(replace[0], replace[1], 1))
    status, _, err = run_cli(["grad", str(path)])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_concat_needs_matching_height_and_width():
    text = BRANCHES.replace(
        "kernel_size: 2,\n     params: {weight: [[[[0.2", "kernel_size: 1,\n     params: {weight: [[[[0.2"
    )
    text = text.replace("[[[[0.2, 0.2], [-0.3, 0.1]]]]", "[[[[0.2]]]]")
    with pytest.raises(UserError, match="concat joins images"):
        loads(text, "bad.yaml")


def test_relu_after_tanh_in_a_graph_is_refused_clearly():
    text = BRANCHES.replace("{type: relu, name: left_relu}", "{type: tanh, name: left_relu}")
    text = text.replace("  - {type: flatten}", "  - {type: relu}\n  - {type: flatten}")
    with pytest.raises(UserError, match="kinks are decided exactly only before"):
        _ = loads(text, "bad.yaml").kinks


def test_explain_and_latex_say_the_plus_copies_and_sum_with_numbers(tmp_path):
    status, out, err = run_cli(["explain", str(RESNET)])
    assert status == 0, err
    flat = " ".join(out.split())
    assert "the + copies the gradient to both branches" in flat
    assert "x is read by conv1 and skip" in flat and "Summed, not averaged" in flat
    line = next(line for line in out.splitlines() if line.strip().startswith("∂L/∂x₁") and " + " in line)
    numbers = [float(v.strip("() ")) for v in line.split("=")[1].split("+")] + [float(line.split("=")[2])]
    assert numbers[0] + numbers[1] == pytest.approx(numbers[2], abs=2e-4)
    status, _, err = run_cli(["latex", str(RESNET), "-o", str(tmp_path / "r.tex")])
    assert status == 0, err
    tex = (tmp_path / "r.tex").read_text()
    assert "the + copies the gradient to both branches" in tex and "read by 2 layers" in tex


def test_check_names_a_residual_gradient_averaged_instead_of_summed(tmp_path):
    """The averaged value is built here in PyTorch: right.weight's gradient with dL/d(right) taken as
    the mean, not the sum, of what cat and res send back."""
    torch = pytest.importorskip("torch")
    want = _torch_branches()
    x = torch.tensor([[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [0.2, 0.7, -0.1]]], dtype=torch.float64)
    w = torch.tensor([[[[0.2, 0.2], [-0.3, 0.1]]]], dtype=torch.float64, requires_grad=True)
    right = torch.nn.functional.conv2d(x[None], w, torch.tensor([0.05], dtype=torch.float64))
    averaged = torch.tensor((want["right"][0] + want["right"][1]) / 2)
    right.backward(averaged[None])
    summed = torch.tensor(want["right"][0] + want["right"][1])
    w_right = w.grad[0, 0, 0, 1].item()
    w.grad = None
    right = torch.nn.functional.conv2d(x[None], w, torch.tensor([0.05], dtype=torch.float64))
    right.backward(summed[None])
    assert w.grad[0, 0, 0, 1].item() != pytest.approx(w_right, rel=1e-3)  # the mistake changes this gradient
    path = tmp_path / "branches.yaml"
    path.write_text(BRANCHES)
    status, out, err = run_cli(["check", str(path), "--param", "right.weight[0,0,0,1]", "--value", repr(w_right)])
    assert status == 1, err
    assert "a residual gradient averaged instead of summed" in " ".join(out.split())
    right_value = repr(w.grad[0, 0, 0, 1].item())
    status, out, err = run_cli(["check", str(path), "--param", "right.weight[0,0,0,1]", "--value", right_value])
    assert status == 0, out + err
