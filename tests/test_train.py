"""Weight decay and the SGD update step (the config's `loss.weight_decay` and `train:`).

Independent routes: a forward pass written here in mpmath at 50 digits, differentiated by central
finite differences (h = 1e-20) for dJ/dw with J = L + λ/2·Σw²; PyTorch float64's torch.optim.SGD
(lr, momentum, weight_decay, a given momentum buffer) for the steps, when torch is installed; and
Matt Mazur's worked example redone by hand (mpmath) and a rational 2-2-1 network by hand in Fractions.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from cnnderive.errors import ConfigError
from cnnderive.maths.ops import RationalOps
from tests.cli_support import run_cli
from tests.conftest import CONFIGS

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp
H = mpmath.mpf(10) ** -20

# --- an MLP the reference below computes: linear, activation, linear, (softmax or sigmoid) -----------

W1 = [["0.15", "-0.2", "0.31"], ["0.25", "0.3", "-0.12"]]
B1 = ["0.35", "-0.1"]
W2 = [["0.4", "-0.45"], ["-0.5", "0.55"]]
B2 = ["0.6", "-0.05"]
X = ["0.5", "-1", "0.2"]


def mlp_yaml(activation: str, last: str | None, loss: str, train: str = "") -> str:
    layers = [
        f"  - {{type: linear, name: fc1, out_features: 2, params: {{weight: {_list(W1)}, bias: {_list(B1)}}}}}",
        f"  - {{type: {activation}}}",
        f"  - {{type: linear, name: fc2, out_features: 2, params: {{weight: {_list(W2)}, bias: {_list(B2)}}}}}",
    ]
    if last:
        layers.append(f"  - {{type: {last}}}")
    text = f"name: mlp\ninput: {{values: {_list(X)}}}\nlayers:\n" + "\n".join(layers) + f"\nloss: {loss}\n"
    return text + (f"train: {train}\n" if train else "")


def _list(values) -> str:
    return json.dumps(values).replace('"', "")


def reference_loss(params: dict, activation: str, last: str | None, loss: str, rate, decay_bias: bool):
    """J = L + λ/2·Σw² in mpmath, from the parameters {name: nested lists of mpf}."""
    act = {
        "tanh": mpmath.tanh,
        "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
        "relu": lambda z: z if z > 0 else mpmath.mpf(0),
    }[activation]
    x = [mpmath.mpf(v) for v in X]
    h = [act(sum(w * xi for w, xi in zip(row, x)) + b) for row, b in zip(params["fc1.weight"], params["fc1.bias"])]
    o = [sum(w * hi for w, hi in zip(row, h)) + b for row, b in zip(params["fc2.weight"], params["fc2.bias"])]
    if last == "softmax":
        e = [mpmath.exp(v) for v in o]
        p = [v / sum(e) for v in e]
        value = -mpmath.log(p[1])  # target class 1
    elif loss == "mse":
        value = ((o[0] - mpmath.mpf("0.3")) ** 2 + (o[1] + mpmath.mpf("0.2")) ** 2) / 2  # reduction mean
    else:
        raise AssertionError(loss)
    penalty = 0
    for name, values in params.items():
        if name.endswith("weight") or decay_bias:
            penalty += sum(v * v for v in np.asarray(values, dtype=object).flat)
    return value + mpmath.mpf(rate) / 2 * penalty


CASES = {
    "tanh-softmax-ce": ("tanh", "softmax", "{type: cross_entropy, target: 1"),
    "relu-mse": ("relu", None, "{type: mse, target: [0.3, -0.2]"),
}


@pytest.mark.parametrize("decay_bias", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_decay_gradients_match_finite_differences(case, decay_bias):
    """dJ/dw of every parameter (weights, and biases when decay_bias) against 50-digit central differences
    of J; the JSON loss is J; the record's chain-rule part is dL/dw, its decay λ·w."""
    activation, last, loss_head = CASES[case]
    rate = "0.03"
    loss = loss_head + f", weight_decay: {rate}" + (", decay_bias: true}" if decay_bias else "}")
    derivation = Derivation(loads(mlp_yaml(activation, last, loss)))
    kind = "mse" if "mse" in loss else "ce"
    with mp.workdps(50):
        params = {
            name: [[mpmath.mpf(v) for v in row] for row in values]
            if isinstance(values[0], list)
            else [mpmath.mpf(v) for v in values]
            for name, values in (("fc1.weight", W1), ("fc1.bias", B1), ("fc2.weight", W2), ("fc2.bias", B2))
        }
        loss_value = reference_loss(params, activation, last, kind, rate, decay_bias)
        assert float(derivation.floats.loss) == pytest.approx(float(loss_value), rel=1e-13)
        for name in params:
            grads = derivation.gradient_floats()[name]
            tensor = derivation.tensors[name]
            for index in np.ndindex(*grads.shape):
                up, down = _perturbed(params, name, index, H), _perturbed(params, name, index, -H)
                fd = (
                    reference_loss(up, activation, last, kind, rate, decay_bias)
                    - reference_loss(down, activation, last, kind, rate, decay_bias)
                ) / (2 * H)
                assert grads[index] == pytest.approx(float(fd), rel=1e-12, abs=1e-15), (name, index)
                record = derivation.gradient(tensor, index)
                decayed = name.endswith("weight") or decay_bias
                assert (record.decay is not None) == decayed
                if decayed:
                    weight = Fraction(np.asarray((W1, B1, W2, B2)[list(params).index(name)], dtype=object)[index])
                    assert record.decay.value == Fraction(rate) * weight  # λ·w, exactly
                    assert record.chain_approx == pytest.approx(
                        float(fd - mpmath.mpf(rate) * weight.numerator / weight.denominator), rel=1e-12, abs=1e-15
                    )
                    assert record.approx == pytest.approx(
                        record.chain_approx + float(record.decay.value), rel=1e-12, abs=1e-15
                    )


