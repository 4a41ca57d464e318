"""`cnnderive latex`: the backward pass to the input, --param on inputs and layer outputs, the options.

Every expected number is worked out here by hand from the config's numbers, with Fractions.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction as F

import pytest
import sympy
from typer.testing import CliRunner

from cnnderive.cli import app
from cnnderive.printers.latex_math import TextbookPrinter
from tests.conftest import CONFIGS

runner = CliRunner()
SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
SEED002_FC = CONFIGS / "seed002_pool_to_fc.yaml"
SEED000 = CONFIGS / "seed000_maxpool_flatten.yaml"
CELL = re.compile(r"^(-?)(?:\\tfrac\{(\d+)\}\{(\d+)\}|(\d+(?:\.\d+)?))$")


def latex(*args: str) -> str:
    result = runner.invoke(app, ["latex", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout


def matrix_after(tex: str, lhs: str) -> list[list[F]]:
    """The exact numbers of the bmatrix that follows `lhs = ` in the document."""
    start = tex.index(lhs + r" = \begin{bmatrix}") + len(lhs)
    body = tex[tex.index("\n", start) + 1 : tex.index(r"\end{bmatrix}", start)]
    rows = []
    for line in body.strip().split("\\\\\n"):
        cells = []
        for cell in line.strip().rstrip("\\").split("&"):
            sign, p, q, decimal = CELL.match(cell.strip()).groups()
            value = F(int(p), int(q)) if p else F(decimal)
            cells.append(-value if sign else value)
        rows.append(cells)
    return rows


def last_value(tex: str) -> F:
    """The exact value an align* ends with: `= -\\frac{13}{100} = -0.13` gives -13/100."""
    rows = tex[: tex.index(r"\end{align*}")].rstrip().splitlines()
    match = re.search(r"(-?)\\frac\{(\d+)\}\{(\d+)\}|(-?\d+(?:\.\d+)?)\s*$", rows[-1])
    sign, p, q, plain = match.groups()
    return (-1 if sign else 1) * F(int(p), int(q)) if p else F(plain)


# -- the hand calculations -----------------------------------------------------------------------


def seed002_fc_by_hand():
    """Seed 002a: 2x4 input, 2x2 max-pool (stride 2), flatten, fc 2 -> 3, L = 1/2 sum (z - y)^2."""
    x = [[F("0.2"), F("0.9"), F("0.4"), F("0.1")], [F("0.5"), F("0.3"), F("0.8"), F("0.6")]]
    w = [[F("0.5"), F("-0.2")], [F("0.3"), F("0.8")], [F("-0.6"), F("0.4")]]
    b, y = [F("0.1"), F(0), F("-0.1")], [1, 0, 1]
    windows = [[(r, c) for r in range(2) for c in range(2 * k, 2 * k + 2)] for k in range(2)]
    winners = [max(window, key=lambda rc: x[rc[0]][rc[1]]) for window in windows]  # no ties here
    p = [x[r][c] for r, c in winners]
    z = [sum(w[k][j] * p[j] for j in range(2)) + b[k] for k in range(3)]
    dz = [z[k] - y[k] for k in range(3)]  # the half cancels the 2 of the square
    df = [sum(dz[k] * w[k][j] for k in range(3)) for j in range(2)]
    dx = [[F(0)] * 4 for _ in range(2)]
    mask = [[0] * 4 for _ in range(2)]
    for (r, c), g in zip(winners, df):
        dx[r][c], mask[r][c] = g, 1
    return z, dz, df, mask, dx


def seed001_by_hand():
    """Seed 001: x 3x3, conv1 2x2 -> z1 2x2, conv2 2x2 -> z2 1x1, L = (z2 - y)^2, no biases."""
    x = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
    w1 = [[F("0.5"), F("-0.3")], [F("0.2"), F("0.1")]]
    w2 = [[F("0.4"), F("0.2")], [F("-0.1"), F("0.3")]]
    z1 = [[sum(w1[a][b] * x[i + a][j + b] for a in range(2) for b in range(2)) for j in range(2)] for i in range(2)]
    z2 = sum(w2[a][b] * z1[a][b] for a in range(2) for b in range(2))
    dz1 = [[2 * (z2 - F("0.5")) * w2[i][j] for j in range(2)] for i in range(2)]
    # the full convolution: dL/dz1 padded with one zero all round, the kernel rotated 180 degrees
    padded = [[F(0)] * 4] + [[F(0), *row, F(0)] for row in dz1] + [[F(0)] * 4]
    rotated = [row[::-1] for row in w1[::-1]]
    dx = [
        [sum(padded[i + a][j + b] * rotated[a][b] for a in range(2) for b in range(2)) for j in range(3)]
        for i in range(3)
    ]
    return rotated, padded, dx


# -- 1. the backward pass goes on to the input --------------------------------------------------


def test_seed002_shows_dL_df_dL_dp_and_the_max_pool_routing_to_the_input():
    tex = latex(SEED002_FC)
    _, dz, df, mask, dx = seed002_fc_by_hand()
    backward = tex[tex.index(r"\section{Backward pass}") : tex.index(r"\section{Gradients")]
    assert "No layer before" not in backward
    assert matrix_after(backward, r"\frac{\partial L}{\partial z^{(1)}}") == [dz]
    assert matrix_after(backward, r"\frac{\partial L}{\partial f}") == [df]  # dL/df = W^T dL/dz
    assert matrix_after(backward, r"\frac{\partial L}{\partial p}") == [df]  # flatten moves values back
    assert matrix_after(backward, "M") == mask
    assert matrix_after(backward, r"\frac{\partial L}{\partial x}") == dx
    assert df == [F(19, 25), F(161, 500)]  # the hand numbers themselves, once: 0.76 and 0.322


def test_first_conv_shows_dL_dx_as_a_full_convolution_with_the_rotated_kernel():
    tex = latex(SEED001)
    rotated, padded, dx = seed001_by_hand()
    part = tex[tex.index(r"\emph{The same, for all of $x$ at once.}") : tex.index(r"\section{Gradients")]
    assert "full convolution" in part and "180 degrees" in part
    assert matrix_after(part, r"\operatorname{rot}_{180}\bigl(w^{(1)}\bigr)") == rotated
    assert matrix_after(part, r"\operatorname{pad}\Bigl(\frac{\partial L}{\partial z^{(1)}}\Bigr)") == padded
    assert matrix_after(tex, r"\frac{\partial L}{\partial x}") == dx
    worked = part[part.index("For one element, $x_{2,2}$") :]  # the centre: covered by all 4 windows
    assert last_value(worked) == dx[1][1] == F(-13, 100)
    # each product pairs dL/dz1_{r,q} with the weight at rotated position: the centre meets all 4 of them
    assert r"\frac{\partial L}{\partial z^{(1)}_{1,1}}\, w^{(1)}_{2,2}" in worked
    assert r"\frac{\partial L}{\partial z^{(1)}_{2,2}}\, w^{(1)}_{1,1}" in worked


STRIDED = """name: strided conv first
input:
  values: [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2], [1.3, 1.4, 1.5, 1.6]]
