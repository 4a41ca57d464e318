"""Bad input through the CLI: exit 2, one line on stderr naming file, field and line, no traceback.

Each bad config is the valid BASE with one mistake a student makes; the expected line is found
in the text itself, so the tests say which line the message must point at. The commands run in
this process (tests/cli_support.run_cli); only the import check needs a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

from cnnderive import config
from cnnderive.check.formula.parser import FUNCTIONS
from cnnderive.cli.common import DEFAULT_MAX_WORK
from cnnderive.cli.program import EXAMPLES
from cnnderive.config.build import MAX_CONFIG_BYTES
from cnnderive.errors import UserError
from tests.cli_support import run_cli, run_cli_process
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


def cli(*args: str) -> tuple[int, str, str]:
    """`cnnderive ARGS` in this process: (exit status, stdout, stderr)."""
    return run_cli([str(arg) for arg in args])


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
    """`grad PATH --json` for every path: {key: (exit status, stdout, stderr)}."""
    return {key: cli("grad", path, "--json") for key, path in paths.items()}


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
    code, stdout, stderr = result
    assert code == 2, result
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
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
    assert result[1] == ""
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
    code, stdout, stderr = shipped_runs[name]
    assert code == 0, stderr
    assert stderr == ""
    document = json.loads(stdout)
    train_keys = {"updated", "velocity", "steps"} if "train:" in (CONFIGS / name).read_text() else set()
    assert {"loss", "output", "gradients"} <= set(document) <= {"loss", "output", "gradients"} | train_keys
    assert isinstance(document["loss"], float)
    assert document["gradients"]


def test_param_narrows_the_json():
    """`grad --json --param conv1.weight` gives that key only, with the PyTorch shape [out][in][kh][kw]."""
    code, stdout, stderr = cli("grad", CONFIGS / "seed000_tied_maxpool.yaml", "--json", "--param", "conv1.weight")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert list(document["gradients"]) == ["conv1.weight"]
    weight = document["gradients"]["conv1.weight"]
    assert (len(weight), len(weight[0]), len(weight[0][0]), len(weight[0][0][0])) == (1, 1, 2, 2)


@pytest.mark.parametrize("param", ["conv9.weight", "fc.weght", "fc.weight[5,0]", "conv1.output"])
def test_unknown_param_is_exit_2(param):
    """An unknown parameter, an index out of range or a non-parameter: exit 2, one line, no traceback."""
    result = cli("grad", str(CONFIGS / "seed000_tied_maxpool.yaml"), "--json", "--param", param)
    message = check_one_error_line(result, None)
    assert "--param" in message


# -- layer names the formula grammar reserves -------------------------------------------------------


@pytest.mark.parametrize("word", sorted(FUNCTIONS) + ["e", "pi", "E"])
def test_layer_named_like_a_formula_word_is_refused(word, tmp_path):
    """A layer called exp, e or pi was accepted but could never be named in `check --expr`
    (the formula reader takes the word as its function or constant): the config refuses it."""
    text = edit("name: conv1", f"name: {word}")
    path = tmp_path / "reserved.yaml"
    path.write_text(text)
    message = check_one_error_line(cli("grad", path, "--json"), path)
    assert f"{path}:{line_with(text, f'name: {word}')}: layers.0.name: " in message
    assert f"layer name '{word}' is a word of check formulas" in message


def test_a_name_that_only_starts_like_a_formula_word_is_fine(tmp_path):
    path = tmp_path / "expo.yaml"
    path.write_text(edit("name: conv1", "name: expo"))
    code, stdout, stderr = cli("grad", path, "--json", "--param", "expo.bias")
    assert (code, stderr) == (0, "")
    assert list(json.loads(stdout)["gradients"]) == ["expo.bias"]


# -- config files that are not regular, or too big ---------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_device_as_config(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    message = check_one_error_line(cli("grad", device), device)
    assert (
        message == f"cnnderive: error: {device}: cannot read the config: it is a character device, not a regular file"
    )


def test_fifo_as_config_does_not_block(tmp_path):
    """If a regression opens the FIFO, a writer unblocks it after a while and the message is wrong."""
    fifo = tmp_path / "net.yaml"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock():
        if not done.wait(20):
            with open(fifo, "w") as stream:
                stream.write(BASE)

    threading.Thread(target=unblock, daemon=True).start()
    try:
        message = check_one_error_line(cli("grad", fifo, "--json"), fifo)
    finally:
        done.set()
    assert message.endswith(": cannot read the config: it is a FIFO (named pipe), not a regular file")


def test_config_over_the_size_cap_is_refused_before_reading(tmp_path):
    """A 52 MB config with 3M keys took 76 s and 3.2 GB before its error. Anything over the cap is
    refused from its size alone: here a sparse file (no disk used), then a real one just over."""
    assert 5 * (CONFIGS / "lenet5.yaml").stat().st_size <= MAX_CONFIG_BYTES <= 10_000_000
    sparse = tmp_path / "sparse.yaml"
    with open(sparse, "wb") as stream:
        stream.truncate(52_000_000)
    message = check_one_error_line(cli("grad", sparse), sparse)
    assert message.endswith(f"cannot read the config: it is over {MAX_CONFIG_BYTES / 1e6:g} MB, the limit")
    keys = tmp_path / "keys.yaml"
    lines = BASE + "".join(f"k{i}: {i}\n" for i in range(MAX_CONFIG_BYTES // 8))
    keys.write_text(lines[: MAX_CONFIG_BYTES + 1])
    check_one_error_line(cli("grad", keys), keys)


def test_folder_as_config(tmp_path):
    message = check_one_error_line(cli("grad", tmp_path), tmp_path)
    assert message.endswith("cannot read the config: it is a folder, not a regular file")


# -- a config name with control characters ------------------------------------------------------------

NASTY_NAME = 'red \\e[31mALERT\\e[0m bell\\a ctl\\x01 flip\\u202e <b>&amp;\\"'  # YAML escapes, in a quoted string
SHOWN_NAME = r'red \x1b[31mALERT\x1b[0m bell\x07 ctl\x01 flip\u202e <b>&amp;"'
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202e]")


@pytest.fixture
def nasty(tmp_path):
    path = tmp_path / "nasty.yaml"
    path.write_text(edit("name: bad config", f'name: "{NASTY_NAME}"'), encoding="utf-8")
    return path


def test_name_escapes_are_shown_as_text_in_the_terminal(nasty):
    code, stdout, stderr = cli("explain", nasty)
    assert (code, stderr) == (0, "")
    assert not CONTROL.search(stdout), repr(CONTROL.search(stdout))
    assert SHOWN_NAME in stdout


def test_name_escapes_keep_the_svg_valid_xml(nasty, tmp_path):
    svg = tmp_path / "nasty.svg"
    code, _, stderr = cli("explain", nasty, "--svg", svg)
    assert (code, stderr) == (0, "")
    root = ET.parse(svg).getroot()  # control characters are not allowed in XML 1.0: this raised before
    shown = "".join(root.itertext()).replace("\xa0", " ")
    assert SHOWN_NAME in shown


def test_name_escapes_give_a_tex_that_compiles(nasty, tmp_path):
    tex = tmp_path / "nasty.tex"
    code, _, stderr = cli("latex", nasty, "-o", tex)
    assert (code, stderr) == (0, "")
    assert not CONTROL.search(tex.read_text(encoding="utf-8"))
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the .tex was checked, not compiled")
    done = subprocess.run(
        ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", tex.name],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_name_is_escaped_once_where_the_config_is_read():
    network = config.loads(edit("name: bad config", f'name: "{NASTY_NAME}"'), "nasty.yaml")
    assert network.name == SHOWN_NAME


# -- the global options live in the Typer context --------------------------------------------------------


def test_max_work_is_an_option_of_one_run_only():
    """--max-work used to be a module dict copied into config.LIMITS, where it stayed after the run."""
    assert DEFAULT_MAX_WORK == config.LIMITS["work"]
    lenet5 = CONFIGS / "lenet5.yaml"
    message = check_one_error_line(cli("--max-work", "5", "grad", lenet5, "--json"), lenet5)
    assert "the limit is 5 (raise it with --max-work" in message
    assert config.LIMITS["work"] == DEFAULT_MAX_WORK
    assert config.load(lenet5).name  # the library's default limit is untouched
    code, _, stderr = cli("grad", lenet5, "--json")
    assert (code, stderr) == (0, "")


def test_config_load_takes_the_work_limit():
    path = CONFIGS / "seed000_tied_maxpool.yaml"
    with pytest.raises(UserError, match="the limit is 3"):
        config.load(path, max_work=3)


def test_debug_is_read_from_the_context(monkeypatch):
    """An internal error is one line and exit 3; with --debug (a global option) its traceback shows."""
    import cnnderive.derivation.build

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cnnderive.derivation.build, "Derivation", broken)
    path = str(CONFIGS / "seed000_tied_maxpool.yaml")
    code, stdout, stderr = cli("grad", path, "--json")
    assert code == 3 and stdout == ""
    assert stderr.startswith("cnnderive: internal error (RuntimeError: boom). Sorry") and stderr.count("\n") == 1
    with pytest.raises(RuntimeError, match="boom"):
        cli("--debug", "grad", path, "--json")


# -- Typer's own usage errors ---------------------------------------------------------------------------------

SEED000 = str(CONFIGS / "seed000_tied_maxpool.yaml")
USAGE_ERRORS = {
    "tol_out_of_range": (["check", SEED000, "--param", "fc.bias[0]", "--value", "1", "--tol", "2"], "'--tol'"),
    "unknown_command": (["frob"], "No such command 'frob'"),
    "missing_argument": (["explain"], "Missing argument 'NET.yaml'"),
    "global_option_range": (["--max-work", "0", "grad", SEED000], "'--max-work'"),
    "unknown_option": (["grad", SEED000, "--nope"], "No such option: --nope"),
    "not_an_integer": (["explain", SEED000, "--width", "wide"], "'--width'"),
    "escape_in_option": (["grad", SEED000, "--\x1b[31m"], "No such option: --\\x1b[31m"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_error_is_one_line(case):
    """Typer drew a five-line box for its own errors; now they are one line, like every other error."""
    args, words = USAGE_ERRORS[case]
    code, stdout, stderr = cli(*args)
    assert (code, stdout) == (2, ""), stderr
    assert stderr.count("\n") == 1 and stderr.startswith("cnnderive: error: "), stderr
    assert words in stderr and "--help)" in stderr
    assert not set(stderr) & set("╭╮╰╯│─\x1b")


def test_no_arguments_still_prints_the_help():
    code, stdout, _ = cli()
    assert code == 2 and "Usage: cnnderive" in stdout
    code, stdout, stderr = cli("--help")
    assert (code, stderr) == (0, "") and "explain" in stdout


def test_version_is_the_packages():
    code, stdout, _ = cli("--version")
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]
    assert (code, stdout) == (0, f"cnnderive {version}\n")


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_help_has_examples_that_run_and_no_type_jargon(command, tmp_path):
    """Each command's --help ends with examples; every example runs as printed (exit 0, or 1 for a check
    that finds the example's answer wrong), with no error."""
    code, stdout, _ = run_cli([command, "--help"], env={"COLUMNS": "200"})
    assert code == 0 and "Examples:" in stdout
    assert not re.search(r"<(bool|str|int|float)[^>]*>", stdout)
    for example in EXAMPLES[command]:
        assert example in stdout
        args = shlex.split(example)[1:]
        args = [str(ROOT / a) if a.startswith("configs/") else a for a in args]
        if "-o" in args:
            args[args.index("-o") + 1] = str(tmp_path / args[args.index("-o") + 1])
        if "--pdf" in args and not shutil.which("pdflatex"):
            args.remove("--pdf")
        code, printed, stderr = cli(*args)
        allowed = {0, 1} if command == "check" else {0}  # an example may show check finding a mistake
        assert code in allowed and printed and not stderr, (example, stderr)


