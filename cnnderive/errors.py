"""The one kind of error a user can cause, and how it is shown."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: shown as one line on stderr, exit status 2, no traceback."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        path: tuple = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.path = path

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return one_line(f"{where}{field}{self.message}")


class ShapeError(Exception):
    """A layer that cannot take the shape it is given; `key` is the setting at fault, if one is."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConfigError(UserError):
    """A config that cannot be read; `path` is the key path into the YAML document."""

    def __init__(self, message: str, path: tuple = ()) -> None:
        super().__init__(message, field=format_path(path) or None, path=path)


def format_path(path: tuple) -> str:
    """('layers', 0, 'stride') -> 'layers.0.stride'."""
    return one_line(".".join(str(p) for p in path))


def one_line(text: str) -> str:
    """The text with line breaks and control characters (terminal escapes too) shown as escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
