"""Bad input through the real CLI: exit 2, one line on stderr naming file, field and line, no traceback.

Each bad config is the valid BASE with one mistake a student makes; the expected line is found
in the text itself, so the tests say which line the message must point at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import CONFIGS, ROOT

BASE = """\
name: bad config
input:
  values: [[1, 0, 2], [0, 1, 3], [2, 1, 0]]
layers:
  - type: conv2d
    name: conv1
    out_channels: 1
    kernel_size: 2
    params:
      weight: [[0.1, -0.2], [0.3, 0.4]]
      bias: [0]
  - type: flatten
  - type: linear
    name: fc
    out_features: 2
  - type: softmax
loss:
  type: cross_entropy
  target: 1
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnderive", *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def line_with(text: str, marker: str) -> int:
    """1-based number of the first line containing `marker`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


# (config text, field named in the message, marker of the line it must name or None, words of the message)
CASES = {
    "wrong_weight_shape": (
        edit("weight: [[0.1, -0.2], [0.3, 0.4]]", "weight: [[0.1, -0.2, 0.5], [0.3, 0.4, 0.6]]"),
        "layers.0.params.weight",
        "weight:",
        ["conv1", "[1][1][2][2]", "[2][3]"],
    ),
    "wrong_bias_shape": (edit("bias: [0]", "bias: [0, 1]"), "layers.0.params.bias", "bias:", ["[1]", "[2]"]),
    "wrong_target_length": (
        edit("  type: cross_entropy\n  target: 1", "  type: mse\n  target: [0, 0, 0]"),
        "loss.target",
        "target:",
        ["2"],
    ),
    "unknown_layer_type": (edit("  - type: flatten", "  - type: flattn"), "layers.1.type", "flattn", ["flattn"]),
    "missing_field": (edit("    kernel_size: 2\n", ""), "layers.0.kernel_size", "- type: conv2d", ["missing"]),
    "missing_loss": (BASE[: BASE.index("loss:")], "loss", None, ["missing"]),
    "unknown_field": (
        edit("    kernel_size: 2\n", "    kernel_size: 2\n    strid: 2\n"),
        "layers.0.strid",
        "strid",
        [],
    ),
    "string_for_integer": (edit("kernel_size: 2", "kernel_size: two"), "layers.0.kernel_size", "kernel_size", ["two"]),
    "string_for_number": (
        edit("weight: [[0.1, -0.2], [0.3, 0.4]]", "weight: [[0.1, abc], [0.3, 0.4]]"),
        "layers.0.params.weight.0.1",
        "weight:",
        ["abc"],
    ),
    "yaml_syntax_error": (edit("kernel_size: 2", "kernel_size: [2, 2"), "YAML", None, []),
    "python_object_tag": (
        edit("bias: [0]", 'bias: [!!python/object/apply:os.system ["echo owned > OWNED"]]'),
        "YAML",
        "!!python",
        [],
    ),
    "linear_without_flatten": (edit("  - type: flatten\n", ""), "layers.1", "- type: linear", ["flatten"]),
    "kernel_larger_than_input": (
        edit("kernel_size: 2", "kernel_size: 4"),
        "layers.0.kernel_size",
        "kernel_size",
        ["4x4", "3x3"],
    ),
    "class_index_out_of_range": (edit("target: 1", "target: 2"), "loss.target", "target:", ["2", "out of range"]),
    "cross_entropy_without_softmax": (edit("  - type: softmax\n", ""), "loss.type", "type: cross_entropy", ["softmax"]),
    "empty_file": ("", None, None, ["mapping"]),
    "ragged_input": (
        edit("values: [[1, 0, 2], [0, 1, 3], [2, 1, 0]]", "values: [[1, 0, 2], [0, 1], [2, 1, 0]]"),
        "input.values.1",
        "values:",
        ["ragged"],
    ),
    "stride_zero": (edit("kernel_size: 2\n", "kernel_size: 2\n    stride: 0\n"), "layers.0.stride", "stride", ["0"]),
    "huge_shape": (
        edit("values: [[1, 0, 2], [0, 1, 3], [2, 1, 0]]", "shape: [1000, 1000, 1000]"),
        "input.shape",
        "shape:",
        ["limit"],
    ),
    "infinity": (edit("bias: [0]", "bias: [.inf]"), "layers.0.params.bias.0", "bias:", [".inf"]),
    "conv_on_a_vector_input": (
        edit("values: [[1, 0, 2], [0, 1, 3], [2, 1, 0]]", "values: [1, 0, 2]"),
        "layers.0",
        "- type: conv2d",
        ["[C][H][W]"],
    ),
    "not_utf8": (BASE.encode().replace(b"bad config", b"bad \xe9 config"), None, None, ["utf-8"]),
}


def run_all(paths: dict) -> dict:
    """`grad PATH --json` for every path at once (a few at a time): {key: CompletedProcess}."""
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(paths, pool.map(lambda p: cli("grad", str(p), "--json"), paths.values())))


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    paths = {}
    for case, (text, *_) in CASES.items():
        paths[case] = folder / f"{case}.yaml"
        if isinstance(text, bytes):
            paths[case].write_bytes(text)
        else:
            paths[case].write_text(text)
    return folder, paths, run_all(paths)


@pytest.fixture(scope="module")
def shipped_runs():
    return run_all({path.name: path for path in sorted(CONFIGS.glob("*.yaml"))})


def check_one_error_line(result, path) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnnderive: error: "), lines[0]
    if path is not None:
        assert str(path) in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_clear_line(case, bad_runs):
    """Exit 2, one `cnnderive: error:` line naming the file, the field and (where there is one) the line."""
    folder, paths, results = bad_runs
    text, field, marker, words = CASES[case]
    path, result = paths[case], results[case]
    message = check_one_error_line(result, path)
    assert result.stdout == ""
    if field is not None:
        assert f": {field}: " in message, message
    if marker is not None:
        assert f"{path}:{line_with(text, marker)}:" in message, message
    for word in words:
        assert word in message, message
    assert not (folder / "OWNED").exists() and not (ROOT / "OWNED").exists()


def test_yaml_syntax_error_names_a_line(tmp_path):
    """A YAML error points at a line near the mistake (the parser notices it on the next line at the latest)."""
    text = CASES["yaml_syntax_error"][0]
    path = tmp_path / "syntax.yaml"
    path.write_text(text)
    message = check_one_error_line(cli("grad", str(path), "--json"), path)
    bad = line_with(text, "kernel_size: [2, 2")
    assert any(f"{path}:{n}:" in message for n in (bad, bad + 1, bad + 2)), message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    check_one_error_line(cli("grad", str(path), "--json"), path)


def test_shared_bad_configs(tmp_path):
    """The acceptance suite's bad configs: exit 2, one line, no traceback."""
    bad = sorted((ROOT.parent / "shared" / "acceptance" / "bad").glob("*.yaml"))
    if not bad:
        pytest.skip("no shared acceptance configs here")
    for path in bad:
        check_one_error_line(cli("grad", str(path), "--json"), path)