def _perturbed(params: dict, name: str, index: tuple, h) -> dict:
    copy = {k: [list(r) if isinstance(r, list) else r for r in v] for k, v in params.items()}
    if len(index) == 2:
        copy[name][index[0]][index[1]] += h
    else:
        copy[name][index[0]] += h
    return copy


def test_left_out_decay_is_the_chain_rule_sum():
    """run(decay=False) is dL/dw (the mistake "λw left out"); with decay every weight gains exactly λ·w, and
    the loss exactly λ/2·Σw²; biases stay as they were (decay_bias is false)."""
    network = loads(mlp_yaml("relu", None, "{type: mse, target: [0.3, -0.2], weight_decay: 0.1}"))
    ops = RationalOps()
    with_decay, without = network.run(ops), network.run(ops, decay=False)
    penalty = Fraction(1, 20) * sum(Fraction(v) ** 2 for row in W1 + W2 for v in row)
    assert with_decay.loss - without.loss == penalty == with_decay.penalty
    for name in ("fc1.weight", "fc2.weight"):
        diff = with_decay.grads[name] - without.grads[name]
        assert (diff == network.parameter(name) * Fraction(1, 10)).all()
    for name in ("fc1.bias", "fc2.bias"):
        assert (with_decay.grads[name] == without.grads[name]).all()
    assert without.penalty is None


def test_no_decay_no_change():
    """Without weight_decay the pass has no penalty and no record has a decay part."""
    derivation = Derivation(loads(mlp_yaml("relu", None, "{type: mse, target: [0.3, -0.2]}")))
    assert derivation.values.penalty is None
    assert derivation.gradient(derivation.tensors["fc1.weight"], (0, 0)).decay is None


# --- the worked 2-2-1 example -----------------------------------------------------------------------

MAZUR = CONFIGS / "mlp_221_sgd_step.yaml"


