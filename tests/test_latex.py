"""`cnnderive latex`: every shipped config compiles cleanly, the numbers are grad's, files are safe."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from cnnderive.cli import app
from cnnderive.cli.common import load_derivation
from cnnderive.derivation.steps import build_steps
from cnnderive.printers.latex import render
from tests.conftest import CONFIGS

PDFLATEX = shutil.which("pdflatex")
needs_pdflatex = pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex is not installed (Debian: apt-get install texlive-latex-base texlive-latex-recommended)",
)
SHIPPED = sorted(CONFIGS.glob("*.yaml"))
SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
OVERFULL = re.compile(r"Overfull \\hbox \(([\d.]+)pt too wide\)")
NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)(?: \\times 10\^\{(-?\d+)\})?")
runner = CliRunner()


@functools.cache
def _document(path: str, param: str | None, snippet: bool) -> str:
    derivation = load_derivation(path)
    selected = None
    if param:
        from cnnderive.derivation.names import parse_element

        selected = parse_element(derivation.network, param)
    return render(build_steps(derivation), selected, snippet=snippet)


def document(path, param=None, snippet=False) -> str:
    """The document of a config, made once per test session."""
    return _document(str(path), param, snippet)


def compile_tex(folder, name: str, tex: str) -> tuple[int, str]:
    """pdflatex -halt-on-error on tex in folder; the exit status and the log."""
    (folder / f"{name}.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(
        [PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", f"{name}.tex"],
        cwd=folder,
        capture_output=True,
        timeout=300,
        check=False,
    )
    log = (folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    return done.returncode, log


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every shipped config's document (and one snippet inside a minimal document), compiled in parallel."""
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-base texlive-latex-recommended)")
    folder = tmp_path_factory.mktemp("latex")
    jobs = {path.stem: document(path) for path in SHIPPED}
    snippet = document(CONFIGS / "seed000_tied_maxpool.yaml", snippet=True)
    jobs["snippet"] = (
        "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
        "Text before.\n" + snippet + "Text after.\n\\end{document}\n"
    )
    deep = _cli(CONFIGS / "seed001_conv_conv_mse.yaml", "--snippet", "--top-heading", "subsubsection")
    jobs["snippet_deep"] = jobs["snippet"].replace(snippet, deep)
    for name, args in OPTION_JOBS.items():
        jobs[name] = _cli(*args)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(jobs, pool.map(lambda name: compile_tex(folder, name, jobs[name]), jobs)))
    return folder, results


OPTION_JOBS = {  # documents the options change, compiled with the shipped ones
    "seed000_every_element_named": (CONFIGS / "seed000_maxpool_flatten.yaml", "--all-elements", "--program-names"),
    "seed002_pool_output": (CONFIGS / "seed002_pool_to_fc.yaml", "--param", "maxpool2d_1.output"),
    "seed001_input": (CONFIGS / "seed001_conv_conv_mse.yaml", "--param", "input"),
    "multichannel_input_element": (CONFIGS / "multichannel_stride_pad.yaml", "--param", "input[1,2,3]"),
}