def test_help_does_not_import_sympy():
    """`--help` stays quick: the commands import SymPy and NumPy only when they run (a fresh interpreter)."""
    result = run_cli_process(["--help"], python_flags=["-X", "importtime"])
    assert result.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "typer" in imported
    assert not {name for name in imported if name.split(".")[0] in ("sympy", "numpy")}


def test_typer_pin_matches_the_installed_typer():
    """pyproject pins the Typer range the suite runs with (0.29 changed its behaviour; cli uses typer._click)."""
    import typer

    pin = re.search(r'"typer>=(\d+)\.(\d+),<(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml should pin typer as >=X.Y,<X.Z"
    low, high = (int(pin[1]), int(pin[2])), (int(pin[3]), int(pin[4]))
    installed = tuple(int(part) for part in typer.__version__.split(".")[:2])
    assert low <= installed < high


# -- YAML aliases ---------------------------------------------------------------------------------------------


class Counted(list):
    """A list that counts how often it is walked."""

    walks = 0

    def __iter__(self):
        Counted.walks += 1
        return super().__iter__()


def test_shared_lists_are_walked_once():
    """Aliases let one list appear 10^k times over k levels (`a1: [*a0, *a0, ...]`); putting the long
    number lists back walked every path (it never ended at ten levels). Each list is walked once now."""
    from cnnderive.config.yaml_io import _put_back

    level = Counted(["cnnderive-number-list-0"])
    for _ in range(5):
        level = Counted([level] * 10)
    Counted.walks = 0
    assert _put_back({"extra": level}, {"cnnderive-number-list-0": [1, 2]}) == 1
    assert Counted.walks == 6


def test_alias_tower_with_a_long_number_list_is_one_error(tmp_path):
    tower = "  big: [" + ", ".join(["1"] * 400) + "]\n  a0: &a0 [[1]]\n"
    tower += "".join(f"  a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]\n" for k in range(1, 11))
    text = BASE + "extra:\n" + tower
    path = tmp_path / "tower.yaml"
    path.write_text(text)
    message = check_one_error_line(cli("grad", path, "--json"), path)
    assert f"{path}:{line_with(text, 'extra:')}: extra: unknown field" in message


# -- issue 12.8: messages that say what was meant ------------------------------------------------

PYTORCH_NAMES = """
input: {values: [[1, 2], [3, 4]]}
layers:
  - {type: Conv2d, out_channels: 1, kernel_size: 2}
  - {type: LeakyReLU}
  - {type: Flatten}
  - {type: Linear, out_features: 1}
loss: {type: mse, target: [0]}
"""


def test_pytorch_class_names_are_layer_types():
    from cnnderive.config import loads

    kinds = [layer.kind for layer in loads(PYTORCH_NAMES, "torch.yaml").layers]
    assert kinds == ["conv2d", "leaky_relu", "flatten", "linear"]


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ("{type: conv2d, out_channels: 1, kernel: 2}", "(found 'kernel': did you mean kernel_size?)"),
        ("{type: conv2d, out_channels: 1, kernel_size: 2, strid: 1}", "did you mean stride?"),
    ],
)
def test_a_misspelt_field_gets_a_suggestion(layer, expected):
    from cnnderive.config import loads
    from cnnderive.errors import UserError

    text = f"input: {{values: [[1, 2], [3, 4]]}}\nlayers:\n  - {layer}\nloss: {{type: mse, target: [0]}}\n"
    with pytest.raises(UserError) as caught:
        loads(text, "typo.yaml")
    assert expected in str(caught.value)


