"""SymPy expressions printed with textbook names (w¹₁₁, z²₁₁, y₁) instead of canonical ones.

SymPy does the maths; this printer only changes notation, by overriding `_print_<Class>`.
Symbols are named by their canonical names (`conv1.weight[0,0,0,0]`, `dL/dconv1.output[0,0,1]`);
`Symbolic.owner` / `Symbolic.delta_owner` map them back to (Tensor, index), which knows the
textbook name. Two styles:

Both styles write factors and terms in the one textbook order of `notation` (upstream gradient,
data, parameters, then sums: ∂L/∂z¹₁₂·x₁₂, x₁₁·w¹₁₁ + … + b¹₁):

- "plain" (default): `·` for products, `^` for powers: text that the `check --expr` parser reads back.
- "textbook": small powers raised ((w²₁₁)²), √, short decimals. What `explain` prints.
"""

from __future__ import annotations

from typing import ClassVar

import sympy
from sympy import Add, Mul, Pow, S
from sympy.core.sorting import default_sort_key
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from .notation import OTHER, element_key

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class TextbookPrinter(StrPrinter):
    """StrPrinter with each element symbol shown by its textbook name, · for products.

    `names` is a ready dict Symbol -> name, or a Symbolic or a Derivation (whose elements give the
    names, in the form chosen by the `names` setting: unicode, ascii or canonical, and the order).
    """

    printmethod = "_textbook"
    _default_settings: ClassVar[dict] = {**StrPrinter._default_settings, "names": "unicode", "style": "plain"}

    def __init__(self, names=None, settings: dict | None = None) -> None:
        super().__init__(settings)
        if self._settings["names"] not in ("unicode", "ascii", "canonical"):
            raise ValueError(f"names must be unicode, ascii or canonical, not {self._settings['names']!r}")
        if self._settings["style"] not in ("plain", "textbook"):
            raise ValueError(f"style must be plain or textbook, not {self._settings['style']!r}")
        self.names: dict = names if isinstance(names, dict) else {}
        if isinstance(names, dict) or names is None:
            self.owner, self.delta_owner = {}, {}
        elif hasattr(names, "owner"):  # a Symbolic
            self.owner, self.delta_owner = dict(names.owner), dict(names.delta_owner)
        else:  # a Derivation: the same symbols as Symbolic's, looked up by name when printed
            self.owner, self.delta_owner = ElementOwners(names.tensors), ElementOwners(names.tensors, "dL/d")
        self.textbook = self._settings["style"] == "textbook"

    # names ------------------------------------------------------------------------------------

    def _name(self, tensor, index) -> str:
        style = self._settings["names"]
        if style == "canonical":
            return tensor.element(index)
        return tensor.ascii(index) if style == "ascii" else tensor.unicode(index)

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if expr in self.names:
            return self.names[expr]
        if expr in self.owner:
            return self._name(*self.owner[expr])
        if expr in self.delta_owner:
            head = "dL/d" if self._settings["names"] == "ascii" else "∂L/∂"
            return head + self._name(*self.delta_owner[expr])
        return expr.name

    def _print_Float(self, expr) -> str:
        return f"{float(expr):.6g}" if self.textbook else super()._print_Float(expr)

    # order ------------------------------------------------------------------------------------

    def _rank(self, factor) -> tuple:
        base = factor.base if factor.is_Pow else factor
        if base.is_Number:
            return (0, 0, ())
        if base in self.delta_owner:
            return element_key(*self.delta_owner[base], is_delta=True)
        if base in self.owner:
            return element_key(*self.owner[base])
        return (OTHER, 0, ())

    def ordered_factors(self, expr) -> list:
        """The factors of a product in the order they are printed (notation.element_key)."""
        return sorted(Mul.make_args(expr), key=lambda f: (self._rank(f), default_sort_key(f)))

    def _as_ordered_terms(self, expr, order=None) -> list:
        if (order or self.order) not in (None, "textbook"):
            return super()._as_ordered_terms(expr, order)
        return sorted(Add.make_args(expr), key=self._term_key)

    def _term_key(self, term) -> tuple:
        ranks = tuple(self._rank(f) for f in self.ordered_factors(term) if not f.is_Number)
        return ranks, default_sort_key(term)

    def ordered_terms(self, expr) -> list:
        """The terms of a sum in the order they are printed (a non-sum is one term)."""
        return self._as_ordered_terms(expr) if isinstance(expr, Add) else [expr]

    # products and powers ----------------------------------------------------------------------

    def _print_Mul(self, expr) -> str:
        prec = precedence(expr)
        coeff, rest = expr.as_coeff_Mul()
        sign = ""
        if coeff.is_negative:
            coeff, sign = -coeff, "-"
        numer, denom = [], []
        if coeff.is_Rational:
            if coeff.p != 1:
                numer.append(S(coeff.p))
            if coeff.q != 1:
                denom.append(S(coeff.q))
        elif coeff != 1:
            numer.append(coeff)
        for factor in self.ordered_factors(rest) if rest != 1 else []:
            if factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative:
                denom.append(factor.base if factor.exp == -1 else Pow(factor.base, -factor.exp))
            else:
                numer.append(factor)
        top = "·".join(self.parenthesize(f, prec, strict=False) for f in numer) or "1"
        if not denom:
            return sign + top
        bottom = "·".join(self.parenthesize(f, prec, strict=False) for f in denom)
        return sign + top + "/" + (f"({bottom})" if len(denom) > 1 else bottom)

    def _print_Pow(self, expr, rational=False) -> str:
        base, exp = expr.base, expr.exp
        prec = precedence(expr)
        if exp is S.Half:
            return f"√({self._print(base)})" if self.textbook else f"sqrt({self._print(base)})"
        if exp.is_Rational and exp.is_negative:
            inverse = base if exp == -1 else Pow(base, -exp)
            return "1/" + self.parenthesize(inverse, precedence(Mul(2, base, evaluate=False)), strict=False)
        if not self.textbook:
            return f"{self.parenthesize(base, prec, strict=False)}^{self.parenthesize(exp, prec, strict=False)}"
        shown = self._print(base)
        if not (base.is_Symbol and len(shown) == 1) and not (base.is_Number and base.is_nonnegative):
            shown = f"({shown})"
        if exp.is_Integer and self._settings["names"] == "unicode":
            return shown + str(exp).translate(_SUPERSCRIPT)
        return f"{shown}^{self.parenthesize(exp, prec, strict=False)}"


class ElementOwners:
    """Symbol -> (tensor, index), read off the symbol's canonical name (`conv1.weight[0,0,1,1]`).

    A mapping that builds nothing up front: a big network has a million elements, and a printed
    formula names a handful of them.
    """

    def __init__(self, tensors: dict, prefix: str = "") -> None:
        self.tensors, self.prefix = tensors, prefix

    def get(self, symbol: object) -> tuple | None:
        name = getattr(symbol, "name", None)
        if not isinstance(name, str) or not name.startswith(self.prefix):
            return None
        head, _, rest = name[len(self.prefix) :].partition("[")
        tensor = self.tensors.get(head)
        if tensor is None:
            return None
        try:
            index = tuple(int(part) for part in rest.rstrip("]").split(",")) if rest else ()
        except ValueError:
            return None
        return (tensor, index) if len(index) == len(tensor.shape) else None

    def __contains__(self, symbol: object) -> bool:
        return self.get(symbol) is not None

    def __getitem__(self, symbol: object) -> tuple:
        found = self.get(symbol)
        if found is None:
            raise KeyError(symbol)
        return found
