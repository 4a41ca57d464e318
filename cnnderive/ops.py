"""Number tracks: the same layer rules run on floats, exact fractions or SymPy objects.

A layer's forward and backward rules are written once with NumPy array operations;
an `Ops` object supplies what differs between tracks (constants, exp, log, tanh).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


class NotRational(Exception):
    """Raised by the rational track when a rule leaves the rationals (exp, log, tanh)."""


class FloatOps:
    """float64, as PyTorch computes."""

    name = "float"
    exact = False

    def array(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) if values.dtype != object else _to_float(values)

    def const(self, q: Fraction | int) -> float:
        return float(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(x)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)


def _to_float(values: np.ndarray) -> np.ndarray:
    return np.array([float(v) for v in values.flat], dtype=np.float64).reshape(values.shape)


class RationalOps:
    """Exact fractions, used to decide kinks (ReLU at 0, max-pool ties) exactly."""

    name = "rational"
    exact = True

    def array(self, values: np.ndarray) -> np.ndarray:
        return values

    def const(self, q: Fraction | int) -> Fraction:
        return Fraction(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        raise NotRational("exp")

    log = tanh = exp


class SympyOps:
    """Exact SymPy numbers or symbolic expressions: what is printed."""

    name = "sympy"
    exact = True

    def __init__(self) -> None:
        import sympy

        self._sympy = sympy

    def array(self, values: np.ndarray) -> np.ndarray:
        return _map(values, self._convert)

    def _convert(self, value: object) -> object:
        if isinstance(value, Fraction):
            return self._sympy.Rational(value.numerator, value.denominator)
        return self._sympy.sympify(value) if isinstance(value, (int, float)) else value

    def const(self, q: Fraction | int) -> object:
        return self._convert(Fraction(q))

    def exp(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.exp)

    def log(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.log)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return _map(x, self._sympy.tanh)


def _map(values: np.ndarray, f) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [f(v) for v in values.flat]
    return out


def object_array(items: list, shape: tuple) -> np.ndarray:
    """An object array of the given shape, filled row-major from `items`."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)
