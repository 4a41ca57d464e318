"""`check --answers`: a worksheet's verdicts as a table (what is right, wrong, carried forward) or JSON."""

from __future__ import annotations

import json

import numpy as np
from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..check.worksheet import CARRIED, RIGHT, WRONG, Graded, Worksheet
from ..check.worksheet_answers import Answer
from ..derivation.floats import nearest_double
from .numbers import shown

SHOWN_ELEMENTS = 8  # elements of a whole tensor shown in a table cell; the rest are counted
VERDICT_STYLE = {RIGHT: "bold green", CARRIED: "bold cyan", WRONG: "bold red"}


def gradient_name(answer: Answer) -> str:
    """∂L/∂z²₁, or ∂L/∂z² for a whole tensor: the textbook name."""
    return "∂L/∂" + answer.tensor.unicode(answer.index or ())


def gradient_label(graded: Graded) -> str:
    """∂L/∂z²₁ (fc.output[0]): the textbook and the canonical name."""
    return f"{gradient_name(graded.answer)} ({graded.answer.name})"


def values_text(values, formula: str | None = None) -> str:
    """One value, or a whole tensor's first elements in row-major order."""
    texts = [shown(v)[0] for v in values[:SHOWN_ELEMENTS]]
    body = texts[0] if len(values) == 1 else "[" + ", ".join(texts) + (", …]" if len(values) > SHOWN_ELEMENTS else "]")
    return f"{formula} = {body}" if formula else body


def yours_text(graded: Graded) -> str:
    formula = graded.answer.formula
    if formula is not None:
        return values_text([g.value for g in graded.givens], formula)
    texts = [g.text for g in graded.givens]
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts[:SHOWN_ELEMENTS]) + (", …]" if len(texts) > SHOWN_ELEMENTS else "]")


def verdict_text(graded: Graded) -> Text:
    if graded.verdict == RIGHT:
        return Text("✓ right", style=VERDICT_STYLE[RIGHT])
    if graded.verdict == CARRIED:
        text = Text("→ carried forward", style=VERDICT_STYLE[CARRIED])
        return text + Text(f" (right given your {gradient_name(graded.carried_from)})")
    text = Text("✗ wrong", style=VERDICT_STYLE[WRONG])
    if graded.expr is not None and graded.expr.verdict == "same_value":
        text.append(" (the right value here, not the right formula: see check --expr)")
    elif graded.mistakes:
        text.append(f" ({graded.mistakes[0].name})")
    return text


def worksheet_view(worksheet: Worksheet, network) -> Group:
    """The table, a count, and the first wrong step explained."""
    table = Table(title=f"worksheet on {network.name}, from the loss backwards", title_justify="left")
    for column in ("step", "yours", "right value", "verdict"):
        table.add_column(column, overflow="fold")
    for graded in worksheet.graded:
        table.add_row(gradient_label(graded), yours_text(graded), values_text(graded.right), verdict_text(graded))
    counts = {v: sum(1 for g in worksheet.graded if g.verdict == v) for v in (RIGHT, CARRIED, WRONG)}
    summary = Text(f"{counts[RIGHT]} right, {counts[CARRIED]} carried forward, {counts[WRONG]} wrong")
    return Group(table, summary, *first_wrong_parts(worksheet, network.source))


def first_wrong_parts(worksheet: Worksheet, source: str) -> list:
    graded = worksheet.first_wrong
    if graded is None:
        return []
    name = gradient_label(graded)
    parts: list = [
        Text.assemble(
            ("First wrong step: ", "bold"),
            f"{name}: you gave {yours_text(graded)}; the gradient is {values_text(graded.right)}",
        )
    ]
    if graded.differs:
        parts.append(Text(f"  (given your earlier answers it is {values_text(graded.expected)})"))
    if not graded.mistakes:
        parts.append(
            Text(
                f"No common mistake gives this value: `cnnderive explain {source} --param {graded.answer.name}` "
                "shows this step term by term.",
                style="dim",
            )
        )
    for k, mistake in enumerate(graded.mistakes):
        lead = "Your value is what you get with " if k == 0 else "or: "
        parts += [
            Text.assemble((lead, "bold"), (mistake.name, "bold yellow")),
            Padding(Text(mistake.explanation), (0, 0, 0, 2)),
        ]
    later = sum(1 for g in worksheet.graded if g.verdict == CARRIED)
    if later:
        parts.append(
            Text(f"{later} later step{'s' if later > 1 else ''} carried forward: right from your own earlier values.")
        )
    return parts


def worksheet_document(worksheet: Worksheet) -> dict:
    """For graders: each answer with its verdict and values (nearest doubles, nested as the tensor)."""
    entries = []
    for graded in worksheet.graded:
        answer = graded.answer
        entry = {
            "name": answer.written,
            "canonical": answer.name,
            "yours": _doubles([g.value for g in graded.givens], graded),
            "right": _doubles(graded.right, graded),
            "verdict": graded.verdict,
            "mistake": graded.mistakes[0].name if graded.mistakes else None,
            "mistakes": [m.key for m in graded.mistakes],
            "expected_given_yours": _doubles(graded.expected, graded),
            "carried_from": graded.carried_from.written if graded.carried_from else None,
        }
        if answer.formula is not None:
            entry["formula"] = answer.formula
        entries.append(entry)
    first = worksheet.first_wrong
    return {"answers": entries, "first_wrong": first.answer.written if first else None}


def render_json(worksheet: Worksheet) -> str:
    """The document, one answer a line."""
    document = worksheet_document(worksheet)
    lines = ",\n".join(f"  {json.dumps(entry, ensure_ascii=False)}" for entry in document["answers"])
    return (
        '{\n "answers": [\n'
        + lines
        + f'\n ],\n "first_wrong": {json.dumps(document["first_wrong"], ensure_ascii=False)}\n}}'
    )


def _doubles(values, graded: Graded):
    doubles = [nearest_double(v) for v in values]
    if not graded.whole:
        return doubles[0]
    return np.array(doubles, dtype=float).reshape(graded.answer.tensor.shape).tolist()
