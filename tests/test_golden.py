"""The layout of the terminal and LaTeX printers on the seed networks, kept fixed.

These files fix layout (what is printed where), not correctness: every number in them is checked
against independent routes by the other tests (finite differences, the seed networks by hand,
PyTorch). After an intended change of layout, look at the diff, then regenerate with
CNNDERIVE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py and commit the files.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from typer.testing import CliRunner

from cnnderive.cli import app
from tests.conftest import CONFIGS

GOLDEN = pathlib.Path(__file__).parent / "golden"
UPDATE = os.environ.get("CNNDERIVE_UPDATE_GOLDEN") == "1"

CASES = {
    "seed000.explain": ["explain", "seed000_maxpool_flatten.yaml"],
    "seed000_tied.explain": ["explain", "seed000_tied_maxpool.yaml"],
    "seed000_answer.explain": ["explain", "seed000_answer_maxpool3.yaml"],
    "seed001.explain_param": ["explain", "seed001_conv_conv_mse.yaml", "--param", "conv1.weight[0,0,0,0]"],
    "seed001.check_expr": [
        "check",
        "seed001_conv_conv_mse.yaml",
        "--param",
        "conv1.weight[0,0,0,0]",
        "--expr",
        "(i_1 + i_2 + i_4 + i_5) * (w_1^2 + w_2^2 + w_3^2 + w_4^2) * 2*(o - y)",
    ],
    "seed002_fc.explain": ["explain", "seed002_pool_to_fc.yaml"],
    "seed002_conv.grad": ["grad", "seed002_pool_to_conv.yaml"],
    "seed001.latex": ["latex", "seed001_conv_conv_mse.yaml"],
    "seed002_fc.latex": ["latex", "seed002_pool_to_fc.yaml"],
}


def render(args: list[str]) -> str:
    args = [str(CONFIGS / a) if a.endswith(".yaml") else a for a in args]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.mark.parametrize("case", list(CASES))
def test_layout_is_unchanged(case):
    path = GOLDEN / f"{case}.txt"
    text = render(CASES[case])
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with CNNDERIVE_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8")
