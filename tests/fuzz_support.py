"""Harness shared by the fuzz tests: run one case under a time and a memory bound, and classify it.

Modes (environment variables):

- default: a fast, reproducible run (hypothesis `derandomize=True`, no example database);
- ``CNNDERIVE_FUZZ=long``: a few thousand generated inputs, random seed, example database on;
- ``CNNDERIVE_FUZZ_STRICT=1``: bugs already filed (KNOWN_BUGS below) fail the property tests too,
  instead of being counted as hypothesis events; use it to see whether the fixes landed;
- ``CNNDERIVE_FUZZ_TIMEOUT`` (seconds per case), ``CNNDERIVE_FUZZ_MEMORY_MB`` (address space a case
  may add): the bounds.

A case's outcome is one of: "ok" (a value), "user_error" (a cnnderive UserError), or "bug" (any other
exception, no answer within the time bound, or out of the memory bound). A bug is "known" when its
traceback matches one of KNOWN_BUGS; each of those also has an xfail(strict=True) regression test.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import signal
import traceback
import warnings
from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
from hypothesis import HealthCheck

try:
    import resource
except ImportError:  # not POSIX: no memory bound
    resource = None

from cnnderive.errors import UserError

LONG = os.environ.get("CNNDERIVE_FUZZ", "").lower() == "long"
STRICT = os.environ.get("CNNDERIVE_FUZZ_STRICT", "") == "1"
TIMEOUT = float(os.environ.get("CNNDERIVE_FUZZ_TIMEOUT", "4" if LONG else "2"))
MEMORY = int(os.environ.get("CNNDERIVE_FUZZ_MEMORY_MB", "2048")) * 2**20
BACKSTOP = 60  # seconds after TIMEOUT: a hang that SIGALRM cannot interrupt (stuck in C) kills the run


def fuzz_settings(default: int, long: int, **extra) -> hypothesis.settings:
    """Settings for one property test: `default` examples normally, `long` with CNNDERIVE_FUZZ=long."""
    return hypothesis.settings(
        max_examples=long if LONG else default,
        derandomize=not LONG,
        database=hypothesis.settings.default.database if LONG else None,
        deadline=None,  # the harness has its own time bound per case
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **extra,
    )


class CaseTimeout(BaseException):
    """Raised by SIGALRM in the code under test; a BaseException so that `except Exception` cannot eat it."""


def _address_space() -> int | None:
    try:
        with open("/proc/self/status") as status:
            match = re.search(r"^VmSize:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


@contextlib.contextmanager
def bounded(seconds: float = TIMEOUT, memory: int = MEMORY):
    """Run the body with a SIGALRM time bound and an RLIMIT_AS memory bound (both restored after)."""
    use_alarm = hasattr(signal, "setitimer")
    limits = None
    if resource is not None and hasattr(resource, "RLIMIT_AS"):
        now = _address_space()
        if now is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = now + memory
            if hard != resource.RLIM_INFINITY:
                cap = min(cap, hard)
            limits = (soft, hard)
    if use_alarm:

        def on_alarm(signum, frame):
            if frame is not None and frame.f_code.co_name == "gc_callback":
                return  # hypothesis's gc hook would swallow it: the timer fires again 0.2 s later
            raise CaseTimeout(f"no answer within {seconds:g} s (the harness's time bound)")

        previous = signal.signal(signal.SIGALRM, on_alarm)
    faulthandler.dump_traceback_later(seconds + BACKSTOP, exit=True)
    try:
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, limits[1]))
        if use_alarm:
            # and again every 0.2 s, in case the first one is swallowed (say, in a gc callback)
            signal.setitimer(signal.ITIMER_REAL, seconds, 0.2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # float overflow and the like are not what these tests judge
            yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_AS, limits)


# ---------------------------------------------------------------------------------------------
# Known bugs: matched on the exception and where it was raised (or where the time ran out).
# Each has an explicit xfail(strict=True) regression test; remove its entry once it is fixed.


def _frames(error: BaseException) -> list[traceback.FrameSummary]:
    return traceback.extract_tb(error.__traceback__)


def _ours(frames) -> list[traceback.FrameSummary]:
    return [f for f in frames if f"{os.sep}cnnderive{os.sep}" in f.filename]


def _innermost_ours(error):
    ours = _ours(_frames(error))
    return ours[-1] if ours else None






KNOWN_BUGS: dict = {}  # name -> (description, matcher) of bugs found and not yet fixed; all fixed so far
# B9 is a segfault (tested in a subprocess only),
# B13 (NaN from float overflow) is a wrong value: each has its regression test in test_fuzz_config.py.




def known_bug(error: BaseException) -> str | None:
    for name, (_, matches) in KNOWN_BUGS.items():
        if matches(error):
            return name
    return None


@dataclass
class Outcome:
    kind: str  # ok | user_error | bug
    value: object = None
    error: BaseException | None = None
    known: str | None = None
    trace: str = field(default="", repr=False)

    def describe(self) -> str:
        if self.kind != "bug":
            return self.kind
        label = f"known bug {self.known}" if self.known else "NEW BUG"
        return f"{label}: {type(self.error).__name__}: {str(self.error)[:300]}\n{self.trace}"


def run_case(function, seconds: float = TIMEOUT) -> Outcome:
    """Call `function()` under the bounds; a UserError is a fine answer, anything else a bug."""
    try:
        with bounded(seconds):
            value = function()
    except UserError as error:
        return Outcome("user_error", error=error)
    except (Exception, CaseTimeout, MemoryError, SystemExit) as error:  # noqa: BLE001 - any of them is a finding
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-8:])
        return Outcome("bug", error=error, known=known_bug(error), trace=trace)
    return Outcome("ok", value=value)


def event(text: str) -> None:
    """hypothesis.event, also usable outside a property test (then it does nothing)."""
    try:
        hypothesis.event(text)
    except hypothesis.errors.InvalidArgument:
        pass


def note(text: str) -> None:
    try:
        hypothesis.note(text)
    except hypothesis.errors.InvalidArgument:
        pass


def judge(outcome: Outcome, what: str) -> None:
    """Fail on a bug; a known bug only counts as a hypothesis event unless CNNDERIVE_FUZZ_STRICT=1."""
    if outcome.kind != "bug":
        event(outcome.kind)
        return
    if outcome.known and not STRICT:
        event(f"known bug {outcome.known}")
        return
    raise AssertionError(f"{what}\n{outcome.describe()}")


_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")

MESSAGE_BUGS: dict[str, str] = {}


def message_bug(error: UserError) -> str | None:
    """Which known bug makes this UserError's message not one line, if any."""
    return None


def check_message(error: UserError, source: str) -> None:
    """The user-facing line: names the file, is one line, and is not empty."""
    text = str(error)
    assert text.startswith(source), f"the message does not name the file: {text!r}"
    assert not _LINE_BREAK.search(text), f"not one line: {text!r}"
    assert error.message.strip(), "empty message"
