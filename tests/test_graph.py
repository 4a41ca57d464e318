"""`cnnderive graph`: one node per tensor with its value and gradient, the highlighted paths, the cut counts.

The expected numbers are worked out here, independently of the program: seed 002 by hand in Fractions
from its config, seed 000 by a plain-Python forward and backward pass (Fractions up to the softmax,
then floats). The pictures are read back with xml.etree (SVG) and a small statement reader (DOT).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import stat
import xml.etree.ElementTree as ET
from fractions import Fraction as F

import pytest

from tests.cli_support import run_cli
from tests.conftest import CONFIGS

SVG = "{http://www.w3.org/2000/svg}"
SEED000 = CONFIGS / "seed000_maxpool_flatten.yaml"
SEED002 = CONFIGS / "seed002_pool_to_fc.yaml"
PREVIEW = re.compile(r"(value|grad) ([=≈]) (.*)\Z")


def draw(tmp_path, config, *options, name="g.svg") -> str:
    path = tmp_path / name
    code, _, stderr = run_cli(["graph", str(config), "-o", str(path), *options])
    assert code == 0, stderr
    return path.read_text(encoding="utf-8")


def svg_nodes(text: str) -> dict[str, tuple[list[str], set[str]]]:
    """name -> (the lines of its box, its classes), read from the SVG."""
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    found = {}
    for group in root.iter(f"{SVG}g"):
        classes = set(group.get("class", "").split())
        if "node" in classes:
            lines = [element.text for element in group.iter(f"{SVG}text")]
            assert lines[0] not in found
            found[lines[0]] = (lines, classes)
    return found


def svg_edges(text: str) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """(source, target) -> (its label or '', its classes)."""
    root = ET.fromstring(text.encode("utf-8"))
    found = {}
    for group in root.iter(f"{SVG}g"):
        classes = set(group.get("class", "").split())
        if "edge" in classes:
            source, target = group.find(f"{SVG}title").text.split(" -> ")
            labels = [element.text for element in group.iter(f"{SVG}text")]
            found[source, target] = (labels[0] if labels else "", classes)
    return found


def shown_numbers(lines: list[str], kind: str) -> tuple[str, list[F], bool]:
    """The sign (= or ≈), the numbers of the `value`/`grad` preview, and whether it was cut short (…)."""
    (match,) = [m for m in map(PREVIEW.match, lines) if m and m.group(1) == kind]
    body = match.group(3).strip("[]").split(", ")
    return match.group(2), [F(entry) for entry in body if entry != "…"], body[-1] == "…"


def assert_preview(lines: list[str], kind: str, expected: list) -> None:
    """The preview is the first elements (all of them when there are at most 5), exact when `=`, else 4 digits."""
    sign, numbers, short = shown_numbers(lines, kind)
    assert short == (len(expected) > 5) and len(numbers) == (4 if short else len(expected)), lines
    for number, value in zip(numbers, expected):
        if sign == "=":
            assert number == value, (lines, kind)
        else:
            assert abs(float(number) - float(value)) <= 5e-4 * abs(float(value)), (lines, kind, value)


# seed 002 by hand: input 2x4, max-pool 2x2 -> [0.9, 0.8], FC 3, loss = 1/2 sum (z - t)^2
X002 = [[F("0.2"), F("0.9"), F("0.4"), F("0.1")], [F("0.5"), F("0.3"), F("0.8"), F("0.6")]]
W002 = [[F("0.5"), F("-0.2")], [F("0.3"), F("0.8")], [F("-0.6"), F("0.4")]]
B002 = [F("0.1"), F(0), F("-0.1")]
POOLED = [F("0.9"), F("0.8")]  # the maxima of the two windows, at (0,1) and (1,2)
Z002 = [sum(w * p for w, p in zip(row, POOLED)) + b for row, b in zip(W002, B002)]  # 0.39, 0.91, -0.32
DZ002 = [z - t for z, t in zip(Z002, [1, 0, 1])]
DP002 = [sum(W002[k][j] * DZ002[k] for k in range(3)) for j in range(2)]


def test_seed002_one_node_per_tensor_with_values_and_gradients_worked_by_hand(tmp_path):
    nodes = svg_nodes(draw(tmp_path, SEED002))
    names = ["input", "maxpool2d_1.output", "flatten_2.output", "fc.weight", "fc.bias", "fc.output", "target", "loss"]
    assert sorted(nodes) == sorted(names)  # 1 input + 2 parameters + 3 layers + target + loss
    dx = [[F(0)] * 4 for _ in range(2)]
    dx[0][1], dx[1][2] = DP002
    expected = {
        "input": ([*X002[0], *X002[1]], [*dx[0], *dx[1]]),
        "maxpool2d_1.output": (POOLED, DP002),
        "flatten_2.output": (POOLED, DP002),
        "fc.weight": ([w for row in W002 for w in row], [dz * p for dz in DZ002 for p in POOLED]),
        "fc.bias": (B002, DZ002),
        "fc.output": (Z002, DZ002),
        "loss": ([sum(d * d for d in DZ002) / 2], [F(1)]),
    }
    for name, (value, gradient) in expected.items():
        lines = nodes[name][0]
        assert_preview(lines, "value", value)
        assert_preview(lines, "grad", gradient)
        assert shown_numbers(lines, "value")[0] == "="  # every number here is a short exact decimal
    assert_preview(nodes["target"][0], "value", [1, 0, 1])
    assert not any(line.startswith("grad") for line in nodes["target"][0])  # the target is not differentiated
    assert "[2][4]" in nodes["input"][0][1] and "scalar" in nodes["loss"][0][1]


def flat(rows: list[list]) -> list:
    return [v for row in rows for v in row]


def seed000_by_hand() -> dict[str, tuple[list, list]]:
    """Seed 000's forward and backward pass in plain Python: Fractions up to the logits, floats after."""
    x = [[1, 0, 2, 1, 0], [0, 1, 3, 1, 2], [2, 1, 0, 1, 1], [1, 2, 1, 0, 3], [0, 1, 2, 2, 1]]
    w = [[F("0.1"), F("-0.2")], [F("0.4"), F("0.4")]]
    fc = [[F(t) for t in row.split()] for row in ("0.2 -0.1 0.4 0.3", "-0.3 0.5 0.1 -0.2", "0.1 0.2 -0.4 0.6")]
    fc_b = [F("0.1"), F("-0.1"), F(0)]
    conv = [[sum(w[a][b] * x[i + a][j + b] for a in range(2) for b in range(2)) for j in range(4)] for i in range(4)]
    relu = [[max(v, F(0)) for v in row] for row in conv]
    winners = [
        max(((i, j) for i in (r, r + 1) for j in (c, c + 1)), key=lambda e: relu[e[0]][e[1]])
        for r in (0, 2)
        for c in (0, 2)
    ]
    pooled = [relu[i][j] for i, j in winners]
    z = [sum(a * b for a, b in zip(row, pooled)) + b0 for row, b0 in zip(fc, fc_b)]
    p = [math.exp(v) / sum(math.exp(u) for u in z) for v in z]
    t = [0, 1, 0]
    dz = [pk - tk for pk, tk in zip(p, t)]
    df = [sum(fc[k][j] * dz[k] for k in range(3)) for j in range(4)]
    drelu = [[0.0] * 4 for _ in range(4)]
    for (i, j), d in zip(winners, df):
        drelu[i][j] = d
    dconv = [[drelu[i][j] if conv[i][j] > 0 else 0.0 for j in range(4)] for i in range(4)]
    dw = [sum(dconv[i][j] * x[i + a][j + b] for i in range(4) for j in range(4)) for a in range(2) for b in range(2)]
    dx = [[0.0] * 5 for _ in range(5)]
    for i in range(4):
        for j in range(4):
            for a in range(2):
                for b in range(2):
                    dx[i + a][j + b] += dconv[i][j] * float(w[a][b])
    return {
        "input": (flat(x), flat(dx)),
        "conv1.weight": (flat(w), dw),
        "conv1.bias": ([0], [sum(flat(dconv))]),
        "conv1.output": (flat(conv), flat(dconv)),
        "relu_2.output": (flat(relu), flat(drelu)),
        "maxpool2d_3.output": (pooled, df),
        "flatten_4.output": (pooled, df),
        "fc.weight": (flat(fc), [d * float(v) for d in dz for v in pooled]),
        "fc.bias": (fc_b, dz),
        "fc.output": (z, dz),
        "softmax_6.output": (p, [-tk / pk for tk, pk in zip(t, p)]),
        "loss": ([-math.log(p[1])], [1]),
        "_masks": (sum(v <= 0 for v in flat(conv)), len(set(winners))),  # ReLU zeros, max-pool winners
    }


