"""The SGD step of the config's `train:` (PyTorch's SGD, dampening 0), each step computed exactly.

With g = dJ/dw (weight decay included, as PyTorch's `weight_decay` adds λ·w to the gradient):
v' = μ·v + g and w' = w - lr·v', or without momentum w' = w - lr·g. How exact the numbers are:

- a rational network (MSE, no exp or tanh): every step in fractions; step k + 1 reruns the
  derivation on the weights of step k (its kinks decided afresh);
- otherwise one step (the config allows no more): the new weights are irrational, so they are
  shown as their nearest doubles, computed in interval arithmetic at rising precision (the exact
  SymPy forms ride along where the derivation has them); for networks too big for intervals the
  step runs in float64 on the nearest doubles of g, as PyTorch would.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import UserError
from ..maths.numbers import as_fraction
from ..maths.ops import FloatOps, IntervalOps, RationalOps
from .budget import work
from .floats import PRECISIONS, fraction_double, interval_double, interval_midpoint

MAX_BITS = 20_000  # bits of one exact weight (about 6,000 digits) after which more steps are refused


@dataclass(frozen=True)
class Values:
    """One array as the printers show it: `exact` (Fractions, SymPy numbers; floats where nothing
    exact is known) and `approx`, the nearest doubles."""

    exact: np.ndarray
    approx: np.ndarray


@dataclass(frozen=True)
class TensorStep:
    """One parameter tensor through one step."""

    name: str  # canonical: fc1.weight
    weight: Values  # w before the step (the config's numbers or the last step's)
    gradient: Values  # g = dJ/dw at w
    loss_gradient: Values | None  # dL/dw = g - λ·w, when the tensor is decayed
    decay: Values | None  # λ·w, when the tensor is decayed
    velocity: Values | None  # v before the step; None without momentum
    new_velocity: Values | None  # v' = μ·v + g; None without momentum
    new_weight: Values  # w' = w - lr·v' (or w - lr·g)


@dataclass(frozen=True)
class Step:
    """One SGD step: the loss J at the weights it starts from, and every parameter tensor's update."""

    number: int  # 1, 2, ...
    loss: object
    loss_approx: float
    tensors: tuple[TensorStep, ...]


@dataclass(frozen=True)
class Update:
    """Every step of the config's `train:`, and how its numbers were obtained."""

    lr: Fraction
    momentum: Fraction
    rate: Fraction  # λ of the weight decay (0: none)
    steps: tuple[Step, ...]
    how: str  # "exact" | "nearest" (exact values, each rounded once) | "float64" (PyTorch's arithmetic)
    loss_after: object | None = None  # J at the final weights (rational networks)
    loss_after_approx: float | None = None

    def final(self) -> dict[str, np.ndarray]:
        """The final weights as nearest doubles, by parameter tensor."""
        return {t.name: t.new_weight.approx for t in self.steps[-1].tensors}

    def final_velocity(self) -> dict[str, np.ndarray] | None:
        """The final velocities as nearest doubles (the next step's `velocity:`), or None without momentum."""
        if self.momentum == 0:
            return None
        return {t.name: t.new_velocity.approx for t in self.steps[-1].tensors}


def sgd_update(derivation) -> Update | None:
    """The update of `derivation.network.train`, or None when the config has no `train:`."""
    network = derivation.network
    train = network.train
    if train is None:
        return None
    if network.is_rational() and work(network) <= derivation.budget.nearest_work:
        return _exact_steps(derivation)
    if train.steps > 1:
        raise UserError(
            f"this network is too big to take {train.steps} exact steps ({work(network):,} multiply-adds); "
            "ask for steps: 1"
        )
    if work(network) <= derivation.budget.nearest_tail_work:
        return _nearest_step(derivation)
    return _float_step(derivation)


def _velocity(train, name: str, shape: tuple) -> np.ndarray | None:
    """v of one tensor before the first step: as given, else 0 (PyTorch's first step: buffer = g); None
    without momentum."""
    if train.momentum == 0:
        return None
    given = train.velocity.get(name)
    return given if given is not None else np.full(shape, Fraction(0), dtype=object)


