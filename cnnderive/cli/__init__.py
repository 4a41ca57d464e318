"""The command line: `main` is the program; `app`, the Typer application, lives in `program`.

This module imports nothing heavy, so that `main` is running (and catching Ctrl-C) before Typer,
Rich and the commands are imported.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the program; Ctrl-C anywhere, even while Typer is still being imported, is one line and exit 130."""
    try:
        from .program import app

        app(prog_name="cnnderive")
    except KeyboardInterrupt:  # outside a command and outside Typer's parsing (they report their own)
        sys.stderr.write("cnnderive: interrupted\n")
        raise SystemExit(130) from None


def __getattr__(name: str) -> object:
    """`cnnderive.cli.app`, imported on first use."""
    if name == "app":
        from .program import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