def test_mazur_worked_example_by_hand():
    """The shipped 2-2-1 config's first update, by hand at 50 digits: each new weight in `grad --json` is the
    nearest double of the exact value; w5 and w6 agree with Mazur's published 0.35891648 and 0.408666186."""
    code, stdout, stderr = run_cli(["grad", str(MAZUR), "--json"])
    assert code == 0, stderr
    document = json.loads(stdout)
    with mp.workdps(50):
        f = mpmath.mpf
        sig = lambda z: 1 / (1 + mpmath.exp(-z))
        i1, i2, t, lr = f("0.05"), f("0.10"), f("0.01"), f("0.5")
        w1, w2, w3, w4, b1, w5, w6, b2 = map(f, ["0.15", "0.20", "0.25", "0.30", "0.35", "0.40", "0.45", "0.60"])
        h1, h2 = sig(w1 * i1 + w2 * i2 + b1), sig(w3 * i1 + w4 * i2 + b1)
        o = sig(w5 * h1 + w6 * h2 + b2)
        delta = (o - t) * o * (1 - o)  # dE/d(net_o) for E = 1/2 (t - o)^2
        new_w5, new_w6 = w5 - lr * delta * h1, w6 - lr * delta * h2
        new_w1 = w1 - lr * delta * w5 * h1 * (1 - h1) * i1
        assert document["loss"] == float((t - o) ** 2 / 2)
        assert document["updated"]["out.weight"] == [[float(new_w5), float(new_w6)]]
        assert document["updated"]["hidden.weight"][0][0] == float(new_w1)
        assert document["updated"]["out.bias"] == [float(b2 - lr * delta)]
    assert round(document["updated"]["out.weight"][0][0], 8) == 0.35891648
    assert round(document["updated"]["out.weight"][0][1], 9) == 0.408666186
    assert round(document["loss"], 9) == 0.274811083


RATIONAL_221 = """
name: 2-2-1, ReLU hidden, linear output
input: {values: [1, 2]}
layers:
  - {type: linear, name: hidden, out_features: 2, params: {weight: [[0.5, -0.25], [0.1, 0.3]], bias: [0.2, -0.1]}}
  - {type: relu}
  - {type: linear, name: out, out_features: 1, params: {weight: [[0.4, -0.6]], bias: [0.05]}}
loss: {type: mse, target: [1], reduction: half_sum, weight_decay: 0.1}
train: {lr: 0.5, momentum: 0.9, velocity: {out.weight: [[0.2, -0.1]]}, steps: 2}
"""


def test_rational_221_by_hand_in_fractions():
    """A rational 2-2-1 network's two steps with weight decay and momentum, one weight by hand in Fractions."""
    update = Derivation(loads(RATIONAL_221)).update
    assert update.how == "exact"
    q = Fraction
    lam, lr, mu = q(1, 10), q(1, 2), q(9, 10)
    # step 1: h = relu(W x + b) = relu(0.5 - 0.5 + 0.2, 0.1 + 0.6 - 0.1) = (0.2, 0.6)
    h = (q(1, 5), q(3, 5))
    o = q(2, 5) * h[0] - q(3, 5) * h[1] + q(1, 20)  # 0.08 - 0.36 + 0.05 = -0.23
    g = (o - 1) * h[0] + lam * q(2, 5)  # dJ/dw5 = (o - t)·h1 + λ·w5
    v = mu * q(1, 5) + g
    w5 = q(2, 5) - lr * v
    first = update.steps[0].tensors[2]
    assert first.name == "out.weight"
    assert first.gradient.exact[0, 0] == g
    assert first.loss_gradient.exact[0, 0] == (o - 1) * h[0]
    assert first.decay.exact[0, 0] == lam * q(2, 5)
    assert first.new_velocity.exact[0, 0] == v
    assert first.new_weight.exact[0, 0] == w5
    assert update.steps[0].loss == (o - 1) ** 2 / 2 + lam / 2 * sum(
        x * x for x in (q(1, 2), q(-1, 4), q(1, 10), q(3, 10), q(2, 5), q(-3, 5))
    )
    # the second step starts from the first's weights and velocity
    second = update.steps[1].tensors[2]
    assert second.weight.exact[0, 0] == w5
    assert second.velocity.exact[0, 0] == v
    assert second.new_weight.exact[0, 0] == w5 - lr * (mu * v + second.gradient.exact[0, 0])


# --- PyTorch ------------------------------------------------------------------------------------


