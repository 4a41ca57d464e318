"""Reading a network config: safe YAML in, a validated `maths.Network` out."""

from .build import LIMITS, load, loads

__all__ = ["LIMITS", "load", "loads"]
