"""Batch norm in training mode (batchnorm2d, batchnorm1d) on a batch.

Independent routes: 50-digit central differences of the batch loss, from a forward pass written
here in mpmath with plain loops (batch statistics, biased or unbiased variance), perturbing γ, β
and the weights before batch norm; PyTorch float64 with torch.nn.functional.batch_norm(...,
training=True); the exact sign of a + b√c against SymPy; and the config errors.
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnderive.config.build import loads_any
from cnnderive.derivation.batch import BatchDerivation
from cnnderive.maths.surds import Surd
from tests.cli_support import run_cli
from tests.test_gradients_fd import mp, mpf
from tests.yaml_text import to_yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "configs" / "batch" / "conv_bn_relu_pool_fc_batch2.yaml"
H = mpf(Fraction(1, 10**20))


def derive(text: str, exact: bool | None = None) -> BatchDerivation:
    return BatchDerivation(loads_any(text), exact=exact)


def _exact(value):
    """YAML's floats as the exact decimals they were written as (to_yaml writes Fractions exactly)."""
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items() if k != "name" or not isinstance(v, str) or "," not in v}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return Fraction(str(value)) if isinstance(value, float) else value


def text_of(config: dict) -> str:
    return to_yaml(_exact(config))


# --- an independent forward pass in mpmath -------------------------------------------------------


def _mp(raw) -> np.ndarray:
    array = np.array(raw, dtype=object)
    out = np.empty(array.shape, dtype=object)
    out.flat[:] = [mpf(Fraction(str(v))) for v in array.flat]
    return out


def _conv(x, w, b, padding):
    channels, height, width = x.shape
    padded = np.full((channels, height + 2 * padding, width + 2 * padding), mpf(0), dtype=object)
    padded[:, padding : padding + height, padding : padding + width] = x
    out_c, _, kh, kw = w.shape
    rows, cols = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = np.empty((out_c, rows, cols), dtype=object)
    for o in range(out_c):
        for i in range(rows):
            for j in range(cols):
                out[o, i, j] = b[o] + sum(w[o].ravel() * padded[:, i : i + kh, j : j + kw].ravel())
    return out


def _batch_norm(xs, gamma, beta, eps, unbiased):
    """Per channel (axis 1 of the stacked batch), over every other axis: the textbook formula."""
    stacked = np.stack(xs)
    out = np.empty(stacked.shape, dtype=object)
    for c in range(stacked.shape[1]):
        values = list(stacked[:, c].ravel())
        m = len(values)
        mean = sum(values) / m
        variance = sum((v - mean) ** 2 for v in values) / (m - 1 if unbiased else m)
        out[:, c] = gamma[c] * (stacked[:, c] - mean) / mp.sqrt(variance + eps) + beta[c]
    return list(out)


