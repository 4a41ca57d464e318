"""`grad --json`: the document of spec section 4."""

from __future__ import annotations

import json

import numpy as np

from ..derivation.build import Derivation
from ..errors import UserError


def gradient_document(derivation: Derivation, only: str | None = None) -> dict:
    """loss, output and every gradient (or only the tensor `only`) as plain floats, nested by shape."""
    floats = derivation.nearest
    grads = floats.grads
    names = [only] if only else list(grads)
    arrays = [np.asarray(floats.loss, dtype=float), np.asarray(floats.values[-1], dtype=float)]
    if not all(np.isfinite(a).all() for a in arrays + [np.asarray(grads[name], dtype=float) for name in names]):
        raise UserError(
            f"the values leave the float64 range (loss {float(floats.loss)}): the numbers in "
            f"{derivation.network.source} are too large for a float result; `cnnderive grad` without --json "
            "shows the exact values of a small network",
            field="--json",
        )
    document = {
        "loss": float(floats.loss),
        "output": np.asarray(floats.values[-1], dtype=float).tolist(),
        "gradients": {name: np.asarray(grads[name], dtype=float).tolist() for name in names},
    }
    update = derivation.update
    if update is not None:
        document.update(_update_entries(update, names))
    return document


def _update_entries(update, names: list[str]) -> dict:
    """After a `train:` step: "updated" (the final weights), "velocity" (with momentum: the final v, the
    next step's `velocity:`), and with several steps "steps" (each step's J before it and weights after it)."""
    entries = {"updated": _tensors(update.final(), names)}
    velocity = update.final_velocity()
    if velocity is not None:
        entries["velocity"] = _tensors(velocity, names)
    if len(update.steps) > 1:
        entries["steps"] = [
            {"loss": step.loss_approx, "updated": _tensors({t.name: t.new_weight.approx for t in step.tensors}, names)}
            for step in update.steps
        ]
    for values in [update.final()[name] for name in names]:
        if not np.isfinite(np.asarray(values, dtype=float)).all():
            raise UserError("the updated weights leave the float64 range: use a smaller lr", field="--json")
    return entries


def _tensors(arrays: dict[str, np.ndarray], names: list[str]) -> dict:
    return {name: np.asarray(arrays[name], dtype=float).tolist() for name in names}


def render(derivation: Derivation, only: str | None = None) -> str:
    """The document with one line per entry, each tensor on its line.

    (`json.dumps(..., indent=...)` runs the pure-Python encoder and puts every number on a line
    of its own: 0.1 s and 61,706 lines for LeNet-5; each value here goes through the C encoder.)
    """
    document = gradient_document(derivation, only)
    lines = [f' "loss": {json.dumps(document["loss"])}', f' "output": {json.dumps(document["output"])}']
    lines += [
        f" {json.dumps(key)}: {_by_tensor(document[key])}"
        for key in ("gradients", "updated", "velocity")
        if key in document
    ]
    if "steps" in document:
        steps = [f"  {json.dumps(step)}" for step in document["steps"]]
        lines.append(' "steps": [\n' + ",\n".join(steps) + "\n ]")
    return "{\n" + ",\n".join(lines) + "\n}"


def _by_tensor(tensors: dict) -> str:
    """One tensor a line."""
    entries = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in tensors.items()]
    return "{\n" + ",\n".join(entries) + "\n }" if entries else "{}"
