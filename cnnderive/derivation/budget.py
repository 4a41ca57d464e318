"""Every "is it small enough?" decision in one place: a new limit is one `Budget` field.

Work is counted in multiply-adds of one forward pass; expression sizes in SymPy tree nodes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How big a network or an expression may be for each kind of exact or symbolic work."""

    exact_work: int = 20_000  # exact SymPy values for a rational network up to this many multiply-adds ...
    exact_work_transcendental: int = 2_000  # ... or this many with exp or tanh inside (exact forms grow per layer)
    exact_transcendental_layers: int = 1  # ... and at most this many exp/tanh layers before the loss's own
    rules_work: int = 5_000  # every element's forward rule built symbolically (explain, latex)
    closed_form_work: int = 5_000  # check compares formulas (hand-sized networks)
    symbolic_work: int = 80_000  # closed forms built at all
    nearest_work: int = 1_000_000  # floats as nearest doubles through one exact pass in fractions ...
    nearest_tail_work: int = 5_000  # ... and interval arithmetic from the first exp/tanh layer on
    expand_terms: int = 5_000  # a fully expanded form with more terms is refused, not printed
    expand_nodes: int = 4_000  # ... and so is one whose expression over inputs and parameters is bigger
    shown_form_nodes: int = 12  # an exact form printed in full next to its decimal (terminal)
    shown_form_nodes_latex: int = 40  # ... in LaTeX
    factored_form_nodes: int = 300  # a closed form bigger than this is not even factored (LaTeX)

    def exact_limit(self, network) -> int:
        """The size up to which exact values are computed: rational forms stay small, exp/tanh forms do not.

        Exact forms nest with every exp/tanh layer (a softmax of softmaxes took minutes), so past
        `exact_transcendental_layers` of them (the final softmax/sigmoid of the loss not counted)
        the limit is 0: values are shown as the nearest doubles.
        """
        layers = network.layers[:-1] if network.fused_loss() else network.layers
        if sum(not layer.rational for layer in layers) > self.exact_transcendental_layers:
            return 0
        rational = all(layer.rational for layer in network.layers)
        return self.exact_work if rational else self.exact_work_transcendental


BUDGET = Budget()


def work(network) -> int:
    """Multiply-adds of one forward pass: the measure of how big a network is."""
    return sum(layer.work() for layer in network.layers)


def tree_size(expr: object, limit: int) -> int:
    """The number of nodes of an expression tree (shared subtrees counted each time), up to limit + 1."""
    stack, seen = [expr], 0
    while stack and seen <= limit:
        seen += 1
        stack.extend(getattr(stack.pop(), "args", ()))
    return seen


def small_enough(expr: object, limit: int) -> bool:
    """True when an expression has at most `limit` nodes (a plain number has one)."""
    return tree_size(expr, limit) <= limit


def expanded_terms(expr) -> int:
    """An upper estimate of the number of terms of expand(expr), without expanding."""
    if expr.is_Add:
        return sum(expanded_terms(arg) for arg in expr.args)
    if expr.is_Mul:
        count = 1
        for arg in expr.args:
            count *= expanded_terms(arg)
        return count
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        return expanded_terms(expr.base) ** int(expr.exp)
    return 1
