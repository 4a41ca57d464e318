"""`explain` down to the input (issue 12, item 1): dL/dx as the full convolution with the rotated kernel,
`--to-input`, and `--param` on the input and layer outputs.

Every expected number is worked out here by hand with Fractions from the config's numbers: the
seed 001 forward pass, dL/dz¹ = 2(o - y)·w², and dL/dx as the full convolution of the zero-padded
dL/dz¹ with the kernel rotated by 180°; the seed 002 FC sums; a two-layer MLP with a ReLU kink.
"""

from __future__ import annotations

import io
import re
from fractions import Fraction as F

import numpy as np
import pytest
from rich.console import Console

import cnnderive
from cnnderive.derivation.steps import build_steps
from cnnderive.printers.explain import explanation
from cnnderive.printers.explain_conv import padded_delta
from cnnderive.printers.explain_view import View
from tests.cli_support import run_cli
from tests.conftest import CONFIGS
from tests.test_explain import flat, matrix_after

SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
SEED002_FC = CONFIGS / "seed002_pool_to_fc.yaml"
MULTI = CONFIGS / "multichannel_stride_pad.yaml"

MLP = """name: mlp 2-2-1
input: {values: [1, 2]}
layers:
  - {type: linear, name: fc1, out_features: 2, params: {weight: [[0.5, -0.25], [0.75, 1]], bias: [0, 0.5]}}
  - {type: relu}
  - {type: linear, name: fc2, out_features: 1, params: {weight: [[1, -2]], bias: [0]}}
loss: {type: mse, target: [1], reduction: sum}
"""


