"""Running cnnderive from tests: in this process through Typer's CliRunner, or, where a test needs a
real process (signals, a fresh interpreter's imports), in a subprocess. These are the only two ways."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from typer.testing import CliRunner

from cnnderive.cli import app
from cnnderive.cli.common import READY_FILE_VARIABLE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """`cnnderive ARGS` in this process: (exit status, stdout, stderr).

    CliRunner keeps stdout and stderr apart in this Typer version (result.stderr). An exception that
    escaped the program (a bug in the test set-up, not a cnnderive error line) is raised here.
    """
    result = CliRunner().invoke(app, list(args), env=env, prog_name="cnnderive")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_cli_process(
    args: Sequence[str],
    *,
    python_flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    interrupt_after: float | None = None,
    ready_file: str | os.PathLike | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """`python PYTHON_FLAGS -m cnnderive ARGS` in a new process, text output captured.

    With `interrupt_after` (seconds) and `ready_file`, Ctrl-C (SIGINT) is sent that long after the
    command has started: the program creates `ready_file` as a command begins (a test-only hook,
    READY_FILE_VARIABLE), so the signal lands inside the command, however slow the imports were.
    """
    full_env = dict(os.environ if env is None else env)
    if ready_file is not None:
        full_env[READY_FILE_VARIABLE] = os.fspath(ready_file)
    command = [sys.executable, *python_flags, "-m", "cnnderive", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=full_env
    )
    if interrupt_after is not None:
        _interrupt_when_ready(process, ready_file, interrupt_after, timeout)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"cnnderive {' '.join(args)} ran longer than {timeout} s: {stderr[-500:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _interrupt_when_ready(process: subprocess.Popen, ready_file, delay: float, timeout: float) -> None:
    """Send SIGINT `delay` seconds after ready_file appears (or never, if the process ends first)."""
    assert ready_file is not None, "interrupt_after needs a ready_file"
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready_file):
        if process.poll() is not None:
            return
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the command never started")
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
