"""The formula reader: names in every spelling, plain and LaTeX syntax, exact numbers, and refusals."""

import subprocess
import sys
import time

import pytest
import sympy

import cnnderive
from cnnderive.check.formula.names import NameTable, names_table
from cnnderive.errors import UserError
from cnnderive.check.formula.parser import MAX_LENGTH, looks_like_latex, parse_formula
from cnnderive.derivation.symbolic import Symbolic
from tests.conftest import CONFIGS, ROOT

SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"


def table_of(name: str) -> NameTable:
    return NameTable(Symbolic(cnnderive.load(CONFIGS / name)))


@pytest.fixture(scope="module")
def seed001() -> NameTable:
    return table_of("seed001_conv_conv_mse.yaml")


def sym(table: NameTable, canonical: str) -> sympy.Symbol:
    return parse_formula(canonical, table)


def test_names_table_has_every_printed_form():
    symbolic = Symbolic(cnnderive.load(SEED001))
    table = names_table(symbolic)
    for tensor in symbolic.derivation.tensors.values():
        for index in tensor.indices():
            symbol = symbolic.symbol(tensor, index)
            for form in (tensor.element(index), tensor.unicode(index), tensor.ascii(index), tensor.latex(index)):
                assert table[form] == symbol


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_alias_reads_back_as_its_symbol(path):
    derivation = cnnderive.load(path)
    if sum(1 for t in derivation.tensors.values() for _ in t.indices()) > 3_000:
        pytest.skip("a large network: the small ones cover every kind of name")
    symbolic = Symbolic(derivation)
    table = NameTable(symbolic)
    for alias, symbol in names_table(symbolic).items():
        assert parse_formula(alias, table) == symbol, alias


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("i_5", "input[0,1,1]"),
        ("x_5", "input[0,1,1]"),
        ("i5", "input[0,1,1]"),
        ("i^1_5", "input[0,1,1]"),
        ("x_{2,2}", "input[0,1,1]"),
        ("x₂₂", "input[0,1,1]"),
        ("x_11", "input[0,0,0]"),  # 3x3: only one digit per axis makes sense
        ("w1_3", "conv1.weight[0,0,1,0]"),
        ("w^1_3", "conv1.weight[0,0,1,0]"),
        ("w_3^1", "conv1.weight[0,0,1,0]"),
        ("w^{(1)}_{2,1}", "conv1.weight[0,0,1,0]"),
        ("w¹₂₁", "conv1.weight[0,0,1,0]"),
        ("w1_2_1", "conv1.weight[0,0,1,0]"),
        ("w_1^2", "conv2.weight[0,0,0,0]"),
        ("w2_4", "conv2.weight[0,0,1,1]"),
        ("o", "conv2.output[0,0,0]"),
        ("o_1", "conv2.output[0,0,0]"),
        ("o^2_1", "conv2.output[0,0,0]"),
        ("o_1^2", "conv2.output[0,0,0]"),
        ("o^1_4", "conv1.output[0,1,1]"),
        ("z^{(1)}_{2,2}", "conv1.output[0,1,1]"),
        ("y", "target[0]"),
        ("y_1", "target[0]"),
        ("t_1", "target[0]"),
        ("L", "loss"),
        ("C", "loss"),
        ("conv1.weight[0, 0, 1, 0]", "conv1.weight[0,0,1,0]"),
    ],
)
def test_textbook_spellings(seed001, written, canonical):
    assert parse_formula(written, seed001) == sym(seed001, canonical)


def test_softmax_output_letters():
    table = table_of("seed000_maxpool_flatten.yaml")
    p = sym(table, "softmax_6.output[1]")
    for written in ("ŷ₂", "yhat_2", r"\hat{y}_2", r"\hat y_{2}", "p_2", "o_2"):
        assert parse_formula(written, table) == p, written
    assert parse_formula("p^1_2", table) == sym(table, "maxpool2d_3.output[0,0,1]")


def test_ambiguous_index_is_refused_with_both_readings():
    table = table_of("seed000_maxpool_flatten.yaml")  # 5x5 input: x_11 is x_{1,1} or the 11th element
    with pytest.raises(UserError, match="ambiguous") as error:
        parse_formula("x_11", table)
    assert "_{1,1}" in str(error.value) and "_{3,1}" in str(error.value)
    with pytest.raises(UserError, match="ambiguous"):
        parse_formula("x_{11}", table)
    assert parse_formula("x_{3,1}", table) == sym(table, "input[0,2,0]")