def test_seed000_values_and_gradients_match_an_independent_pass(tmp_path):
    nodes = svg_nodes(draw(tmp_path, SEED000))
    expected = seed000_by_hand()
    assert len(nodes) == 1 + 4 + 6 + 1 + 1  # input, 4 parameter tensors, 6 layers, target, loss
    for name, (value, gradient) in expected.items():
        if name.startswith("_"):
            continue
        assert_preview(nodes[name][0], "value", value)
        assert_preview(nodes[name][0], "grad", gradient)
    assert shown_numbers(nodes["softmax_6.output"][0], "value")[0] == "≈"  # exp: rounded, and said so


def test_param_highlights_exactly_its_paths_to_the_loss_and_counts_the_cuts(tmp_path):
    text = draw(tmp_path, SEED000, "--param", "conv1.weight")
    path = ["conv1.weight", "conv1.output", "relu_2.output", "maxpool2d_3.output", "flatten_4.output"]
    path += ["fc.output", "softmax_6.output", "loss"]
    nodes, edges = svg_nodes(text), svg_edges(text)
    assert {name for name, (_, classes) in nodes.items() if "highlighted" in classes} == set(path)
    assert {pair for pair, (_, classes) in edges.items() if "highlighted" in classes} == set(itertools.pairwise(path))
    assert "highlighted" not in edges["fc.weight", "fc.output"][1] and "highlighted" not in nodes["fc.weight"][1]
    relu_zeros, winners = seed000_by_hand()["_masks"]
    assert (relu_zeros, winners) == (1, 4)  # one negative conv output (the (1,1) one); four windows
    assert edges["conv1.output", "relu_2.output"][0] == f"relu: {16 - relu_zeros} of 16 elements pass"
    assert edges["relu_2.output", "maxpool2d_3.output"][0] == f"maxpool2d: {winners} of 16 elements pass"
    assert not any("greyed" in classes for _, classes in [*nodes.values(), *edges.values()])
    assert [label for label, _ in edges.values() if label] == [
        edges["conv1.output", "relu_2.output"][0],
        edges["relu_2.output", "maxpool2d_3.output"][0],
    ]


