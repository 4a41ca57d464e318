"""The shipped configs load and give finite gradients; a rational network gives exact fractions."""

import math

import pytest

import cnnderive
from tests.conftest import CONFIGS


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    d = cnnderive.load(path)
    assert math.isfinite(float(d.floats.loss))
    assert set(d.floats.grads) == set(d.network.parameter_names())
