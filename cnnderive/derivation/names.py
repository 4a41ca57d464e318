"""Canonical names (`conv1.weight[0,0,1,1]`) and textbook names (w¹₂₂, w^{(1)}_{2,2}, w1_2_2).

Canonical indices are 0-based over the full shape (spec section 2); textbook indices are
1-based, leave out leading channel axes of size 1, and carry the stage as a superscript:
the stage counts conv and linear layers, so z¹ is the first conv's output and a¹ its ReLU.
TextbookNames lists every name of an element (what `cnnderive symbols` prints), so that --param
reads the textbook names as well as the canonical ones.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from math import prod

from ..errors import UserError

_SUPERSCRIPT = str.maketrans("0123456789'", "⁰¹²³⁴⁵⁶⁷⁸⁹′")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class Tensor:
    """A named tensor: the input, a parameter, a layer output, the target or the loss."""

    name: str  # canonical: input, conv1.weight, conv1.output, target, loss
    shape: tuple[int, ...]
    role: str  # input | weight | bias | output | target | loss
    letter: str  # textbook letter: x, w, b, z, a, p, f, ŷ, y, L
    stage: str = ""  # superscript: "1", "2'", or "" for none
    layer: int | None = None  # position of its layer in network.layers

    def element(self, index: tuple[int, ...] = ()) -> str:
        """Canonical name of one element: conv1.weight[0,0,1,1]; `loss` has no index."""
        return self.name + (f"[{','.join(map(str, index))}]" if self.shape else "")

    def shown_index(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """1-based textbook index, without leading channel axes of size 1 on image-like tensors."""
        drop = 0
        while len(self.shape) - drop > 2 and self.shape[drop] == 1:
            drop += 1
        return tuple(i + 1 for i in index[drop:])

    def unicode(self, index: tuple[int, ...] = ()) -> str:
        shown = self.shown_index(index)
        head = self.letter + self.stage.translate(_SUPERSCRIPT)
        if not shown:
            return head
        if len(shown) <= 2 and all(i < 10 for i in shown):
            return head + "".join(str(i) for i in shown).translate(_SUBSCRIPT)
        return head + "[" + ",".join(map(str, shown)) + "]"

    def latex(self, index: tuple[int, ...] = ()) -> str:
        letter = {"ŷ": r"\hat{y}", "γ": r"\gamma", "β": r"\beta"}.get(self.letter, self.letter)
        stage = f"^{{({self.stage})}}" if self.stage else ""
        shown = self.shown_index(index)
        sub = f"_{{{','.join(map(str, shown))}}}" if shown else ""
        return letter + stage + sub

    def ascii(self, index: tuple[int, ...] = ()) -> str:
        letter = {"ŷ": "yhat", "γ": "gamma", "β": "beta"}.get(self.letter, self.letter)
        stage = self.stage.replace("'", "p")
        shown = self.shown_index(index)
        return letter + stage + "".join(f"_{i}" for i in shown)

    def indices(self):
        return itertools.product(*(range(d) for d in self.shape))


def tensors(network) -> dict[str, Tensor]:
    """Every named tensor of the network, in order: input, then per layer params and output, target, loss."""
    found = {"input": Tensor("input", network.input.shape, "input", "x")}
    stage, used = 0, set()
    last = len(network.layers) - 1
    for position, layer in enumerate(network.layers):
        if layer.starts_stage:
            stage += 1
        for param, value in network.params[layer.name].items():
            name = f"{layer.name}.{param}"
            letter = layer.param_letters.get(param) or ("w" if param == "weight" else "b")
            found[name] = Tensor(name, value.shape, param, letter, str(stage), position)
        # layers before the first conv or linear (stage 0) carry no superscript
        final = position == last and layer.kind in ("softmax", "sigmoid")
        letter, mark = ("ŷ", "") if final else (layer.letter, str(stage) if stage else "")
        while (letter, mark) in used:
            mark += "'"
        used.add((letter, mark))
        name = f"{layer.name}.output"
        found[name] = Tensor(name, layer.out_shape, "output", letter, mark, position)
    found["target"] = Tensor("target", network.target.shape, "target", "y")
    found["loss"] = Tensor("loss", (), "loss", "L")
    return found


_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]+)?)(?:\[([0-9 ,]*)\])?\Z")
# letters a student uses for another textbook letter: i for the input x, t for the target y, C for the loss
LETTER_ALIASES = {"i": "x", "t": "y", "yhat": "ŷ", "C": "L"}


class TextbookNames:
    """Every name of each element that `cnnderive symbols` lists: canonical, printed (unicode, typed,
    LaTeX) and the short ones a student types (i_5, w_3^2, o, y), so that --param and formulas read them."""

    def __init__(self, known: dict[str, Tensor]) -> None:
        self.tensors = known
        outputs = [t for t in known.values() if t.role == "output"]
        self.final = outputs[-1] if outputs else known["input"]
        self.stage_outputs = {t.stage: t for t in outputs if t.stage}  # the last output of each stage

    def aliases(self, tensor: Tensor, index: tuple[int, ...]) -> list[str]:
        """The names of one element: the four printed forms first, then the short ones a student types."""
        names = [tensor.element(index), tensor.unicode(index), tensor.ascii(index), tensor.latex(index)]
        shown = tensor.shown_index(index)
        subs = "".join(f"_{i}" for i in shown)
        # one index counted row by row (x_5 on a 3x3 input); not with two digits, which could be x_{1,1}
        flat = (shown[0] - 1) * tensor.shape[-1] + shown[1] if len(shown) == 2 else None
        if flat is not None and len(str(flat)) == 2:
            flat = None
        for letter, stage in self.heads(tensor):
            typed = letter + stage.replace("'", "p")
            names.append(typed + subs)
            if stage:
                names.append(f"{letter}^{{({stage})}}" + (f"_{{{','.join(map(str, shown))}}}" if shown else ""))
            if flat is not None:
                names.append(f"{typed}_{flat}")
                if stage:
                    names += [f"{letter}^{stage}_{flat}", f"{letter}_{flat}^{stage}"]
            if prod(tensor.shape) == 1:
                names.append(typed)
        return names

    def heads(self, tensor: Tensor) -> list[tuple[str, str]]:
        """(ASCII letter, stage) pairs a student may start the tensor's names with."""
        own = [tensor.letter] if tensor.letter.isascii() else []
        letters = own + [alias for alias, letter in LETTER_ALIASES.items() if letter == tensor.letter]
        heads = [(letter, tensor.stage) for letter in letters]
        if tensor is self.final:
            heads.append(("o", ""))
        if tensor.stage and self.stage_outputs.get(tensor.stage) is tensor:
            heads.append(("o", tensor.stage))
        return heads

    def could_name(self, tensor: Tensor, text: str) -> bool:
        """True when text starts as the names of this tensor's elements do (letter and stage, each spelling)."""
        starts = {tensor.unicode(), tensor.latex(), tensor.ascii()}
        for letter, stage in self.heads(tensor):
            starts.add(letter + stage.replace("'", "p"))
            if stage:
                starts |= {f"{letter}^{{({stage})}}", f"{letter}^{stage}_"}
                if text.endswith(f"^{stage}"):  # w_3^1
                    starts.add(f"{letter}_")
        return any(text.startswith(start) for start in starts)

    def find(self, text: str) -> tuple[Tensor, tuple[int, ...]] | None:
        """The element that `text` names exactly as one of its aliases, or None."""
        for tensor in self.tensors.values():
            if not self.could_name(tensor, text):
                continue  # LeNet-5's 48,000 fc1 weights are not spelt out for a name of conv1
            for index in tensor.indices():
                if text in self.aliases(tensor, index):
                    return tensor, index
        return None


