"""The formula reader: names in every spelling, plain and LaTeX syntax, exact numbers, and refusals."""

from fractions import Fraction

import mpmath
import pytest
import sympy

import cnnderive
from cnnderive.check.checker import Checker
from cnnderive.check.formula.lexer import MAX_LENGTH, MAX_TOKENS, RESERVED_WORDS
from cnnderive.check.formula.names import NameTable, names_table
from cnnderive.check.formula.parser import MAXIMUM, MINIMUM, looks_like_latex, parse_formula
from cnnderive.check.term_by_term import MAX_COMPARED_TERMS, compare_terms, expansion_size
from cnnderive.derivation.symbolic import Symbolic
from cnnderive.errors import UserError
from tests.cli_support import run_cli
from tests.conftest import CONFIGS, ROOT
from tests.fuzz_support import bounded

SEED001 = CONFIGS / "seed001_conv_conv_mse.yaml"
SEED000 = CONFIGS / "seed000_tied_maxpool.yaml"
BOUND = 60  # seconds: a case that has not ended by then hangs (it takes well under a second)


def check_cli(formula: str, config=SEED001, *extra: str) -> tuple[int, str, str]:
    """`cnnderive check CONFIG --param conv1.weight[0,0,0,0] --expr FORMULA`, in this process, bounded."""
    with bounded(BOUND):
        return run_cli(["check", str(config), "--param", "conv1.weight[0,0,0,0]", "--expr", formula, *extra])


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
    table = table_of("seed000_tied_maxpool.yaml")
    p = sym(table, "softmax_6.output[1]")
    for written in ("ŷ₂", "yhat_2", r"\hat{y}_2", r"\hat y_{2}", "p_2", "o_2"):
        assert parse_formula(written, table) == p, written
    assert parse_formula("p^1_2", table) == sym(table, "maxpool2d_3.output[0,0,1]")


