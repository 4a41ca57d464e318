"""Terminal rendering of a `check` verdict: right or wrong, the right answer, the terms, the mistake."""

from __future__ import annotations

import sympy
from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..check.checker import Comparison, ExprVerdict, ValueVerdict
from ..check.mistakes import Mistake
from ..check.stand_ins import StandIn
from ..derivation.records import Term
from .explain_update import decay_lines
from .numbers import DIGITS
from .sympy_names import TextbookPrinter
from .terminal import value_text

LISTED = 24  # terms listed per kind in a term-by-term comparison, and rows of the chain-rule table
LONGEST = 700  # characters of a formula shown


class CheckView:
    """Renders verdicts for one network, with textbook names."""

    def __init__(self, derivation) -> None:
        self.network = derivation.network
        self.printer = TextbookPrinter(derivation)

    def maths(self, expr) -> str:
        return self.printer.doprint(expr)

    def formula(self, label: str, expr) -> Text:
        text = self.maths(expr)
        if len(text) > LONGEST:
            text = text[:LONGEST] + f" … ({len(text):,} characters in all; `cnnderive explain` shows the derivation)"
        return Text(label, style="bold") + Text(text)

    def render(self, verdict: ValueVerdict | ExprVerdict) -> Group:
        if isinstance(verdict, ValueVerdict):
            return Group(*self.value_parts(verdict))
        return Group(*self.expr_parts(verdict))

    # -- pieces --------------------------------------------------------------------------------

    def heading(self, verdict) -> Text:
        asked = verdict.asked
        text = Text("∂L/∂" + asked.tensor.unicode(asked.index), style="bold")
        text.append(f"  ({asked.name})  in {self.network.name}", style="dim")
        return text

    def term_label(self, term: Term) -> str:
        head = "∂L/∂" + term.out.unicode(term.out_index)
        local = local_form(term)
        return head if local == 1 else f"{head}·{self.maths(local)}"

    def terms_table(self, verdict) -> Table:
        asked = verdict.asked
        table = Table(
            title=f"the chain rule: ∂L/∂{asked.tensor.unicode(asked.index)} = the sum of", title_justify="left"
        )
        for column in ("term", "∂L/∂out", "× local factor", "= value"):
            table.add_column(column, justify="right" if column != "term" else "left")
        table.add_column("note")
        live = [t for t in asked.terms if not t.cut]
        shown = {id(t) for t in (live + [t for t in asked.terms if t.cut])[:LISTED]}
        for term in (t for t in asked.terms if id(t) in shown):
            form = local_form(term)
            local = self.maths(form)
            table.add_row(
                self.term_label(term),
                value_text(term.delta),
                local if form.is_number else f"{local} = {value_text(term.local)}",
                value_text(term.value),
                str(term.cut or ""),
                style="dim" if term.cut else None,
            )
        left = [t for t in asked.terms if id(t) not in shown]
        if left:
            cut = sum(1 for t in left if t.cut)
            note = "all cut (their value is 0)" if cut == len(left) else f"{cut} of them cut"
            table.caption = f"… and {len(left)} more terms, {note}"
        return table

    def mistakes(self, found: tuple[Mistake, ...], lead: str) -> list:
        parts: list = []
        for k, mistake in enumerate(found):
            title = Text(lead if k == 0 else "or: ", style="bold")
            title.append(mistake.name, style="bold yellow")
            about = mistake.about
            if len(about) == 1:
                title.append(f": {self.term_label(about[0])} (= {value_text(about[0].value)})")
            elif about:
                title.append(": " + " or ".join(self.term_label(t) for t in about))
                title.append(f" (each = {value_text(about[0].value)})")
            parts += [title, Padding(Text(mistake.explanation), (0, 0, 0, 2))]
        return parts

    # -- --value ---------------------------------------------------------------------------------

    def value_parts(self, verdict: ValueVerdict) -> list:
        given_digits = len(verdict.given_text.lstrip("-−0.").replace(".", "").split("e")[0].split("E")[0])
        right_value = value_text(verdict.asked.value, verdict.asked.approx, max(DIGITS, given_digits + 2))
        parts: list = [self.heading(verdict)]
        if verdict.rounded_to is not None:
            parts.append(
                Text.assemble(
                    (f"✓ right to {verdict.rounded_to} significant digits: ", "bold green"),
                    f"the gradient {right_value} rounds to {verdict.given_text}; "
                    "give more digits (or a wider --tol) to check it closer",
                )
            )
            return parts
        if verdict.right:
            how = "exactly" if verdict.exact or verdict.relative_error == 0 else f"within relative {verdict.tol:g}"
            parts.append(
                Text.assemble(
                    ("✓ right: ", "bold green"), f"{verdict.given_text} equals the gradient {right_value} {how}"
                )
            )
            return parts
        error = "" if verdict.relative_error is None else f" (relative error {verdict.relative_error:.3g})"
        parts.append(
            Text.assemble(
                ("✗ wrong: ", "bold red"), f"you gave {verdict.given_text}; the gradient is {right_value}{error}"
            )
        )
        if verdict.asked.form is not None:
            parts.append(self.formula("right formula: ", verdict.asked.form))
        if verdict.asked.terms:
            parts.append(self.terms_table(verdict))
        parts += decay_lines(verdict.asked)  # ∂J/∂w = ∂L/∂w + λ·w, when the parameter is decayed
        if verdict.mistakes:
            parts += self.mistakes(verdict.mistakes, "Your value is what you get with ")
        else:
            parts.append(
                Text("No common mistake gives this value: compare your terms with the table above.", style="dim")
            )
        return parts

    # -- --expr ----------------------------------------------------------------------------------

    def expr_parts(self, verdict: ExprVerdict) -> list:
        parts: list = [self.heading(verdict), self.formula("yours: ", verdict.given)]
        renamed = [
            f"{written} = {self.maths(symbol)}" for written, symbol in verdict.read_as if written != self.maths(symbol)
        ]
        if renamed:
            parts.append(
                Text("  (read " + ", ".join(renamed[:16]) + (", …" if len(renamed) > 16 else "") + ")", style="dim")
            )
        right = self.formula("right: ", verdict.asked.form)
        if any(symbol.name.startswith("dL/d") for symbol in verdict.given.free_symbols) and verdict.asked.terms:
            step = " + ".join(self.term_label(t) for t in verdict.asked.terms if not t.cut) or "0"
            right = Group(Text("the chain rule, one step: ", style="bold") + Text(step), right)
        if verdict.verdict == "identical":
            parts.append(
                Text.assemble(
                    ("✓ right: ", "bold green"),
                    "the same function of the inputs and parameters as the chain rule's "
                    f"(value here {value_text(verdict.right_value)}{self.kinks_fixed()})",
                )
            )
            return parts + [self.stand_in(note) for note in verdict.stand_ins]
        if verdict.verdict == "same_value":
            parts.append(
                Text.assemble(
                    ("✗ wrong: ", "bold red"),
                    f"the same value here ({value_text(verdict.right_value)}), but not the same formula",
                )
            )
            parts.append(right)
            parts += self.nearby(verdict)
        else:
            parts.append(
                Text.assemble(
                    ("✗ wrong: ", "bold red"),
                    f"yours is {value_text(verdict.yours_value)} here, the gradient is {value_text(verdict.right_value)}",
                )
            )
            parts.append(right)
        parts += self.mistakes(verdict.mistakes, "Mistake: ")
        if verdict.comparison is not None:
            parts += self.comparison(verdict.comparison)
        return parts

    def stand_in(self, note: StandIn) -> Text:
        yours, chain = self.maths(note.yours), self.maths(note.chain)
        why = f"both are {self.maths(note.element)} here" if note.element is not None else "they are equal here"
        through = " and ".join(self.kink_words("s")) or "numbers"
        return Text.assemble(
            ("note: ", "bold yellow"),
            f"the chain-rule term uses {chain}, not {yours}: {why} (through this config's {through}), so yours "
            f"is right for these numbers, but {yours} and {chain} can differ for others.",
        )

    def kinks_fixed(self) -> str:
        words = self.kink_words("s")
        return f"; {' and '.join(words)} as in this config" if words else ""

    def kink_words(self, plural: str = "") -> list[str]:
        """The kinds of kink this network has, in words: ReLU mask(s), max-pool choice(s)."""
        kinds = {layer.kind for layer in self.network.layers}
        return ["ReLU mask" + plural] * bool(kinds & {"relu", "leaky_relu"}) + ["max-pool choice" + plural] * (
            "maxpool2d" in kinds
        )

    def nearby(self, verdict: ExprVerdict) -> list:
        near = verdict.nearby
        if near is None:
            return [Text("(no nearby point where they differ was found)", style="dim")]
        if near.changes:
            symbol, old, new = near.changes[0]
            where = f"with {self.maths(symbol)} = {value_text(new)} instead of {value_text(old)}"
        else:
            where = "with every input and parameter 0.1 larger"
        if near.across_kink:
            kinds = {layer.kind for layer in self.network.layers}
            kinks = " or ".join("a " + words for words in self.kink_words()) or "a kink"
            text = (
                f"They agree near here wherever this config's kinks are decided as here, and differ only across "
                f"one: {where}, {kinks} changes, and there the chain rule above is not the gradient (so no value "
                "from there is quoted)."
            )
            if near.exact_kink:
                conventions = ["ReLU'(0) = 0"] * ("relu" in kinds) + ["leaky ReLU'(0) = its slope"] * (
                    "leaky_relu" in kinds
                )
                conventions += ["a tie's gradient to its first maximum"] * ("maxpool2d" in kinds)
                text += (
                    " This config sits exactly on a kink, where the derivative is a convention (PyTorch: "
                    + "; ".join(conventions)
                    + ")."
                )
            return [Text(text)]
        return [
            Text(
                f"They differ nearby: {where}, yours is {value_text(near.yours)} "
                f"and the gradient is {value_text(near.right)}."
            )
        ]

    def comparison(self, comparison: Comparison) -> list:
        head = "Term by term"
        if comparison.common != 1:
            head += f", after taking out the common factor {self.maths(comparison.common)}"
        parts: list = [Text(head + ":", style="bold")]
        if comparison.skipped:
            return parts + [Text(f"  not compared: {comparison.skipped}", style="dim")]
        parts.append(Text(f"  {comparison.matching} term{_s(comparison.matching)} match"))
        parts += self.listing("missing (in the chain rule, not in yours)", comparison.missing)
        parts += self.listing("extra (in yours, not in the chain rule)", comparison.extra)
        if comparison.wrong:
            rows = [
                f"{self.monomial(m)}: yours {self.maths(yours)}, right {self.maths(good)}"
                for m, yours, good in comparison.wrong
            ]
            parts.append(Text(f"  {len(rows)} with the wrong coefficient: " + "; ".join(rows[:LISTED])))
        return parts

    def listing(self, what: str, terms) -> list:
        if not terms:
            return [Text(f"  {what}: none", style="dim")]
        shown = [self.monomial(m, c) for m, c in terms[:LISTED]]
        more = f" … and {len(terms) - LISTED} more" if len(terms) > LISTED else ""
        return [Text(f"  {len(terms)} {what}: " + ", ".join(shown) + more)]

    def monomial(self, m, coefficient=1) -> str:
        if m == 1:
            return self.maths(coefficient) if coefficient != 1 else "1 (the common factor itself)"
        return self.maths(coefficient * m)


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def local_form(term: Term) -> sympy.Expr:
    """d(out)/d(element) as a formula: the closed form when built, else the factor's symbol or the number."""
    if term.local_form is not None:
        return term.local_form
    if term.factor is not None:
        return sympy.Symbol(term.factor.element(term.factor_index), real=True)
    return sympy.sympify(term.local)
