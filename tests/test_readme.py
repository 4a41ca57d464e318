"""The README's YAML examples are what a newcomer copies first: each whole config loads, each
template parses, and each fragment fits into a shipped config it was cut from."""

from __future__ import annotations

import re

import pytest

from cnnderive.config.build import loads_any
from cnnderive.teach.template import parse_template
from tests.conftest import ROOT

BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_readme_has_yaml_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", [b for b in BLOCKS if "layers:" in b], ids=lambda b: b.splitlines()[0][:40])
def test_every_whole_example_loads(block):
    """A config loads as it is; a template (ranges, questions) parses as a template."""
    if "questions:" in block or re.search(r'"(int|one_decimal|two_decimal)\[', block):
        assert parse_template(block, "README.md").questions
    else:
        loads_any(block, "README.md")


def test_the_weight_decay_and_train_fragment_fits_the_2_2_1_example():
    block = next(b for b in BLOCKS if b.startswith("loss:") and "train:" in b)
    text = (ROOT / "configs" / "mlp_221_sgd_step.yaml").read_text()
    text = re.sub(r"^loss: .*\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"^train: .*\n", "", text, flags=re.MULTILINE)
    network = loads_any(text + block, "README.md")
    assert network.decay.rate > 0 and network.train.momentum > 0