def _cli(*args) -> str:
    result = runner.invoke(app, ["latex", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout


@needs_pdflatex
@pytest.mark.parametrize("name", [path.stem for path in SHIPPED] + ["snippet", "snippet_deep", *OPTION_JOBS])
def test_document_compiles_without_errors_or_wide_boxes(compiled, name):
    folder, results = compiled
    status, log = results[name]
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert status == 0 and not errors, f"{name}: pdflatex failed: {errors[:3]}"
    assert (folder / f"{name}.pdf").exists()
    wide = [float(points) for points in OVERFULL.findall(log) if float(points) > 20]
    assert not wide, f"{name}: overfull boxes wider than 20pt: {wide}"


def block(tex: str, name: str) -> str:
    """The worked block of one parameter element, from its `% name` marker to the next block."""
    start = tex.index(f"% {name}\n")
    end = tex.find("\n% ", start + 1)
    return tex[start : end if end != -1 else len(tex)]


def final_value(text: str) -> float:
    """The last number of the first align* in text: the decimal the equation ends with."""
    rows = text[text.index("\\begin{align*}") : text.index("\\end{align*}")]
    mantissa, exponent = NUMBER.findall(rows.splitlines()[-1])[-1]
    return float(mantissa) * 10 ** int(exponent or 0)


@pytest.mark.parametrize(
    "config",
    ["seed000_maxpool_flatten", "seed001_conv_conv_mse", "multichannel_stride_pad", "sigmoid_bce", "lenet5"],
)
def test_values_are_those_of_grad_json(config):
    path = CONFIGS / f"{config}.yaml"
    result = runner.invoke(app, ["grad", str(path), "--json"])
    assert result.exit_code == 0, result.output
    expected = json.loads(result.stdout)
    tex = document(path)
    loss = tex[tex.index("\\subsection*{The loss}") :]
    assert final_value(loss) == pytest.approx(
        expected["loss"], rel=5e-4, abs=1e-9
    )  # 4 significant digits (printers/numbers.py)
    markers = re.findall(r"^% (\S+)\[([\d,]+)\]$", tex, re.MULTILINE)
    assert {name for name, _ in markers} == set(expected["gradients"])  # every tensor has worked elements
    for name, index in markers:
        value = expected["gradients"][name]
        for i in map(int, index.split(",")):
            value = value[i]
        element = f"{name}[{index}]"
        assert final_value(block(tex, element)) == pytest.approx(
            value, rel=5e-4, abs=1e-9
        )  # 4 significant digits (printers/numbers.py), element


def test_seed001_gives_dC_dw11_as_the_sum_of_the_four_input_weight_products():
    tex = block(document(SEED001), "conv1.weight[0,0,0,0]")
    # the chain rule: one term per output z^(1)_{i,j}, each dL/dz^(1)_{i,j} times the input it multiplies
    for (i, j), x in zip([(1, 1), (1, 2), (2, 1), (2, 2)], ["x_{1,1}", "x_{1,2}", "x_{2,1}", "x_{2,2}"]):
        assert f"\\frac{{\\partial L}}{{\\partial z^{{(1)}}_{{{i},{j}}}}}\\, {x}" in tex
    assert "(-0.2) \\cdot 1 + (-0.1) \\cdot 2 + 0.05 \\cdot 0 + (-0.15) \\cdot 1" in tex
    assert "-\\frac{11}{20} = -0.55" in tex
    # the closed form: 2 (o - y) times the sum of the four products i_k w^2_k (a sum of products)
    closed = tex[tex.index("In closed form") :]
    assert "2 \\left(z^{(2)}_{1,1} - y_{1}\\right)" in closed
    sum_of_products = re.search(r"\\left\((x_\{\d,\d\} w\^\{\(2\)\}_\{\d,\d\}(?: \+ )?){4}\\right\)", closed)
    assert sum_of_products, closed
    for x, w in [("1,1", "1,1"), ("1,2", "1,2"), ("2,1", "2,1"), ("2,2", "2,2")]:
        assert f"x_{{{x}}} w^{{(2)}}_{{{w}}}" in sum_of_products.group(0)


def test_param_narrows_the_gradients_to_one_element_or_one_tensor():
    one = document(SEED001, param="conv1.weight[0,0,1,0]")
    assert re.findall(r"^% (\S+)$", one, re.MULTILINE) == ["conv1.weight[0,0,1,0]"]
    tensor = document(SEED001, param="conv2.weight")
    assert len(re.findall(r"^% conv2\.weight\[", tensor, re.MULTILINE)) == 4
    assert "% conv1.weight[" not in tensor


def test_big_network_document_is_bounded_and_says_what_it_left_out():
    tex = document(CONFIGS / "lenet5.yaml")
    assert len(tex) < 400_000
    assert "are not shown" in tex and "are worked out the same way" in tex and "are left out here" in tex


def test_snippet_has_no_preamble():
    result = runner.invoke(app, ["latex", str(SEED001), "--snippet"])
    assert result.exit_code == 0
    assert "\\documentclass" not in result.stdout and "\\begin{document}" not in result.stdout
    assert "\\begin{align*}" in result.stdout


def test_output_is_refused_when_it_exists_unless_forced(tmp_path):
    target = tmp_path / "out.tex"
    target.write_text("my homework\n")
    refused = runner.invoke(app, ["latex", str(SEED001), "-o", str(target)])
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert target.read_text() == "my homework\n"
    forced = runner.invoke(app, ["latex", str(SEED001), "-o", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_text().startswith("\\documentclass")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tex"]  # no temporary file left behind


def test_unwritable_output_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["latex", str(SEED001), "-o", str(tmp_path / "no-such-folder" / "out.tex")])
    assert result.exit_code == 2
    assert result.stderr.startswith("cnnderive: error:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_pdf_without_pdflatex_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    import cnnderive.cli.latex as command

    monkeypatch.setattr(command.shutil, "which", lambda name: None)
    result = runner.invoke(app, ["latex", str(SEED001), "-o", str(tmp_path / "out.tex"), "--pdf"])
    assert result.exit_code == 2
    assert "pdflatex is not installed" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@needs_pdflatex
def test_pdf_is_written_next_to_the_tex(tmp_path):
    result = runner.invoke(app, ["latex", str(SEED001), "-o", str(tmp_path / "seed001.tex"), "--pdf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seed001.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed001.pdf", "seed001.tex"]


@needs_pdflatex
def test_special_characters_in_the_name_are_escaped(tmp_path):
    config = SEED001.read_text().replace('name: "seed 001:', 'name: "α_β & 50% #1 -> {x} ~ $y$ \\\\ <= 3^2 ×2 é:')
    path = tmp_path / "odd.yaml"
    path.write_text(config, encoding="utf-8")
    status, log = compile_tex(tmp_path, "odd", document(path))
    assert status == 0, [line for line in log.splitlines() if line.startswith("!")][:3]
