"""The same gradients with PyTorch float64: what a user would write instead of cnnderive.

    python benchmarks/torch_grad.py NET.yaml      # prints the JSON of `cnnderive grad --json`

Reads the config with PyYAML's CSafeLoader (decimals as floats, "1/3" strings as fractions),
builds the layers with torch.nn, runs one forward and one backward pass. Parameters or inputs
the config leaves out are drawn from its seed exactly as cnnderive draws them, so every shipped
config can be checked against it.
"""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seeded


def _seeded_parameter(seed: int, name: str, shape: tuple, fan_in: int) -> torch.Tensor:
    count = 1
    for d in shape:
        count *= d
    values = [k / 100 for k in seeded.parameter_hundredths(seed, name, count, fan_in)]
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def _number(value) -> float:
    return float(Fraction(value.strip())) if isinstance(value, str) else float(value)


def _tensor(raw) -> torch.Tensor:
    if isinstance(raw, list) and raw and isinstance(raw[0], list):
        return torch.stack([_tensor(item) for item in raw])
    if isinstance(raw, list):
        return torch.tensor([_number(v) for v in raw], dtype=torch.float64)
    return torch.tensor(_number(raw), dtype=torch.float64)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    seed = config.get("seed", 0)
    spec = config["input"]
    if "values" in spec:
        x = _tensor(spec["values"])
    else:
        shape = tuple(spec["shape"])
        count = 1
        for d in shape:
            count *= d
        x = torch.tensor([k / 10 for k in seeded.input_tenths(seed, count)], dtype=torch.float64).reshape(shape)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    steps, params = [], {}
    shape = tuple(x.shape)
    for position, layer in enumerate(config["layers"]):
        kind = layer["type"]
        name = layer.get("name", f"{kind}_{position + 1}")
        given = layer.get("params") or {}
        if kind in ("conv2d", "linear"):
            if kind == "conv2d":
                kernel, stride, padding = (
                    _pair(layer["kernel_size"]),
                    _pair(layer.get("stride", 1)),
                    _pair(layer.get("padding", 0)),
                )
                module = torch.nn.Conv2d(
                    shape[0],
                    layer["out_channels"],
                    kernel,
                    stride,
                    padding,
                    bias=layer.get("bias", True),
                    dtype=torch.float64,
                )
                fan_in = shape[0] * kernel[0] * kernel[1]
            else:
                module = torch.nn.Linear(
                    shape[0], layer["out_features"], bias=layer.get("bias", True), dtype=torch.float64
                )
                fan_in = shape[0]
            for pname, tensor in module.named_parameters():
                with torch.no_grad():
                    value = (
                        _tensor(given[pname]).reshape(tensor.shape)
                        if pname in given
                        else _seeded_parameter(seed, f"{name}.{pname}", tuple(tensor.shape), fan_in)
                    )
                    tensor.copy_(value)
                params[f"{name}.{pname}"] = tensor
            steps.append(module)
        elif kind == "maxpool2d":
            kernel = _pair(layer["kernel_size"])
            steps.append(torch.nn.MaxPool2d(kernel, _pair(layer.get("stride", layer["kernel_size"]))))
        elif kind == "avgpool2d":
            kernel = _pair(layer["kernel_size"])
            steps.append(torch.nn.AvgPool2d(kernel, _pair(layer.get("stride", layer["kernel_size"]))))
        elif kind == "flatten":
            steps.append(lambda t: t.reshape(-1))
        elif kind == "relu":
            steps.append(torch.relu)
        elif kind == "leaky_relu":
            slope = _number(layer.get("negative_slope", 0.01))
            steps.append(lambda t, s=slope: F.leaky_relu(t, s))
        elif kind == "sigmoid":
            steps.append(torch.sigmoid)
        elif kind == "tanh":
            steps.append(torch.tanh)
        elif kind == "identity":
            steps.append(lambda t: t)
        elif kind == "softmax":
            steps.append(lambda t: torch.softmax(t.reshape(-1), 0).reshape(t.shape))
        else:
            raise SystemExit(f"unknown layer type {kind}")
        with torch.no_grad():
            shape = tuple(steps[-1](torch.zeros(shape, dtype=torch.float64)).shape)
    out = x
    for step in steps:
        out = step(out)
    loss_spec = config["loss"]
    flat = out.reshape(-1)
    raw_target = loss_spec["target"]
    if isinstance(raw_target, int) and loss_spec["type"] == "cross_entropy":
        target = torch.zeros(flat.numel(), dtype=torch.float64)
        target[raw_target] = 1
    else:
        target = _tensor(raw_target if isinstance(raw_target, list) else [raw_target]).reshape(-1)
    if loss_spec["type"] == "cross_entropy":
        last = config["layers"][-1]["type"]
        loss = -(target * torch.log(flat)).sum()
        if last == "sigmoid":
            loss = loss - ((1 - target) * torch.log(1 - flat)).sum()
    else:
        diff = flat - target
        reduction = loss_spec.get("reduction", "mean")
        loss = (diff * diff).sum() * {"mean": 1 / flat.numel(), "sum": 1.0, "half_sum": 0.5}[reduction]
    loss.backward()
    document = {
        "loss": loss.item(),
        "output": out.detach().tolist(),
        "gradients": {name: tensor.grad.tolist() for name, tensor in params.items()},
    }
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
