"""`grad --json`: the document of spec section 4."""

from __future__ import annotations

import json

import numpy as np

from ..derivation import Derivation


def gradient_document(derivation: Derivation, only: str | None = None) -> dict:
    """loss, output and every gradient (or only the tensor `only`) as plain floats, nested by shape."""
    floats = derivation.floats
    grads = derivation.gradient_floats()
    names = [only] if only else list(grads)
    return {
        "loss": float(floats.loss),
        "output": np.asarray(floats.values[-1], dtype=float).tolist(),
        "gradients": {name: np.asarray(grads[name], dtype=float).tolist() for name in names},
    }


def render(derivation: Derivation, only: str | None = None) -> str:
    return json.dumps(gradient_document(derivation, only), indent=1)