def _maxpool(x):
    c, h, w = x.shape
    out = np.empty((c, h // 2, w // 2), dtype=object)
    for ch, i, j in np.ndindex(*out.shape):
        out[ch, i, j] = max(x[ch, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel())
    return out


def _relu(x):
    out = np.empty(x.shape, dtype=object)
    out.flat[:] = [v if v > 0 else mpf(0) for v in x.flat]
    return out


def conv_bn_loss(config: dict, params: dict) -> object:
    """conv - batchnorm2d - ReLU - max-pool - FC - softmax - cross-entropy, mean over the batch."""
    bn = next(layer for layer in config["layers"] if layer["type"] == "batchnorm2d")
    eps, unbiased = mpf(Fraction(str(bn.get("eps", "0.00001")))), bool(bn.get("unbiased", False))
    xs = [_mp(x) for x in config["input"]["examples"]]
    zs = [_conv(x, params["conv1.weight"], params["conv1.bias"], 1) for x in xs]
    ns = _batch_norm(zs, params["bn1.weight"], params["bn1.bias"], eps, unbiased)
    total = mpf(0)
    for n, target in zip(ns, config["loss"]["target"]):
        flat = _maxpool(_relu(n)).ravel()
        scores = [params["fc.bias"][k] + sum(params["fc.weight"][k] * flat) for k in range(len(params["fc.bias"]))]
        top = max(scores)
        total += mp.log(sum(mp.exp(s - top) for s in scores)) - (scores[target] - top)
    return total / len(ns)


def params_of(config: dict) -> dict:
    return {
        f"{layer['name']}.{name}": _mp(value)
        for layer in config["layers"]
        for name, value in layer.get("params", {}).items()
    }


def finite_differences(loss, config: dict, names: list[str]) -> dict:
    params = params_of(config)
    found = {}
    for name in names:
        array = params[name]
        grad = np.full(array.shape, np.nan)
        for index in np.ndindex(*array.shape):
            if name == "fc.weight" and index[0] > 0:
                continue  # one row is enough past batch norm; keeps the test quick
            keep = array[index]
            array[index] = keep + H
            up = loss(config, params)
            array[index] = keep - H
            down = loss(config, params)
            array[index] = keep
            grad[index] = float((up - down) / (2 * H))
        found[name] = grad
    return found


def _variant(**bn_settings) -> dict:
    config = yaml.safe_load(SHIPPED.read_text())
    bn = next(layer for layer in config["layers"] if layer["type"] == "batchnorm2d")
    bn.update(bn_settings)
    return config


@pytest.mark.parametrize("unbiased", [False, True])
def test_conv_bn_batch_matches_50_digit_finite_differences(unbiased):
    mp.dps = 50
    config = _variant(unbiased=unbiased)
    derivation = derive(text_of(config))
    assert derivation.exact  # small enough: the gradients are exact SymPy numbers with √ kept
    got = {name: np.asarray(record.approx, dtype=float) for name, record in derivation.gradients.items()}
    names = ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "fc.weight"]
    want = finite_differences(conv_bn_loss, config, names)
    for name in names:
        checked = ~np.isnan(want[name])
        np.testing.assert_allclose(got[name][checked], want[name][checked], rtol=1e-9, atol=1e-12, err_msg=name)
    params = params_of(config)
    assert derivation.nearest.loss == pytest.approx(float(conv_bn_loss(config, params)), rel=1e-12)


def test_float_pass_of_a_big_batch_matches_the_exact_one():
    """exact=False runs the lock-step pass on float64: the same gradients to rounding."""
    exact, floats = derive(SHIPPED.read_text(), exact=True), derive(SHIPPED.read_text(), exact=False)
    for name, record in exact.gradients.items():
        np.testing.assert_allclose(floats.gradients[name].approx, record.approx, rtol=1e-10, atol=1e-13)


# --- PyTorch float64 -----------------------------------------------------------------------------


def test_shipped_conv_bn_batch_agrees_with_torch_float64():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    config = yaml.safe_load(SHIPPED.read_text())
    raw = {f"{layer['name']}.{k}": v for layer in config["layers"] for k, v in layer.get("params", {}).items()}
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in raw.items()}
    x = torch.tensor(config["input"]["examples"], dtype=torch.float64)
    z = F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)
    n = F.batch_norm(z, None, None, weight=p["bn1.weight"], bias=p["bn1.bias"], training=True, eps=1e-5)
    scores = F.linear(F.max_pool2d(F.relu(n), 2).flatten(1), p["fc.weight"], p["fc.bias"])
    loss = F.cross_entropy(scores, torch.tensor(config["loss"]["target"]))
    loss.backward()
    derivation = derive(SHIPPED.read_text())
    assert derivation.nearest.loss == pytest.approx(loss.item(), rel=1e-12)
    for name, record in derivation.gradients.items():
        np.testing.assert_allclose(record.approx, p[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


BN1D_NET = [
    {"type": "linear", "name": "fc1", "out_features": 3},
    {"type": "batchnorm1d", "name": "bn1", "params": {"weight": [1.2, -0.7, 0.5], "bias": [0.1, 0.0, -0.3]}},
    {"type": "relu"},
    {"type": "linear", "name": "fc2", "out_features": 2},
]


def _bn1d_config(seed: int) -> dict:
    rng = random.Random(seed)
    draw = lambda *shape: np.array([round(rng.uniform(-1, 1), 2) for _ in range(int(np.prod(shape)))]).reshape(shape)
    layers = [dict(layer) for layer in BN1D_NET]
    layers[0]["params"] = {"weight": draw(3, 4).tolist(), "bias": draw(3).tolist()}
    layers[3]["params"] = {"weight": draw(2, 3).tolist(), "bias": draw(2).tolist()}
    return {
        "input": {"values": draw(4, 4).tolist()},
        "layers": layers,
        "loss": {"type": "mse", "target": draw(4, 2).tolist()},
    }


def bn1d_loss(config: dict, params: dict) -> object:
    """linear - batchnorm1d - ReLU - linear - MSE (the mean over each example's outputs, then over the batch)."""
    bn = config["layers"][1]
    eps, unbiased = mpf(Fraction(str(bn.get("eps", "0.00001")))), bool(bn.get("unbiased", False))
    xs = [_mp(x) for x in config["input"]["values"]]
    zs = [params["fc1.weight"].dot(x) + params["fc1.bias"] for x in xs]
    ns = _batch_norm(zs, params["bn1.weight"], params["bn1.bias"], eps, unbiased)
    total = mpf(0)
    for n, target in zip(ns, config["loss"]["target"]):
        out = params["fc2.weight"].dot(_relu(n)) + params["fc2.bias"]
        total += sum((o - mpf(Fraction(str(t)))) ** 2 for o, t in zip(out, target)) / len(out)
    return total / len(ns)


@pytest.mark.parametrize("unbiased", [False, True])
def test_batchnorm1d_matches_50_digit_finite_differences(unbiased):
    mp.dps = 50
    config = _bn1d_config(4)
    config["layers"][1]["unbiased"] = unbiased
    derivation = derive(text_of(config), exact=True)
    names = ["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "fc2.weight"]
    want = finite_differences(bn1d_loss, config, names)
    for name in names:
        np.testing.assert_allclose(derivation.gradients[name].approx, want[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_every_batch_wide_kind_is_covered_here():
    """Guard, as test_gradients_fd's: batch norm's kinds have their finite differences in this module."""
    from cnnderive.maths.layers import LAYER_KINDS

    covered = {"batchnorm2d", "batchnorm1d"}  # conv_bn_loss and bn1d_loss above
    assert {kind for kind, cls in LAYER_KINDS.items() if cls.batch_wide} == covered


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batchnorm1d_agrees_with_torch_float64(seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    config = _bn1d_config(seed)
    raw = {f"{layer['name']}.{k}": v for layer in config["layers"] for k, v in layer.get("params", {}).items()}
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in raw.items()}
    x = torch.tensor(config["input"]["values"], dtype=torch.float64)
    z = F.batch_norm(F.linear(x, p["fc1.weight"], p["fc1.bias"]), None, None, p["bn1.weight"], p["bn1.bias"], True)
    out = F.linear(F.relu(z), p["fc2.weight"], p["fc2.bias"])
    target = torch.tensor(config["loss"]["target"], dtype=torch.float64)
    # cnnderive's per-example MSE is the mean over the example's outputs; the batch takes the mean of those
    loss = F.mse_loss(out, target)
    loss.backward()
    derivation = derive(text_of(config))
    assert derivation.nearest.loss == pytest.approx(loss.item(), rel=1e-12)
    for name, record in derivation.gradients.items():
        np.testing.assert_allclose(record.approx, p[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# --- exact kinks after batch norm ----------------------------------------------------------------


def test_the_sign_of_a_plus_b_root_c_is_exact():
    sympy = pytest.importorskip("sympy")
    rng = random.Random(5)
    for _ in range(400):
        a, b = Fraction(rng.randint(-30, 30), rng.randint(1, 9)), Fraction(rng.randint(-30, 30), rng.randint(1, 9))
        c = Fraction(rng.choice([2, 3, 5, 7, 10, 11]), rng.choice([1, 3, 7]))
        value = Surd.make(a, b, c)
        exact = sympy.Rational(a.numerator, a.denominator) + sympy.Rational(b.numerator, b.denominator) * sympy.sqrt(
            sympy.Rational(c.numerator, c.denominator)
        )
        want = int(sympy.sign(exact))
        got = value.sign() if isinstance(value, Surd) else (value > 0) - (value < 0)
        assert got == want, (a, b, c)


def test_relu_exactly_at_zero_and_pool_ties_after_batch_norm_are_decided_exactly():
    """β = 0 and inputs equal to the channel mean (3): ReLU's input is exactly 0 there (off); two equal
    inputs of a window stay equal after batch norm (a tie: the first maximum, row-major, wins)."""
    config = {
        "input": {"examples": [[[[2, 5], [5, 1]]], [[[3, 3], [0, 5]]]]},  # 24 / 8: the mean is 3
        "layers": [
            {"type": "batchnorm2d", "name": "bn1", "params": {"weight": [3], "bias": [0]}},
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": 2},
            {"type": "flatten"},
        ],
        "loss": {"type": "mse", "target": [[1], [2]]},
    }
    derivation = derive(text_of(config), exact=True)
    first, second = (example.network for example in derivation.examples)
    assert second.kinks[1][0].tolist() == [[False, False], [False, True]]
    rows, cols = first.kinks[2]
    assert (rows[0, 0, 0], cols[0, 0, 0]) == (0, 1)


# --- config and commands -------------------------------------------------------------------------


def test_batch_norm_without_a_batch_is_a_one_line_error(tmp_path):
    config = _bn1d_config(1)
    config["input"] = {"values": config["input"]["values"][0]}
    config["loss"]["target"] = config["loss"]["target"][0]
    path = tmp_path / "one.yaml"
    path.write_text(text_of(config))
    status, _, err = run_cli(["grad", str(path)])
    assert status == 2
    assert "batchnorm needs a batch of at least 2 examples in training mode" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_default_gamma_and_beta_are_pytorchs():
    config = _bn1d_config(1)
    del config["layers"][1]["params"]
    batch = loads_any(text_of(config))
    assert list(batch.first.params["bn1"]["weight"]) == [1, 1, 1]
    assert list(batch.first.params["bn1"]["bias"]) == [0, 0, 0]


def test_grad_json_of_the_shipped_batch_norm_config():
    import json

    status, out, err = run_cli(["grad", str(SHIPPED), "--json"])
    assert status == 0, err
    document = json.loads(out)
    assert set(document["gradients"]) >= {"bn1.weight", "bn1.bias", "conv1.weight"}
    # batch norm removes the conv bias from the loss: its gradient is 0 (float64 here, as PyTorch: to rounding)
    assert max(abs(g) for g in document["gradients"]["conv1.bias"]) < 1e-15
    exact = derive(SHIPPED.read_text(), exact=True)
    assert list(exact.gradients["conv1.bias"].value) == [0, 0]  # exactly, on the exact track


def test_check_names_batch_norm_statistics_treated_as_constants():
    """PyTorch with μ and σ² detached (constants) gives the wrong value the mistake names."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    config = yaml.safe_load(SHIPPED.read_text())
    raw = {f"{layer['name']}.{k}": v for layer in config["layers"] for k, v in layer.get("params", {}).items()}
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in raw.items()}
    x = torch.tensor(config["input"]["examples"], dtype=torch.float64)
    z = F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)
    mean = z.mean(dim=(0, 2, 3), keepdim=True).detach()
    variance = z.var(dim=(0, 2, 3), unbiased=False, keepdim=True).detach()
    n = (z - mean) / torch.sqrt(variance + 1e-5) * p["bn1.weight"].view(1, -1, 1, 1) + p["bn1.bias"].view(1, -1, 1, 1)
    scores = F.linear(F.max_pool2d(F.relu(n), 2).flatten(1), p["fc.weight"], p["fc.bias"])
    F.cross_entropy(scores, torch.tensor(config["loss"]["target"])).backward()
    wrong = p["conv1.weight"].grad[0, 1, 2, 0].item()
    code, out, _ = run_cli(["check", str(SHIPPED), "-p", "conv1.weight[0,1,2,0]", "--value", repr(wrong)])
    assert code == 1
    assert "batch-norm mean/variance treated as constants" in out


def test_explain_shows_the_statistics_and_the_three_paths():
    torch = pytest.importorskip("torch")
    config = yaml.safe_load(SHIPPED.read_text())
    conv = config["layers"][0]["params"]
    x = torch.tensor(config["input"]["examples"], dtype=torch.float64)
    z = torch.nn.functional.conv2d(
        x, torch.tensor(conv["weight"], dtype=torch.float64), torch.tensor(conv["bias"], dtype=torch.float64), padding=1
    )
    mean = Fraction(z[:, 0].mean().item()).limit_denominator(10**6)  # the exact mean, from its double
    code, out, _ = run_cli(["explain", str(SHIPPED), "--width", "120"])
    assert code == 0
    assert f"channel 1: μ = {mean}" in out
    assert "three paths" in out and "path 2 (σ²)" in out and "path 3 (μ)" in out
    assert "still add up to the batch gradient" in out


def test_latex_of_the_batch_norm_batch_compiles(tmp_path):
    import shutil

    code, out, _ = run_cli(["latex", str(SHIPPED)])
    assert code == 0
    assert r"\sqrt{\sigma^2 + \varepsilon}" in out and "three paths" in out
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    code, _, err = run_cli(["latex", str(SHIPPED), "-o", str(tmp_path / "b.tex"), "--pdf"])
    assert code == 0, err
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")


# --- kinks past a mixing layer: float64 with proven bounds, else intervals -----------------------


def _two_conv_bn(seed: int, second_weight=None) -> dict:
    """conv - BN - ReLU - max-pool - conv - BN - ReLU - flatten - linear: the second conv mixes the first
    batch norm's channels, so the second ReLU's kinks are past a + b√c."""
    rng = random.Random(seed)
    draw = lambda *shape: np.array([round(rng.uniform(-1, 1), 3) for _ in range(int(np.prod(shape)))]).reshape(shape)
    conv2 = draw(3, 2, 2, 2) if second_weight is None else np.full((3, 2, 2, 2), second_weight)
    layers = [
        {
            "type": "conv2d",
            "name": "conv1",
            "out_channels": 2,
            "kernel_size": 2,
            "params": {"weight": draw(2, 1, 2, 2).tolist(), "bias": draw(2).tolist()},
        },
        {"type": "batchnorm2d", "name": "bn1", "params": {"weight": [1.5, 0.5], "bias": [0.1, -0.2]}},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {
            "type": "conv2d",
            "name": "conv2",
            "out_channels": 3,
            "kernel_size": 2,
            "params": {"weight": conv2.tolist(), "bias": draw(3).tolist()},
        },
        {"type": "batchnorm2d", "name": "bn2", "params": {"weight": [1.0, -0.7, 0.4], "bias": [0.0, 0.3, 0.0]}},
        {"type": "relu"},
        {"type": "flatten"},
        {
            "type": "linear",
            "name": "fc",
            "out_features": 2,
            "params": {"weight": draw(2, 12).tolist(), "bias": draw(2).tolist()},
        },
    ]
    return {
        "input": {"examples": [draw(1, 7, 7).tolist() for _ in range(3)]},
        "layers": layers,
        "loss": {"type": "mse", "target": draw(3, 2).tolist()},
    }


def _torch_two_conv_bn(config: dict):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    raw = {f"{layer['name']}.{k}": v for layer in config["layers"] for k, v in layer.get("params", {}).items()}
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in raw.items()}
    x = torch.tensor(config["input"]["examples"], dtype=torch.float64)
    bn = lambda t, name: F.batch_norm(t, None, None, p[f"{name}.weight"], p[f"{name}.bias"], True)
    h = F.max_pool2d(F.relu(bn(F.conv2d(x, p["conv1.weight"], p["conv1.bias"]), "bn1")), 2)
    h = F.relu(bn(F.conv2d(h, p["conv2.weight"], p["conv2.bias"]), "bn2")).flatten(1)
    out = F.linear(h, p["fc.weight"], p["fc.bias"])
    loss = F.mse_loss(out, torch.tensor(config["loss"]["target"], dtype=torch.float64))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_kinks_past_mixing_agree_with_torch_and_with_intervals(seed, monkeypatch):
    config = _two_conv_bn(seed)
    loss, grads = _torch_two_conv_bn(config)
    derivation = derive(text_of(config), exact=False)
    notes = derivation.examples[0].network.kink_notes
    assert notes and "proven error bound" in notes[0].text  # the fast route decided them
    assert derivation.nearest.loss == pytest.approx(loss, rel=1e-12)
    for name, record in derivation.gradients.items():
        np.testing.assert_allclose(record.approx, grads[name], rtol=1e-9, atol=1e-12, err_msg=name)
    from cnnderive.maths import batch_run

    monkeypatch.setattr(batch_run, "decide_bounded", lambda *args: None)  # the interval route alone
    again = derive(text_of(config), exact=False)
    assert "intervals" in again.examples[0].network.kink_notes[0].text
    for first, second in zip(derivation.examples, again.examples):
        for a, b in zip(first.network.kinks, second.network.kinks):
            if isinstance(a, tuple):
                assert all(np.array_equal(x, y) for x, y in zip(a, b))
            else:
                assert np.array_equal(a, b)


def test_an_exact_zero_past_mixing_is_refused_not_guessed(tmp_path):
    """conv2's weights all 0: its outputs are its biases exactly, bn2's variance 0 and its outputs exactly β = 0
    in two channels. Past the mix of square roots neither the float bounds nor intervals can prove the sign of an
    exact 0, so cnnderive says so in one line rather than let float64 guess."""
    config = _two_conv_bn(11, second_weight=0)
    path = tmp_path / "zero.yaml"
    path.write_text(text_of(config))
    code, _, err = run_cli(["grad", str(path), "--json"])
    assert code == 2
    assert "could not be decided" in err and "relu_7" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c["input"].update(values=c["input"]["values"][:1]), "batch of at least 2 examples"),
        (lambda c: c["layers"][1].update(eps=0), "eps must be positive"),
        (lambda c: c["layers"][1].update(type="batchnorm2d"), "batchnorm2d needs an image"),
        (lambda c: c["layers"][1]["params"].update(weight=[1, 2]), "bn1.weight must have shape [3] [channel]"),
    ],
)
def test_batch_norm_config_errors_are_one_line(tmp_path, change, words):
    config = _bn1d_config(2)
    change(config)
    config["loss"]["target"] = config["loss"]["target"][: len(config["input"]["values"])]
    path = tmp_path / "bad.yaml"
    path.write_text(text_of(config))
    code, _, err = run_cli(["grad", str(path)])
    assert code == 2
    assert words in err, err
    assert len(err.strip().splitlines()) == 1
