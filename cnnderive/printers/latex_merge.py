"""LaTeX for graphs: where a tensor is read by several layers, dL/d(it) is the sum of their parts."""

from __future__ import annotations

from .explain_merge import COPIES
from .latex_math import number, partial
from .latex_words import head, tt


def fork_section(doc, fork) -> str:
    """The parts each reader sends back, one worked element with numbers, and the sum."""
    x = head(fork.tensor)
    names = " and ".join(tt(step.layer.name) for step in fork.readers)
    adds = any(step.layer.kind == "add" for step in fork.readers)
    out = [
        doc.heading(1, f"Where {tt(fork.tensor.name)} is read by {len(fork.readers)} layers"),
        (
            f"${x}$ is read by {names}{' (' + COPIES + ')' if adds else ''}, so ${partial(x)}$ is the sum of the "
            f"parts they send back: the chain rule adds one term per path from ${x}$ to $L$ (summed, not averaged)."
        ),
    ]
    for step, part, approx in zip(fork.readers, fork.parts, fork.parts_approx):
        out.append(f"From {tt(step.layer.name)}:")
        out.append(doc.tensor_display(fork.tensor, part, approx, gradient=True))
    index = fork.worked_index()
    terms = " + ".join(_term(part[index], approx[index]) for part, approx in zip(fork.parts, fork.parts_approx))
    total = number(fork.total[index], approx=fork.total_approx[index]).tex
    out.append(f"\\[ {partial(fork.tensor.latex(index))} = {terms} = {total} \\]")
    out.append("The sum:")
    out.append(doc.tensor_display(fork.tensor, fork.total, fork.total_approx, gradient=True))
    return "\n".join(out)




def _term(value, approx) -> str:
    tex = number(value, approx=approx).tex
    return f"\\left({tex}\\right)" if tex.startswith("-") else tex
