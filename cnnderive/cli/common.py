"""What every command shares: the global options, one error path, and loading a config."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from dataclasses import dataclass

import typer

from ..errors import UserError, one_line

DEFAULT_MAX_WORK = 20_000_000  # = config.LIMITS["work"] (a test checks); importing config here would slow --help
INTERRUPTED = 130  # the exit status of Ctrl-C, as a shell reports it
# Tests only: when set, a command creates this file as it starts, so a test can send Ctrl-C inside it.
READY_FILE_VARIABLE = "CNNDERIVE_TEST_READY_FILE"


@dataclass(frozen=True)
class Options:
    """The options given before the command; the group callback keeps them in the Typer context (ctx.obj)."""

    debug: bool = False  # show the traceback of an internal error
    max_work: int = DEFAULT_MAX_WORK  # multiply-adds per pass a config may need


def options_of(ctx: typer.Context | None) -> Options:
    """The global options of the running command (the group callback stores them in ctx.obj)."""
    found = ctx.find_object(Options) if ctx is not None else None
    return found if found is not None else Options()


def say(text: str) -> None:
    """One line on stderr, `cnnderive: TEXT`."""
    sys.stderr.write(f"cnnderive: {text}\n")


def guarded(command):
    """Run a command so that bad input is one line and exit 2, Ctrl-C is exit 130, and bugs apologise."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow notes: results are checked instead
        try:
            _announce_start()
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except UserError as error:
            say(f"error: {error}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # the group's main prints the line for every exit 130
            raise typer.Exit(INTERRUPTED) from None
        except Exception as error:  # a bug of ours, not the user's
            if options_of(kwargs.get("ctx")).debug:
                raise
            say(
                one_line(
                    f"internal error ({type(error).__name__}: {error}). Sorry: please report it "
                    f"with the command you ran: {' '.join(sys.argv)} (add --debug for the traceback)"
                )
            )
            raise typer.Exit(3) from None

    return wrapper


def _announce_start() -> None:
    """Create the test-only ready file, if one is asked for."""
    ready = os.environ.get(READY_FILE_VARIABLE)
    if ready:
        with open(ready, "w", encoding="utf-8"):
            pass


def load_derivation(path: str, options: Options | None = None, exact: bool | None = None):
    """Load a config file into a Derivation (imports NumPy and the maths only now).

    Without `options`, the defaults.
    """
    from .. import config
    from ..derivation.build import Derivation

    options = options if options is not None else Options()
    return Derivation(config.load(path, max_work=options.max_work), exact=exact)
