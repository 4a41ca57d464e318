"""The derivation of a mini-batch: one Derivation per example, and the batch loss and gradients.

L = s·Σₙ ℓₙ with s = 1/N (batch_reduction: mean) or 1 (sum), so ∂L/∂w = s·Σₙ ∂ℓₙ/∂w: each
example contributes its own chain rule (its own kinks, decided exactly on its own values), and
the records here keep every example's part next to the total. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

from ..maths.batch import Batch
from ..maths.batch_run import decide_batch_kinks, has_batch_wide, run_batch
from ..maths.network import Pass
from ..maths.ops import FloatOps, IntervalOps, SympyOps
from .batchnorm import batch_norm_records
from .budget import BUDGET, Budget
from .build import Derivation


@dataclass(frozen=True)
class BatchGradient:
    """∂L/∂w of one parameter tensor: `scale`·Σₙ parts[n], shown exactly when the examples are."""

    name: str  # conv1.weight
    scale: Fraction  # 1/N or 1
    parts: list[np.ndarray]  # ∂ℓₙ/∂w of each example, as shown (SymPy numbers or floats)
    parts_approx: list[np.ndarray]  # the same as floats
    value: np.ndarray  # ∂L/∂w as shown
    approx: np.ndarray  # ∂L/∂w as floats

    @property
    def unscaled(self) -> np.ndarray:
        """Σₙ ∂ℓₙ/∂w as floats: the batch gradient with the 1/N left out."""
        return np.sum(self.parts_approx, axis=0)


class BatchDerivation:
    """A Batch with its passes. It offers what `grad --json` reads of a Derivation (`nearest`,
    `network`, `update`), so the document of spec section 4 holds the batch loss, the N outputs and
    the batch gradients."""

    def __init__(self, batch: Batch, exact: bool | None = None, budget: Budget = BUDGET) -> None:
        batch_wide = has_batch_wide(batch.first.layers)
        if batch_wide:  # batch norm: the kinks are decided on the whole batch, before any example's pass
            decide_batch_kinks(batch)
        first = Derivation(batch.first, exact, budget)
        self.examples = [first] + [Derivation(net, first.exact, budget) for net in batch.examples[1:]]
        self.batch_wide = batch_wide
        if batch_wide:
            _lock_step(self.examples, batch, first.exact)
        self.batch = batch
        self.budget = budget
        self.exact = first.exact
        self.network = batch.first  # names, layers, parameters and shapes: the same in every example
        self.tensors = first.tensors
        self.update = None  # no `train:` step for a batch

    @property
    def size(self) -> int:
        return self.batch.size

    @property
    def scale(self) -> Fraction:
        return self.batch.scale

    def _scaled(self, parts: list, exact: bool):
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        if not exact:  # divide by N rather than multiply by a rounded 1/N
            return total if self.scale == 1 else total / self.size
        return total * self.examples[0].ops.const(self.scale)

    @cached_property
    def nearest(self) -> Pass:
        """The batch as floats: L, the N outputs (stacked), ∂L/∂w. Each example's floats are the nearest
        doubles of its exact values; their mean is within a few units in the last place of the exact mean."""
        passes = [example.nearest for example in self.examples]
        loss = self._scaled([float(p.loss) for p in passes], exact=False)
        outputs = np.stack([np.asarray(p.values[-1], dtype=float) for p in passes])
        grads = {
            name: self._scaled([np.asarray(p.grads[name], dtype=float) for p in passes], exact=False)
            for name in self.network.parameter_names()
        }
        if self.batch_wide and self.exact:  # the sums on the tight intervals (conv bias before batch norm: 0)
            shown, tight = [e.values for e in self.examples], [e.tight for e in self.examples]
            scale = IntervalOps(MIDPOINT_BITS).const(self.scale)
            total = lambda parts: _sum(parts) * scale
            loss = _mid(total([p.loss for p in tight]), self._scaled([p.loss for p in shown], exact=True))
            grads = {
                name: _mids(
                    total([p.grads[name] for p in tight]), self._scaled([p.grads[name] for p in shown], exact=True)
                )
                for name in grads
            }
        return Pass([outputs], loss, [], grads)

    @property
    def floats(self) -> Pass:
        return self.nearest

    @cached_property
    def loss(self) -> tuple[object, float]:
        """(L as shown, L as a float)."""
        shown = [example.values.loss for example in self.examples]
        return (self._scaled(shown, self.exact) if self.exact else self.nearest.loss), self.nearest.loss

    @cached_property
    def gradients(self) -> dict[str, BatchGradient]:
        """Every parameter tensor's batch gradient with each example's part."""
        records = {}
        for name in self.network.parameter_names():
            approx = [np.asarray(example.nearest.grads[name], dtype=float) for example in self.examples]
            parts = [example.values.grads[name] for example in self.examples] if self.exact else approx
            value = self._scaled(parts, exact=True) if self.exact else self.nearest.grads[name]
            records[name] = BatchGradient(name, self.scale, parts, approx, value, self.nearest.grads[name])
        return records

    def gradient_floats(self) -> dict[str, np.ndarray]:
        return self.nearest.grads

    def constant_stats_gradients(self) -> dict[str, np.ndarray] | None:
        """The batch gradients (float64) with batch norm's μ and σ² taken as constants: the named mistake.
        None without batch norm."""
        if not self.batch_wide:
            return None
        passes = run_batch(self.batch, FloatOps(), constant_stats=True)
        return {
            name: self._scaled([p.grads[name] for p in passes], exact=False) for name in self.network.parameter_names()
        }


def _lock_step(examples: list[Derivation], batch: Batch, exact: bool) -> None:
    """Give each example's Derivation the passes of the whole batch run in lock-step (batch norm):
    exact SymPy values when small, with floats that are the midpoints of 192-bit intervals holding
    the exact values (their nearest doubles but for a tie within 2^-140); else float64, as PyTorch."""
    if exact:
        shown = run_batch(batch, SympyOps())
        tight = run_batch(batch, IntervalOps(MIDPOINT_BITS))
        floats = [_midpoints(p, s) for p, s in zip(tight, shown)]
    else:
        floats = run_batch(batch, FloatOps())
        shown = floats
    records = batch_norm_records(batch, shown, floats, SympyOps() if exact else FloatOps())
    for n, (example, record) in enumerate(zip(examples, records)):
        example.__dict__["values"] = shown[n]  # the cached passes of Derivation
        example.__dict__["floats"] = floats[n]
        example.batch_norm = record
        example.tight = tight[n] if exact else None


MIDPOINT_BITS = 192


def _mid(value, exact) -> float:
    """The float of an interval's midpoint; exactly 0 where the exact value is 0."""
    return 0.0 if exact == 0 else float(value.mid)


def _mids(array, exact):
    if array is None:
        return None
    values = np.asarray(array, dtype=object)
    shown = np.asarray(exact, dtype=object)
    out = np.array([_mid(v, e) for v, e in zip(values.flat, shown.flat)], dtype=float)
    return out.reshape(values.shape)


def _midpoints(tight: Pass, shown: Pass) -> Pass:
    """The floats of an exact pass, from the tight intervals of the same pass."""
    return Pass(
        [_mids(v, e) for v, e in zip(tight.values, shown.values)],
        _mid(tight.loss, shown.loss),
        [_mids(d, e) for d, e in zip(tight.deltas, shown.deltas)],
        {name: _mids(g, shown.grads[name]) for name, g in tight.grads.items()},
    )


def _sum(parts: list):
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
