"""`explain` for batch norm in training mode: the batch statistics forward, the three paths backward.

It reads the BatchNormRecord of the example (derivation/batchnorm.py); no maths here.
"""

from __future__ import annotations

from rich.text import Text

from ..maths.numbers import as_fraction
from .explain_view import View, equation, indent, prose, value_line
from .matrices import number_text

MAX_CHANNELS = 4  # channels whose statistics are written out one by one


def _record(view: View, step):
    return view.derivation.batch_norm.get(step.position)


def _channel_lines(record) -> list:
    """One line per channel: μ, σ², and 1/√(σ² + ε) with the root kept (exact where the batch is small)."""
    lines = []
    stats, near = record.stats, record.stats_approx
    channels = len(stats.mean)
    for c in range(min(channels, MAX_CHANNELS)):
        exact = as_fraction(stats.shifted[c])
        root = f"1/√({exact}) " if exact is not None else ""
        pad = " " * len(f"channel {c + 1}: ")
        lines += [
            equation(f"channel {c + 1}: μ {value_line(stats.mean[c], float(near.mean[c]))}"),
            equation(f"{pad}σ² {value_line(stats.variance[c], float(near.variance[c]))}"),
            equation(f"{pad}1/√(σ² + ε) = {root}{value_line(stats.inverse_root[c], float(near.inverse_root[c]))}"),
        ]
    if channels > MAX_CHANNELS:
        lines.append(Text(f"… {channels - MAX_CHANNELS} more channels", style="dim"))
    return lines


def batchnorm_forward(view: View, step) -> list:
    record = _record(view, step)
    x, y = step.input.unicode(), step.output.unicode()
    layer = step.layer
    items = [
        equation(f"{y} = γ·x̂ + β,  x̂ = ({x} − μ)/√(σ² + ε),  ε = {number_text(layer.eps)}"),
        prose(
            "Training mode: μ and σ² are the mean and variance of each channel over the whole batch "
            f"(every example{', every position' if len(step.input.shape) == 3 else ''}: m = "
            f"{record.count if record else '?'} numbers), so this example's output depends on the other examples too. "
            + (
                f"σ² = Σ({x} − μ)²/(m − 1) (unbiased, as asked)."
                if layer.unbiased
                else f"σ² = Σ({x} − μ)²/m (biased, as PyTorch normalises in training)."
            )
            + " ε stays an exact fraction and the square root is kept as a root."
        ),
    ]
    if record is not None:
        items += _channel_lines(record)
    params = view.network.params[layer.name]
    for param in params:
        tensor = view.derivation.tensors[f"{layer.name}.{param}"]
        items.append(view.tensor_view(tensor, params[param], tensor.unicode()))
    items.append(view.tensor_view(step.output, step.values, y, approx=view.floats.values[step.position + 1]))
    return items


def batchnorm_backward(view: View, step, delta_in) -> list:
    record = _record(view, step)
    x, y = step.input.unicode(), step.output.unicode()
    m = "m − 1" if step.layer.unbiased else "m"
    items = [
        prose(
            f"{x} reaches the loss by three paths: through x̂ directly, through the variance σ² and through the "
            "mean μ (both computed from every example). Treating μ and σ² as constants keeps only the first path: "
            "a named mistake."
        ),
        equation(f"∂L/∂x̂ = γ·∂L/∂{y}"),
        equation("path 1 (x̂):  ∂L/∂x̂ / √(σ² + ε)"),
        equation(f"∂L/∂σ² = Σ ∂L/∂x̂·({x} − μ)·(−½)(σ² + ε)^(−3/2)   (the sum over the whole batch)"),
        equation(f"path 2 (σ²):  ∂L/∂σ²·2({x} − μ)/({m})"),
        equation("∂L/∂μ = −Σ ∂L/∂x̂ / √(σ² + ε)   (its part through σ² is 0: Σ(x − μ) = 0)"),
        equation("path 3 (μ):  ∂L/∂μ / m"),
        prose(
            "From here back, the gradients are those of the sum of the examples' losses (ℓ₁ + … + ℓ_N): batch norm "
            "hands every example's loss to every example. The batch's ∂L/∂w is 1/N (or 1) times the sum of the "
            "examples' parts, as below."
        ),
    ]
    if record is None:
        return items
    n = record.example
    for label, field in (("∂L/∂σ²", "d_variance"), ("∂L/∂μ", "d_mean")):
        for c in range(min(len(getattr(record.paths, field)), MAX_CHANNELS)):
            value, near = getattr(record.paths, field)[c], getattr(record.paths_approx, field)[c]
            items.append(equation(f"channel {c + 1}: {label} {value_line(value, float(near))}"))
    for label, field in (("path 1", "through_xhat"), ("path 2", "through_variance"), ("path 3", "through_mean")):
        shown, near = getattr(record.paths, field)[n], getattr(record.paths_approx, field)[n]
        items.append(indent(view.tensor_view(step.input, shown, f"{label} to ∂L/∂{x}", approx=near)))
    if delta_in is not None:
        items.append(
            view.tensor_view(step.input, delta_in, f"∂L/∂{x} (the three paths added)", approx=step.delta_in_approx)
        )
    layer = step.layer
    for param, rule in (("weight", f"Σ ∂L/∂{y}·x̂"), ("bias", f"Σ ∂L/∂{y}")):
        tensor = view.derivation.tensors[f"{layer.name}.{param}"]
        name = f"{layer.name}.{param}"
        items.append(prose(f"This example's part of ∂L/∂{tensor.unicode()} = {rule} (over its positions):"))
        items.append(
            view.tensor_view(
                tensor, view.derivation.values.grads[name], f"∂/∂{tensor.unicode()}", approx=view.floats.grads[name]
            )
        )
    return items