layers:
  - type: conv2d
    name: conv1
    out_channels: 1
    kernel_size: 3
    stride: 2
    padding: 1
    bias: false
    params:
      weight: [[1, -2, 3], [-1, 2, 1], [0, 1, -3]]
  - type: flatten
  - type: linear
    name: fc
    out_features: 1
    bias: false
    params:
      weight: [[1, -1, 2, 1]]
loss: {type: mse, target: [0], reduction: sum}
"""


def test_strided_padded_first_conv_worked_element_matches_the_chain_rule_by_hand(tmp_path):
    path = tmp_path / "strided.yaml"
    path.write_text(STRIDED)
    tex = latex(path)
    x = [
        [F(str(v)) for v in row]
        for row in [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2], [1.3, 1.4, 1.5, 1.6]]
    ]
    w = [[1, -2, 3], [-1, 2, 1], [0, 1, -3]]
    v = [1, -1, 2, 1]
    xp = [[F(0)] * 6] + [[F(0), *row, F(0)] for row in x] + [[F(0)] * 6]
    z = [
        [sum(w[a][b] * xp[2 * i + a][2 * j + b] for a in range(3) for b in range(3)) for j in range(2)]
        for i in range(2)
    ]
    o = sum(v[2 * i + j] * z[i][j] for i in range(2) for j in range(2))
    dz = [[2 * o * v[2 * i + j] for j in range(2)] for i in range(2)]
    # scatter each output's gradient back over its window (the forward sum differentiated term by term)
    gp = [[F(0)] * 6 for _ in range(6)]
    for i in range(2):
        for j in range(2):
            for a in range(3):
                for b in range(3):
                    gp[2 * i + a][2 * j + b] += dz[i][j] * w[a][b]
    dx = [row[1:5] for row in gp[1:5]]
    assert matrix_after(tex, r"\frac{\partial L}{\partial x}") == dx
    part = tex[tex.index("For one element, $x_{") :]
    row, col = map(int, re.match(r"For one element, \$x_\{(\d+),(\d+)\}", part).groups())
    assert last_value(part) == dx[row - 1][col - 1]
    assert "zero row" in tex and "drop the 1 outer row" in tex  # the stride and the padding are said


LINEAR_FIRST = """name: linear first
input: {values: [1, 2]}
layers:
  - type: linear
    name: fc
    out_features: 2
    params: {weight: [[0.5, -1], [2, 0.25]], bias: [0, 0]}
