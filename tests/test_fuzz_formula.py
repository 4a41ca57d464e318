"""Property-based fuzzing of `check --expr`: the formula reader and the comparison, over the whole grammar.

Every formula, however odd, ends within the harness's time and memory bound as a verdict (right,
same value, wrong) or a one-line UserError; any other exception, a timeout or running out of memory
fails. Formulas are built from the networks' own names (canonical, textbook, LaTeX, ∂L/∂...),
numbers short and long, + - * / ^ and unary minus, the functions, LaTeX forms, Unicode digits and
odd characters, power towers and deep nesting. Each case runs what `check --expr` runs, in this
process: parse, compare, and render the verdict. `CNNDERIVE_FUZZ=long` for many more cases; see
tests/fuzz_support.py.
"""

from __future__ import annotations

import io
from fractions import Fraction
from functools import cache

import mpmath
import sympy
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import cnnderive
from cnnderive.check import numbers as check_numbers
from cnnderive.check.checker import Checker
from cnnderive.check.formula.names import NameTable, names_table
from cnnderive.check.formula.parser import parse_formula
from cnnderive.check.numbers import Point, _mp
from cnnderive.errors import UserError
from cnnderive.printers.check_out import CheckView
from tests.conftest import CONFIGS
from tests.fuzz_support import LONG, Outcome, bounded, event, fuzz_settings, judge, note, run_case

CASES = {  # config -> the gradient checked; a rational network (exact values) and two with exp and log
    "seed001_conv_conv_mse.yaml": "conv1.weight[0,0,0,0]",
    "seed000_tied_maxpool.yaml": "conv1.weight[0,0,0,0]",
    "sigmoid_bce.yaml": "conv1.weight[1,0,0,1]",
}
if LONG:
    CASES |= {"multichannel_stride_pad.yaml": "conv1.bias[2]", "seed002_pool_to_fc.yaml": "fc.weight[1,0]"}

FUNCTIONS = ["exp", "log", "ln", "sqrt", "tanh", "sigmoid", "sigma", "σ", "√", "relu'", "ReLU′", "step", "H"]
COMPARISONS = [">", "<", ">=", "<=", "≥", "≤", r" \gt ", r" \leq "]
LATEX_FUNCTIONS = [r"\exp", r"\log", r"\ln", r"\tanh", r"\sigma"]
OPERATORS = ["+", "-", "*", "/", "^", "**", " ", "·", "×", "−", "÷", r" \cdot ", r" \times "]
ODD = [
    "²",
    "₂",
    "①",
    "⁻",
    "⁺",
    "′",
    "'",
    "٣",
    "１",
    "\u200b",
    "\u202e",
    "\x00",
    "\udcff",
    "\n",
    "\t",
    "ŷ",
    "∂",
    "π",
    "σ",
    "√",
    "\\",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "_",
    "^",
    ".",
    ",",
    "=",
    ">",
    "<",
    "$",
    "e",
    "E",
    "𝑥",
    "ß",
    "é",
    "ﬁ",
]
SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@cache
def checker(config: str) -> Checker:
    """A checker with everything a formula does not change computed once, outside the bounded cases."""
    checker = Checker(cnnderive.load(CONFIGS / config), CASES[config])
    checker.check_expr("0*loss")  # builds the closed forms, the points and the mistaken formulas
    return checker


@cache
def names(config: str) -> tuple[str, ...]:
    found = names_table(checker(config).symbolic)
    deltas = [f"∂L/∂{name}" for name in list(found)[::7]] + [f"dL/d{name}" for name in list(found)[3::11]]
    return tuple(sorted(found)) + tuple(deltas) + ("dL/dL", "∂L/∂L")  # ∂L/∂L is the constant 1


def check_formula(config: str, text: str, latex: bool | None = None) -> Outcome:
    """What `check --expr` runs, under the harness's bounds: parse, compare, render."""
    c = checker(config)

    def work():
        verdict = c.check_expr(text, latex)
        assert verdict.verdict in ("identical", "same_value", "wrong"), verdict.verdict
        Console(file=io.StringIO(), width=100).print(CheckView(c.derivation).render(verdict))
        return verdict.verdict

    outcome = run_case(work)
    if outcome.kind == "user_error":
        message = str(outcome.error)
        assert message.startswith(("--expr: ", "check: ")), message
        assert "\n" not in message and len(message) < 1_000, message
    return outcome


def judged(config: str, text: str, latex: bool | None = None) -> None:
    note(f"{config}: {text!r} (latex={latex})")
    judge(check_formula(config, text, latex), f"check --expr {text!r} on {config}")


# -- strategies ----------------------------------------------------------------------------------