@pytest.mark.parametrize("name", [path.name for path in sorted(CONFIGS.glob("*.yaml"))])
def test_shipped_config_runs(name, shipped_runs):
    """Every shipped config exits 0 with the JSON of spec section 4."""
    result = shipped_runs[name]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert set(document) == {"loss", "output", "gradients"}
    assert isinstance(document["loss"], float)
    assert document["gradients"]


def test_param_narrows_the_json():
    """`grad --json --param conv1.weight` gives that key only, with the PyTorch shape [out][in][kh][kw]."""
    result = cli("grad", str(CONFIGS / "seed000_maxpool_flatten.yaml"), "--json", "--param", "conv1.weight")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document["gradients"]) == ["conv1.weight"]
    weight = document["gradients"]["conv1.weight"]
    assert (len(weight), len(weight[0]), len(weight[0][0]), len(weight[0][0][0])) == (1, 1, 2, 2)


@pytest.mark.parametrize("param", ["conv9.weight", "fc.weght", "fc.weight[5,0]", "conv1.output"])
def test_unknown_param_is_exit_2(param):
    """An unknown parameter, an index out of range or a non-parameter: exit 2, one line, no traceback."""
    result = cli("grad", str(CONFIGS / "seed000_maxpool_flatten.yaml"), "--json", "--param", param)
    message = check_one_error_line(result, None)
    assert "--param" in message