def test_a_tab_is_named():
    from cnnderive.config import loads
    from cnnderive.errors import UserError

    text = "input: {values: [1]}\nlayers:\n\t- {type: linear, out_features: 1}\nloss: {type: mse, target: [0]}\n"
    with pytest.raises(UserError) as caught:
        loads(text, "tab.yaml")
    assert "a tab" in str(caught.value) and ":3:" in str(caught.value)


# -- dropout and global average pooling ----------------------------------------------------------------------

DROPOUT_ERRORS = {
    "p is 1": ("p: 0.25", "p: 1", 21, "layers.2.p", "0 <= p < 1"),
    "mask not 0/1": ("[1, 1, 1]]", "[1, 2, 1]]", 22, "layers.2.mask", "1 (kept) or 0 (dropped)"),
    "mask too short": (
        "      - [[1, 1, 0], [0, 1, 1], [1, 1, 1]]\n",
        "",
        22,
        "layers.2.mask",
        "[2][3][3] (18 numbers)",
    ),
    "mask misspelt": ("    mask:", "    maskk:", 20, "layers.2.mask", "did you mean mask?"),
    "output_size 2": ("output_size: 1", "output_size: 2", 26, "layers.3.output_size", "only output_size 1"),
}


@pytest.mark.parametrize("case", list(DROPOUT_ERRORS))
def test_dropout_and_global_pool_errors_name_file_line_and_field(case, tmp_path):
    old, new, line, field, words = DROPOUT_ERRORS[case]
    text = (CONFIGS / "conv_dropout_global_pool.yaml").read_text()
    assert old in text
    path = tmp_path / "net.yaml"
    path.write_text(text.replace(old, new, 1))
    code, stdout, stderr = cli("grad", path)
    assert (code, stdout) == (2, "")
    assert stderr.startswith(f"cnnderive: error: {path}:{line}: {field}: ") and words in stderr, stderr


def test_a_shape_error_says_where_a_window_floored(tmp_path):
    """3x3 pooled 2x2 with stride 2 is 1x1 ((3 - 2)/2 + 1 = 1.5 floors to 1): the error says so."""
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: {values: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}\n"
        "layers:\n"
        "  - {type: maxpool2d, kernel_size: 2}\n"
        "  - {type: flatten}\n"
        "  - {type: linear, out_features: 1, params: {weight: [[1, 2, 3, 4]], bias: [0]}}\n"
        "loss: {type: mse, target: [1]}\n"
    )
    code, stdout, stderr = cli("grad", path)
    assert (code, stdout) == (2, "")
    assert f"{path}:5: layers.2.params.weight: " in stderr and "must have shape [1][1]" in stderr
    assert "maxpool2d_1 takes 3x3 to 1x1: (3 - 2)/2 + 1 floors to 1" in stderr
    path.write_text(
        path.read_text()
        .replace("[[1, 2, 3, 4]]", "[[1]]")
        .replace("[[1, 2, 3], [4, 5, 6], [7, 8, 9]]", "[[1, 2], [3, 4]]")
    )
    code, _, stderr = cli("grad", path)
    assert code == 0, stderr  # an even fit: nothing to say
