"""Moodle XML: one Cloze question per variant, one NUMERICAL field per asked gradient.

In each field the right value is the 100% answer, and each named mistake's value a 0% answer
whose feedback is the mistake's name and explanation, in Moodle's embedded-answers syntax:
{1:NUMERICAL:=v:tol#feedback~%0%w:tol#feedback}. Tolerances are absolute, as Moodle reads them
(the template's relative tolerance times the value).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from .screen import tolerance_of
from .words import answer_text, network_html, question_symbol

CLOZE_SPECIAL = '\\}#~/"'  # escaped with a backslash inside a Cloze field


def cloze_escape(text: str) -> str:
    """Text safe inside a Cloze field's feedback."""
    return "".join("\\" + char if char in CLOZE_SPECIAL else char for char in text)


def number(value: float) -> str:
    """A value for Moodle: 10 significant digits, plain decimal notation where short."""
    return f"{value:.10g}"


def numerical_field(answer, relative: float) -> str:
    """{1:NUMERICAL:=right:tol#Right~%0%wrong:tol#mistake: explanation~...}"""
    parts = [f"={number(answer.approx)}:{number(tolerance_of(answer.approx, relative))}#{cloze_escape('Right.')}"]
    for wrong in answer.mistakes:
        feedback = f"Not right: {' / '.join(wrong.names)}. {wrong.explanation}"
        parts.append(
            f"%0%{number(wrong.approx)}:{number(tolerance_of(wrong.approx, relative))}#{cloze_escape(feedback)}"
        )
    return "{1:NUMERICAL:" + "~".join(parts) + "}"


def question_html(variant, relative: float) -> str:
    """The question text: the network, its numbers, and one field per asked gradient."""
    items = "".join(
        f"<li>\\({question_symbol(a)}\\) <small>(<code>{html.escape(a.name)}</code>)</small> = "
        f"{numerical_field(a, relative)}</li>"
        for a in variant.answers
    )
    percent = f"{relative * 100:g}%"
    return (
        network_html(variant.derivation)
        + f"\n<p>Compute (within {percent}; indices count from 1):</p>\n<ul>{items}</ul>"
    )


def feedback_html(variant) -> str:
    """The general feedback: every right value, exact where it is short."""
    rows = []
    for a in variant.answers:
        exact, decimal = answer_text(a)
        rows.append(f"<li>\\({question_symbol(a)}\\) = {html.escape(exact + ' = ' if exact else '')}{decimal}</li>")
    return "<p>Right values:</p><ul>" + "".join(rows) + "</ul>"


def quiz(template, variants) -> str:
    """The Moodle XML document: a category named after the template, then the questions."""
    root = ET.Element("quiz")
    category = ET.SubElement(ET.SubElement(root, "question", type="category"), "category")
    ET.SubElement(category, "text").text = f"$course$/cnnderive/{template.stem}"
    relative = float(template.tolerance)
    for variant in variants:
        question = ET.SubElement(root, "question", type="cloze")
        ET.SubElement(ET.SubElement(question, "name"), "text").text = f"{template.stem} {variant.number:02d}"
        text = ET.SubElement(question, "questiontext", format="html")
        ET.SubElement(text, "text").text = question_html(variant, relative)
        general = ET.SubElement(question, "generalfeedback", format="html")
        ET.SubElement(general, "text").text = feedback_html(variant)
        ET.SubElement(question, "penalty").text = "0.3333333"
        ET.SubElement(question, "hidden").text = "0"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
