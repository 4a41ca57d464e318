"""`cnnderive generate` outputs: same seed -> the same bytes, the sheet and key compile, the Moodle
XML follows Moodle's Cloze format, the PrairieLearn server.py imports and grades, bad templates
are one line and exit 2."""

from __future__ import annotations

import importlib.util
import re
import shutil
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
import yaml

from tests.cli_support import run_cli
from tests.conftest import CONFIGS

TEMPLATES = sorted((CONFIGS / "templates").glob("*.yaml"))
SEED001 = CONFIGS / "templates" / "seed001_conv_conv_mse.yaml"
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


def generate(template, folder, *extra) -> None:
    code, stdout, stderr = run_cli(["generate", str(template), "-n", "3", "--seed", "11", "-o", str(folder), *extra])
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {10 if '--pdf' not in extra else 12} files")


def files_of(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_another_seed_other_numbers(tmp_path):
    generate(SEED001, tmp_path / "a")
    generate(SEED001, tmp_path / "b")
    first, second = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert first == second and len(first) == 10
    code, _, stderr = run_cli(["generate", str(SEED001), "-n", "3", "--seed", "12", "-o", str(tmp_path / "c")])
    assert code == 0, stderr
    assert files_of(tmp_path / "c")["sheet.tex"] != first["sheet.tex"]


def test_the_variant_configs_hold_every_number_and_are_the_sheet(tmp_path):
    generate(SEED001, tmp_path)
    config = yaml.safe_load((tmp_path / "variants" / "seed001_conv_conv_mse-02.yaml").read_text())
    assert "seed" not in config and len(config["input"]["values"]) == 3
    sheet = (tmp_path / "sheet.tex").read_text()
    problem = sheet.split(r"\section*{Problem 2}")[1].split(r"\clearpage")[0]
    weight = config["layers"][0]["params"]["weight"]
    row = " & ".join(str(v) for v in weight[0])  # one-decimal numbers print as written
    assert row in problem


@needs_pdflatex
@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_sheet_and_key_compile(tmp_path, template):
    generate(template, tmp_path, "--pdf")
    for name in ("sheet.pdf", "key.pdf"):
        assert (tmp_path / name).read_bytes().startswith(b"%PDF")
    sheet = (tmp_path / "sheet.tex").read_text()
    assert "Worked solution" not in sheet and "Worked solution" in (tmp_path / "key.tex").read_text()


# -- Moodle: the quiz XML format and the Cloze syntax, read by a parser written here --------------

CLOZE = re.compile(r"\{(\d+):NUMERICAL:((?:[^\\}]|\\.)*)\}")


def split_unescaped(text: str, mark: str) -> list[str]:
    parts, current, k = [], "", 0
    while k < len(text):
        if text[k] == "\\":
            current += text[k : k + 2]
            k += 2
            continue
        if text[k] == mark:
            parts.append(current)
            current = ""
        else:
            current += text[k]
        k += 1
    return [*parts, current]


def parse_answer(text: str) -> tuple[int, Fraction, Fraction, str]:
    """One Cloze NUMERICAL answer: (fraction of the marks, value, tolerance, feedback)."""
    answer, *feedback = split_unescaped(text, "#")
    assert len(feedback) == 1, text
    match = re.fullmatch(r"(=|%(\d+)%)(-?\d+(?:\.\d+)?(?:e[-+]\d+)?):(\d+(?:\.\d+)?(?:e[-+]\d+)?)", answer)
    assert match, answer
    percent = 100 if match.group(1) == "=" else int(match.group(2))
    for char in '}#~/"':  # a special character inside feedback is always escaped
        assert re.search(r"(?<!\\)" + re.escape(char), feedback[0].replace("\\\\", "")) is None, feedback[0]
    return percent, Fraction(match.group(3)), Fraction(match.group(4)), feedback[0]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_moodle_xml_is_a_cloze_quiz(tmp_path, template):
    generate(template, tmp_path)
    root = ET.parse(tmp_path / "moodle.xml").getroot()
    assert root.tag == "quiz"
    questions = root.findall("question")
    assert questions[0].get("type") == "category" and questions[0].find("category/text").text
    cloze = questions[1:]
    assert len(cloze) == 3 and {q.get("type") for q in cloze} == {"cloze"}
    asked = yaml.safe_load(template.read_text())["questions"]
    for number, question in enumerate(cloze, 1):
        assert question.find("name/text").text.endswith(f"{number:02d}")
        text = question.find("questiontext")
        assert text.get("format") == "html"
        fields = CLOZE.findall(text.find("text").text)
        assert len(fields) == len(asked)
        config = yaml.safe_load((tmp_path / "variants" / f"{template.stem}-{number:02d}.yaml").read_text())
        assert config["name"]
        for weight, body in fields:
            answers = [parse_answer(part) for part in split_unescaped(body, "~")]
            assert weight == "1" and answers[0][0] == 100 and answers[0][3] == "Right."
            wrong = answers[1:]
            assert wrong and all(
                percent == 0 and feedback.startswith("Not right: ") for percent, _, _, feedback in wrong
            )
            right, tol = answers[0][1], answers[0][2]
            assert tol > 0
            for _, value, wrong_tol, _ in wrong:  # the windows do not overlap: each mistake has its own number
                assert abs(value - right) > tol + wrong_tol
        assert question.find("generalfeedback").get("format") == "html"


def test_cloze_escaping_of_slashes_and_braces():
    from cnnderive.teach.moodle import cloze_escape

    assert cloze_escape('∂L/∂w } # ~ " \\') == '∂L\\/∂w \\} \\# \\~ \\" \\\\'


# -- PrairieLearn: import the folder's server.py and call it as PrairieLearn does -----------------


def load_server(folder):
    spec = importlib.util.spec_from_file_location("pl_server", folder / "server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prairielearn_server_generates_and_grades(tmp_path):
    import json

    from cnnderive.teach.draw import draw_variant
    from cnnderive.teach.template import load_template

    generate(SEED001, tmp_path)
    folder = tmp_path / "prairielearn" / "seed001_conv_conv_mse"
    info = json.loads((folder / "info.json").read_text())
    assert info["type"] == "v3" and len(info["uuid"]) == 36
    html = (folder / "question.html").read_text()
    assert 'answers-name="q1"' in html and 'answers-name="q2"' in html
    server = load_server(folder)
    data = {"params": {}, "correct_answers": {}, "variant_seed": 4242}
    server.generate(data)
    variant = draw_variant(load_template(str(SEED001)), 4242, 1)
    assert data["params"]["config"] == variant.config_text
    first = variant.answers[0]
    assert Fraction(data["correct_answers"]["q1"]) == pytest.approx(first.approx)

    def grade(q1: str, q2: str) -> dict:
        graded = dict(data, submitted_answers={"q1": q1, "q2": q2}, partial_scores={}, feedback={}, format_errors={})
        server.grade(graded)
        return graded

    right = grade(str(first.value), data["correct_answers"]["q2"])  # an exact fraction, and a decimal
    assert right["score"] == 1 and right["partial_scores"]["q1"]["score"] == 1
    sign = next(w for w in first.mistakes if w.names == ("a sign error",))
    slipped = grade(f"{sign.approx:.10g}", "1000")
    assert slipped["score"] == 0
    assert slipped["feedback"]["q1"] == "a sign error"
    assert slipped["partial_scores"]["q1"]["feedback"].startswith("Not right: a sign error.")
    assert slipped["feedback"]["q2"] == ""  # wrong, and no known mistake
    assert "not one of the common mistakes" in slipped["partial_scores"]["q2"]["feedback"]
    unreadable = grade("", "2*(")
    assert unreadable["score"] == 0 and set(unreadable["format_errors"]) == {"q1", "q2"}


# -- bad templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("weight: one_decimal[-0.5,0.5]", "weight: one_decimal[0.5,-0.5]"), "holds no one decimal number"),
        (("weight: one_decimal[-0.5,0.5]", "weight: int[a,b]"), "is not a range"),
        (("  - conv1.weight[0,0,0,0]", "  - conv1.weight[0,0,5,0]"), "questions.0"),
        (("values: int[1,3]", "values: int[0,0]"), "none of 200 draws passed the screen"),
        (("tolerance: 0.01", "tolerance: 2"), "the tolerance is relative"),
    ],
)
def test_bad_template_is_one_line_and_exit_2(tmp_path, change, words):
    text = (CONFIGS / "templates" / "seed000_maxpool_flatten.yaml").read_text()
    assert change[0] in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(change[0], change[1], 1))
    code, _, stderr = run_cli(["generate", str(path), "-n", "2", "-o", str(tmp_path / "out")])
    assert code == 2 and stderr.count("\n") == 1 and words in stderr, stderr
    assert "bad.yaml" in stderr


def test_existing_files_need_force(tmp_path):
    generate(SEED001, tmp_path)
    code, _, stderr = run_cli(["generate", str(SEED001), "-n", "3", "--seed", "11", "-o", str(tmp_path)])
    assert code == 2 and "--force" in stderr
    code, _, stderr = run_cli(["generate", str(SEED001), "-n", "3", "--seed", "11", "-o", str(tmp_path), "--force"])
    assert code == 0, stderr


def test_one_element_winning_several_windows_is_an_accident():
    from cnnderive.config import loads
    from cnnderive.teach.screen import accident

    text = (
        "input: {values: [[1, 2, 1], [2, 9, 3], [1, 4, 1]]}\n"
        "layers: [{type: maxpool2d, kernel_size: 2, stride: 1}, {type: flatten}, {type: linear, out_features: 1}]\n"
        "loss: {type: mse, target: [0]}\n"
    )
    network = loads(text, "overlap")
    assert "element [0, 1, 1] wins several windows" in accident(network, frozenset())
    assert accident(network, frozenset({"shared_winner"})) is None
