"""Every size limit is a Budget field; exact forms stay bounded (issue 10.8: two stacked softmaxes)."""

from __future__ import annotations

from typer.testing import CliRunner

from cnnderive.cli import app
from cnnderive.config import load, loads
from cnnderive.derivation.budget import BUDGET, Budget
from tests.conftest import CONFIGS

TWO_SOFTMAXES = """
name: two stacked softmaxes
seed: 5
input: {shape: [4]}
layers:
  - {type: linear, out_features: 4}
  - {type: softmax}
  - {type: linear, out_features: 4}
  - {type: softmax}
  - {type: linear, out_features: 3}
loss: {type: mse, target: [0, 1, 0]}
"""


def test_stacked_exp_layers_get_no_exact_forms():
    """Exact forms nest with each softmax: two of them are shown as nearest doubles, not SymPy forms."""
    assert BUDGET.exact_limit(loads(TWO_SOFTMAXES, "two.yaml")) == 0
    assert BUDGET.exact_limit(load(CONFIGS / "sigmoid_bce.yaml")) == BUDGET.exact_work_transcendental
    assert Budget(exact_transcendental_layers=2).exact_limit(loads(TWO_SOFTMAXES, "two.yaml")) > 0


def test_grad_text_on_stacked_softmaxes_answers(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(TWO_SOFTMAXES)
    result = CliRunner().invoke(app, ["grad", str(path)])
    assert result.exit_code == 0, result.output
    assert "linear_5.bias[2]" in result.stdout