@cache
def numbers() -> st.SearchStrategy[str]:
    digits = st.text("0123456789", min_size=1, max_size=60)
    return st.one_of(
        st.integers(0, 100).map(str),
        st.sampled_from(["0.1", "1/3", "0.5", "2", "10", "0", ".5", "1e-3", "2.5E2", "1e40", "1e-41", "3e+5"]),
        digits,
        st.tuples(digits, digits).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(digits, st.integers(-60, 60)).map(lambda t: f"{t[0]}e{t[1]}"),
    )


@cache
def atoms(config: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(names(config)),
        numbers(),
        st.sampled_from(["e", "pi", "π", r"\pi", "o", "y", "L", "ŷ"]),
    )


@cache
def exponents() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            ["2", "-1", "1/2", "0", "64", "65", "(1/16)", "(1/17)", "(-64)", "0.5", "{2}", "{-1}", "(2^3)"]
        ),
        st.integers(-100, 100).map(str),
    )


@st.composite
def formulas(draw, config: str, depth: int = 0) -> str:
    """A formula over the whole grammar, nested up to 6 deep (a composite: st.recursive is 30x slower here)."""
    if depth >= 6 or draw(st.integers(0, 3)) == 0:
        return draw(atoms(config))

    def sub() -> str:
        return draw(formulas(config, depth + 1))

    kind = draw(st.integers(0, 21))
    if kind <= 3:
        return sub() + draw(st.sampled_from(OPERATORS)) + sub()
    if kind == 4:
        return "-" + sub()
    if kind == 5:
        return f"({sub()})"
    if kind == 6:
        return f"{draw(st.sampled_from(FUNCTIONS))}({sub()})"
    if kind == 7:
        return f"{draw(st.sampled_from(['max', 'min']))}({', '.join(sub() for _ in range(draw(st.integers(1, 4))))})"
    if kind == 8:
        return f"({sub()})^{draw(exponents())}"
    if kind == 9:
        return f"({sub()})" + str(draw(st.integers(-20, 99))).translate(SUPERSCRIPT)
    if kind == 10:
        return f"e^({sub()})"
    if kind == 11:  # LaTeX from here on
        return rf"\frac{{{sub()}}}{{{sub()}}}"
    if kind == 12:
        return rf"{sub()} \cdot {sub()}"
    if kind == 13:
        return f"{{{sub()}}}^{{{draw(exponents())}}}"
    if kind == 14:
        return rf"\sqrt{{{sub()}}}" if draw(st.booleans()) else rf"\sqrt[{draw(st.integers(0, 20))}]{{{sub()}}}"
    if kind == 15:
        return rf"e^{{{sub()}}}"
    if kind == 16:
        return rf"\left({sub()}\right)"
    if kind == 17:
        return rf"{draw(st.sampled_from(LATEX_FUNCTIONS))}({sub()})"
    if kind == 18:
        return rf"\frac{{\partial L}}{{\partial w_1}} {sub()}"
    if kind == 19:  # an Iverson bracket, decided at the config's numbers
        return f"1[{sub()} {draw(st.sampled_from(COMPARISONS))} {sub()}]"
    if kind == 20:
        return rf"\mathbb{{1}}[{sub()} > 0] {sub()}"
    return sub()


@st.composite
def mutated(draw, config: str) -> str:
    """A formula with odd characters put in, cut out, or swapped."""
    text = draw(formulas(config))
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(text)))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            text = text[:k] + draw(st.sampled_from(ODD) | st.text(max_size=2)) + text[k:]
        elif choice == 1:
            text = text[:k] + text[k + 1 :]
        else:
            text = text[:k] + draw(st.sampled_from(ODD)) * draw(st.integers(1, 5_000)) + text[k:]
    return text


