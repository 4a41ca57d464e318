"""What every command shares: one error path, and loading a config."""

from __future__ import annotations

import functools
import sys
import warnings

import typer

from ..errors import UserError

DEBUG = {"on": False}
LIMITS = {"work": 20_000_000}  # set by the global options; handed to the config loader


def guarded(command):
    """Run a command so that bad input is one line and exit 2, Ctrl-C is exit 130, and bugs apologise."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow notes: results are checked instead
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except UserError as error:
            sys.stderr.write(f"cnnderive: error: {error}\n")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            sys.stderr.write("cnnderive: interrupted\n")
            raise typer.Exit(130) from None
        except Exception as error:  # a bug of ours, not the user's
            if DEBUG["on"]:
                raise
            sys.stderr.write(
                f"cnnderive: internal error ({type(error).__name__}: {error}). Sorry: please report it "
                f"with the command you ran: {' '.join(sys.argv)} (add --debug for the traceback)\n"
            )
            raise typer.Exit(3) from None

    return wrapper


def load_derivation(path: str, exact: bool | None = None):
    """Load a config file into a Derivation (imports NumPy and the maths only now)."""
    from .. import config
    from ..derivation.build import Derivation

    config.LIMITS["work"] = LIMITS["work"]
    return Derivation(config.load(path), exact=exact)
