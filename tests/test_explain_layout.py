"""The terminal layout a student trips on (issue 12, item 9): section headings that do not look like
layer numbers, no fractions beside rounded decimals in one matrix, vector labels over their numbers,
and `symbols` never breaking a LaTeX name at 80 columns.

The label test parses the rendered lines: each label must end in the column where its number ends.
"""

from __future__ import annotations

import io
import itertools
import re
from fractions import Fraction as F

import numpy as np
import pytest
import sympy
from rich.console import Console

import cnnderive
from cnnderive.cli.symbols import _short_aliases
from cnnderive.derivation.steps import build_steps
from cnnderive.printers.explain import explanation
from cnnderive.printers.matrices import Matrix
from cnnderive.printers.terminal import symbols_view
from tests.conftest import CONFIGS
from tests.test_explain import SMALL

VECTOR = re.compile(r"[=≈] \[ (.*) \]$")


def render(renderable_or_items, width: int = 100) -> str:
    items = renderable_or_items if isinstance(renderable_or_items, list) else [renderable_or_items]
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    for item in items:
        console.print(item)
    return console.export_text()


def explained(path, width: int = 100) -> str:
    return render(explanation(build_steps(cnnderive.load(path))), width)


def ends(line: str, start: int = 0) -> list[int]:
    """The column of the last character of each space-separated token from `start` on."""
    return [m.end() - 1 + start for m in re.finditer(r"\S+", line[start:])]


def label_pairs(text: str):
    """(label line, vector line) for every vector printed with a row of element names above it."""
    lines = text.splitlines()
    for above, line in itertools.pairwise(lines):
        match = VECTOR.search(line.rstrip())
        indent = len(above) - len(above.lstrip())
        if match and above.strip() and indent >= match.start(1) and "[" not in above:
            yield above.rstrip(), line.rstrip(), match.start(1)


def number_ends(line: str, start: int) -> list[int]:
    """Where each number of a vector row ends: a marked cell [0.76] ends one column before its bracket."""
    out = []
    for m in re.finditer(r"\S+", line[start:]):
        token, end = m.group(), m.end() - 1 + start
        if token == "]":
            continue
        out.append(end - 1 if token.endswith("]") else end)
    return out


# sections and layers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_sections_and_layers_never_share_a_number(path):
    text = explained(path)
    assert not re.search(r"^\d+\. ", text, re.MULTILINE), "a line starts like a numbered section"
    for heading in ("The network at a glance", "Forward pass", "Backward pass, from the loss"):
        assert re.search(rf"^{heading} ─", text, re.MULTILINE)
    layers = build_steps(cnnderive.load(path)).layers
    for step in layers:
        head = f"layer {step.position + 1} · {step.layer.name}  "
        assert sum(line.startswith(head) for line in text.splitlines()) >= 1


# vector labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_vector_labels_end_where_their_numbers_end(path):
    text = explained(path)
    pairs = list(label_pairs(text))
    assert pairs, "no labelled vector found"
    for above, line, start in pairs:
        labels, numbers = ends(above), number_ends(line, start)
        assert len(labels) == len(numbers), (above, line)
        assert labels == numbers, f"\n{above}\n{line}"


def test_labels_over_marked_and_wide_cells():
    """A label wider than its number, and marked cells ([x]): still right-aligned to the number."""
    values = np.array([F(1, 10), F(-3, 2), F(7)], dtype=object)
    for marked in (None, np.array([False, True, False])):
        text = render(Matrix("v", values, marked, names=["long₁₂₃", "b", "c₃"]))
        above, line = text.splitlines()[:2]
        start = line.index("[ ") + 2 if marked is None else line.index("[") + 1
        assert ends(above) == number_ends(line.rstrip(), start), f"\n{above}\n{line}"


# exact or rounded, never both in one matrix -------------------------------------------------------------


def test_one_rounded_entry_makes_every_entry_a_decimal():
    mixed = np.array([sympy.Rational(1, 3), sympy.Rational(1, 2), sympy.sqrt(2)], dtype=object)
    text = render(Matrix("v", mixed, approx=np.array([1 / 3, 0.5, 2**0.5])))
    assert "v ≈ [ 0.3333  0.5  1.414 ]" in text
    exact = np.array([sympy.Rational(1, 3), sympy.Rational(1, 2)], dtype=object)
    assert "v = [ 1/3  0.5 ]" in render(Matrix("v", exact))
    long_fraction = np.array([[F(1, 3), F(2, 791903)]], dtype=object)  # 2/791903 is too long: rounded
    text = render(Matrix("m", long_fraction))
    assert "≈" in text and "/" not in text and "0.3333" in text


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_no_matrix_mixes_fractions_and_rounded_decimals(path):
    text = explained(path)
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if not re.search(r"≈ [⎡⎢⎣\[]", line):
            continue
        column = re.search(r"≈ ", line).end()
        top = k
        while top > 0 and len(lines[top - 1]) > column and lines[top - 1][column] in "⎡⎢":
            top -= 1
        bottom = k
        while bottom + 1 < len(lines) and len(lines[bottom + 1]) > column and lines[bottom + 1][column] in "⎢⎣":
            bottom += 1
        for row in lines[top : bottom + 1]:
            assert "/" not in row[column:].split("⎤")[0].split("⎥")[0].split("⎦")[0].split(" ]")[0], row


# symbols at 80 columns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["seed001_conv_conv_mse.yaml", "multichannel_stride_pad.yaml", "seed000_maxpool_flatten.yaml"]
)
def test_symbols_never_breaks_a_latex_name(name):
    derivation = cnnderive.load(CONFIGS / name)
    text = render(symbols_view(derivation, _short_aliases(derivation)), width=80)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    cells = {cell.strip() for line in lines for cell in line.split("│")}
    for tensor in derivation.tensors.values():
        for index in tensor.indices():
            assert tensor.latex(index) in cells, tensor.latex(index)
            assert tensor.element(index) in cells, tensor.element(index)
            break  # the first element of each tensor: the others are laid out alike


def test_symbols_keeps_latex_in_its_own_column_when_it_fits():
    derivation = cnnderive.load(CONFIGS / "seed002_pool_to_fc.yaml")
    wide = render(symbols_view(derivation, _short_aliases(derivation)), width=160)
    assert re.search(r"┃ canonical +┃ textbook +┃ LaTeX +┃", wide)
    narrow = render(symbols_view(derivation, _short_aliases(derivation)), width=80)
    assert "LaTeX" in narrow and "w^{(1)}_{1,1}" in narrow