def explain(*args: str) -> str:
    code, out, err = run_cli(["explain", *map(str, args)], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    assert code == 0, err
    return out


def left_part(text: str) -> str:
    """Each line up to its first closing bracket: the left one of matrices printed side by side."""
    return "\n".join(re.sub(r"([⎤⎥⎦]).*", r"\1", line) for line in text.splitlines())


def cells(rows: list[list[str]]) -> list[list[F]]:
    return [[F(cell.strip("[]")) for cell in row] for row in rows]


# seed 001 by hand: the full convolution with the rotated kernel ------------------------------------

X = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
W1 = [[F("0.5"), F("-0.3")], [F("0.2"), F("0.1")]]
W2 = [[F("0.4"), F("0.2")], [F("-0.1"), F("0.3")]]


def seed001_by_hand():
    """dL/dz¹, the padded dL/dz¹, the rotated kernel and dL/dx, from the config numbers."""
    z1 = [[sum(W1[a][b] * X[i + a][j + b] for a in range(2) for b in range(2)) for j in range(2)] for i in range(2)]
    o = sum(z1[i][j] * W2[i][j] for i in range(2) for j in range(2))
    upstream = 2 * (o - F("0.5"))  # (o - y)^2, reduction sum
    dz1 = [[upstream * W2[i][j] for j in range(2)] for i in range(2)]
    padded = [[F(0)] * 4 for _ in range(4)]  # kernel - 1 = 1 zero row and column on every side
    for i in range(2):
        for j in range(2):
            padded[i + 1][j + 1] = dz1[i][j]
    rotated = [row[::-1] for row in W1[::-1]]
    dx = [
        [sum(padded[a + u][b + v] * rotated[u][v] for u in range(2) for v in range(2)) for b in range(3)]
        for a in range(3)
    ]
    return dz1, padded, rotated, dx


def test_hand_full_convolution_is_the_chain_rule():
    """The test's own route agrees with the chain rule written element by element (x feeds z through w)."""
    dz1, _, _, dx = seed001_by_hand()
    for a in range(3):
        for b in range(3):
            direct = sum(
                dz1[i][j] * W1[a - i][b - j] for i in range(2) for j in range(2) if 0 <= a - i < 2 and 0 <= b - j < 2
            )
            assert dx[a][b] == direct
    assert dx[1][1] == F(-13, 100)


def test_first_conv_always_shows_dl_dx_as_the_rotated_kernel_full_convolution():
    _, padded, rotated, dx = seed001_by_hand()
    steps = build_steps(cnnderive.load(SEED001))
    first = steps.layers[0]
    assert [[F(str(v)) for v in row] for row in View(steps).delta_in(first)[0]] == dx
    text = explain(SEED001)
    back = text.index("layer 1 · conv1  conv 1@2x2: ∂L/∂z¹ → ∂L/∂x")
    block = text[back:]
    assert "full convolution of ∂L/∂z¹ with the kernel rotated by 180°" in flat(block)
    assert cells(matrix_after(block, "w¹ rotated 180°")) == rotated
    assert cells(matrix_after(block, "∂L/∂z¹ padded")) == padded
    # the worked element: x₂₂, under all four positions of the kernel
    assert cells(matrix_after(left_part(block), "window")) == [row[1:3] for row in padded[1:3]]
    assert "∂L/∂x₂₂ = ∂L/∂z¹₁₁·w¹₂₂ + ∂L/∂z¹₁₂·w¹₂₁ + ∂L/∂z¹₂₁·w¹₁₂ + ∂L/∂z¹₂₂·w¹₁₁" in block
    products = [padded[1 + u][1 + v] * rotated[u][v] for u in range(2) for v in range(2)]
    assert sum(products) == dx[1][1]
    shown = " + ".join(str(float(p)) for p in products).replace("+ -", "- ")
    assert f"= {shown}" in block
    assert cells(matrix_after(block, "∂L/∂x")) == dx
    assert "∂L/∂x = ⎡" in block or "∂L/∂x = ⎢" in block  # all exact: '=' and no rounding


def test_padded_map_with_stride_padding_and_channels_gives_dl_dx():
    """Multi-channel, stride 2, padding 1: the shown padded dL/dz, convolved by hand with each rotated
    kernel and summed over output channels, is the derivation's dL/dx."""
    steps = build_steps(cnnderive.load(MULTI))
    view, step = View(steps), steps.layers[0]
    weight = np.asarray(steps.derivation.network.params["conv1"]["weight"], dtype=float)
    channels_in, height, width = step.input.shape
    kh, kw = step.layer.kernel
    by_hand = np.zeros(step.input.shape)
    for o in range(step.layer.out_channels):
        padded = padded_delta(view, step, o)[1]
        assert padded.shape == (height + kh - 1, width + kw - 1)
        for c in range(channels_in):
            rotated = weight[o, c, ::-1, ::-1]
            for a in range(height):
                for b in range(width):
                    by_hand[c, a, b] += float((padded[a : a + kh, b : b + kw] * rotated).sum())
    assert np.allclose(by_hand, view.floats.deltas[0], rtol=1e-12, atol=1e-15)
    text = explain(MULTI)
    assert "spread ∂L/∂z¹ out: 1 zero rows between its rows" in flat(text)
    assert "∂L/∂z¹ padded (output channel 1)" in text


# --to-input ----------------------------------------------------------------------------------------


def mlp_by_hand():
    x, w1, b1 = [F(1), F(2)], [[F("0.5"), F("-0.25")], [F("0.75"), F(1)]], [F(0), F("0.5")]
    z1 = [sum(w1[k][j] * x[j] for j in range(2)) + b1[k] for k in range(2)]
    assert z1[0] == 0  # a ReLU kink: ReLU'(0) = 0 (PyTorch's convention)
    a1 = [max(v, F(0)) for v in z1]
    w2 = [F(1), F(-2)]
    o = sum(w2[j] * a1[j] for j in range(2))
    da1 = [2 * (o - 1) * w2[j] for j in range(2)]
    dz1 = [da1[k] if z1[k] > 0 else F(0) for k in range(2)]
    return [sum(dz1[k] * w1[k][j] for k in range(2)) for j in range(2)]


def test_a_linear_first_network_shows_dl_dx_only_with_to_input(tmp_path):
    config = tmp_path / "mlp.yaml"
    config.write_text(MLP)
    dx = mlp_by_hand()
    assert dx == [F("22.5"), F(30)]
    plain = explain(config)
    assert "∂L/∂x = [" not in plain and "--to-input shows it" in plain
    full = explain(config, "--to-input")
    assert cells(matrix_after(full, "∂L/∂x")) == [dx]
    assert "∂L/∂x₁ = ∂L/∂z¹₁·w¹₁₁ + ∂L/∂z¹₂·w¹₂₁" in full
    steps = build_steps(cnnderive.load(config))
    assert View(steps).delta_in(steps.layers[0]) is None
    assert [F(str(v)) for v in View(steps, to_input=True).delta_in(steps.layers[0])] == dx


def test_parameterless_layers_are_walked_to_the_input():
    """Seed 002a starts with a max-pool: dL/dx is shown (routed to the window maxima) without asking."""
    text = explain(SEED002_FC)
    back = text.index("layer 1 · maxpool2d_1  maxpool2d 2x2, stride 2: ∂L/∂p")
    assert cells(matrix_after(text, "∂L/∂x", back)) == [[0, DP[0], 0, 0], [0, 0, DP[1], 0]]


# --param on the input and layer outputs --------------------------------------------------------------

P = [F("0.9"), F("0.8")]  # seed 002a: the maxima of the two 2x2 windows
FC_W = [[F("0.5"), F("-0.2")], [F("0.3"), F("0.8")], [F("-0.6"), F("0.4")]]
FC_B, TARGET = [F("0.1"), F(0), F("-0.1")], [1, 0, 1]
DZ = [sum(FC_W[k][j] * P[j] for j in range(2)) + FC_B[k] - TARGET[k] for k in range(3)]  # half_sum: z - t
DP = [sum(DZ[k] * FC_W[k][j] for k in range(3)) for j in range(2)]


def _decimal(q: F) -> str:
    return format(float(q), "g")


def test_param_on_the_network_output():
    text = explain(SEED002_FC, "--param", "fc.output[1]")
    assert "network's output" in text
    assert f"∂L/∂z¹₂ = {DZ[1]} = {_decimal(DZ[1])}" in text


@pytest.mark.parametrize("name", ["flatten_2.output[0]", "maxpool2d_1.output[0,0,0]"])
def test_param_on_an_intermediate_adds_one_term_per_fc_neuron(name):
    text = explain(SEED002_FC, "--param", name)
    for k in range(3):
        product = DZ[k] * FC_W[k][0]
        assert f"= {_paren(DZ[k])}·{_paren(FC_W[k][0])} = {_decimal(product)}" in text
    assert f"= {DP[0]} = {_decimal(DP[0])}" in text
    assert "Add them, don't multiply" in flat(text)


def _paren(q: F) -> str:
    text = _decimal(q)
    return f"({text})" if text.startswith("-") else text


def test_param_on_input_elements_follows_the_max_pool_routing():
    winner = explain(SEED002_FC, "--param", "input[0,0,1]")  # x₁₂ = 0.9 won the first window
    assert f"∂L/∂x₁₂ = {DP[0]} = {_decimal(DP[0])}" in winner
    loser = explain(SEED002_FC, "--param", "input[0,0,0]")
    assert "Cut to zero (1 of 1 terms)" in loser and "∂L/∂x₁₁ = 0" in loser


def test_param_on_a_whole_output_tensor():
    text = explain(SEED002_FC, "--param", "maxpool2d_1.output")
    assert "(maxpool2d_1.output, all 2 elements)" in text
    assert cells(matrix_after(text, "∂L/∂p")) == [DP]
    assert f"∂L/∂p₁₂ = ∂L/∂z¹₁·w¹₁₂ + ∂L/∂z¹₂·w¹₂₂ + ∂L/∂z¹₃·w¹₃₂ = {DP[1]}" in text


def test_param_on_the_input_of_a_conv_is_its_full_convolution_value():
    _, _, _, dx = seed001_by_hand()
    text = explain(SEED001, "--param", "input[0,1,1]")
    assert "∂L/∂z¹₁₁·w¹₂₂" in text and "feeds 4 elements of z¹" in flat(text)
    assert f"∂L/∂x₂₂ = -0.02 - 0.02 - 0.015 - 0.075 = {dx[1][1]} = {_decimal(dx[1][1])}" in text


def test_param_on_a_conv_output_by_finite_differences(tmp_path):
    """dL/dz¹₁₂ of seed 001 against a central difference of the loss as a function of z¹₁₂ alone,
    L = (Σ z¹ᵢⱼ·w²ᵢⱼ - y)², computed here: quadratic in z¹₁₂, so the central difference is exact."""
    dz1, _, _, _ = seed001_by_hand()
    z1 = [[sum(W1[a][b] * X[i + a][j + b] for a in range(2) for b in range(2)) for j in range(2)] for i in range(2)]

    def loss(shift: F) -> F:
        o = sum((z1[i][j] + (shift if (i, j) == (0, 1) else 0)) * W2[i][j] for i in range(2) for j in range(2))
        return (o - F("0.5")) ** 2

    h = F(1, 1000)
    central = (loss(h) - loss(-h)) / (2 * h)
    assert central == dz1[0][1]
    text = explain(SEED001, "--param", "conv1.output[0,0,1]")
    assert f"∂L/∂z¹₁₂ = {central} = {_decimal(central)}" in text


@pytest.mark.parametrize("name", ["target[0]", "loss", "target"])
def test_target_and_loss_are_refused_in_one_line(name):
    code, out, err = run_cli(["explain", str(SEED002_FC), "--param", name])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not the" in lines[0] and "Traceback" not in err


def test_to_input_with_param_is_refused():
    code, _, err = run_cli(["explain", str(SEED001), "--to-input", "--param", "input[0,0,0]"])
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_explanation_renders_within_80_columns_to_the_input(tmp_path):
    config = tmp_path / "mlp.yaml"
    config.write_text(MLP)
    for path, to_input in ((SEED001, False), (MULTI, False), (config, True)):
        console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
        for item in explanation(build_steps(cnnderive.load(path)), to_input=to_input):
            console.print(item)
        assert max(len(line.rstrip()) for line in console.export_text().splitlines()) <= 80