def _sgd(w, g, v, lr, momentum):
    """(v', w'): PyTorch's SGD with dampening 0, on any number track; without momentum (v None) v' is None."""
    if v is None:
        return None, w - g * lr
    new_v = v * momentum + g
    return new_v, w - new_v * lr


def _decay(network, name: str) -> np.ndarray | None:
    """λ·w exactly (Fractions) for a decayed tensor, else None."""
    if not network.decay.applies(name.split(".")[1]):
        return None
    return network.decay.gradient(network.parameter(name), RationalOps())


def _exact(values: np.ndarray | None) -> Values | None:
    """Exact rationals and their nearest doubles."""
    return None if values is None else Values(values, FloatOps().array(values))


def _exact_steps(derivation) -> Update:
    """Every step in fractions: a rational network's gradients are exact rationals."""
    network, train = derivation.network, derivation.network.train
    velocity = {name: _velocity(train, name, network.parameter(name).shape) for name in network.parameter_names()}
    steps = []
    for number in range(1, train.steps + 1):
        run = network.run(RationalOps()) if number > 1 or not derivation.exact else _as_fractions(derivation.values)
        tensors, new_params = [], {layer.name: dict(network.params[layer.name]) for layer in network.layers}
        for name in network.parameter_names():
            w, g, decay = network.parameter(name), run.grads[name], _decay(network, name)
            new_v, new_w = _sgd(w, g, velocity[name], train.lr, train.momentum)
            _check_size(new_w, number)
            loss_gradient = None if decay is None else g - decay
            values = [w, g, loss_gradient, decay, velocity[name], new_v, new_w]
            tensors.append(TensorStep(name, *map(_exact, values)))
            layer, param = name.split(".")
            new_params[layer][param] = new_w
            velocity[name] = new_v
        steps.append(Step(number, run.loss, fraction_double(run.loss), tuple(tensors)))
        network = network.with_params(new_params)
    after = network.run(RationalOps()).loss
    return Update(train.lr, train.momentum, network.decay.rate, tuple(steps), "exact", after, fraction_double(after))


def _as_fractions(run):
    """The exact SymPy pass of a rational network, as Fractions (already computed: no new pass)."""
    grads = {name: _fractions(g) for name, g in run.grads.items()}
    return type(run)(run.values, as_fraction(run.loss), run.deltas, grads)


