"""`check --updated`: is a hand-computed new weight (after the config's `train:` step) right, and if
not, is it what momentum applied to the gradient, or λw left out of the step, gives?

The right new weight and each mistaken one come from derivation/update.py (the step as PyTorch's SGD
takes it, and `mistaken_weight`); with several steps a mistake is the last step done wrong after
right ones. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..derivation.names import Tensor
from ..derivation.update import TensorStep, Update, mistaken_weight
from ..errors import UserError
from .explanations import network_features
from .mistakes import Mistake, mistake
from .rounding import rounded_match
from .values import _same_number, close, exact_rational, parse_value, relative_error

# a key of update.MISTAKES -> the key of its name and paragraph in explanations.EXPLANATIONS
STEP_MISTAKES = {"momentum_on_gradient": "momentum_on_gradient", "decay_left_out": "step_decay_left_out"}


@dataclass(frozen=True)
class UpdatedVerdict:
    """--updated --value: the given number against the new weight after the last step."""

    tensor: Tensor
    index: tuple[int, ...]
    update: Update
    step: TensorStep  # the asked tensor in the last step
    given: Fraction
    given_text: str
    right: bool
    exact: bool  # compared exactly (a fraction given, an exact new weight)
    relative_error: float | None
    tol: float
    mistakes: tuple[Mistake, ...]
    rounded_to: int | None = None

    @property
    def value(self) -> object:
        """The right new weight (exact where the update is)."""
        return self.step.new_weight.exact[self.index]

    @property
    def approx(self) -> float:
        return float(self.step.new_weight.approx[self.index])


def check_updated(derivation, tensor: Tensor, index: tuple[int, ...], text: str, tol: float) -> UpdatedVerdict:
    """Is `text` the new value of one parameter element after the config's SGD step(s)?"""
    if tensor.role not in ("weight", "bias"):
        raise UserError(
            f"--updated checks a parameter's new value; {tensor.element(index)} is not a parameter "
            f"(parameters: {', '.join(derivation.network.parameter_names())})",
            field="--param",
        )
    update = derivation.update
    if update is None:
        raise UserError("--updated needs a `train:` section in the config (lr, and momentum)", field="--updated")
    step = next(t for t in update.steps[-1].tensors if t.name == tensor.name)
    given, fraction = parse_value(text)
    value = step.new_weight.exact[index]
    exact = fraction and exact_rational(value) is not None
    right = close(given, value, tol, exact)
    rounded_to = None if right or fraction else rounded_match(text, value)
    right = right or rounded_to is not None
    found = []
    if not right:
        features = network_features(derivation.network)
        for key, explained in STEP_MISTAKES.items():
            wrong = mistaken_weight(update, step, key)
            if wrong is None or _same_number(wrong[index], value):
                continue
            if close(given, wrong[index], tol, exact):
                found.append(mistake(explained, features))
    error = relative_error(given, value)
    return UpdatedVerdict(
        tensor, index, update, step, given, text.strip(), right, exact, error, tol, tuple(found), rounded_to
    )
