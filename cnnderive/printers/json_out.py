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
    return {
        "loss": float(floats.loss),
        "output": np.asarray(floats.values[-1], dtype=float).tolist(),
        "gradients": {name: np.asarray(grads[name], dtype=float).tolist() for name in names},
    }


def render(derivation: Derivation, only: str | None = None) -> str:
    """The document with one line per entry, each tensor on its line.

    (`json.dumps(..., indent=...)` runs the pure-Python encoder and puts every number on a line
    of its own: 0.1 s and 61,706 lines for LeNet-5; each value here goes through the C encoder.)
    """
    document = gradient_document(derivation, only)
    entries = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in document["gradients"].items()]
    gradients = "{\n" + ",\n".join(entries) + "\n }" if entries else "{}"
    return (
        "{\n"
        f' "loss": {json.dumps(document["loss"])},\n'
        f' "output": {json.dumps(document["output"])},\n'
        f' "gradients": {gradients}\n'
        "}"
    )