loss: {type: mse, target: [0, 1], reduction: sum}
"""


def test_a_linear_first_layer_stops_before_dL_dx_unless_to_input(tmp_path):
    path = tmp_path / "linear.yaml"
    path.write_text(LINEAR_FIRST)
    stopped = latex(path)
    assert "--to-input" in stopped and r"\frac{\partial L}{\partial x} =" not in stopped
    full = latex(path, "--to-input")
    w, x, y = [[F("0.5"), F(-1)], [F(2), F("0.25")]], [1, 2], [0, 1]
    dz = [2 * (sum(w[k][j] * x[j] for j in range(2)) - y[k]) for k in range(2)]
    dx = [sum(dz[k] * w[k][j] for k in range(2)) for j in range(2)]
    assert matrix_after(full, r"\frac{\partial L}{\partial x}") == [dx]


# -- 1. --param on the input and layer outputs --------------------------------------------------


@pytest.mark.parametrize(
    "name, pick",
    [
        ("fc.output[1]", lambda z, dz, df, dx: dz[1]),
        ("flatten_2.output[0]", lambda z, dz, df, dx: df[0]),
        ("input[0,0,1]", lambda z, dz, df, dx: dx[0][1]),
        ("input[0,0,0]", lambda z, dz, df, dx: dx[0][0]),
    ],
)
def test_param_takes_the_input_and_layer_outputs(name, pick):
    tex = latex(SEED002_FC, "--param", name)
    z, dz, df, _, dx = seed002_fc_by_hand()
    part = tex[tex.index(r"\section{The gradient with respect to") :]
    assert re.findall(r"^% (\S+)$", part, re.MULTILINE) == [name]
    assert last_value(part) == pick(z, dz, df, dx)


def test_param_output_of_the_network_is_its_loss_derivative():
    part = latex(SEED002_FC, "--param", "fc.output[1]").split(r"\section{The gradient with respect to")[1]
    z, dz, *_ = seed002_fc_by_hand()
    assert r"z^{(1)}_{2} - y_{2}" in part and dz[1] == z[1] == F(91, 100)  # y_2 = 0
    assert last_value(part) == F(91, 100)


def test_param_flatten_output_has_one_term_per_fc_output():
    part = latex(SEED002_FC, "--param", "flatten_2.output[0]").split(r"\section{The gradient with respect to")[1]
    for k in (1, 2, 3):
        assert rf"\frac{{\partial L}}{{\partial z^{{(1)}}_{{{k}}}}}\, w^{{(1)}}_{{{k},1}}" in part
    assert "(-0.61) \\cdot 0.5 + 0.91 \\cdot 0.3 + (-1.32) \\cdot (-0.6)" in part


def test_param_whole_layer_output_works_each_element():
    tex = latex(SEED002_FC, "--param", "maxpool2d_1.output")
    part = tex[tex.index(r"\section{The gradient with respect to $p$}") :]
    df = seed002_fc_by_hand()[2]
    assert re.findall(r"^% (\S+)$", part, re.MULTILINE) == ["maxpool2d_1.output[0,0,0]", "maxpool2d_1.output[0,0,1]"]
    assert matrix_after(part, r"\frac{\partial L}{\partial p}") == [df]


@pytest.mark.parametrize("name", ["target", "target[1]", "loss"])
def test_param_refuses_the_target_and_the_loss_in_one_line(name):
    result = runner.invoke(app, ["latex", str(SEED002_FC), "--param", name])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not the" in result.stderr and "Traceback" not in result.output


# -- 9. what a student trips on -------------------------------------------------------------------


def consecutive_repeats(tex: str) -> list[tuple[str, str]]:
    """Pairs of consecutive align* rows that say the same: `= (-0.61)` then `= -\\frac{61}{100} = -0.61`."""

    def said(row: str) -> str:
        row = re.sub(r"^.*?&\s*(=|\\approx)?\s*", "", row.strip().rstrip("\\").strip())
        return re.sub(r"\((-?[\d.]+)\)", r"\1", row)

    found = []
    for block in re.findall(r"\\begin\{align\*\}(.*?)\\end\{align\*\}", tex, re.DOTALL):
        rows = block.strip().split("\\\\\n")
        for a, b in itertools.pairwise(rows):
            if said(a) in (said(b), re.split(r"= |\\approx ", said(b))[-1].strip()):
                found.append((a, b))
    return found


@pytest.mark.parametrize("config", ["seed002_pool_to_fc", "sigmoid_bce", "seed000_maxpool_flatten"])
def test_no_two_consecutive_display_lines_say_the_same(config):
    tex = latex(CONFIGS / f"{config}.yaml", "--all-elements")
    assert not consecutive_repeats(tex)


def test_the_repeat_finder_finds_a_repeat():
    old = "\\begin{align*}\nL &= a \\\\\n &= (-0.61) \\\\\n &= -\\frac{61}{100} = -0.61\n\\end{align*}"
    assert consecutive_repeats(old)


@pytest.mark.parametrize(
    "power, shown",
    [(F(27, 25), "e^{1.08}"), (F(-27, 25), "e^{-1.08}"), (F(1, 3), r"\exp\!\left(\tfrac{1}{3}\right)")],
)
def test_a_rational_exponent_of_e_is_readable(power, shown):
    assert TextbookPrinter({}).doprint(sympy.exp(sympy.Rational(power.numerator, power.denominator))) == shown


def test_the_softmax_loss_has_decimal_exponents():
    tex = latex(CONFIGS / "seed000_tied_maxpool.yaml")
    assert r"e^{\frac" not in tex and "e^{1.08}" in tex  # a logit of 27/25


def test_compact_default_works_one_element_per_tensor_and_all_elements_each():
    compact = latex(SEED000)
    names = re.findall(r"^% (\S+)\[", compact, re.MULTILINE)
    assert names == ["conv1.weight", "conv1.bias", "fc.weight", "fc.bias"]
    assert r"\frac{\partial L}{\partial w^{(2)}_{k,j}} = \frac{\partial L}{\partial z^{(2)}_k}\, f^{(1)}_j" in compact
    every = latex(SEED000, "--all-elements")
    assert len(re.findall(r"^% (?:conv1|fc)\.\w+\[", every, re.MULTILINE)) == 4 + 1 + 12 + 3


def test_program_names_are_a_table_by_default_and_inline_on_request():
    plain = latex(SEED000)
    assert r"$w^{(1)}_{1,1}$ is \texttt{conv1.weight[0,0,0,0]}" in plain  # the names table, once
    assert r"(\texttt{conv1.weight[0,0,0,0]})" not in plain
    inline = latex(SEED000, "--program-names")
    assert r"\paragraph{$w^{(1)}_{1,1}$ (\texttt{conv1.weight[0,0,0,0]}).}" in inline


def test_snippet_headings_go_one_level_down_and_the_top_level_can_be_chosen():
    snippet = latex(SEED001, "--snippet")
    assert r"\subsection{Backward pass}" in snippet and r"\section{" not in snippet
    assert r"\subsubsection*{The loss}" in snippet
    deep = latex(SEED001, "--snippet", "--top-heading", "subsubsection")
    assert r"\subsubsection{Backward pass}" in deep and r"\paragraph*{The loss}" in deep
    assert r"\subparagraph{$w^{(1)}_{1,1}$.}" in deep
    document = latex(SEED001, "--top-heading", "subsection")
    assert r"\subsection{Backward pass}" in document and r"\documentclass" in document
    refused = runner.invoke(app, ["latex", str(SEED001), "--top-heading", "chapter"])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
