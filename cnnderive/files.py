"""Writing output files: whole or not at all, and never over an existing file unless asked."""

from __future__ import annotations

import os
import tempfile

from .errors import UserError


def write_atomic(path: str | os.PathLike, data: str | bytes, force: bool = False, option: str = "-o") -> None:
    """Write data to path through a temporary file in the same folder, renamed into place at the end.

    A crash or a full disk leaves the old file (or none), never a half-written one. An existing
    file is refused unless `force`; a folder that is missing or not writable is a UserError that
    names `option`, the command-line option that gave the path.
    """
    path = os.fspath(path)
    folder = check_writable(path, force, option)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}", field=option) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        if force:
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
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; give a file name", field=option)
    if os.path.exists(path) and not force:
        raise UserError(f"{path} exists; add --force to replace it", field=option)
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: the folder {folder} does not exist", field=option)
    return folder


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
