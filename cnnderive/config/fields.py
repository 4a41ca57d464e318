"""Typed access to one mapping of the config, with the key path for error messages."""

from __future__ import annotations

import difflib
from fractions import Fraction

from ..errors import ConfigError
from ..maths.layers.base import REQUIRED
from .values import exact


class Fields:
    """Reads fields of one YAML mapping; `finish()` rejects the keys nobody read."""

    def __init__(self, data: object, path: tuple, what: str = "a mapping") -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"expected {what}, found {describe(data)}", path)
        self.data = data
        self.path = path
        self.used: set = set()

    def has(self, key: str) -> bool:
        return key in self.data

    def at(self, key: str) -> tuple:
        return self.path + (key,)

    def get(self, key: str, default: object = REQUIRED) -> object:
        self.used.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is REQUIRED:
            written = [str(k) for k in self.data if isinstance(k, str)]
            close = difflib.get_close_matches(key, written, n=1, cutoff=0.6)
            hint = f" (found {close[0]!r}: did you mean {key}?)" if close else ""
            raise ConfigError(f"missing required field{hint}", self.at(key))
        return default

    def int(self, key: str, default: object = REQUIRED, minimum: int = 1, maximum: int = 10**6) -> int:
        value = self.get(key, default)
        return _int(value, self.at(key), minimum, maximum)

    def pair(self, key: str, default: object = REQUIRED, minimum: int = 1) -> tuple[int, int]:
        value = self.get(key, default)
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ConfigError(f"expected an integer or a pair [h, w], found {len(value)} values", self.at(key))
            return tuple(_int(v, self.at(key), minimum, 10**6) for v in value)
        n = _int(value, self.at(key), minimum, 10**6)
        return (n, n)

    def bool(self, key: str, default: object = REQUIRED) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, found {describe(value)}", self.at(key))
        return value

    def number(self, key: str, default: object = REQUIRED) -> Fraction:
        return exact(self.get(key, default), self.at(key))

    def choice(self, key: str, options: tuple[str, ...], default: object = REQUIRED) -> str:
        value = self.get(key, default)
        if value not in options:
            raise ConfigError(f"expected one of {', '.join(options)}, found {describe(value)}", self.at(key))
        return value

    def string(self, key: str, default: object = REQUIRED) -> str:
        value = self.get(key, default)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"expected text, found {describe(value)}", self.at(key))
        return str(value)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                allowed = sorted(str(k) for k in self.used)
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"unknown field ({hint}expected one of: {', '.join(allowed)})", self.at(key))


def _int(value: object, path: tuple, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"expected an integer, found {describe(value)}", path)
    if not minimum <= value <= maximum:
        raise ConfigError(f"expected an integer from {minimum} to {maximum}, found {value}", path)
    return value


def describe(value: object) -> str:
    """A short description of a config value for an error message (never the whole of a big one)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if isinstance(value, str) else text
