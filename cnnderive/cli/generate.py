"""`cnnderive generate`: exercise variants from a template, as a problem sheet, an answer key,
Moodle XML and a PrairieLearn question."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import guarded, options_of

EPILOG = (
    "Examples:\n\n"
    "cnnderive generate configs/templates/seed001_conv_conv_mse.yaml -n 30 --seed 1 -o sheets --pdf\n\n"
    "cnnderive generate configs/templates/seed002_pool_to_fc.yaml -n 5 -o quiz"
)


@guarded
def generate(
    ctx: typer.Context,
    template: Annotated[
        str, typer.Argument(help="the template: a config with ranges like int[-2,2]", metavar="TEMPLATE.yaml")
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="the folder to write into (made if missing)", metavar="DIR")
    ],
    count: Annotated[int, typer.Option("-n", "--count", help="how many variants", min=1, max=500)] = 30,
    seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same files", min=0)] = 0,
    pdf: Annotated[bool, typer.Option("--pdf", help="also compile sheet.pdf and key.pdf with pdflatex")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace files that exist")] = False,
) -> None:
    """Draw screened variants of TEMPLATE and write sheet.tex, key.tex, moodle.xml, prairielearn/ and variants/."""
    from ..errors import UserError
    from ..files import check_outputs, write_atomic
    from ..teach import moodle, prairielearn, sheet
    from ..teach.draw import draw_variants
    from ..teach.template import load_template

    if os.path.exists(output) and not os.path.isdir(output):
        raise UserError(f"{output} is not a folder", field="-o")
    parsed = load_template(template)
    files = {"sheet.tex": None, "key.tex": None, "moodle.xml": None}
    question = os.path.join("prairielearn", parsed.stem)
    names = [
        *files,
        *(os.path.join(question, name) for name in ("info.json", "question.html", "server.py", "template.yaml")),
    ]
    names += [os.path.join("variants", f"{parsed.stem}-{k:02d}.yaml") for k in range(1, count + 1)]
    names += ["sheet.pdf", "key.pdf"] if pdf else []
    if pdf:
        from .latex import _pdf_path

        _pdf_path(os.path.join(output, "sheet.tex"), False)  # pdflatex installed: said before any work
    for folder in (output, os.path.join(output, question), os.path.join(output, "variants")):
        os.makedirs(folder, exist_ok=True)
    check_outputs([(os.path.join(output, name), "-o") for name in names], force)

    variants = draw_variants(parsed, count, seed, options_of(ctx).max_work)
    written = {
        "sheet.tex": sheet.sheet(parsed, variants),
        "key.tex": sheet.key(parsed, variants),
        "moodle.xml": moodle.quiz(parsed, variants),
    }
    for name, text in prairielearn.folder_files(parsed, variants[0]).items():
        written[os.path.join(question, name)] = text
    for variant in variants:
        header = f"# variant {variant.number} of {os.path.basename(template)}, seed {seed} (cnnderive generate)\n"
        written[os.path.join("variants", f"{parsed.stem}-{variant.number:02d}.yaml")] = header + variant.config_text
    if pdf:
        from .latex import run_pdflatex

        written["sheet.pdf"] = run_pdflatex(written["sheet.tex"])
        written["key.pdf"] = run_pdflatex(written["key.tex"])
    for name, data in written.items():
        write_atomic(os.path.join(output, name), data, force)
    draws = sum(v.draws for v in variants)
    typer.echo(f"wrote {len(written)} files to {output}: {count} variants ({draws} draws, {draws - count} rejected)")
