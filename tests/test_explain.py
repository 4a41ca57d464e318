"""`explain`: on each seed config the facts that answer the student's question, in the model and on screen.

Expected values are worked out here from the config numbers (fractions, or math.exp for the
softmax), not taken from the program: the max-pool winners by the first-maximum rule, the routed
gradient through softmax, FC and flatten, the four i·w products of seed 001, the FC sum of seed 002.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction as F
from functools import cache

import numpy as np
import pytest
from rich.console import Console

import cnnderive
from cnnderive.derivation.names import parse_parameter
from cnnderive.derivation.steps import build_steps
from cnnderive.printers.explain import explanation, param_explanation
from cnnderive.printers.explain_view import View
from tests.conftest import CONFIGS, ROOT

SEED000 = CONFIGS / "seed000_tied_maxpool.yaml"
SEED000_ANSWER = CONFIGS / "seed000_answer_maxpool3.yaml"
SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
SEED002_FC = CONFIGS / "seed002_pool_to_fc.yaml"
SEED002_CONV = CONFIGS / "seed002_pool_to_conv.yaml"
SMALL = [
    SEED000,
    SEED000_ANSWER,
    SEED001,
    SEED002_FC,
    SEED002_CONV,
    CONFIGS / "multichannel_stride_pad.yaml",
    CONFIGS / "sigmoid_bce.yaml",
]


@cache
def steps_of(path):
    return build_steps(cnnderive.load(path))


def render(items, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    for item in items:
        console.print(item)
    return console.export_text()


def explained(path, width: int = 80) -> str:
    return render(explanation(steps_of(path)), width)


def param_explained(path, param: str, width: int = 80, expand: bool = False) -> str:
    steps = steps_of(path)
    tensor, index = parse_parameter(steps.derivation.network, param)
    return render(param_explanation(steps, tensor, index, expand), width)


def flat(text: str) -> str:
    """The text with line breaks and runs of spaces as single spaces (prose wraps at the width)."""
    return " ".join(text.split())


def step(path, kind: str):
    return next(s for s in steps_of(path).layers if s.layer.kind == kind)


def matrix_after(text: str, label: str, start: int = 0) -> list[list[str]]:
    """The cells of the first matrix labelled `label` (e.g. 'routing mask') after offset `start`."""
    lines = text[start:].splitlines()
    at = next(k for k, line in enumerate(lines) if re.search(re.escape(label) + r" [=≈] [⎡⎢⎣\[]", line))
    column = re.search(re.escape(label) + r" [=≈] ", lines[at]).end()
    top = at
    while top > 0 and len(lines[top - 1]) > column and lines[top - 1][column] in "⎡⎢":
        top -= 1
    rows, k = [], top
    while k < len(lines) and len(lines[k]) > column and lines[k][column] in "⎡⎢⎣[":
        rows.append(lines[k][column + 1 :].rstrip().rstrip("⎤⎥⎦]").split())
        k += 1
    return rows


# seed 000: max-pool routing and the routed gradient -------------------------------------------


def _seed000_by_hand():
    """Conv, ReLU, first-maximum winners, softmax, p - t, FC back, flatten back: from the config numbers."""
    x = [[1, 0, 2, 1, 0], [0, 1, 3, 1, 2], [2, 1, 0, 1, 1], [1, 2, 1, 0, 3], [0, 1, 2, 2, 1]]
    w = [[F("0.1"), F("-0.2")], [F("0.3"), F("0.4")]]
    z = [[sum(w[a][b] * x[i + a][j + b] for a in range(2) for b in range(2)) for j in range(4)] for i in range(4)]
    a = [[max(v, 0) for v in row] for row in z]
    winners = []
    for i in (0, 2):
        for j in (0, 2):
            window = [(i + r, j + c) for r in range(2) for c in range(2)]
            best = window[0]
            for pos in window:  # strictly greater: a tie keeps the first (row-major) maximum
                if a[pos[0]][pos[1]] > a[best[0]][best[1]]:
                    best = pos
            winners.append(best)
    pooled = [a[r][c] for r, c in winners]
    fc_w = [
        [F("0.2"), F("-0.1"), F("0.4"), F("0.3")],
        [F("-0.3"), F("0.5"), F("0.1"), F("-0.2")],
        [F("0.1"), F("0.2"), F("-0.4"), F("0.6")],
    ]
    fc_b = [F("0.1"), F("-0.1"), F(0)]
    logits = [sum(fc_w[k][j] * pooled[j] for j in range(4)) + fc_b[k] for k in range(3)]
    exps = [math.exp(float(v)) for v in logits]
    p = [e / sum(exps) for e in exps]
    dz = [p[k] - (1.0 if k == 1 else 0.0) for k in range(3)]
    df = [sum(dz[k] * float(fc_w[k][j]) for k in range(3)) for j in range(4)]
    routed = np.zeros((4, 4))
    for (r, c), g in zip(winners, df):
        routed[r, c] = g
    return winners, routed


def test_seed000_maxpool_mask_in_the_model():
    winners, routed = _seed000_by_hand()
    pool = step(SEED000, "maxpool2d")
    expected = np.zeros((4, 4), dtype=int)
    for r, c in winners:
        expected[r, c] = 1
    assert winners == [(0, 1), (0, 2), (2, 0), (3, 2)]
    assert (pool.mask[0] == expected).all()
    delta = View(steps_of(SEED000)).delta_in(pool)
    assert np.allclose(np.array([[float(v) for v in row] for row in delta[0]]), routed, atol=1e-12)


def test_seed000_maxpool_mask_and_routed_gradient_on_screen():
    winners, routed = _seed000_by_hand()
    text = explained(SEED000)
    back = text.index("Backward pass, from the loss")
    mask = matrix_after(text, "routing mask", back)
    assert [(r, c) for r, row in enumerate(mask) for c, cell in enumerate(row) if cell == "[1]"] == winners
    assert all(cell in ("0", "[1]") for row in mask for cell in row)
    shown = matrix_after(text, "∂L/∂a¹", text.index("routing mask", back))
    for r in range(4):
        for c in range(4):
            cell = shown[r][c]
            assert cell.startswith("[") == ((r, c) in winners)
            assert float(cell.strip("[]")) == pytest.approx(routed[r, c], rel=1e-3, abs=1e-12)
    assert "the first one, row by row, if tied" in flat(text)


def test_seed000_answer_mask_is_the_answers():
    """The answer's 3x3 stride-1 pooling on a map growing to the bottom right routes to the bottom-right 2x2."""
    expected = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert step(SEED000_ANSWER, "maxpool2d").mask[0].tolist() == expected
    text = explained(SEED000_ANSWER)
    mask = matrix_after(text, "routing mask", text.index("Backward pass, from the loss"))
    assert [[1 if cell == "[1]" else 0 for cell in row] for row in mask] == expected
    assert "collects the sum of their gradients" in flat(text)


