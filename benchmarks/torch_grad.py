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


def _image(x: torch.Tensor) -> torch.Tensor:
    """[H][W] is one channel: [1][H][W]."""
    return x.unsqueeze(0) if x.dim() == 2 else x


def _target(raw, kind: str, size: int) -> torch.Tensor:
    """One example's target as a vector: a class index (cross-entropy) as its one-hot vector."""
    if isinstance(raw, int) and kind == "cross_entropy":
        target = torch.zeros(size, dtype=torch.float64)
        target[raw] = 1
        return target
    return _tensor(raw if isinstance(raw, list) else [raw]).reshape(-1)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    seed = config.get("seed", 0)
    spec = config["input"]
    first = config["layers"][0]["type"].lower() if config["layers"] else ""
    if "examples" in spec:  # a batch, one input per example
        x = torch.stack([_image(_tensor(item)) for item in spec["examples"]])
    elif "values" in spec:
        x = _tensor(spec["values"])
        batched = x.dim() == 4 or (x.dim() == 2 and first == "linear")
        x = x if batched else _image(x).unsqueeze(0)  # one example is a batch of 1 here
    else:
        shape = tuple(spec["shape"])
        count = 1
        for d in shape:
            count *= d
        x = torch.tensor([k / 10 for k in seeded.input_tenths(seed, count)], dtype=torch.float64).reshape(shape)
        x = _image(x).unsqueeze(0)
    batch = "examples" in spec or ("values" in spec and batched)
    steps, params = [], {}
    shape = tuple(x.shape[1:])
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
            steps.append(lambda t: t.reshape(t.shape[0], -1))
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
            steps.append(lambda t: torch.softmax(t.reshape(t.shape[0], -1), 1).reshape(t.shape))
        elif kind in ("batchnorm2d", "batchnorm1d"):  # training mode: batch statistics, biased variance
            if layer.get("unbiased"):
                raise SystemExit("PyTorch normalises with the biased variance: unbiased: true has no PyTorch twin")
            cls = torch.nn.BatchNorm2d if kind == "batchnorm2d" else torch.nn.BatchNorm1d
            eps = _number(layer.get("eps", 0.00001))
            module = cls(shape[0], eps=eps, track_running_stats=False, dtype=torch.float64)
            for pname, tensor in module.named_parameters():
                if pname in given:
                    with torch.no_grad():
                        tensor.copy_(_tensor(given[pname]).reshape(tensor.shape))
                params[f"{name}.{pname}"] = tensor
            steps.append(module)
            continue  # the shape stays; a probe batch of 1 would not do for batch norm
        else:
            raise SystemExit(f"unknown layer type {kind}")
        with torch.no_grad():
            shape = tuple(steps[-1](torch.zeros((1, *shape), dtype=torch.float64)).shape[1:])
    out = x
    for step in steps:
        out = step(out)
    loss_spec = config["loss"]
    flat = out.reshape(out.shape[0], -1)
    targets = loss_spec["target"] if batch else [loss_spec["target"]]
    target = torch.stack([_target(raw, loss_spec["type"], flat.shape[1]) for raw in targets])
    if loss_spec["type"] == "cross_entropy":
        last = config["layers"][-1]["type"]
        losses = -(target * torch.log(flat)).sum(1)
        if last == "sigmoid":
            losses = losses - ((1 - target) * torch.log(1 - flat)).sum(1)
    else:
        diff = flat - target
        reduction = loss_spec.get("reduction", "mean")
        losses = (diff * diff).sum(1) * {"mean": 1 / flat.shape[1], "sum": 1.0, "half_sum": 0.5}[reduction]
    loss = losses.mean() if loss_spec.get("batch_reduction", "mean") == "mean" else losses.sum()
    loss.backward()
    document = {
        "loss": loss.item(),
        "output": (out if batch else out[0]).detach().tolist(),
        "gradients": {name: tensor.grad.tolist() for name, tensor in params.items()},
    }
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