def _fractions(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [as_fraction(v) for v in values.flat]
    return out


def _check_size(values: np.ndarray, number: int) -> None:
    biggest = max(max(q.numerator.bit_length(), q.denominator.bit_length()) for q in values.flat)
    if biggest > MAX_BITS:
        fewer = f"at most {number - 1} steps" if number > 1 else "numbers with fewer digits"
        raise UserError(
            f"after step {number} the exact weights have about {int(biggest * 0.30103):,} digits; ask for {fewer}"
        )


def _nearest_step(derivation) -> Update:
    """One step of a network with exp or tanh: dL/dw, v' and w' enclosed in intervals, at rising
    precision, until each rounds to one double (else the midpoint, the best guess, at 2400 bits)."""
    network, train = derivation.network, derivation.network.train
    for bits in PRECISIONS:
        ops = IntervalOps(bits)
        grads = network.run(ops).grads
        settled, rounded = True, {}
        for name in network.parameter_names():
            w, v, decay = network.parameter(name), _velocity(train, name, grads[name].shape), _decay(network, name)
            new_v, new_w = _sgd(ops.array(w), grads[name], _on(ops, v), ops.const(train.lr), ops.const(train.momentum))
            loss_gradient = None if decay is None else grads[name] - ops.array(decay)
            rounded[name] = [_round(a) for a in (loss_gradient, new_v, new_w)]
            settled &= all(done for _, done in filter(None, rounded[name]))
        if settled:
            break
    exact = derivation.values.grads if derivation.exact else None  # SymPy forms, shown when short
    tensors = []
    for name in network.parameter_names():
        w, v, decay = (
            network.parameter(name),
            _velocity(train, name, network.parameter(name).shape),
            _decay(network, name),
        )
        near = derivation.floats.grads[name]
        r_loss, r_v, r_w = (None if r is None else r[0] for r in rounded[name])
        g, loss_gradient, new_v, new_w = near, r_loss, r_v, r_w  # without exact forms: the doubles
        if exact is not None:
            g = exact[name]
            new_v, new_w = _sgd(w, g, v, train.lr, train.momentum)
            loss_gradient = None if decay is None else g - decay
        tensors.append(
            TensorStep(
                name,
                _exact(w),
                Values(g, near),
                None if decay is None else Values(loss_gradient, r_loss),
                _exact(decay),
                _exact(v),
                None if v is None else Values(new_v, r_v),
                Values(new_w, r_w),
            )
        )
    step = Step(1, derivation.values.loss, float(derivation.floats.loss), tuple(tensors))
    return Update(train.lr, train.momentum, network.decay.rate, (step,), "nearest")


def _on(ops, values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else ops.array(values)


def _round(values: np.ndarray | None) -> tuple[np.ndarray, bool] | None:
    """Intervals as the doubles both ends round to, and whether every one did (None stays None)."""
    if values is None:
        return None
    out, settled = np.empty(values.shape, dtype=np.float64), True
    for position, value in np.ndenumerate(values):
        double = interval_double(value)
        if double is None:
            settled, double = False, interval_midpoint(value)
        out[position] = double
    return out, settled


def _float_step(derivation) -> Update:
    """One step in float64 from the nearest doubles of g, as PyTorch computes it (networks too big for
    intervals); the weights before it and v stay exact, λ·w is a float too."""
    network, train = derivation.network, derivation.network.train
    floats = FloatOps()
    tensors = []
    for name in network.parameter_names():
        w, g = network.parameter(name), derivation.floats.grads[name]
        v = _velocity(train, name, w.shape)
        decay = floats.array(w) * float(network.decay.rate) if network.decay.applies(name.split(".")[1]) else None
        new_v, new_w = _sgd(floats.array(w), g, _on(floats, v), float(train.lr), float(train.momentum))
        loss_gradient = None if decay is None else g - decay
        tensors.append(
            TensorStep(
                name,
                _exact(w),
                Values(g, g),
                None if decay is None else Values(loss_gradient, loss_gradient),
                None if decay is None else Values(decay, decay),
                _exact(v),
                None if v is None else Values(new_v, new_v),
                Values(new_w, new_w),
            )
        )
    step = Step(1, derivation.floats.loss, float(derivation.floats.loss), tuple(tensors))
    return Update(train.lr, train.momentum, network.decay.rate, (step,), "float64")


# --- the named mistakes of an update, for `check` to recognise a wrong new weight -------------------

MISTAKES = {
    "decay_left_out": "λw left out: the step used ∂L/∂w instead of ∂J/∂w = ∂L/∂w + λ·w",
    "momentum_on_gradient": "momentum applied to the gradient instead of the velocity: v + μ·g instead of μ·v + g",
}


def mistaken_weight(update: Update, tensor: TensorStep, mistake: str) -> np.ndarray | None:
    """The new weight a student gets with `mistake` (a key of MISTAKES), exact where the update is;
    None when the mistake changes nothing here (no weight decay on this tensor, or no momentum)."""
    w, g, v = tensor.weight.exact, tensor.gradient.exact, None if tensor.velocity is None else tensor.velocity.exact
    if mistake == "decay_left_out":
        if tensor.decay is None:
            return None
        return _sgd(w, tensor.loss_gradient.exact, v, update.lr, update.momentum)[1]
    if mistake == "momentum_on_gradient":
        if v is None:
            return None
        return w - (v + g * update.momentum) * update.lr
    raise KeyError(mistake)