def test_seed000_flatten_and_conv_weights_on_screen():
    text = explained(SEED000)
    assert "channel, row, column" in flat(text)
    assert matrix_after(text, "k in f¹ₖ") == [["1", "2"], ["3", "4"]]
    assert "correlation of the input x with ∂L/∂z¹" in flat(text)
    assert "∂L/∂w¹ ≈" in text and "∂L/∂b¹ ≈" in text


# seed 001: the chain rule for dC/dw_1^1 is a sum of four products -------------------------------


def test_seed001_terms_in_the_model():
    x = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
    w1 = [[F("0.5"), F("-0.3")], [F("0.2"), F("0.1")]]
    w2 = [[F("0.4"), F("0.2")], [F("-0.1"), F("0.3")]]
    o1 = [[sum(w1[a][b] * x[i + a][j + b] for a in range(2) for b in range(2)) for j in range(2)] for i in range(2)]
    o2 = sum(o1[i][j] * w2[i][j] for i in range(2) for j in range(2))
    upstream = 2 * (o2 - F("0.5"))
    d = steps_of(SEED001).derivation
    g = d.gradient(*parse_parameter(d.network, "conv1.weight[0,0,0,0]"))
    assert [t.factor_index for t in g.terms] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    assert [F(str(t.value)) for t in g.terms] == [upstream * w2[i][j] * x[i][j] for i in range(2) for j in range(2)]
    assert F(str(g.value)) == upstream * sum(x[i][j] * w2[i][j] for i in range(2) for j in range(2)) == F(-11, 20)


def test_seed001_terms_on_screen():
    text = param_explained(SEED001, "conv1.weight[0,0,0,0]")
    for ij in ("₁₁", "₁₂", "₂₁", "₂₂"):
        assert f"∂L/∂z¹{ij}·x{ij} = 2·x{ij}·w²{ij}·(z²₁₁ - y₁)" in text
    assert "2·(z²₁₁ - y₁)·(x₁₁·w²₁₁ + x₁₂·w²₁₂ + x₂₁·w²₂₁ + x₂₂·w²₂₂)" in text
    assert "∂L/∂w¹₁₁ = -0.2 - 0.2 + 0 - 0.15 = -11/20 = -0.55" in text
    assert "A sum of products" in flat(text)