DEAD = """
name: every ReLU input is negative, so nothing before it learns
input: {values: [[1, 2], [3, 4]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 2, params: {weight: [[-1, -1], [-1, -1]], bias: [0]}}
  - {type: relu}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[2]], bias: [0.5]}}
loss: {type: mse, target: [1]}
"""


def test_a_path_relu_cuts_entirely_is_greyed(tmp_path):
    config = tmp_path / "dead.yaml"
    config.write_text(DEAD)
    text = draw(tmp_path, config, "--param", "conv1.bias")
    nodes, edges = svg_nodes(text), svg_edges(text)
    # conv output -1 - 2 - 3 - 4 = -10 < 0: the one ReLU element is off, so no gradient gets back past it
    assert edges["conv1.output", "relu_2.output"][0] == "relu: 0 of 1 elements pass"
    cut = {"input", "conv1.weight", "conv1.bias", "conv1.output"}
    assert {name for name, (_, classes) in nodes.items() if "greyed" in classes} == cut
    assert {pair for pair, (_, classes) in edges.items() if "greyed" in classes} == {
        ("input", "conv1.output"),
        ("conv1.weight", "conv1.output"),
        ("conv1.bias", "conv1.output"),
        ("conv1.output", "relu_2.output"),
    }
    assert "highlighted" in nodes["conv1.bias"][1]  # still its path, drawn highlighted and dashed
    assert_preview(nodes["conv1.output"][0], "value", [-10])
    assert_preview(nodes["fc.weight"][0], "grad", [0])  # zero, but not cut: the ReLU output is 0
    assert "greyed" not in nodes["fc.weight"][1]


DROPOUT = """
name: ReLU then dropout with its mask written out
input: {values: [[1, -2, 3], [-4, 5, 0]]}
layers:
  - {type: relu}
  - {type: dropout, p: 0.5, mask: [[1, 0, 1], [1, 0, 0]]}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, params: {weight: [[1, 1, 1, 1, 1, 1]], bias: [0]}}
loss: {type: mse, target: [0]}
"""


