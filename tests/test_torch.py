"""Every shipped config and acceptance case, rebuilt in PyTorch float64, agrees with cnnderive.

The network is read from the YAML here, with PyTorch's defaults (conv stride 1 and padding 0,
pool stride = kernel size, bias on, leaky slope 0.01); only the parameters the config leaves
to the seed are taken from cnnderive. Skipped when torch is not installed (CI runs this file
separately, after installing it).

Where float64 lands within 1e-9 of a kink that exact arithmetic decides the other way (a ReLU
input that is 0 exactly but 1e-17 in float64, a max-pool tie that rounding breaks), the spec
says the exact decision holds. Torch's own decision is checked to differ only at such
near-kinks; there cnnderive's decision is imposed on torch, and torch does the arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import yaml

import cnnderive
from tests.conftest import CONFIGS, ROOT

torch = pytest.importorskip("torch")
F = torch.nn.functional

ACCEPTANCE = ROOT.parent / "shared" / "acceptance" / "cases"
PATHS = sorted(CONFIGS.glob("*.yaml")) + sorted(ACCEPTANCE.glob("*.yaml"))


def number(value) -> float:
    """A config number as the nearest double (decimals and "p/q" strings are exact in the config)."""
    return float(Fraction(str(value)))


def tensor(raw, shape=None):
    values = np.vectorize(number, otypes=[float])(np.array(raw, dtype=object))
    if shape is not None:
        values = values.reshape(shape)
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, list) else (value, value)


NEAR = 1e-9


def relu_mask(x, decided, label):
    """cnnderive's ReLU mask, after checking it differs from float64's only at near-zeros."""
    decided = torch.tensor(np.asarray(decided, dtype=bool))
    differ = (x > 0) != decided
    assert torch.all(x.detach()[differ].abs() < NEAR), f"{label}: ReLU decided differently away from 0"
    return decided


def maxpool_winners(x, kernel, stride, decided, label):
    """Torch's max-pool output with cnnderive's winners, after checking they differ only at near-ties."""
    _, natural = F.max_pool2d(x[None].detach(), kernel, stride, return_indices=True)
    natural = natural[0]
    rows, cols = decided
    chosen = torch.tensor(np.asarray(rows * x.shape[2] + cols, dtype=np.int64))
    flat = x.reshape(x.shape[0], -1)
    differ = natural != chosen
    gap = flat.detach().gather(1, natural.reshape(x.shape[0], -1)) - flat.detach().gather(
        1, chosen.reshape(x.shape[0], -1)
    )
    assert torch.all(gap.reshape(natural.shape)[differ].abs() < NEAR), (
        f"{label}: max-pool winner differs away from a tie"
    )
    return flat.gather(1, chosen.reshape(x.shape[0], -1)).reshape(chosen.shape)


def build(path):
    """(loss, output, {param name: leaf tensor}) computed by torch from the config at `path`."""
    config = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    derivation = cnnderive.load(path)
    seeded = derivation.network.params
    x = torch.tensor(np.asarray(derivation.network.input, dtype=float), dtype=torch.float64)
    if "values" in config["input"]:
        given = np.vectorize(number, otypes=[float])(np.array(config["input"]["values"], dtype=object))
        assert np.array_equal(given.reshape(x.shape), x.numpy())
    params = {}
    kinks = derivation.network.kinks
    outputs = {"input": x}  # by layer name: what `from` reads (a graph, not only a chain)
    for position, layer in enumerate(config["layers"]):
        kind = layer["type"]
        name = layer.get("name", f"{kind}_{position + 1}")
        given = layer.get("params", {})
        if isinstance(layer.get("from"), str):
            x = outputs[layer["from"]]

        def param(p, shape, given=given, name=name):
            if p in given:
                t = tensor(given[p], shape)
                assert np.array_equal(t.detach().numpy(), np.asarray(seeded[name][p], dtype=float))
            else:  # drawn from the seed: take cnnderive's numbers
                t = torch.tensor(np.asarray(seeded[name][p], dtype=float), dtype=torch.float64, requires_grad=True)
            params[f"{name}.{p}"] = t
            return t

        if kind == "conv2d":
            kh, kw = pair(layer["kernel_size"])
            w = param("weight", (layer["out_channels"], x.shape[0], kh, kw))
            b = param("bias", (layer["out_channels"],)) if layer.get("bias", True) else None
            x = F.conv2d(x[None], w, b, stride=pair(layer.get("stride", 1)), padding=pair(layer.get("padding", 0)))[0]
        elif kind == "linear":
            w = param("weight", (layer["out_features"], x.shape[0]))
            b = param("bias", (layer["out_features"],)) if layer.get("bias", True) else None
            x = F.linear(x, w, b)
        elif kind == "flatten":
            x = x.reshape(-1)
        elif kind == "relu":
            x = torch.where(relu_mask(x, kinks[position], f"{path.name} {name}"), x, torch.zeros_like(x))
        elif kind == "leaky_relu":
            slope = number(layer.get("negative_slope", "0.01"))
            x = torch.where(relu_mask(x, kinks[position], f"{path.name} {name}"), x, slope * x)
        elif kind == "sigmoid":
            x = torch.sigmoid(x)
        elif kind == "tanh":
            x = torch.tanh(x)
        elif kind == "identity":
            pass
        elif kind == "softmax":
            x = torch.softmax(x.reshape(-1), 0).reshape(x.shape)
        elif kind == "maxpool2d":
            kernel, stride = pair(layer["kernel_size"]), pair(layer.get("stride", layer["kernel_size"]))
            x = maxpool_winners(x, kernel, stride, kinks[position], f"{path.name} {name}")
        elif kind == "avgpool2d":
            kernel = pair(layer["kernel_size"])
            x = F.avg_pool2d(x[None], kernel, pair(layer.get("stride", layer["kernel_size"])))[0]
        elif kind == "adaptive_avg_pool2d":
            x = F.adaptive_avg_pool2d(x[None], layer.get("output_size", 1))[0]
        elif kind == "dropout":  # PyTorch's training-mode dropout with this mask: kept * 1/(1 - p)
            p = number(layer.get("p", "0.5"))
            x = x * tensor(layer["mask"], x.shape).detach() / (1 - p)
        elif kind == "add":
            x = sum(outputs[source] for source in layer["from"])
        elif kind == "concat":
            x = torch.cat([outputs[source] for source in layer["from"]], dim=0)
        else:
            raise AssertionError(f"unknown layer kind {kind} in {path}")
        outputs[name] = x

    loss_config = config["loss"]
    o = x.reshape(-1)
    raw = loss_config["target"]
    if isinstance(raw, int) and loss_config["type"] == "cross_entropy":
        t = torch.zeros(o.numel(), dtype=torch.float64)
        t[raw] = 1
    else:
        t = torch.tensor([number(v) for v in (raw if isinstance(raw, list) else [raw])], dtype=torch.float64)
    if loss_config["type"] == "hinge":  # MultiMarginLoss divides by the classes: that is our `mean`
        margin = number(loss_config.get("margin", 1))
        classes = 1.0 if loss_config.get("reduction", "sum") == "mean" else float(o.numel())
        loss = classes * F.multi_margin_loss(o[None], torch.tensor([int(loss_config["target"])]), margin=margin)
    elif loss_config["type"] == "mse":
        scale = {"mean": 1 / o.numel(), "sum": 1.0, "half_sum": 0.5}[loss_config.get("reduction", "mean")]
        loss = scale * torch.sum((o - t) ** 2)
    elif config["layers"][-1]["type"] == "softmax":
        loss = -torch.sum(t * torch.log(o))
    else:
        loss = -torch.sum(t * torch.log(o) + (1 - t) * torch.log(1 - o))
    loss.backward()
    return loss.item(), x.detach().numpy(), params, derivation


def test_there_are_configs_to_check():
    assert len(list(CONFIGS.glob("*.yaml"))) >= 7


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_config_agrees_with_torch_float64(path):
    """Loss, output and every gradient (float pass and gradient_floats) agree with torch to 1e-9."""
    loss, output, params, derivation = build(path)
    assert float(derivation.floats.loss) == pytest.approx(loss, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(np.asarray(derivation.floats.values[-1], dtype=float), output, rtol=1e-9, atol=1e-12)
    assert list(derivation.floats.grads) == list(params)
    best = derivation.gradient_floats()
    for name, leaf in params.items():
        want = leaf.grad.numpy()
        assert derivation.floats.grads[name].shape == want.shape, name
        np.testing.assert_allclose(derivation.floats.grads[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(best[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