def test_seed001_expand_adds_the_expanded_form():
    text = param_explained(SEED001, "conv1.weight[0,0,0,0]", expand=True)
    assert "Fully expanded, in the inputs and parameters only" in text
    assert "terms in all" in text


# seed 002: add, don't multiply ------------------------------------------------------------------


def test_seed002_linear_sum_in_the_model():
    p = [F("0.9"), F("0.8")]  # the maxima of [[0.2, 0.9], [0.5, 0.3]] and [[0.4, 0.1], [0.8, 0.6]]
    w = [[F("0.5"), F("-0.2")], [F("0.3"), F("0.8")], [F("-0.6"), F("0.4")]]
    b, t = [F("0.1"), F(0), F("-0.1")], [1, 0, 1]
    dz = [sum(w[k][j] * p[j] for j in range(2)) + b[k] - t[k] for k in range(3)]  # half_sum: dL/dz = z - t
    dp = [sum(dz[k] * w[k][j] for k in range(3)) for j in range(2)]
    assert dp == [F(19, 25), F(161, 500)] and dp[0] != dp[1]
    fc = step(SEED002_FC, "linear")
    assert [F(str(v)) for v in View(steps_of(SEED002_FC)).delta_in(fc)] == dp


def test_seed002_linear_sum_on_screen():
    text = explained(SEED002_FC)
    assert "∂L/∂f₁ = ∂L/∂z¹₁·w¹₁₁ + ∂L/∂z¹₂·w¹₂₁ + ∂L/∂z¹₃·w¹₃₁" in text
    assert "= (-0.61)·0.5 + 0.91·0.3 + (-1.32)·(-0.6)" in text
    assert "= -0.305 + 0.273 + 0.792" in text
    assert "Add them, don't multiply" in flat(text)
    assert matrix_after(text, "∂L/∂f", text.index("Backward pass, from the loss")) == [["0.76", "0.322"]]


def test_seed002_pool_to_conv_adds_four_terms():
    """p₂₂, the centre of the 3x3 pooled map, is under all four positions of the 2x2 kernel."""
    text = explained(SEED002_CONV)
    assert "∂L/∂p₂₂ = ∂L/∂z¹₁₁·w¹₂₂ + ∂L/∂z¹₁₂·w¹₂₁ + ∂L/∂z¹₂₁·w¹₁₂ + ∂L/∂z¹₂₂·w¹₁₁" in text
    assert "rotated 180°" in text


# layout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 160])
@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_renders_within_the_width(path, width):
    text = explained(path, width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    name = steps_of(path).derivation.network.parameter_names()[0]
    text = param_explained(path, name, width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_a_big_map_shows_its_corners(tmp_path):
    config = tmp_path / "wide.yaml"
    config.write_text(
        "name: wide\nseed: 1\ninput: {shape: [1, 20, 20]}\nlayers:\n"
        "  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 3}\n"
        "  - {type: relu}\n  - {type: flatten}\n  - {type: linear, name: fc, out_features: 2}\n"
        "loss: {type: mse, target: [0, 1]}\n"
    )
    text = render(explanation(build_steps(cnnderive.load(config))), 80)
    assert "(18x18; only the corners are shown)" in text and "⋮" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert len(text.splitlines()) < 400


# the command line --------------------------------------------------------------------------------


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cnnderive", "explain", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}], ids=["piped", "NO_COLOR"])
def test_piped_output_has_no_escape_codes(env):
    result = run(SEED000, env=env)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout and "routing mask" in result.stdout


def test_svg_and_html_write_what_was_printed(tmp_path):
    svg, html = tmp_path / "explain.svg", tmp_path / "explain.html"
    result = run(SEED001, "--param", "conv1.weight[0,0,0,0]", "--svg", svg, "--html", html)
    assert result.returncode == 0, result.stderr
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "Collected, in terms of the intermediates" in html.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain.html", "explain.svg"]  # no temporary left


def test_unknown_param_is_one_line_and_exit_2():
    result = run(SEED000, "--param", "conv9.weight")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "conv9.weight" in lines[0] and "Traceback" not in result.stderr


def test_expand_needs_param_and_respects_the_size_guard(tmp_path):
    assert run(SEED000, "--expand").returncode == 2
    big = tmp_path / "big.yaml"
    big.write_text(
        "name: big\nseed: 2\ninput: {shape: [1, 40, 40]}\nlayers:\n"
        "  - {type: conv2d, name: conv1, out_channels: 8, kernel_size: 5}\n"
        "  - {type: flatten}\n  - {type: linear, name: fc, out_features: 1}\n"
        "loss: {type: mse, target: [0]}\n"
    )
    result = run(big, "--param", "conv1.weight[0,0,0,0]", "--expand")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "too big" in lines[0]