def test_dropout_and_relu_counts_are_the_zeros_of_their_masks(tmp_path):
    from cnnderive.maths.layers import LAYER_KINDS

    if "dropout" not in LAYER_KINDS:
        pytest.skip("no dropout layer in this tree")
    config = tmp_path / "dropout.yaml"
    config.write_text(DROPOUT)
    edges = svg_edges(draw(tmp_path, config))
    # ReLU: inputs -2, -4 and 0 are cut (ReLU'(0) = 0); dropout: the mask's three zeros
    assert edges["input", "relu_1.output"][0] == "relu: 3 of 6 elements pass"
    assert edges["relu_1.output", "dropout_2.output"][0] == "dropout: 3 of 6 elements pass"


def dot_statements(text: str) -> tuple[list[str], list[tuple[str, str]], str]:
    """Node names and edges of DOT text, and the text with its quoted strings blanked (for brace counting)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    nodes = re.findall(r'^  "([^"]+)" \[', text, re.MULTILINE)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)" \[', text, re.MULTILINE)
    return nodes, edges, bare


def test_dot_is_well_formed_with_one_statement_per_tensor(tmp_path):
    text = draw(tmp_path, SEED000, "--param", "conv1.weight", name="g.dot")
    nodes, edges, bare = dot_statements(text)
    assert text.startswith("digraph ") and bare.rstrip().endswith("}")
    depth = 0
    for character in bare:
        depth += {"{": 1, "}": -1}.get(character, 0)
        assert depth >= 0
    assert depth == 0 and bare.count("[") == bare.count("]")
    svg = draw(tmp_path, SEED000, "--param", "conv1.weight")
    assert sorted(nodes) == sorted(svg_nodes(svg)) and len(nodes) == 13
    assert sorted(edges) == sorted(svg_edges(svg))
    weight = re.search(r'^  "conv1.weight" \[(.*)\];$', text, re.MULTILINE).group(1)
    assert "value = [0.1, -0.2, 0.4, 0.4]" in weight and "penwidth" in weight
    assert 'label="relu: 15 of 16 elements pass"' in text


@pytest.mark.parametrize("name", ["g.svg", "g.dot"])
def test_the_same_input_gives_the_same_bytes(tmp_path, name):
    first = draw(tmp_path, SEED000, "--param", "fc.bias", name=name)
    again = draw(tmp_path, SEED000, "--param", "fc.bias", "--force", name=name)
    assert first.encode() == again.encode()


@pytest.mark.parametrize(
    "args, words",
    [
        (["-o", "{tmp}/g.png"], "ending in .svg"),
        (["-o", "{tmp}/old.svg"], "exists; add --force"),
        (["-o", "{tmp}/g.svg", "--param", "conv9.weight"], "unknown name"),
        (["-o", "{tmp}/g.svg", "--param", "loss"], "not the loss"),
        (["-o", "{tmp}/g.svg", "--param", "conv1.weight[0,0,7,0]"], "has shape"),
        (["-o", "{tmp}/g.svg", "--engine", "graphviz"], "dot is not installed"),
        (["--param", "fc.bias"], "-o"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    (tmp_path / "old.svg").write_text("keep me")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, stdout, stderr = run_cli(["graph", str(SEED000), *args], env={"PATH": str(tmp_path)})
    assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("cnnderive: error:"), stderr
    assert words in stderr and stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["old.svg"] and (tmp_path / "old.svg").read_text() == "keep me"


def test_force_replaces_and_graphviz_is_used_only_when_asked(tmp_path):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\ncat > "$(dirname "$0")/got.dot"\necho "<svg>drawn by dot</svg>"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "g.svg").write_text("old")
    env = {"PATH": f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = ["graph", str(SEED002), "-o", str(tmp_path / "g.svg"), "--force"]
    assert run_cli(args, env=env)[0] == 0
    assert svg_nodes((tmp_path / "g.svg").read_text())  # the built-in writer, though dot is on PATH
    assert run_cli([*args, "--engine", "graphviz"], env=env)[0] == 0
    assert (tmp_path / "g.svg").read_text() == "<svg>drawn by dot</svg>\n"
    assert (fake.parent / "got.dot").read_text() == draw(tmp_path, SEED002, name="g.dot")
