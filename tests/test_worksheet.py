"""`check --answers`: a whole worksheet, each step right, wrong, or carried forward (issue 14, item 3).

Every expected number is worked out here by hand: the seed networks' forward and backward passes
written out (Fractions up to the logits, floats after exp), with the student's slip put in by hand
(the sign of dL/dz flipped, the max-pool gradient sent to the whole window, softmax cross terms
dropped), so that later steps computed from the wrong value are known independently.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction as F

import pytest
import yaml

from tests.cli_support import run_cli
from tests.conftest import CONFIGS

SEED000 = str(CONFIGS / "seed000_maxpool_flatten.yaml")
SEED002 = str(CONFIGS / "seed002_pool_to_fc.yaml")


# -- seed 002: 2x4 input, 2x2 max-pool, flatten, fc 3, half-sum squared error ---------------------

X2 = [[F("0.2"), F("0.9"), F("0.4"), F("0.1")], [F("0.5"), F("0.3"), F("0.8"), F("0.6")]]
W2 = [[F("0.5"), F("-0.2")], [F("0.3"), F("0.8")], [F("-0.6"), F("0.4")]]
B2 = [F("0.1"), F(0), F("-0.1")]
T2 = [1, 0, 1]
WINNERS2 = [(0, 1), (1, 2)]  # 0.9 is the maximum of the left window, 0.8 of the right


def seed002(dz=None, pool_all=False) -> dict:
    """dL/d(every quantity) of seed 002 by hand; `dz` replaces dL/dz (a student's), `pool_all` their slip."""
    p = [X2[r][c] for r, c in WINNERS2]
    z = [B2[k] + sum(W2[k][j] * p[j] for j in range(2)) for k in range(3)]
    dz = [z[k] - T2[k] for k in range(3)] if dz is None else dz  # L = 1/2 Σ (z - t)²
    dp = [sum(W2[k][j] * dz[k] for k in range(3)) for j in range(2)]
    dx = [[F(0)] * 4 for _ in range(2)]
    for j, (r, c) in enumerate(WINNERS2):
        cells = [(i, 2 * j + b) for i in range(2) for b in range(2)] if pool_all else [(r, c)]
        for i, col in cells:
            dx[i][col] += dp[j]
    return {
        "fc.output": dz,
        "fc.weight": [[dz[k] * p[j] for j in range(2)] for k in range(3)],
        "fc.bias": dz,
        "flatten_2.output": dp,
        "maxpool2d_1.output": [[dp]],
        "input": [dx],
    }


# -- seed 000: 5x5 input, 2x2 conv, ReLU, 2x2 max-pool, flatten, fc 3, softmax, cross-entropy -----

X0 = [[1, 0, 2, 1, 0], [0, 1, 3, 1, 2], [2, 1, 0, 1, 1], [1, 2, 1, 0, 3], [0, 1, 2, 2, 1]]
K0 = [[F("0.1"), F("-0.2")], [F("0.4"), F("0.4")]]
W0 = [
    [F(v) for v in row]
    for row in (["0.2", "-0.1", "0.4", "0.3"], ["-0.3", "0.5", "0.1", "-0.2"], ["0.1", "0.2", "-0.4", "0.6"])
]
B0 = [F("0.1"), F("-0.1"), F(0)]


def seed000_forward():
    z1 = [[sum(X0[i + a][j + b] * K0[a][b] for a in range(2) for b in range(2)) for j in range(4)] for i in range(4)]
    a1 = [[max(v, F(0)) for v in row] for row in z1]
    winners = []
    for pi in range(2):
        for pj in range(2):
            cells = [(2 * pi + r, 2 * pj + c) for r in range(2) for c in range(2)]
            winners.append(max(cells, key=lambda rc: (a1[rc[0]][rc[1]], -cells.index(rc))))  # first maximum
    f = [a1[r][c] for r, c in winners]
    logits = [B0[k] + sum(W0[k][j] * f[j] for j in range(4)) for k in range(3)]
    exps = [math.exp(float(s)) for s in logits]
    probs = [e / sum(exps) for e in exps]
    return z1, winners, f, probs


def seed000(dz2=None, pool_all=False) -> dict:
    """dL/d(every quantity) of seed 000 by hand; `dz2` replaces dL/d(logits), `pool_all` the slip at max-pool."""
    z1, winners, f, probs = seed000_forward()
    dz2 = [probs[k] - (k == 1) for k in range(3)] if dz2 is None else dz2  # softmax + cross-entropy, target 1
    df = [sum(float(W0[k][j]) * dz2[k] for k in range(3)) for j in range(4)]
    da = [[0.0] * 4 for _ in range(4)]
    for j, (r, c) in enumerate(winners):
        top, left = 2 * (j // 2), 2 * (j % 2)
        cells = [(top + a, left + b) for a in range(2) for b in range(2)] if pool_all else [(r, c)]
        for i, col in cells:
            da[i][col] += df[j]
    dz1 = [[da[i][j] if z1[i][j] > 0 else 0.0 for j in range(4)] for i in range(4)]
    dk = [[sum(dz1[i][j] * X0[i + a][j + b] for i in range(4) for j in range(4)) for b in range(2)] for a in range(2)]
    return {
        "fc.output": dz2,
        "fc.weight": [[dz2[k] * float(f[j]) for j in range(4)] for k in range(3)],
        "fc.bias": dz2,
        "maxpool2d_3.output": [[df[:2], df[2:]]],
        "relu_2.output": [da],
        "conv1.output": [dz1],
        "conv1.weight": [[dk]],
        "conv1.bias": [sum(map(sum, dz1))],
    }


# -- writing a worksheet and running check -----------------------------------------------------


def text_of(value) -> str:
    """A number as a student writes it: a fraction as p/q (exact), a float with all its digits."""
    if isinstance(value, list):
        return "[" + ", ".join(text_of(v) for v in value) + "]"
    if isinstance(value, F):
        return f'"{value.numerator}/{value.denominator}"' if value.denominator != 1 else str(value.numerator)
    return repr(float(value))


def worksheet(tmp_path, entries: dict, name: str = "answers.yaml") -> str:
    path = tmp_path / name
    path.write_text(
        "".join(f'"{key}": {value if isinstance(value, str) else text_of(value)}\n' for key, value in entries.items())
    )
    return str(path)


def graded(config: str, answers: str) -> tuple[int, dict]:
    code, out, err = run_cli(["check", config, "--answers", answers, "--json"])
    assert err == "", err
    return code, json.loads(out)


def verdicts(document: dict) -> dict[str, str]:
    return {entry["name"]: entry["verdict"] for entry in document["answers"]}


def nested_close(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(nested_close(x, y) for x, y in zip(a, b))
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


# -- the tests -------------------------------------------------------------------------------------


def test_all_right_exits_0_in_backward_order(tmp_path):
    right = seed002()
    entries = {  # written forwards; checked from the loss backwards
        "input": right["input"],
        "p_1_2": right["maxpool2d_1.output"][0][0][1],
        "dL/df_1": right["flatten_2.output"][0],
        "fc.weight": right["fc.weight"],
        "fc.bias[2]": right["fc.bias"][2],
        "fc.output": right["fc.output"],
    }
    code, document = graded(SEED002, worksheet(tmp_path, entries))
    assert code == 0
    assert set(verdicts(document).values()) == {"right"} and document["first_wrong"] is None
    assert [e["canonical"] for e in document["answers"]] == [
        "fc.output",
        "fc.weight",
        "fc.bias[2]",
        "flatten_2.output[0]",
        "maxpool2d_1.output[0,0,1]",
        "input",
    ]
    code, out, _ = run_cli(["check", SEED002, "--answers", str(tmp_path / "answers.yaml")])
    assert code == 0 and "6 right, 0 carried forward, 0 wrong" in out


def test_one_early_mistake_is_the_only_wrong_and_the_rest_is_carried_forward(tmp_path):
    right = seed002()
    flipped = [-v for v in right["fc.output"]]  # the sign of dL/dz: (t - z) for (z - t)
    theirs = seed002(dz=flipped)
    entries = {"fc.output": flipped} | {
        name: theirs[name] for name in ("fc.weight", "fc.bias", "maxpool2d_1.output", "input")
    }
    code, document = graded(SEED002, worksheet(tmp_path, entries))
    assert code == 1
    assert verdicts(document) == {
        "fc.output": "wrong",
        "fc.weight": "carried_forward",
        "fc.bias": "carried_forward",
        "maxpool2d_1.output": "carried_forward",
        "input": "carried_forward",
    }
    first = document["answers"][0]
    assert document["first_wrong"] == "fc.output" and first["mistakes"] == ["sign"]
    for entry in document["answers"]:
        assert set(entry) >= {"name", "yours", "right", "verdict", "mistake", "expected_given_yours"}
        assert nested_close(entry["right"], right[entry["name"]])
        assert nested_close(
            entry["expected_given_yours"], theirs[entry["name"]] if entry is not first else right["fc.output"]
        )
        if entry is not first:  # from the nearest earlier answer that is not right
            assert entry["carried_from"] == ("maxpool2d_1.output" if entry["name"] == "input" else "fc.output")
            assert not nested_close(entry["right"], entry["yours"])  # carried forward, not right by chance


def test_the_shipped_worksheet_has_one_wrong_step_and_the_rest_carried_forward():
    shipped = CONFIGS / "worksheets" / "seed002_sign_error.yaml"
    theirs = seed002(dz=[-v for v in seed002()["fc.output"]])
    written = yaml.safe_load(shipped.read_text())
    assert nested_close(written["fc.weight"], theirs["fc.weight"]) and nested_close(
        written["input"], theirs["input"][0]
    )
    assert [written["b1_1"], written["b1_2"], written["dL/df_1"]] == [
        float(v) for v in theirs["fc.bias"][:2] + theirs["flatten_2.output"][:1]
    ]
    assert F(written["dL/df_2"]) == theirs["flatten_2.output"][1]
    code, document = graded(SEED002, str(shipped))
    assert code == 1 and document["first_wrong"] == "fc.output"
    assert [e["verdict"] for e in document["answers"]] == ["wrong"] + ["carried_forward"] * 6


def test_a_later_independent_mistake_is_wrong_and_named_on_the_students_own_values(tmp_path):
    flipped = [-v for v in seed002()["fc.output"]]
    theirs = seed002(dz=flipped)
    slipped = seed002(dz=flipped, pool_all=True)  # then, from their own dL/dp, the whole window
    entries = {"fc.output": flipped, "maxpool2d_1.output": theirs["maxpool2d_1.output"], "input": slipped["input"]}
    code, document = graded(SEED002, worksheet(tmp_path, entries))
    assert code == 1
    assert verdicts(document) == {"fc.output": "wrong", "maxpool2d_1.output": "carried_forward", "input": "wrong"}
    assert document["answers"][2]["mistakes"] == ["maxpool_all"] and document["first_wrong"] == "fc.output"


def test_seed000_max_pool_to_the_whole_window_then_carried_to_the_conv(tmp_path):
    right, slipped = seed000(), seed000(pool_all=True)
    entries = {name: right[name] for name in ("fc.output", "fc.weight", "maxpool2d_3.output")}
    entries |= {name: slipped[name] for name in ("relu_2.output", "conv1.weight", "conv1.bias")}
    entries["conv1.output"] = slipped["conv1.output"][0]  # 4x4: the leading channel axis of size 1 left out
    code, document = graded(SEED000, worksheet(tmp_path, entries))
    assert code == 1
    found = verdicts(document)
    assert list(found.values()).count("wrong") == 1 and found["relu_2.output"] == "wrong"
    assert [found[n] for n in ("fc.output", "fc.weight", "maxpool2d_3.output")] == ["right"] * 3
    assert [found[n] for n in ("conv1.output", "conv1.weight", "conv1.bias")] == ["carried_forward"] * 3
    wrong = next(e for e in document["answers"] if e["verdict"] == "wrong")
    assert wrong["mistakes"] == ["maxpool_all"] and document["first_wrong"] == "relu_2.output"
    code, out, _ = run_cli(["check", SEED000, "--answers", str(tmp_path / "answers.yaml")])
    out = " ".join(out.split())
    assert "3 right, 3 carried forward, 1 wrong" in out and "First wrong step: ∂L/∂a¹ (relu_2.output)" in out
    assert "max-pool gradient sent to every element of the window" in out


def test_seed000_softmax_cross_terms_dropped_then_everything_carried_forward(tmp_path):
    _, _, _, probs = seed000_forward()
    diagonal = [-(1 - probs[1]) if k == 1 else 0.0 for k in range(3)]  # dL/dp_k · p_k (1 - p_k), no cross terms
    theirs = seed000(dz2=diagonal)
    names = (
        "fc.weight",
        "fc.bias",
        "maxpool2d_3.output",
        "relu_2.output",
        "conv1.output",
        "conv1.weight",
        "conv1.bias",
    )
    code, document = graded(SEED000, worksheet(tmp_path, {"z2": diagonal} | {n: theirs[n] for n in names}))
    found = verdicts(document)
    assert code == 1 and found.pop("z2") == "wrong" and set(found.values()) == {"carried_forward"}
    assert document["answers"][0]["mistakes"] == ["softmax_diagonal"]


def test_right_to_the_digits_given_from_rounded_earlier_answers_is_right(tmp_path):
    """dL/dp from dL/dz rounded to 4 digits, rounded again: right (the rounding is the student's own, no mistake)."""
    right, (_, _, f, _) = seed000(), seed000_forward()
    dz2 = [four_digits(F(v)) for v in right["fc.output"]]  # 4 significant digits, as explain prints them
    products = [[four_digits(dz2[k] * fj) for fj in f] for k in range(3)]  # exact products, rounded
    df = [four_digits(sum(W0[k][j] * dz2[k] for k in range(3))) for j in range(4)]
    true_df = [four_digits(F(v)) for row in right["maxpool2d_3.output"][0] for v in row]
    assert df != true_df, "some dL/dp must round differently, or this test cannot fail"
    entries = {
        "fc.output": matrix(dz2),
        "fc.weight": matrix(products),
        "maxpool2d_3.output": matrix([[df[:2], df[2:]]]),
    }
    code, document = graded(SEED000, worksheet(tmp_path, entries))
    assert code == 0 and set(verdicts(document).values()) == {"right"}


def four_digits(value: F) -> F:
    """The value rounded to 4 significant digits, half up (as a student rounds 0.61815 to 0.6182)."""
    with localcontext() as context:
        context.prec, context.rounding = 4, ROUND_HALF_UP
        return F(+(Decimal(value.numerator) / Decimal(value.denominator)))


def matrix(values) -> str:
    """Nested lists with each number as its shortest decimal (4 digits here)."""
    if isinstance(values, list):
        return "[" + ", ".join(matrix(v) for v in values) + "]"
    return str(Decimal(values.numerator) / Decimal(values.denominator))


def test_a_formula_built_on_an_earlier_wrong_answer_is_carried_forward(tmp_path):
    flipped = [-v for v in seed002()["fc.output"]]
    path = worksheet(tmp_path, {"fc.output": flipped, "fc.bias[0]": '{expr: "y_1 - z1_1"}'})  # their sign again
    code, document = graded(SEED002, path)
    assert code == 1 and verdicts(document) == {"fc.output": "wrong", "fc.bias[0]": "carried_forward"}
    assert document["answers"][1]["yours"] == pytest.approx(float(flipped[0]))


def test_a_batch_worksheet_is_one_example(tmp_path):
    batch = str(CONFIGS / "batch" / "conv_relu_pool_fc_batch2.yaml")
    path = worksheet(tmp_path, {"fc.bias[0]": F(0)})
    code, _, err = run_cli(["check", batch, "--answers", path])
    assert code == 2 and "--example" in err
    code, out, _ = run_cli(["check", batch, "--answers", path, "--example", "2", "--json"])
    assert code == 1 and [e["canonical"] for e in json.loads(out)["answers"]] == ["fc.bias[0]"]


def test_formula_answers(tmp_path):
    path = worksheet(tmp_path, {"fc.bias[1]": '{expr: "z1_2 - y_2"}', "fc.bias[0]": '{expr: "y_1 - z1_1"}'})
    code, document = graded(SEED002, path)
    assert code == 1
    assert verdicts(document) == {"fc.bias[0]": "wrong", "fc.bias[1]": "right"}
    assert document["answers"][0]["mistakes"] == ["sign"] and document["answers"][0]["formula"] == "y_1 - z1_1"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("fc.output: [0, 0, 0]\nfc.wieght[0,0]: 1\n", 2, "unknown name 'fc.wieght[0,0]'"),
        ("fc.bias[0]: 1\nfc.bias[1]: abc\n", 2, "'abc' is not a number"),
        ("fc.output:\n  - 1\n  - two\n  - 3\n", 3, "'two' is not a number"),
        ("fc.bias[0]: true\n", 1, "is not a number"),
        ("fc.output: [1, 2]\n", 1, "expected nested lists of shape [3]"),
        ("fc.output: 1\n", 1, "is the whole tensor [3]"),
        ("fc.bias[0]: [1]\n", 1, "give one number, not a list"),
        ("fc.bias[0]: 1\nb1_1: 2\n", 2, "answered twice"),
        ("target[0]: 1\n", 1, "not a step of the backward pass"),
        ("fc.bias[0]: {formula: x}\n", 1, '{expr: "..."}'),
        ("fc.bias: {expr: z1_1}\n", 1, "a formula answers one element"),
        ('fc.bias[0]: {expr: "z1_1 +"}\n', 1, "fc.bias[0]"),
        ("fc.output: [1, 2\n", 2, "not valid YAML"),
        ("- 1\n", 1, "expected a mapping"),
    ],
)
def test_bad_answers_name_file_and_line_and_exit_2(tmp_path, text, line, words):
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    code, out, err = run_cli(["check", SEED002, "--answers", str(path)])
    assert code == 2 and out == ""
    assert err.startswith(f"cnnderive: error: {path}:{line}: ") and words in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--param", "fc.bias[0]"], "--answers checks a whole worksheet and --param"),
        (["--value", "1"], "--answers checks a whole worksheet and --value"),
    ],
)
def test_answers_excludes_param_value_expr(tmp_path, extra, words):
    path = worksheet(tmp_path, {"fc.bias[0]": F(1)})
    code, _, err = run_cli(["check", SEED002, "--answers", path, *extra])
    assert code == 2 and words in err and len(err.splitlines()) == 1


def test_json_without_answers_and_param_without_value(tmp_path):
    code, _, err = run_cli(["check", SEED002, "--json"])
    assert code == 2 and "--json is for a whole worksheet" in err
    code, _, err = run_cli(["check", SEED002])
    assert code == 2 and "--answers" in err