def _torch_steps(torch, params: dict, forward, lr, momentum, rate, decay_bias, velocity, steps):
    """torch.optim.SGD on float64 leaves; weights decayed by weight_decay, biases only with decay_bias."""
    leaves = {
        name: torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=True)
        for name, v in params.items()
    }
    weights = [t for n, t in leaves.items() if n.endswith("weight")]
    biases = [t for n, t in leaves.items() if n.endswith("bias")]
    optimizer = torch.optim.SGD(
        [{"params": weights, "weight_decay": rate}, {"params": biases, "weight_decay": rate if decay_bias else 0.0}],
        lr=lr,
        momentum=momentum,
    )
    for name, v in velocity.items():
        optimizer.state[leaves[name]]["momentum_buffer"] = torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64)
    for _ in range(steps):
        optimizer.zero_grad()
        forward(leaves).backward()
        optimizer.step()
    return {name: t.detach().numpy() for name, t in leaves.items()}


def test_steps_agree_with_torch_sgd():
    """Three steps with momentum 0.9, a given velocity and weight decay on a conv net, against torch.optim.SGD."""
    torch = pytest.importorskip("torch")
    text = """
name: conv, relu, conv
input: {values: [[1, 2, 0], [0, 1, 3], [2, 1, 1]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 2, params: {weight: [[0.5, -0.3], [0.2, 0.1]], bias: [0.2]}}
  - {type: relu}
  - {type: conv2d, name: conv2, out_channels: 1, kernel_size: 2, params: {weight: [[0.4, 0.2], [-0.1, 0.3]], bias: [-0.2]}}
loss: {type: mse, target: [0.5], reduction: sum, weight_decay: 0.01, decay_bias: true}
train: {lr: 0.1, momentum: 0.9, velocity: {conv1.weight: [[0.1, 0], [0, -0.2]], conv2.bias: [0.3]}, steps: 3}
"""
    derivation = Derivation(loads(text))
    network = derivation.network
    x = torch.tensor(np.asarray(network.input, dtype=float), dtype=torch.float64)

    def forward(p):
        z = torch.nn.functional.conv2d(x[None], p["conv1.weight"], p["conv1.bias"]).relu()
        o = torch.nn.functional.conv2d(z, p["conv2.weight"], p["conv2.bias"])
        return ((o.reshape(-1) - 0.5) ** 2).sum()

    params = {name: network.parameter(name) for name in network.parameter_names()}
    velocity = {name: network.train.velocity[name] for name in network.train.velocity}
    want = _torch_steps(torch, params, forward, 0.1, 0.9, 0.01, True, velocity, 3)
    got = derivation.update.final()
    for name in params:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_one_step_of_the_sigmoid_example_agrees_with_torch():
    """The shipped 2-2-1 example with weight decay and momentum added, one step, against torch.optim.SGD."""
    torch = pytest.importorskip("torch")
    text = MAZUR.read_text().replace("reduction: half_sum}", "reduction: half_sum, weight_decay: 0.05}")
    text = text.replace(
        "train: {lr: 0.5, steps: 1}", "train: {lr: 0.5, momentum: 0.5, velocity: {out.weight: [[0.1, -0.2]]}}"
    )
    derivation = Derivation(loads(text))
    network = derivation.network
    x = torch.tensor([0.05, 0.10], dtype=torch.float64)

    def forward(p):
        h = torch.sigmoid(p["hidden.weight"] @ x + p["hidden.bias"])
        o = torch.sigmoid(p["out.weight"] @ h + p["out.bias"])
        return 0.5 * ((o - 0.01) ** 2).sum()

    params = {name: network.parameter(name) for name in network.parameter_names()}
    want = _torch_steps(torch, params, forward, 0.5, 0.5, 0.05, False, dict(network.train.velocity), 1)
    got = derivation.update.final()
    assert derivation.update.how == "nearest"
    for name in params:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-13, atol=1e-16, err_msg=name)


