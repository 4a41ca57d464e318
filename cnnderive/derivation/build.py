"""The derivation model: plain records of the maths that every printer renders.

Nothing here prints; the terminal, LaTeX and JSON printers only read these records.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..maths.network import Network, Pass
from ..maths.ops import FloatOps, SympyOps
from .budget import BUDGET, Budget, work
from .floats import nearest_pass
from .names import Tensor, tensors
from .records import ElementGradient
from .terms import parameter_gradient


class Derivation:
    """A network with its passes: floats always, exact values (SymPy) when the network is small."""

    def __init__(self, network: Network, exact: bool | None = None, budget: Budget = BUDGET) -> None:
        self.network = network
        self.budget = budget
        self.exact = work(network) <= budget.exact_limit(network) if exact is None else exact
        self.ops = SympyOps() if self.exact else FloatOps()
        self.tensors = tensors(network)
        self.batch_norm: dict = {}  # layer position -> BatchNormRecord, for an example of a batch with batch norm
        self.tight = None  # its pass on 192-bit intervals, for an exact example of a batch with batch norm

    @cached_property
    def floats(self) -> Pass:
        """Every value as a float: the nearest double of the exact value (computed from exact fractions,
        or at rising precision after exp/tanh, so saturated outputs and exact zeros come out right),
        or the float64 pass, as PyTorch computes, for networks too big for that."""
        budget = self.budget
        return nearest_pass(self.network, budget.nearest_work, budget.nearest_tail_work) or self.network.run(FloatOps())

    @cached_property
    def values(self) -> Pass:
        """The pass that is shown: exact SymPy numbers for small networks, floats otherwise."""
        return self.network.run(self.ops) if self.exact else self.floats

    @property
    def nearest(self) -> Pass:
        return self.floats

    def gradient_floats(self) -> dict[str, np.ndarray]:
        """Every gradient as floats: the nearest double to the exact value where that is cheap."""
        return self.nearest.grads

    def array(self, tensor: Tensor, exact: bool = True) -> np.ndarray:
        """The values of a named tensor: exact (when the network is small) or as floats."""
        run = self.values if exact else self.floats
        ops = self.ops if exact else FloatOps()
        if tensor.role == "loss":
            return np.array(run.loss, dtype=object if exact and self.exact else float)
        if tensor.role == "input":
            return run.values[0]
        if tensor.role == "target":
            return ops.array(self.network.target)
        if tensor.role == "output":
            return run.values[tensor.layer + 1]
        return ops.array(self.network.parameter(tensor.name))

    def layer_tensor(self, position: int) -> Tensor:
        return self.tensors[f"{self.network.layers[position].name}.output"]

    def input_tensor(self, position: int) -> Tensor:
        """The tensor layers[position] reads (the first one, for add and concat)."""
        return self.value_tensor(self.network.inputs_of(position)[0])

    def input_tensors(self, position: int) -> tuple[Tensor, ...]:
        """Every tensor layers[position] reads: one, or several for add and concat."""
        return tuple(self.value_tensor(v) for v in self.network.inputs_of(position))

    def value_tensor(self, value: int) -> Tensor:
        """The tensor of Pass.values[value]: the input (0) or the output of layers[value - 1]."""
        return self.tensors["input"] if value == 0 else self.layer_tensor(value - 1)

    @cached_property
    def update(self):
        """The SGD step(s) of the config's `train:` (derivation.update.Update), or None without one."""
        from .update import sgd_update

        return sgd_update(self)

    def gradient(self, tensor: Tensor, index: tuple[int, ...]) -> ElementGradient:
        """The chain-rule terms of one parameter element, with values and why any term is cut."""
        if tensor.role in ("weight", "bias") and self.network.layers[tensor.layer].batch_wide:
            from ..errors import UserError

            raise UserError(
                f"{tensor.name}: a batch-norm parameter's gradient sums over the whole batch (Σ ∂L/∂n·x̂ for γ, "
                "Σ ∂L/∂n for β); see it in `explain` (the batch-norm block) or `grad --param`",
                field="--param",
            )
        return parameter_gradient(self, tensor, index)

    def element_gradient(self, tensor: Tensor, index: tuple[int, ...], symbolic=None) -> ElementGradient | None:
        """dL/d(any element) as a record: a parameter's always; the input's or a layer output's from the
        closed forms (`symbolic`, derivation.symbolic.Symbolic), None when the network is too big for them."""
        if tensor.role in ("weight", "bias"):
            return self.gradient(tensor, index)
        if symbolic is None:
            return None
        from .terms import intermediate_gradient

        return intermediate_gradient(symbolic, tensor, index)