def test_plain_syntax(seed001):
    o, y, x1 = sym(seed001, "conv2.output[0,0,0]"), sym(seed001, "target[0]"), sym(seed001, "input[0,0,0]")
    assert parse_formula("2(o - y)", seed001) == 2 * (o - y)
    assert parse_formula("2 x_1", seed001) == 2 * x1
    assert parse_formula("-x_1^2", seed001) == -(x1**2)
    assert parse_formula("2**3**2", seed001) == 2**9
    assert parse_formula("0.1 x_1 + 1/3", seed001) == sympy.Rational(1, 10) * x1 + sympy.Rational(1, 3)
    assert parse_formula("1e-3", seed001) == sympy.Rational(1, 1000)
    assert parse_formula("(o − y)²", seed001) == (o - y) ** 2
    assert parse_formula("2·x_1 × 3", seed001) == 6 * x1
    assert parse_formula("[o - y]*{2}", seed001) == 2 * (o - y)
    assert parse_formula("exp(x_1) + log(o) + ln(y) + sqrt(x_1) + tanh(o)", seed001) == (
        sympy.exp(x1) + sympy.log(o) + sympy.log(y) + sympy.sqrt(x1) + sympy.tanh(o)
    )
    assert parse_formula("sigmoid(o)", seed001) == 1 / (1 + sympy.exp(-o))
    assert parse_formula("max(0, o, y) - min(o, y)", seed001) == sympy.Max(0, o, y) - sympy.Min(o, y)
    assert parse_formula("e^(2 o)", seed001) == sympy.exp(2 * o)


def test_latex_syntax(seed001):
    o, y, x1 = sym(seed001, "conv2.output[0,0,0]"), sym(seed001, "target[0]"), sym(seed001, "input[0,0,0]")
    assert looks_like_latex(r"\frac{1}{2}") and looks_like_latex("x^{2}") and not looks_like_latex("x^2")
    assert parse_formula(r"\frac{1}{2}\left(o - y\right)^{2}", seed001) == (o - y) ** 2 / 2
    assert parse_formula(r"2 \cdot x_{1} \times o", seed001) == 2 * x1 * o
    assert parse_formula(r"e^{-o} + \exp(y) + \sqrt{x_1} + \sqrt[3]{o}", seed001) == (
        sympy.exp(-o) + sympy.exp(y) + sympy.sqrt(x1) + o ** sympy.Rational(1, 3)
    )
    assert parse_formula(r"\log o \, + \ln(y)", seed001) == sympy.log(o) + sympy.log(y)
    with pytest.raises(UserError, match=r"write \^\{23\}"):  # TeX would read o^23 as o^2 times 3
        parse_formula("o^23", seed001, latex=True)
    assert parse_formula("o^{23}", seed001) == o**23
    assert parse_formula("o^23", seed001, latex=False) == o**23