@st.composite
def extreme(draw, config: str) -> str:
    """The shapes that once hung or crashed: towers, deep nesting, long numbers and long products."""
    name = draw(st.sampled_from(names(config)[:40]))
    depth = draw(st.integers(1, 45))
    kind = draw(st.integers(0, 9))
    if kind == 0:  # power towers, bracketed or not
        exponent = draw(st.sampled_from(["2", "8", "64", "1/2", "-64"]))
        return "(" * depth + name + f"^{exponent})" * depth
    if kind == 1:
        return name + "^" + "^".join(draw(st.sampled_from(["2", "3", "9", "64"])) for _ in range(depth))
    if kind == 2:  # functions inside functions
        chain = [draw(st.sampled_from(FUNCTIONS[:7])) for _ in range(depth)]
        return "".join(f"{f}(" for f in chain) + name + ")" * depth
    if kind == 3:  # exp towers over constants: SymPy itself never ends on some of them
        opening, closing = draw(st.sampled_from([("e^(", ")"), ("e^{", "}"), ("exp(", ")"), ("sigmoid(-", ")")]))
        inner = draw(
            st.sampled_from(["100", "1", name, "-1000", "1e40", "23000", "-23001", f"1e40 {name}", "1e40 dL/dL"])
        )
        return (
            "("
            + opening * min(depth, 8)
            + inner
            + closing * min(depth, 8)
            + ")"
            + draw(st.sampled_from(["", "⁻¹", "+1", "^2"]))
        )
    if kind == 4:  # long numbers, many of them
        number = draw(st.text("123456789", min_size=1, max_size=45))
        return draw(st.sampled_from(["*", "+", "/", "^"])).join([number] * draw(st.integers(1, 200)))
    if kind == 5:  # superscript runs
        return draw(st.sampled_from([name, "(o)", "2", "o"])) + "²" * draw(st.integers(1, 6_000))
    if kind == 6:  # deep brackets and signs
        return "-(" * depth + name + ")" * depth
    if kind == 7:  # a long sum or product of names
        count = draw(st.integers(1, 1_500))
        return draw(st.sampled_from(["+", "*", " "])).join(draw(st.sampled_from(names(config))) for _ in range(count))
    if kind == 8:  # the expansion the comparison must not attempt
        terms = " + ".join(draw(st.lists(st.sampled_from(names(config)), min_size=2, max_size=12)))
        return f"({terms})^{draw(st.integers(2, 64))} * {draw(st.sampled_from(FUNCTIONS[:5]))}(({terms})^64)"
    return r"\frac{" * min(depth, 20) + name + "}{2}" * min(depth, 20)


# -- properties ----------------------------------------------------------------------------------

CONFIG = st.sampled_from(sorted(CASES))


@fuzz_settings(default=70, long=2_000)
@given(st.data())
def test_formulas_over_the_whole_grammar(data):
    config = data.draw(CONFIG)
    text = data.draw(formulas(config))
    judged(config, text, data.draw(st.sampled_from([None, None, True, False])))


@fuzz_settings(default=40, long=1_000)
@given(st.data())
def test_formulas_with_odd_characters(data):
    config = data.draw(CONFIG)
    judged(config, data.draw(mutated(config)))


@fuzz_settings(default=40, long=1_000)
@given(st.data())
def test_towers_deep_nesting_and_long_numbers(data):
    config = data.draw(CONFIG)
    judged(config, data.draw(extreme(config)), data.draw(st.sampled_from([None, True])))


@fuzz_settings(default=20, long=500)
@given(st.data())
def test_random_text(data):
    config = data.draw(CONFIG)
    judged(
        config,
        data.draw(
            st.text(max_size=80) | st.text(st.sampled_from(ODD + [op for op in OPERATORS if len(op) == 1]), max_size=80)
        ),
    )


# -- the bounded evaluation against SymPy's own (unbounded, adaptive) evaluation ------------------


def reference_value(expr: sympy.Expr, point: Point) -> sympy.Expr | None:
    """SymPy's N at 50 digits after substituting the point's values, or None when it does not answer in time."""
    values = {
        s: sympy.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sympy.Float(v, 60)
        for s, v in point.values.items()
    }
    outcome = run_case(lambda: sympy.N(expr.xreplace(values), 50), seconds=1)
    return outcome.value if outcome.kind == "ok" else None


@fuzz_settings(default=40, long=1_000)
@given(st.data())
def test_values_agree_with_sympy_evalf(data):
    """Where SymPy's N answers, the 60-digit evaluation agrees with it to 30 digits (well-conditioned values)."""
    config = data.draw(CONFIG)
    c = checker(config)
    text = data.draw(formulas(config))
    note(f"{config}: {text!r}")
    try:
        given_ = c.gradients_replaced(parse_formula(text, NameTable(c.symbolic)))
        with bounded():
            ours = c.evaluator.number(given_, c.evaluator.base)
            with mpmath.workdps(120):  # the same at twice the precision: an ill-conditioned value is skipped
                finer = check_numbers._evaluate(given_, Point(c.evaluator.base.values))
    except UserError:
        event("refused")
        return
    if not (check_numbers._real(ours) and check_numbers._real(finer)) or abs(_mp(ours) - _mp(finer)) > 1e-45 * max(
        1, abs(_mp(finer))
    ):
        event("undefined, complex or ill-conditioned")
        return
    reference = reference_value(given_, c.evaluator.base)
    if reference is None or not reference.is_Float and not reference.is_Rational:
        event("SymPy has no number")
        return
    with mpmath.workdps(60):
        assert abs(_mp(ours) - mpmath.mpf(reference)) <= mpmath.mpf("1e-30") * max(1, abs(mpmath.mpf(reference))), (
            ours,
            reference,
        )
    event("agrees")