def test_ambiguous_index_is_refused_with_both_readings():
    table = table_of("seed000_tied_maxpool.yaml")  # 5x5 input: x_11 is x_{1,1} or the 11th element
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
    assert parse_formula("max(0, o, y) - min(o, y)", seed001) == MAXIMUM(0, o, y) - MINIMUM(o, y)
    assert parse_formula("max(1/2, 3) + min(2, -1)", seed001) == sympy.Rational(2)
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
        ("((2^64)^64)^64", "more than 2,000 digits in all"),
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
        ("1+" * (MAX_TOKENS // 2 + 1), f"more than {MAX_TOKENS:,} parts"),
        ("o+" * (MAX_LENGTH // 2) + "o", "characters long"),
    ],
)
def test_refused_with_a_pointed_message(seed001, text, message):
    with bounded(), pytest.raises(UserError, match=message) as error:
        parse_formula(text, seed001)
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
    code, stdout, stderr = check_cli(template.format(path=path))
    assert code == 2, stderr
    assert stderr.startswith("cnnderive: error: --expr:")
    assert "Traceback" not in stderr + stdout
    assert not path.exists()


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


# -- issue 10, item 6: every formula ends in seconds, with exit 0, 1 or 2 --------------------------


@pytest.fixture(scope="module")
def seed001_checker() -> Checker:
    return Checker(cnnderive.load(SEED001), "conv1.weight[0,0,0,0]")


def refused(checker: Checker, formula: str, latex: bool | None = None) -> str:
    """The one-line message of a formula that check refuses (within the bound)."""
    with bounded(BOUND), pytest.raises(UserError) as error:
        checker.check_expr(formula, latex)
    message = str(error.value)
    assert message.startswith("--expr: ") and "\n" not in message and len(message) < 600, message
    return message


def test_issue10_log_of_a_power_of_a_softmax_intermediate_ends_wrong():
    """It hung: the comparison expanded (4 terms)^64 inside the log. Now it is not expanded."""
    code, stdout, stderr = check_cli("log(a1_1_1^64)", SEED000)
    assert (code, stderr) == (1, "")
    assert "not compared: the expanded forms would have more than" in " ".join(stdout.split())


def test_issue10_power_of_a_power_of_a_power_is_refused():
    code, _, stderr = check_cli("((o^64)^64)^64")
    assert code == 2
    assert stderr.startswith(
        "cnnderive: error: --expr: powers of powers multiply their exponents: this is a power 4,096"
    )
    assert stderr.count("\n") == 1


def test_issue10_exp_tower_is_refused_as_too_large():
    code, _, stderr = check_cli("e^(e^(e^(e^(e^(e^(100))))))")
    assert code == 2
    assert "exp of 2.68812e+43 in the formula" in stderr and "too large to work with" in stderr


@pytest.mark.parametrize("formula", ["²", "₂", "①", "o^²"])
def test_issue10_unicode_digits_alone_are_refused_with_exit_2(formula):
    code, _, stderr = check_cli(formula, SEED001, "--latex")
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr


@pytest.mark.parametrize(
    "formula, message",
    [
        ("²", "the superscript '²' must follow a number, a name or a closing bracket"),
        ("₂", "the subscript '₂' must follow a name"),
        ("①", "unexpected character '①': write numbers with the digits 0-9"),
        ("٣ + o", "write numbers with the digits 0-9"),
        ("１", "write numbers with the digits 0-9"),
        ("o\u200b", r"unexpected character '\u200b'"),
        ("o \x00", r"unexpected character '\x00'"),
        ("o \udcff", r"unexpected character '\udcff'"),
    ],
)
def test_issue10_odd_characters_are_one_clear_line(seed001_checker, formula, message):
    assert message in refused(seed001_checker, formula)


@pytest.mark.parametrize("written", ["o", "(o)", "2"])
def test_issue10_five_thousand_superscript_digits(seed001_checker, written):
    message = refused(seed001_checker, written + "²" * 5_000)
    assert "exponent too large (the limit is 64)" in message and "…" in message


def test_issue10_functions_nested_39_deep(seed001_checker):
    formula = "".join(("log(", "tanh(", "sigmoid(")[k % 3] for k in range(39)) + "o" + ")" * 39
    assert "functions are nested more than 8 deep" in refused(seed001_checker, formula)


def test_issue10_exp_nested_10_deep(seed001_checker):
    assert "functions are nested more than 8 deep" in refused(seed001_checker, "exp(" * 10 + "o" + ")" * 10)


def test_issue10_exp_nested_8_deep_is_too_large(seed001_checker):
    """Allowed by the grammar; its value is not: exp(exp(...)) passes 10^10000 after a few levels."""
    assert "too large to work with" in refused(seed001_checker, "exp(" * 8 + "o" + ")" * 8)


def test_issue10_110_forty_digit_numbers_multiplied(seed001_checker):
    formula = "*".join(["1234567890123456789012345678901234567890"] * 110)
    assert "more than 2,000 digits in all" in refused(seed001_checker, formula)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("x_" + "1" * 5_000, "too long (at most 9 digits)"),
        ("x" + "₁" * 5_000, "too long (at most 9 digits)"),
        ("i" + "1" * 5_000, "too long (at most 9 digits)"),
        ("conv1.weight[" + "9" * 12 + ",0,0,0]", "too long (at most 9 digits)"),
        ("1" + "0" * 5_000, "number too long"),
        ("1e" + "9" * 5_000, "the exponent of this number is beyond ±40"),
        ("0." + "0" * 5_000 + "1", "number too long"),
        ("q" * 19_000, "unknown name 'qqqq"),
        ("max(" + ", ".join(["o"] * 200) + ")", None),
        ("2^2^2^2^2", "exponent too large"),
        ("o^64 * o^64", None),
        ("(o^8)^8", None),
        ("(2^64)^(1/2)", None),
        ("(7^64)^(1/3)", "a root of a number with more than 40 digits"),
    ],
)
def test_issue10_bounds_of_the_grammar(seed001_checker, formula, message):
    if message is None:
        with bounded(BOUND):
            assert seed001_checker.check_expr(formula).verdict == "wrong"
    else:
        assert message in refused(seed001_checker, formula)


def test_issue10_layer_named_like_a_function_is_read_by_its_canonical_name(seed001):
    """A layer `exp` (say) is named exp.weight[...]: the canonical name is read before the function."""
    table = table_of("seed001_conv_conv_mse.yaml")
    table.layer_names = table.layer_names | {"exp", "e", "pi"}
    table.tensors = dict(table.tensors, **{"exp.weight": table.tensors["conv1.weight"]})
    table.tensors["e.weight"] = table.tensors["pi.weight"] = table.tensors["conv2.weight"]
    w1, w2 = sym(seed001, "conv1.weight[0,0,0,0]"), sym(seed001, "conv2.weight[0,0,0,1]")
    o = sym(seed001, "conv2.output[0,0,0]")
    assert parse_formula("exp.weight[0,0,0,0] * exp(o) + e.weight[0,0,0,1] * e + pi.weight[0,0,0,1] * pi", table) == (
        w1 * sympy.exp(o) + w2 * sympy.E + w2 * sympy.pi
    )


