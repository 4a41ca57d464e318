"""Printed floats are the nearest doubles of the exact values (spec section 2), also where float64 loses them.

Issue 10, item 4: a saturated sigmoid or softmax (z = 30, 37, 40, 800; logits 800 apart) gives float64 a
loss of inf or 30.00102; the exact loss is softplus(z) = z + log(1 + e^-z). Item 2: a gradient that is
exactly 0 (two sigmoid or softmax outputs that are equal exactly but that float64 computes apart)
printed as float noise (4.9e-17). Every expected number here is computed in the test, with mpmath at
50 digits from the textbook formulas, or by tests/exact_reference.py (SymPy, independent of cnnderive);
PyTorch float64 is a second opinion where it is accurate.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction as F

import mpmath
import numpy as np
import pytest
import yaml

from cnnderive.config import loads
from cnnderive.derivation.floats import (
    IntervalOps,
    interval_double,
    is_exact_zero,
    mpf_double,
    nearest_double,
    nearest_pass,
)
from cnnderive.maths.ops import FloatOps
from tests.cli_support import run_cli
from tests.conftest import CONFIGS
from tests.exact_reference import backprop, floats
from tests.yaml_text import to_yaml


def exact(f) -> float:
    """The nearest double of a number computed by f() in mpmath at 50 digits."""
    with mpmath.workdps(50):
        return float(f())


def softplus(x) -> mpmath.mpf:
    """log(1 + e^x), the binary cross-entropy of a sigmoid in terms of its logit."""
    return mpmath.log1p(mpmath.exp(x))


def sigmoid(x) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


def document(config: dict) -> str:
    lines = [f"name: {config.get('name', 'test')}", f"input: {to_yaml(config['input'])}", "layers:"]
    lines += [f"  - {to_yaml(layer)}" for layer in config["layers"]]
    return "\n".join(lines + [f"loss: {to_yaml(config['loss'])}"]) + "\n"


def sigmoid_net(z: int, target: int) -> dict:
    """x = 1, z = w x with w = z, a sigmoid and binary cross-entropy."""
    fc = {"type": "linear", "name": "fc", "out_features": 1, "params": {"weight": [[z]], "bias": [0]}}
    return {
        "input": {"values": [1]},
        "layers": [fc, {"type": "sigmoid"}],
        "loss": {"type": "cross_entropy", "target": [target]},
    }


def softmax_net(logits: list[int], target: int) -> dict:
    """x = 1, logits z = w x with w = `logits`, a softmax and cross-entropy."""
    weight = [[z] for z in logits]
    fc = {
        "type": "linear",
        "name": "fc",
        "out_features": len(logits),
        "params": {"weight": weight, "bias": [0] * len(logits)},
    }
    return {
        "input": {"values": [1]},
        "layers": [fc, {"type": "softmax"}],
        "loss": {"type": "cross_entropy", "target": target},
    }


def write(tmp_path, config: dict, name: str = "net.yaml"):
    path = tmp_path / name
    path.write_text(document(config))
    return str(path)


def grad_json(path: str) -> dict:
    status, out, err = run_cli(["grad", path, "--json"])
    assert status == 0, err
    return json.loads(out)


# --- item 4: saturated sigmoid and softmax, at the function level


@pytest.mark.parametrize("z", [30, 37, 40, 800, -40, -800])
@pytest.mark.parametrize("target", [0, 1])
def test_sigmoid_bce_is_the_nearest_double_of_softplus(z, target):
    # -t log s(z) - (1 - t) log(1 - s(z)) = softplus(z) for t = 0, softplus(-z) for t = 1; dL/dz = s(z) - t
    rounded = nearest_pass(loads(document(sigmoid_net(z, target))))
    loss = exact(lambda: softplus(z) if target == 0 else softplus(-z))
    output = exact(lambda: sigmoid(z))
    gradient = exact(lambda: sigmoid(z) if target == 0 else -sigmoid(-z))
    assert rounded.loss == loss
    assert rounded.values[-1].tolist() == [output]
    assert rounded.grads["fc.weight"].tolist() == [[gradient]]
    assert rounded.grads["fc.bias"].tolist() == [gradient]


def test_issue_numbers():
    # the issue's own: z = 30 gave 30.00102 (exact 30.0000000000000936), z = 37 and 40 gave inf
    assert nearest_pass(loads(document(sigmoid_net(30, 0)))).loss == 30.000000000000092 == exact(lambda: softplus(30))
    assert nearest_pass(loads(document(sigmoid_net(37, 0)))).loss == 37.0
    assert nearest_pass(loads(document(sigmoid_net(40, 0)))).loss == 40.0


@pytest.mark.parametrize("target", [0, 1])
def test_softmax_logits_800_apart(target):
    # p = softmax([800, 0]); -log p_0 = log(1 + e^-800), -log p_1 = 800 + log(1 + e^-800)
    rounded = nearest_pass(loads(document(softmax_net([800, 0], target))))
    rest = mpmath.exp(-800)
    loss = exact(lambda: mpmath.log1p(rest) if target == 0 else 800 + mpmath.log1p(rest))
    p = [exact(lambda: 1 / (1 + rest)), exact(lambda: rest / (1 + rest))]
    gradient = [exact(lambda: -rest / (1 + rest)), exact(lambda: rest / (1 + rest))] if target == 0 else [p[0], -p[0]]
    assert rounded.loss == loss
    assert rounded.values[-1].tolist() == p
    assert rounded.grads["fc.weight"].ravel().tolist() == gradient


def test_softmax_saturated_three_classes():
    logits, target = [F(1, 2), 30, -700], 0
    rounded = nearest_pass(loads(document(softmax_net(logits, target))))
    with mpmath.workdps(50):
        z = [mpmath.mpf(q.numerator) / q.denominator if isinstance(q, F) else mpmath.mpf(q) for q in logits]
        total = sum(mpmath.exp(v) for v in z)
        p = [mpmath.exp(v) / total for v in z]
        expected_loss = float(mpmath.log(total) - z[target])
        expected_grad = [float(p[k] - (k == target)) for k in range(3)]
    assert rounded.loss == expected_loss
    assert rounded.grads["fc.weight"].ravel().tolist() == expected_grad


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_float64_really_fails_on_these():
    """Not vacuous: float64 (PyTorch's arithmetic, the float pass) is inf or wrong on the same networks."""
    assert loads(document(sigmoid_net(37, 0))).run(FloatOps()).loss == np.inf
    assert loads(document(sigmoid_net(30, 0))).run(FloatOps()).loss != exact(lambda: softplus(30))
    assert loads(document(softmax_net([800, 0], 1))).run(FloatOps()).loss == np.inf


# --- item 4 through the CLI


@pytest.mark.parametrize(
    ("config", "loss"),
    [
        (sigmoid_net(40, 0), lambda: softplus(40)),
        (sigmoid_net(30, 0), lambda: softplus(30)),
        (softmax_net([800, 0], 1), lambda: 800 + mpmath.log1p(mpmath.exp(-800))),
    ],
)
def test_grad_json_gives_the_exact_loss(tmp_path, config, loss):
    document_ = grad_json(write(tmp_path, config))
    assert document_["loss"] == exact(loss)


def test_symbols_and_latex_print_no_infinity(tmp_path):
    path = write(tmp_path, sigmoid_net(37, 0))
    status, out, err = run_cli(["symbols", path])
    assert status == 0, err
    loss_row = next(line for line in out.splitlines() if line.startswith("│ loss"))
    assert "inf" not in loss_row and "37" in loss_row
    tex = tmp_path / "net.tex"
    status, _, err = run_cli(["latex", path, "-o", str(tex)])
    assert status == 0, err
    assert "inf" not in tex.read_text().replace("\\infty", "inf")


def test_grad_json_agrees_with_pytorch_where_it_is_accurate(tmp_path):
    torch = pytest.importorskip("torch")
    # not where float64 cancels: s(z) - 1 for z > 0, or PyTorch's log(1 + e^-12) for z = -12 (no log1p)
    for z, target in [(30, 0), (2, 0), (-3, 1)]:
        document_ = grad_json(write(tmp_path, sigmoid_net(z, target), f"s{z}_{target}.yaml"))
        logit = torch.tensor([float(z)], dtype=torch.float64, requires_grad=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logit, torch.tensor([float(target)], dtype=torch.float64)
        )
        loss.backward()
        assert document_["loss"] == pytest.approx(loss.item(), rel=4e-16, abs=0)
        assert document_["gradients"]["fc.bias"][0] == pytest.approx(logit.grad.item(), rel=4e-16, abs=1e-300)
    logits = torch.tensor([[800.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([1]))
    loss.backward()
    document_ = grad_json(write(tmp_path, softmax_net([800, 0], 1), "soft.yaml"))
    assert document_["loss"] == loss.item() == 800.0
    assert document_["gradients"]["fc.bias"] == logits.grad.ravel().tolist()


# --- item 2: exact zeros print 0


def softmax_zero_net() -> dict:
    """h = 0.3; logits [h + 0.3, -h + 0.9, 0] = [0.6, 0.6, 0] exactly, but float64 makes -0.3 + 0.9 =
    0.6000000000000001. With target class 2, dL/dh = (p_0 - t_0) - (p_1 - t_1) = p_0 - p_1 = 0 exactly."""
    fc0 = {"type": "linear", "name": "fc0", "out_features": 1, "params": {"weight": [[F(3, 10)]], "bias": [0]}}
    fc1 = {
        "type": "linear",
        "name": "fc1",
        "out_features": 3,
        "params": {"weight": [[1], [-1], [0]], "bias": [F(3, 10), F(9, 10), 0]},
    }
    return {
        "input": {"values": [1]},
        "layers": [fc0, fc1, {"type": "softmax"}],
        "loss": {"type": "cross_entropy", "target": 2},
    }


def sigmoid_zero_net() -> dict:
    """Two sigmoids at +2.5 and -2.5 have equal derivatives s(1 - s) exactly; dL/dh sums them with opposite
    signs, so fc0's gradients are exactly 0 (float64: 4.9e-17)."""
    fc0 = {"type": "linear", "name": "fc0", "out_features": 1, "params": {"weight": [[1]], "bias": [0]}}
    fc1 = {
        "type": "linear",
        "name": "fc1",
        "out_features": 2,
        "params": {"weight": [[F(5, 2)], [F(-5, 2)]], "bias": [0, 0]},
    }
    fc2 = {"type": "linear", "name": "fc2", "out_features": 1, "params": {"weight": [[1, 1]], "bias": [0]}}
    layers = [fc0, fc1, {"type": "sigmoid"}, fc2, {"type": "sigmoid"}]
    return {"input": {"values": [1]}, "layers": layers, "loss": {"type": "cross_entropy", "target": [1]}}


@pytest.mark.parametrize("make", [softmax_zero_net, sigmoid_zero_net])
def test_exact_zero_gradient_is_0_everywhere(tmp_path, make):
    config = make()
    network = loads(document(config))
    assert network.run(FloatOps()).grads["fc0.weight"][0, 0] != 0  # float64 sees noise: the case is real
    reference = backprop(yaml.safe_load(document(config)))
    assert is_exact_zero(reference.grads["fc0.weight"][0, 0])  # and SymPy proves the exact value is 0
    path = write(tmp_path, config)
    document_ = grad_json(path)
    assert document_["gradients"]["fc0.weight"] == [[0.0]]
    assert document_["gradients"]["fc0.bias"] == [0.0]
    status, out, err = run_cli(["grad", path])
    assert status == 0, err
    for row in (line for line in out.splitlines() if "fc0." in line):
        value = row.split("│")[-2]
        assert "e-" not in value and value.strip().lstrip("≈ ") == "0", row


def test_equal_exact_values_give_equal_doubles():
    # fc1's two gradients are equal exactly (s'(2.5) = s'(-2.5)); float64 gives ...607 and ...628
    rounded = nearest_pass(loads(document(sigmoid_zero_net())))
    first, second = rounded.grads["fc1.weight"].ravel()
    assert first == second


# --- against the exact reference: generated networks, a conv head, LeNet-5


def random_network(rng: random.Random) -> dict:
    """linear -> (sigmoid | tanh) -> linear -> (softmax | sigmoid) with cross-entropy, or -> tanh with MSE."""

    def weights(rows, cols, scale):
        return [[F(rng.randint(-scale, scale), 10) for _ in range(cols)] for _ in range(rows)]

    n_in, hidden, n_out = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3)
    big = rng.choice([10, 60, 400])  # 400: logits up to about +-40 and more, saturated
    layers = [
        {
            "type": "linear",
            "out_features": hidden,
            "params": {"weight": weights(hidden, n_in, big), "bias": weights(1, hidden, 10)[0]},
        },
        {"type": rng.choice(["sigmoid", "tanh"])},
    ]
    head = rng.choice(["softmax", "sigmoid", "mse"])
    if head == "softmax" and n_out == 1:
        n_out = 2  # a softmax of one output is 1 whatever comes in
    second = {"weight": weights(n_out, hidden, big), "bias": weights(1, n_out, 10)[0]}
    layers.append({"type": "linear", "out_features": n_out, "params": second})
    if head == "mse":
        layers.append({"type": "tanh"})
        loss = {"type": "mse", "target": [F(rng.randint(-10, 10), 10) for _ in range(n_out)]}
    else:
        layers.append({"type": head})
        target = rng.randrange(n_out) if head == "softmax" else [rng.choice([0, 1, F(1, 2)]) for _ in range(n_out)]
        loss = {"type": "cross_entropy", "target": target}
    return {"input": {"values": [F(rng.randint(0, 10), 10) for _ in range(n_in)]}, "layers": layers, "loss": loss}


def assert_nearest(rounded, reference):
    assert rounded.loss == floats(np.array([reference.loss], dtype=object))[0]
    assert rounded.values[-1].tolist() == floats(reference.output).tolist()
    for name, grad in reference.grads.items():
        assert rounded.grads[name].tolist() == floats(grad).tolist(), name


@pytest.mark.parametrize("seed", range(16))
def test_generated_networks_are_the_nearest_doubles(seed):
    config = random_network(random.Random(seed))
    text = document(config)
    assert_nearest(nearest_pass(loads(text)), backprop(yaml.safe_load(text)))


def conv_head_network() -> dict:
    """A rational head (conv, leaky ReLU, max-pool, avg-pool, flatten, linear) before a softmax: the head's
    gradients come from the exact integer backward, its error bounded by the float pass on |values|."""
    rng = random.Random(7)

    def draw(*shape):
        if len(shape) == 1:
            return [F(rng.randint(-30, 30), 100) for _ in range(shape[0])]
        return [draw(*shape[1:]) for _ in range(shape[0])]

    layers = [
        {
            "type": "conv2d",
            "name": "conv1",
            "out_channels": 2,
            "kernel_size": 2,
            "padding": 1,
            "params": {"weight": draw(2, 1, 2, 2), "bias": draw(2)},
        },
        {"type": "leaky_relu", "negative_slope": F(1, 10)},
        {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
        {"type": "avgpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "name": "fc", "out_features": 3, "params": {"weight": draw(3, 8), "bias": draw(3)}},
        {"type": "softmax"},
    ]
    image = [[F(rng.randint(0, 10), 10) for _ in range(4)] for _ in range(4)]
    return {"input": {"values": image}, "layers": layers, "loss": {"type": "cross_entropy", "target": 1}}


def test_a_rational_head_before_the_softmax_is_exact():
    text = document(conv_head_network())
    assert_nearest(nearest_pass(loads(text)), backprop(yaml.safe_load(text)))


def test_lenet5_settles_and_agrees_with_float64():
    network = loads((CONFIGS / "lenet5.yaml").read_text())
    rounded, approx = nearest_pass(network), network.run(FloatOps())
    assert rounded is not None
    for name, grad in rounded.grads.items():
        scale = np.abs(approx.grads[name]).max() + 1e-300
        assert np.abs(grad - approx.grads[name]).max() <= 1e-12 * scale, name
    assert rounded.loss == pytest.approx(approx.loss, rel=1e-14)


# --- single values


def test_nearest_double_of_sympy_values():
    import sympy

    half = sympy.Rational(5, 2)

    def s(z):
        return 1 / (1 + sympy.exp(-z))

    zero = s(half) * (1 - s(half)) - s(-half) * (1 - s(-half))
    assert zero != 0 and nearest_double(zero) == 0.0 and is_exact_zero(zero)
    assert not is_exact_zero(sympy.exp(-sympy.Integer(2000)))  # tiny, not 0
    assert nearest_double(sympy.exp(-sympy.Integer(2000))) == 0.0  # below the smallest double
    assert nearest_double(-sympy.log(1 - 1 / (sympy.exp(-37) + 1))) == exact(lambda: softplus(37)) == 37.0
    assert nearest_double(sympy.tanh(sympy.Rational(1, 3))) == exact(lambda: mpmath.tanh(mpmath.mpf(1) / 3))
    assert nearest_double(sympy.Rational(1, 10)) == 0.1


def test_rounding_of_mpmath_numbers_is_correct():
    smallest = 2.0**-1074
    assert mpf_double(mpmath.mpf(smallest)._mpf_) == smallest
    assert mpf_double((mpmath.mpf(smallest) * 0.75)._mpf_) == smallest  # rounds up, past half of it
    assert mpf_double((mpmath.mpf(smallest) * 0.25)._mpf_) == 0.0
    with mpmath.workprec(200):
        just_above_half_ulp = 1 + mpmath.mpf(2) ** -53 + mpmath.mpf(2) ** -150
        assert mpf_double(just_above_half_ulp._mpf_) == 1 + 2.0**-52
        assert mpf_double((1 + mpmath.mpf(2) ** -53)._mpf_) == 1.0  # a tie goes to the even double
        assert mpf_double((1 + 3 * mpmath.mpf(2) ** -53)._mpf_) == 1 + 2.0**-51
    ops = IntervalOps(100)
    assert interval_double(ops.convert(F(1, 3))) == 1 / 3
    assert interval_double(ops.ctx.mpf([-(2.0**-1100), 2.0**-1100])) == 0.0
    assert interval_double(ops.ctx.mpf([1, 2])) is None
