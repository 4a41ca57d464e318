import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture
def configs() -> pathlib.Path:
    return CONFIGS