def test_reserved_words_are_read_as_functions_and_constants(seed001):
    o = sym(seed001, "conv2.output[0,0,0]")
    assert RESERVED_WORDS == {"exp", "log", "ln", "sqrt", "tanh", "sigmoid", "sigma", "max", "min", "e", "pi"}
    for word in RESERVED_WORDS - {"e", "pi", "max", "min"}:
        assert parse_formula(f"{word}(o)", seed001) != o, word
    assert parse_formula("e + pi", seed001) == sympy.E + sympy.pi


def test_unicode_superscripts_as_powers(seed001):
    x11, y, o = sym(seed001, "input[0,0,0]"), sym(seed001, "target[0]"), sym(seed001, "conv2.output[0,0,0]")
    assert parse_formula("y²", seed001) == y**2  # y has no stage: ² is a power
    assert parse_formula("x₁²", seed001) == x11**2
    assert parse_formula("o⁻¹ + (o - y)⁻²", seed001) == 1 / o + (o - y) ** -2
    assert parse_formula("2³", seed001) == 8
    assert parse_formula("w¹₁₁", seed001) == sym(seed001, "conv1.weight[0,0,0,0]")  # a stage, as printed


# -- the bounded comparison: values against an independent route ---------------------------------


def seed001_by_hand() -> dict[str, Fraction]:
    """seed001's numbers from its YAML, through the two valid 2x2 convolutions, in fractions."""
    x = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
    w1 = [[Fraction(1, 2), Fraction(-3, 10)], [Fraction(1, 5), Fraction(1, 10)]]
    w2 = [[Fraction(2, 5), Fraction(1, 5)], [Fraction(-1, 10), Fraction(3, 10)]]
    z1 = [[sum(x[i + a][j + b] * w1[a][b] for a in range(2) for b in range(2)) for j in range(2)] for i in range(2)]
    o = sum(z1[i][j] * w2[i][j] for i in range(2) for j in range(2))
    return {"o": o, "y": Fraction(1, 2), "w11": w1[0][0], "z12": z1[0][1]}


def test_exact_values_stay_exact(seed001_checker):
    ev, table, hand = seed001_checker.evaluator, NameTable(seed001_checker.symbolic), seed001_by_hand()
    o, y = hand["o"], hand["y"]
    value = ev.value(parse_formula("o^64 - 3*y + sqrt(x_1_2 + 2) + max(o, y) - min(x_1, w1_1)", table), ev.base)
    assert value == sympy.Rational(o**64 - 3 * y + 2 + max(o, y) - min(1, hand["w11"]))


def test_transcendental_values_to_40_digits(seed001_checker):
    ev, table, hand = seed001_checker.evaluator, NameTable(seed001_checker.symbolic), seed001_by_hand()
    with mpmath.workdps(80):
        o, y, z = (mpmath.mpf(hand[k].numerator) / hand[k].denominator for k in ("o", "y", "z12"))
        expected = mpmath.exp(o) * mpmath.tanh(y) + mpmath.log(z) / (1 + mpmath.exp(-o)) + mpmath.pi * mpmath.e
        big = (o + mpmath.mpf(1) / 1234567) ** 64 * (o + mpmath.mpf(1) / 7654321) ** 64  # beyond exact fractions
        value = ev.value(parse_formula("exp(o) tanh(y) + log(z1_1_2) sigmoid(o) + pi e", table), ev.base)
        assert abs(mpmath.mpf(value) - expected) < mpmath.mpf("1e-40")
        value = ev.value(parse_formula("(o + 1/1234567)^64 (o + 1/7654321)^64", table), ev.base)
        assert isinstance(value, sympy.Float)
        assert abs(mpmath.mpf(value) / big - 1) < mpmath.mpf("1e-40")


def test_value_beyond_the_limit_is_refused(seed001_checker):
    assert "too large to work with" in refused(seed001_checker, "exp(60000 y)")
    assert "a value in the formula is beyond 10^10000" in refused(seed001_checker, "(exp(20000) + 1)^2")


def test_complex_and_undefined_values(seed001_checker):
    assert "not a real number" in refused(seed001_checker, "sqrt(-1 - x_1^2)")
    # x₁₁ = 1: undefined here (defined nearby); said as such, not "yours is nan"
    assert "undefined at this config's values" in refused(seed001_checker, "1/(x_1 - 1)")