# --- the config and the outputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss_extra, train, field",
    [
        (", weight_decay: -0.1", "", "loss.weight_decay"),
        (", weight_decay: abc", "", "loss.weight_decay"),
        (", decay_bias: true", "", "loss.decay_bias"),
        (", weight_decay: 0.1, decay_bias: 3", "", "loss.decay_bias"),
        ("", "{lr: 0}", "train.lr"),
        ("", "{momentum: 0.9}", "train.lr"),
        ("", "{lr: 0.1, momentum: -0.5}", "train.momentum"),
        ("", "{lr: 0.1, steps: 0}", "train.steps"),
        ("", "{lr: 0.1, steps: 11}", "train.steps"),
        ("", "{lr: 0.1, velocity: {fc1.weight: [[0, 0, 0], [0, 0, 0]]}}", "train.velocity"),
        ("", "{lr: 0.1, momentum: 0.9, velocity: {fc3.weight: [0]}}", "train.velocity.fc3.weight"),
        ("", "{lr: 0.1, momentum: 0.9, velocity: {fc1.bias: [1, 2, 3]}}", "train.velocity.fc1.bias"),
        ("", "{lr: 0.1, nesterov: true}", "train.nesterov"),
        ("", "[0.1]", "train"),
    ],
)
def test_bad_values_are_one_error_naming_the_field(loss_extra, train, field):
    text = mlp_yaml("relu", None, "{type: mse, target: [0.3, -0.2]" + loss_extra + "}", train)
    with pytest.raises(ConfigError) as caught:
        loads(text, "net.yaml")
    assert caught.value.field == field, str(caught.value)
    assert "\n" not in str(caught.value)


def test_several_steps_need_a_rational_network():
    text = mlp_yaml("tanh", "softmax", "{type: cross_entropy, target: 1}", "{lr: 0.1, steps: 2}")
    with pytest.raises(ConfigError) as caught:
        loads(text, "net.yaml")
    assert caught.value.field == "train.steps"
    assert "rational" in str(caught.value)


def test_json_adds_updated_velocity_and_steps(tmp_path):
    """`grad --json`: the contract's fields unchanged, then "updated" (final weights, PyTorch shapes),
    "velocity" with momentum, "steps" with several; --param narrows them all."""
    path = tmp_path / "net.yaml"
    path.write_text(RATIONAL_221)
    code, stdout, stderr = run_cli(["grad", str(path), "--json"])
    assert code == 0, stderr
    document = json.loads(stdout)
    assert list(document) == ["loss", "output", "gradients", "updated", "velocity", "steps"]
    update = Derivation(loads(RATIONAL_221)).update
    final = update.steps[-1].tensors
    for tensor in final:  # the nearest doubles of the exact Fractions
        assert np.array_equal(
            np.asarray(document["updated"][tensor.name]), np.vectorize(float)(tensor.new_weight.exact)
        )
        assert np.array_equal(
            np.asarray(document["velocity"][tensor.name]), np.vectorize(float)(tensor.new_velocity.exact)
        )
    assert [s["loss"] for s in document["steps"]] == [float(s.loss) for s in update.steps]
    code, stdout, _ = run_cli(["grad", str(path), "--json", "--param", "out.weight"])
    narrowed = json.loads(stdout)
    assert list(narrowed["updated"]) == list(narrowed["velocity"]) == ["out.weight"]


def test_json_without_train_is_the_contract():
    code, stdout, _ = run_cli(["grad", str(CONFIGS / "seed001_conv_conv_mse.yaml"), "--json"])
    assert code == 0 and list(json.loads(stdout)) == ["loss", "output", "gradients"]


def test_grad_table_ends_with_the_update():
    """`grad` prints the update section after its table: the rule, each tensor, the new weights."""
    code, stdout, stderr = run_cli(["grad", str(MAZUR)])
    assert code == 0, stderr
    tail = stdout[stdout.index("The update step") :]
    assert "w² ← w² - 0.5·∂L/∂w²" in tail
    assert "0.3589" in tail and "0.4087" in tail


