"""Reading and writing files: only regular files, bounded reads, whole outputs or none, no stale leftovers.

Temporary files and folders carry the id of the process that made them (`.NAME.cnnderive-PID-XXXX.tmp`,
`cnnderive-latex-PID-XXXX`), so a run killed outright (SIGKILL, power loss) leaves something a later
run recognises and removes once that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator

from .errors import UserError

_STALE_FILE = re.compile(r"\..*\.cnnderive-(\d+)-[A-Za-z0-9_]+\.tmp\Z", re.DOTALL)


def read_regular(path: str | os.PathLike, max_bytes: int, what: str = "the file") -> bytes:
    """The bytes of a regular file of at most max_bytes; `what` names the file in messages.

    A FIFO, a device or a folder is refused before it is opened (reading /dev/zero never ends, a
    FIFO blocks until someone writes); a bigger file is refused before it is read.
    """
    path = os.fspath(path)
    try:
        _require_regular(os.stat(path), path, what)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        with os.fdopen(os.open(path, flags), "rb") as stream:
            info = os.fstat(stream.fileno())
            _require_regular(info, path, what)  # the name may have been swapped since the first look
            _require_size(info.st_size, max_bytes, path, what)
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise UserError(f"cannot read {what}: {error.strerror or error}", file=path) from None
    _require_size(len(data), max_bytes, path, what)
    return data


def _require_regular(info: os.stat_result, path: str, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"cannot read {what}: it is {_kind(info)}, not a regular file", file=path)


def _require_size(size: int, max_bytes: int, path: str, what: str) -> None:
    if size > max_bytes:
        raise UserError(f"cannot read {what}: it is over {max_bytes / 1_000_000:g} MB, the limit", file=path)


def _kind(info: os.stat_result) -> str:
    """What a non-regular file is, in words."""
    mode = info.st_mode
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((words for test, words in kinds if test(mode)), "a special file")


def write_atomic(path: str | os.PathLike, data: str | bytes, force: bool = False, option: str = "-o") -> None:
    """Write data to path through a temporary file in the same folder, renamed into place at the end.

    A crash or a full disk leaves the old file (or none), never a half-written one. An existing
    file is refused unless `force`, and anything that is not a regular file (/dev/null, a FIFO) always;
    a folder that is missing or not writable is a UserError that names `option`, the command-line
    option that gave the path.
    """
    path = os.fspath(path)
    folder = check_writable(path, force, option)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    _remove_stale_files(folder)
    try:
        prefix = f".{os.path.basename(path)}.cnnderive-{os.getpid()}-"
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}", field=option) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        if force:
            check_writable(path, force, option)  # again: the path may have become a device or a FIFO meanwhile
            os.replace(temporary, path)
        else:
            _link_new(temporary, path, option)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}", field=option) from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def check_writable(path: str | os.PathLike, force: bool = False, option: str = "-o") -> str:
    """Refuse, before any work is done, a path that write_atomic would refuse; its folder."""
    path = os.fspath(path)
    if path == "-":
        raise UserError("- (standard output) cannot take this output; give a file name", field=option)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; give a file name", field=option)
    if os.path.exists(path):
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path} is {_kind(info)}, not a regular file; give a file name", field=option)
        if not force:
            raise UserError(f"{path} exists; add --force to replace it", field=option)
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: the folder {folder} does not exist", field=option)
    return folder


def check_outputs(outputs: list[tuple[str | os.PathLike | None, str]], force: bool = False) -> None:
    """Refuse, up front, any output check_writable refuses, and two options that name the same file."""
    seen: list[tuple[str, str]] = []
    for path, option in outputs:
        if path is None:
            continue
        path = os.fspath(path)
        check_writable(path, force, option)
        for other, other_option in seen:
            if _same_file(path, other):
                raise UserError(f"{path} is also the file of {other_option}; give two different names", field=option)
        seen.append((path, option))


def _same_file(a: str, b: str) -> bool:
    """Two spellings of one file: the same resolved path, or (for existing files) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _link_new(temporary: str, path: str, option: str) -> None:
    """Put the file in place only if the name is still free (someone may have created it meanwhile)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise UserError(f"{path} exists; add --force to replace it", field=option) from None
    except OSError:  # a file system without hard links: the check above has to do
        if os.path.exists(path):
            raise UserError(f"{path} exists; add --force to replace it", field=option) from None
        os.replace(temporary, path)


@contextlib.contextmanager
def temporary_folder(purpose: str) -> Iterator[str]:
    """A fresh folder `cnnderive-PURPOSE-PID-XXXX` in the system's temporary folder, removed afterwards.

    Folders of the same purpose left by processes that no longer run are removed first.
    """
    prefix = f"cnnderive-{purpose}-"
    parent = tempfile.gettempdir()
    stale = re.compile(re.escape(prefix) + r"(\d+)-[A-Za-z0-9_]+\Z")
    for name, pid in _named_by_dead_processes(parent, stale):
        full = os.path.join(parent, name)
        with contextlib.suppress(OSError):
            info = os.lstat(full)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                shutil.rmtree(full, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-") as folder:
        yield folder


def _remove_stale_files(folder: str) -> None:
    """Remove the temporary files of write_atomic that killed processes left in folder."""
    for name, _ in _named_by_dead_processes(folder, _STALE_FILE):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


def _named_by_dead_processes(folder: str, pattern: re.Pattern) -> list[tuple[str, int]]:
    """Entries of folder whose name matches pattern, with a process id (group 1) that no longer runs."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        match = pattern.match(name)
        if match and not _running(int(match.group(1))):
            found.append((name, int(match.group(1))))
    return found


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a process id we can ask about: leave it
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