def test_right_same_value_and_wrong(seed001_checker):
    right = "2(o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)"
    with bounded(BOUND):
        assert seed001_checker.check_expr(right).verdict == "identical"
        assert seed001_checker.check_expr("sqrt(4) (o - y)(i_1 w_1^2 + i_2 w_2^2 + i_4 w_3^2 + i_5 w_4^2)").right
        same = seed001_checker.check_expr(f"{right} exp(x_1 - 1)")  # x₁₁ = 1 here only
        assert same.verdict == "same_value" and same.nearby is not None
        wrong = seed001_checker.check_expr("(x_1 + x_2 + x_4 + x_5 + w2_1 + w2_2 + o + y)^64")
    assert wrong.verdict == "wrong"
    assert wrong.comparison.skipped.startswith(f"the expanded forms would have more than {MAX_COMPARED_TERMS:,}")


@pytest.mark.parametrize(
    "formula",
    [
        "(o - y)^3 (x_1 + 2 x_2)^2",
        "(o + y)^2/(x_1 - y)^2 + exp((o + y)^2)",
        "2(o - y)(x_1 w2_1 + 1/3)^4",
        "max(o, y)^2",
    ],
)
def test_expansion_size_bounds_what_expand_gives(seed001_checker, formula):
    """The estimate is an upper bound of sympy.expand's terms and coefficient bits (SymPy as the reference)."""
    expr = parse_formula(formula, NameTable(seed001_checker.symbolic))
    size = expansion_size(expr, {}, {})
    expanded = sympy.expand(expr)
    terms = expanded.as_coefficients_dict()
    assert size.terms >= len(terms)
    assert size.bits >= max(int(c.p).bit_length() + int(c.q).bit_length() for c in terms.values())


def test_compare_terms_does_not_expand_inside_a_function(seed001_checker):
    ev = seed001_checker.evaluator
    expr = parse_formula("log((x_1 + x_2 + x_4 + x_5 + w2_1 + o + y)^64)", NameTable(seed001_checker.symbolic))
    with bounded(BOUND):
        comparison = compare_terms(ev, expr, seed001_checker.asked.form)
    assert comparison.skipped is not None


@pytest.mark.parametrize(
    "formula", ["(e^{e^{e^{dL/dL * 1e40}}})⁻¹", "exp(-exp(exp(1e40 * dL/dL)))", "sigmoid(exp(exp(1e40 ∂L/∂L)))"]
)
def test_exp_of_a_gradient_that_is_a_constant(seed001_checker, formula):
    """∂L/∂L is 1: once replaced, exp(exp(10^40)) is a constant that SymPy itself evaluates without end."""
    assert "exp of 1.0e+40 in the formula" in refused(seed001_checker, formula)


def test_constant_gradients(seed001):
    """∂L/∂L = 1; seed001 has no dead ReLU, so every other gradient is a formula (the route: the backward pass)."""
    loss = sympy.Symbol("dL/dloss", real=True)
    assert seed001.constant_gradients == {loss: 1}
    table = table_of("seed000_tied_maxpool.yaml")  # max-pool losers and dead ReLUs have gradient 0
    x = [[1, 0, 2, 1, 0], [0, 1, 3, 1, 2], [2, 1, 0, 1, 1], [1, 2, 1, 0, 3], [0, 1, 2, 2, 1]]
    w = [[Fraction(1, 10), Fraction(-2, 10)], [Fraction(3, 10), Fraction(4, 10)]]
    z = [[sum(x[i + a][j + b] * w[a][b] for a in range(2) for b in range(2)) for j in range(4)] for i in range(4)]
    live = set()
    for i in range(0, 4, 2):
        for j in range(0, 4, 2):
            window = [(i + a, j + b) for a in range(2) for b in range(2)]
            winner = max(window, key=lambda ij: (max(z[ij[0]][ij[1]], 0), -window.index(ij)))  # first maximum
            if z[winner[0]][winner[1]] > 0:
                live.add(winner)
    zeros = {s.name for s, v in table.constant_gradients.items() if v == 0 and "conv1.output" in s.name}
    assert zeros == {f"dL/dconv1.output[0,{i},{j}]" for i in range(4) for j in range(4) if (i, j) not in live}
    assert table.constant_gradients[loss] == 1