def test_explain_update_section_and_decay_lines():
    """The terminal section, rendered: momentum and decay rules, exact fractions, and one element's ∂J/∂w."""
    from cnnderive.printers.explain_update import decay_lines, update_section
    from cnnderive.printers.terminal import make_console

    derivation = Derivation(loads(RATIONAL_221))
    console = make_console(record=True, width=120)
    for item in update_section(derivation):
        console.print(item)
    gradient = derivation.gradient(derivation.tensors["out.weight"], (0, 0))
    for item in decay_lines(gradient):
        console.print(item)
    text = console.export_text()
    assert "v ← μ·v + ∂J/∂w, then w ← w - lr·v" in text
    assert "∂J/∂w² = ∂L/∂w² + λ·w²" in text
    assert "step 2" in text and "after 2 steps" in text
    # the element: ∂L/∂w5 = (o - t)·h1 = -1.23·0.2 = -0.246, λ·w5 = 0.04, ∂J/∂w5 = -0.206
    assert "= -0.246 + 0.1·0.4" in text
    assert "= -0.206" in text


def test_latex_update_compiles(tmp_path):
    """The LaTeX section and the decay display, in a document pdflatex compiles (skipped without pdflatex)."""
    import shutil
    import subprocess

    from cnnderive.derivation.steps import build_steps
    from cnnderive.printers.latex import PACKAGES, SETTINGS, Document
    from cnnderive.printers.latex_update import decay_tex, update_part

    derivation = Derivation(loads(RATIONAL_221))
    document = Document(build_steps(derivation))
    gradient = derivation.gradient(derivation.tensors["out.weight"], (0, 0))
    body = update_part(document) + decay_tex(gradient)
    assert r"v_{\text{new}} = \mu v" in body and r"\lambda\, w^{(2)}_{1,1}" in body
    assert update_part(document, only="hidden.bias").count(r"\texttt{") == 2  # one tensor in each step
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    (tmp_path / "u.tex").write_text(
        "\\documentclass[11pt]{article}\n" + PACKAGES + SETTINGS + "\\begin{document}\n" + body + "\\end{document}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "u.tex"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_named_mistakes_of_the_update_by_hand():
    """The two named mistakes give the new weight a student would get, redone here in Fractions."""
    from cnnderive.derivation.update import mistaken_weight

    update = Derivation(loads(RATIONAL_221)).update
    tensor = update.steps[0].tensors[2]  # out.weight: w5 = 0.4, v = 0.2, dL/dw5 = -0.246, λ·w5 = 0.04
    q = Fraction
    chain, decay = q(-246, 1000), q(4, 100)
    left_out = mistaken_weight(update, tensor, "decay_left_out")[0, 0]
    assert left_out == q(2, 5) - q(1, 2) * (q(9, 10) * q(1, 5) + chain)
    on_gradient = mistaken_weight(update, tensor, "momentum_on_gradient")[0, 0]
    assert on_gradient == q(2, 5) - q(1, 2) * (q(1, 5) + q(9, 10) * (chain + decay))
    assert tensor.new_weight.exact[0, 0] not in (left_out, on_gradient)
    bias = update.steps[0].tensors[3]  # out.bias is not decayed (decay_bias is false)
    assert mistaken_weight(update, bias, "decay_left_out") is None


def test_closed_forms_carry_the_decay():
    """The closed form of dJ/dw is the chain rule's plus λ·w over the weight's symbol, and J's rule adds
    λ/2·Σw² over the weight symbols: both evaluated at the config's numbers give the exact values."""
    import sympy

    from cnnderive.derivation.symbolic import Symbolic

    derivation = Derivation(loads(RATIONAL_221))
    symbolic = Symbolic(derivation)
    tensor = derivation.tensors["out.weight"]
    record = derivation.gradient(tensor, (0, 0))
    w5 = symbolic.symbol(tensor, (0, 0))
    assert record.decay.value == Fraction(1, 25)
    with_numbers = sympy.sympify(symbolic.gradient(tensor, (0, 0))).xreplace(symbolic.numbers)
    assert with_numbers == sympy.Rational(-103, 500)  # (o - t)·h1 + λ·w5 = -0.246 + 0.04
    loss_rule = symbolic.definitions[symbolic.arrays["loss"][()]]
    assert sympy.diff(loss_rule, w5) == sympy.Rational(1, 10) * w5  # only the penalty has w5 in J's own rule
