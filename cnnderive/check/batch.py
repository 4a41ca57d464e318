"""`check --value` on a mini-batch: the given number against ∂L/∂w = 1/N Σₙ ∂ℓₙ/∂w, and the
batch mistakes named when it matches one of them: the 1/N left out (the plain sum over the
examples), one example only (∂ℓₙ/∂w of a single example), and batch norm's mean and variance
treated as constants (only the path through x̂)."""

from __future__ import annotations

from dataclasses import dataclass

from ..derivation.batch import BatchDerivation
from ..derivation.names import parse_parameter
from ..errors import UserError
from .rounding import rounded_match
from .values import close, exact_rational, parse_value, relative_error

MIN_DIGITS = 3  # a rounded value names a mistake only with this many significant digits
ONE_OVER_N_LEFT_OUT = (
    "the batch 1/N left out",
    (
        "The batch loss is the mean of the examples' losses, L = 1/N (ℓ₁ + … + ℓ_N), so its gradient is 1/N times "
        "the sum of the examples' gradients. Yours is the sum without the 1/N (that is the gradient of "
        "batch_reduction: sum)."
    ),
)
ONE_EXAMPLE_ONLY = (
    "one example only",
    (
        "Yours is the gradient of one example's loss alone. Every example of the batch goes through the same "
        "parameters, so each contributes its own ∂ℓₙ/∂w: add them all (and take 1/N of the sum for the mean)."
    ),
)

BATCH_NORM_CONSTANTS = (
    "batch-norm mean/variance treated as constants",
    (
        "Batch norm's μ and σ² are computed from every example of the batch, so each input reaches the loss by "
        "three paths: through x̂, through σ² and through μ. Yours keeps only the first, ∂L/∂x = γ·∂L/∂y/√(σ² + ε), "
        "as if μ and σ² were constants: add ∂L/∂σ²·2(x − μ)/m and ∂L/∂μ/m."
    ),
)


@dataclass(frozen=True)
class BatchValueVerdict:
    """--value on a batch: the given number against the batch gradient, and the mistake it matches."""

    element: str  # conv1.weight[0,0,0,0]
    symbol: str  # w¹₁₁
    given_text: str
    right: bool
    exact: bool  # compared exactly (a fraction given, a rational gradient)
    value: object  # ∂L/∂w as shown (exact when the examples are)
    approx: float
    relative_error: float | None
    mistake: tuple[str, str] | None  # (name, paragraph)
    example: int | None = None  # which example, for "one example only" (1-based)
    rounded_to: int | None = None


def check_batch_value(derivation: BatchDerivation, param: str, text: str, tol: float) -> BatchValueVerdict:
    """Is `text` ∂L/∂(param) of the batch? If not, is it the sum without 1/N, or one example's gradient?"""
    tensor, index = parse_parameter(derivation.network, param)
    if index is None:
        raise UserError(
            f"{param!r} is a whole tensor: check one element, e.g. {tensor.element((0,) * len(tensor.shape))}",
            field="--param",
        )
    given, fraction = parse_value(text)
    record = derivation.gradients[tensor.name]
    value, approx = record.value[index], float(record.approx[index])
    shown = value if derivation.exact else approx
    exact = fraction and exact_rational(shown) is not None
    right = close(given, shown, tol, exact)
    rounded_to = None if right or fraction else rounded_match(text, shown)
    right = right or rounded_to is not None

    def matches(candidate) -> bool:  # exactly, within tol, or rounded to 3 digits or more
        rounded = None if fraction else rounded_match(text, candidate)
        return close(given, candidate, tol, exact) or (rounded or 0) >= MIN_DIGITS

    mistake, example = (None, None) if right else _mistake(derivation, record, index, matches)
    error = relative_error(given, shown)
    symbol = tensor.unicode(index)
    return BatchValueVerdict(
        tensor.element(index), symbol, text.strip(), right, exact, value, approx, error, mistake, example, rounded_to
    )


def _mistake(derivation: BatchDerivation, record, index, matches):
    parts = [
        part[index] if derivation.exact else float(near[index]) for part, near in zip(record.parts, record.parts_approx)
    ]
    if derivation.scale != 1 and derivation.size > 1:
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        if matches(total):
            return ONE_OVER_N_LEFT_OUT, None
    if derivation.size > 1:
        for n, part in enumerate(parts, start=1):
            if matches(part):
                return ONE_EXAMPLE_ONLY, n
    constant = derivation.constant_stats_gradients()
    if constant is not None:  # only where it differs from the right value (a parameter before batch norm)
        wrong, right = float(constant[record.name][index]), float(record.approx[index])
        if abs(wrong - right) > 1e-9 * max(abs(right), 1e-12) and matches(wrong):
            return BATCH_NORM_CONSTANTS, None
    return None, None