def parse_element(network, text: str, option: str = "--param") -> tuple[Tensor, tuple[int, ...] | None]:
    """`conv1.weight[0,0,1,1]` -> (that tensor, (0, 0, 1, 1)); a bare `conv1.weight` gives index None.
    A textbook name that `cnnderive symbols` lists (w1_1_1, w¹₁₁, w^{(1)}_{1,1}, i_5) names one element too."""
    known = tensors(network)
    stripped = text.strip()
    match = _ELEMENT.match(stripped) if len(text) < 200 else None
    if not match or match.group(1) not in known:
        found = TextbookNames(known).find(stripped) if 0 < len(text) < 200 else None
        if found is not None:
            tensor, index = found
            return tensor, index if tensor.shape else None  # L, C: the loss, as `loss` reads
        params = ", ".join(network.parameter_names())
        first = known[network.parameter_names()[0]] if network.parameter_names() else known["input"]
        example = TextbookNames(known).aliases(first, next(first.indices()))[4]
        raise UserError(
            f"unknown name {text!r}; parameters are: {params} "
            f"(or a textbook name that `cnnderive symbols NET.yaml` lists, e.g. {example})",
            field=option,
        )
    tensor = known[match.group(1)]
    if match.group(2) is None:
        return tensor, None
    try:
        index = tuple(int(part.strip()) for part in match.group(2).split(","))
    except ValueError:
        raise UserError(f"{text!r}: an index is whole numbers separated by commas", field=option) from None
    if len(index) != len(tensor.shape) or any(not 0 <= i < d for i, d in zip(index, tensor.shape)):
        shape = "".join(f"[{d}]" for d in tensor.shape)
        raise UserError(
            f"{text!r}: {tensor.name} has shape {shape}, so its index is {len(tensor.shape)} "
            f"numbers, each from 0 to its size - 1 (0-based)",
            field=option,
        )
    return tensor, index


def parse_parameter(network, text: str) -> tuple[Tensor, tuple[int, ...] | None]:
    """Like parse_element, but only a weight or bias is accepted."""
    tensor, index = parse_element(network, text)
    if tensor.role not in ("weight", "bias"):
        params = ", ".join(network.parameter_names())
        raise UserError(f"{text!r} is not a parameter; parameters are: {params}", field="--param")
    return tensor, index


def parse_differentiable(network, text: str) -> tuple[Tensor, tuple[int, ...] | None]:
    """Like parse_element, but only what has a gradient to show: a parameter, the input or a layer output
    (whole or one element), not the target or the loss."""
    tensor, index = parse_element(network, text)
    if tensor.role in ("target", "loss"):
        raise UserError(
            f"{text!r}: --param takes a parameter, the input or a layer output, not the {tensor.role} "
            "(cnnderive symbols NET.yaml lists the names)",
            field="--param",
        )
    return tensor, index