def test_seed001_as_written_in_the_question(seed001):
    text = r"(i_{1}^1 + i_{2}^1 + i_{4}^1 + i_{5}^1)(w_1^2 \cdot 2(o_1^2 - y_1) + w_2^2 \cdot 2(o_1^2 - y_1))"
    expr = parse_formula(text, seed001)
    assert sym(seed001, "input[0,1,1]") in expr.free_symbols
    assert sym(seed001, "conv2.weight[0,0,0,1]") in expr.free_symbols


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('ls')", "unknown name '__import__'"),
        ("o.__class__", "unexpected character '.'"),
        ("().__class__.__bases__", "unexpected character '.'"),
        ("lambda: 0", "unknown name 'lambda'"),
        ("exec('1')", "unknown name 'exec'"),
        ("[c for c in ()]", "unknown name 'c'"),
        ("'x'", "quotes are not allowed"),
        ("9**9**9", "exponent too large"),
        ("10^64^2", "exponent too large"),
        ("(2^64)^64", "too large"),
        ("o^y", "an exponent must be a number"),
        ("1/0", "division by zero"),
        ("dL/dw1_1_1 = o", "'=' is not allowed"),
        ("dL/dfoo", "unknown name 'foo'"),
        ("o = y", "'=' is not allowed"),
        (r"2(o - y)(x_1 w_1^2 + \dots)", r"\\dots stands for terms that are not written"),
        (r"\sum_k x_k", r"\\sum is not read"),
        (r"\foo", r"unknown LaTeX command \\foo"),
        ("2 3", "two numbers in a row"),
        ("(o - y", "expected '\\)'"),
        ("o - y)", "closing bracket"),
        ("o +", "ends too early"),
        ("x_{1,9}", "no such element"),
        ("w_7", "unknown name 'w_7'"),
        ("conv1.weight", "whole tensor"),
        ("conv9.weight[0]", "unknown name 'conv9'"),
        ("ow", "unknown name 'ow'"),
        ("", "empty"),
        ("(" * 60 + "o" + ")" * 60, "nested more than"),
        ("-" * 60 + "o", "nested more than"),
        ("1" * 50, "number too long"),
        ("1+" * 5_001, "more than 10,000 parts"),
        ("o+" * (MAX_LENGTH // 2) + "o", "characters long"),
    ],
)
def test_refused_with_a_pointed_message(seed001, text, message):
    start = time.perf_counter()
    with pytest.raises(UserError, match=message) as error:
        parse_formula(text, seed001)
    assert time.perf_counter() - start < 2
    assert error.value.field == "--expr"


def test_error_marks_the_culprit_in_one_line(seed001):
    with pytest.raises(UserError) as error:
        parse_formula("2*(o - y)*foo", seed001)
    message = str(error.value)
    assert "\n" not in message
    assert "column 11" in message
    assert message.endswith("2*(o - y)*⟦foo⟧")


INJECTIONS = [
    "__import__('os').system('touch {path}')",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: __import__('os').system('touch {path}'))()",
    "conv1.weight[0,0,0,0].__class__",
    "open('{path}', 'w')",
    "9**9**9**9",
    "x_1*" * 30_000 + "x_1",
]


@pytest.mark.parametrize("template", INJECTIONS, ids=range(len(INJECTIONS)))
def test_cli_refuses_code_and_runs_nothing(tmp_path, template):
    path = tmp_path / "pwned"
    formula = template.format(path=path)
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnderive",
            "check",
            str(SEED001),
            "--param",
            "conv1.weight[0,0,0,0]",
            "--expr",
            formula,
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("cnnderive: error: --expr:")
    assert "Traceback" not in result.stderr + result.stdout
    assert not path.exists()
    assert time.perf_counter() - start < 30


def test_no_eval_or_exec_in_the_package():
    for source in (ROOT / "cnnderive").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        for banned in ("eval(", "exec(", "sympify(formula", "parse_expr("):
            assert banned not in text, f"{banned} in {source}"


def test_gradient_names(seed001):
    delta = sympy.Symbol("dL/dconv1.output[0,0,0]", real=True)
    for written in (
        "∂L/∂z¹₁₁",
        "dL/dz1_1_1",
        "dL / d o^1_1",
        "dL/dconv1.output[0,0,0]",
        r"\partial L/\partial z^{(1)}_{1,1}",
        r"\frac{\partial L}{\partial z^{(1)}_{1,1}}",
    ):
        assert parse_formula(written, seed001) == delta, written
    assert parse_formula("√(x_1)", seed001) == sympy.sqrt(sym(seed001, "input[0,0,0]"))


def test_symbols_command_lists_names_check_accepts():
    """Every name in the `symbols` table's typed column reads back, in a formula, as that element."""
    import io

    from rich.console import Console

    from cnnderive.cli.symbols import _short_aliases
    from cnnderive.printers.terminal import symbols_table

    derivation = cnnderive.load(CONFIGS / "seed001_conv_conv_mse.yaml")
    table = symbols_table(derivation, _short_aliases(derivation))
    names = NameTable(Symbolic(derivation))
    canonical, typed = table.columns[0]._cells, table.columns[3]._cells
    assert "i_5" in typed[4].split(", ") and "o" in typed[canonical.index("conv2.output[0,0,0]")].split(", ")
    for name, aliases in zip(canonical, typed):
        expected = sympy.Symbol(name, real=True)
        for alias in aliases.split(", "):
            assert parse_formula(alias, names) == expected, (alias, name)
    Console(file=io.StringIO(), width=80).print(table)
