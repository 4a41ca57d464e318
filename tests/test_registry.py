"""Adding a layer kind or a loss is one class, one table line, and one entry per printer.

These guards fail when a kind is registered but a printer has no entry for it (instead of the
printer silently falling back), or when a kind's declared settings do not match its fields.
The finite-difference check of every kind is tests/test_gradients_fd.py, whose cases must cover
LAYER_KINDS (test_the_cases_cover_every_layer_kind_and_loss).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cnnderive.maths.layers import LAYER_KINDS
from cnnderive.maths.losses import LOSS_KINDS
from cnnderive.printers import explain, explain_backward, latex_words

PRINTER_TABLES = {
    "explain forward": explain.FORWARD,
    "explain backward": explain_backward.BACKWARD,
    "latex forward": latex_words.FORWARD,
    "latex backward": latex_words.BACKWARD,
}


@pytest.mark.parametrize("table", list(PRINTER_TABLES))
def test_every_printer_has_an_entry_for_every_layer_kind(table):
    assert set(PRINTER_TABLES[table]) == set(LAYER_KINDS)


def test_every_loss_has_a_latex_entry():
    assert set(latex_words.LOSS_DELTA) == set(LOSS_KINDS)


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_settings_name_dataclass_fields(kind):
    cls = LAYER_KINDS[kind]
    assert cls.kind == kind
    fields = {f.name for f in dataclasses.fields(cls)}
    assert set(cls.settings) <= fields, f"{kind}: settings without a field"
    for setting in cls.settings.values():
        assert setting.same_as is None or setting.same_as in cls.settings


def _smallest(cls):
    """A layer of this kind on a 1x3x3 image (or a 9-vector for linear), its settings small or default."""
    chosen = {"kernel": (2, 2), "stride": (1, 1), "padding": (0, 0), "out_channels": 1, "out_features": 2}
    chosen["kept"] = (1, 0, 1, 1, 1, 0, 1, 1, 1)  # a dropout mask over the 1x3x3 input
    settings = {name: chosen.get(name, setting.default) for name, setting in cls.settings.items()}
    shape = (9,) if cls.kind in ("linear", "batchnorm1d") else (1, 3, 3)
    return cls.create("probe", shape, **settings)


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_masks_have_latex_words(kind):
    """A kind that routes or gates gradient (a mask) has the sentence that introduces its mask."""
    layer = _smallest(LAYER_KINDS[kind])
    x = np.arange(np.prod(layer.in_shape), dtype=float).reshape(layer.in_shape) - 4
    has_mask = layer.mask(layer.decide(x)) is not None
    assert has_mask == (kind in latex_words.MASK_TEXT)
