"""A PrairieLearn question folder: info.json, question.html, template.yaml and a thin server.py.

server.py's generate(data) draws a variant of the template (from PrairieLearn's variant seed) and
grade(data) runs cnnderive's checker on each submitted value or formula: score 1 when right, else 0
with the recognised mistake's name (data["feedback"]) and explanation (the partial score's
feedback). The question's Python needs cnnderive installed where PrairieLearn runs it.
"""

from __future__ import annotations

import hashlib
import html
import json
import uuid

from ..errors import UserError
from .words import network_html, question_symbol

SERVER_PY = '''"""PrairieLearn server code written by `cnnderive generate`: a variant of template.yaml is drawn
for each student, and each answer is graded by cnnderive's checker (`cnnderive check`)."""

import os

from cnnderive.teach.prairielearn import generate_data, grade_data

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.yaml")


def generate(data):
    generate_data(data, TEMPLATE)


def grade(data):
    grade_data(data, TEMPLATE)
'''


def answer_name(k: int) -> str:
    return f"q{k + 1}"


def info_json(template) -> str:
    """info.json; its uuid is derived from the template text, so regenerating keeps it."""
    digest = hashlib.sha256(template.text.encode("utf-8")).hexdigest()
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cnnderive-generate:{digest}")),
        "title": f"Backpropagation: {template.stem}",
        "topic": "Backpropagation",
        "tags": ["cnnderive", "backpropagation"],
        "type": "v3",
    }
    return json.dumps(info, indent=2) + "\n"


def question_html(template, variant) -> str:
    """The question page: the network (from params) and one input per asked gradient."""
    percent = f"{float(template.tolerance) * 100:g}%"
    lines = [
        "<pl-question-panel>",
        "  {{{params.network_html}}}",
        f"  <p>Compute each gradient: a number (within {percent}), a fraction, or a formula in the names of",
        "  the network (as <code>cnnderive check --expr</code> reads them). Indices count from 1.</p>",
        "</pl-question-panel>",
    ]
    for k, answer in enumerate(variant.answers):
        name = answer_name(k)
        lines += [
            f"<p>\\({question_symbol(answer)}\\) <small>(<code>{html.escape(answer.name)}</code>)</small></p>",
            f'<pl-string-input answers-name="{name}" label="\\(=\\)" size="40"></pl-string-input>',
            f"<pl-submission-panel>{{{{#feedback.{name}}}}}<p>{{{{feedback.{name}}}}}</p>{{{{/feedback.{name}}}}}</pl-submission-panel>",
        ]
    return "\n".join(lines) + "\n"


def folder_files(template, variant) -> dict[str, str]:
    """The files of the question folder, by name."""
    return {
        "info.json": info_json(template),
        "question.html": question_html(template, variant),
        "server.py": SERVER_PY,
        "template.yaml": template.text,
    }


# -- what server.py calls ---------------------------------------------------------------------------


def generate_data(data: dict, template_path: str) -> None:
    """PrairieLearn's generate(): a variant from the variant seed, its network and the right values."""
    from .draw import draw_variant
    from .template import load_template

    template = load_template(template_path)
    variant = draw_variant(template, int(data.get("variant_seed") or 0), 1)
    params, correct = data.setdefault("params", {}), data.setdefault("correct_answers", {})
    params["network_html"] = network_html(variant.derivation)
    params["config"] = variant.config_text
    for k, answer in enumerate(variant.answers):
        params[answer_name(k)] = {"element": answer.name, "symbol": question_symbol(answer)}
        correct[answer_name(k)] = f"{answer.approx:.10g}"


def grade_data(data: dict, template_path: str) -> None:
    """PrairieLearn's grade(): each answer checked by cnnderive's checker, the mistake named."""
    from ..config import loads
    from ..derivation.build import Derivation
    from .template import load_template

    template = load_template(template_path)
    derivation = Derivation(loads(data["params"]["config"], "variant"))
    scores, feedback = data.setdefault("partial_scores", {}), data.setdefault("feedback", {})
    errors = data.setdefault("format_errors", {})
    total = 0.0
    for k, question in enumerate(template.questions):
        name = answer_name(k)
        submitted = str(data.get("submitted_answers", {}).get(name, "")).strip()
        try:
            right, mistakes = check_answer(derivation, question, submitted, float(template.tolerance))
        except UserError as error:
            errors[name] = error.message
            scores[name] = {"score": 0, "weight": 1, "feedback": error.message}
            continue
        if right:
            words = "Right."
        elif mistakes:
            words = f"Not right: {' / '.join(m.name for m in mistakes)}. {mistakes[0].explanation}"
        else:
            words = "Not right, and not one of the common mistakes cnnderive knows."
        feedback[name] = " / ".join(m.name for m in mistakes)
        scores[name] = {"score": 1 if right else 0, "weight": 1, "feedback": words}
        total += 1 if right else 0
    data["score"] = total / max(1, len(template.questions))


def check_answer(derivation, question: str, submitted: str, tolerance: float):
    """(right, the recognised mistakes) for a submitted value or formula; a UserError if unreadable."""
    from ..check.checker import Checker
    from ..check.values import parse_value

    if not submitted:
        raise UserError("no answer given")
    checker = Checker(derivation, question)
    try:
        parse_value(submitted)
    except UserError:
        verdict = checker.check_expr(submitted)
    else:
        verdict = checker.check_value(submitted, tolerance)
    return verdict.right, verdict.mistakes
