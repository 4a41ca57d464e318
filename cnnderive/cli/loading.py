"""Loading a config that may hold a mini-batch: a Derivation for one example, a BatchDerivation for several."""

from __future__ import annotations

from .common import Options


def load_any(path: str, options: Options | None = None, exact: bool | None = None):
    """The derivation of a config: Derivation (one example) or BatchDerivation (a batch)."""
    from ..config.build import load_any as read
    from ..derivation.batch import BatchDerivation
    from ..derivation.build import Derivation
    from ..maths.batch import Batch

    options = options if options is not None else Options()
    found = read(path, max_work=options.max_work)
    if isinstance(found, Batch):
        return BatchDerivation(found, exact=exact)
    return Derivation(found, exact=exact)


def example_of(derivation, example: int | None):
    """Example `example` (1-based) of a batch alone, or the derivation as it is; a UserError when out of range."""
    from ..derivation.batch import BatchDerivation
    from ..errors import UserError

    if example is None:
        return derivation
    if not isinstance(derivation, BatchDerivation):
        raise UserError("--example is for a config whose input is a batch; this one has one example", field="--example")
    if not 1 <= example <= derivation.size:
        raise UserError(f"--example {example}: the batch has examples 1 to {derivation.size}", field="--example")
    return derivation.examples[example - 1]
