"""Writing a whole file so that a crash or a fault leaves the old one or the new one, never a mix.

Every file the project replaces as a whole (a sealed segment, its index, the keyring, the API
keys, `server.json`, the chain's anchored heads) is written here, with the same care: a
temporary file beside it, written in full and fsynced, renamed over it, the directory fsynced.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """Where `write_atomic` writes before the rename (left behind only by a crash)."""
    return path.with_name(path.name + ".tmp")


def write_atomic(path: Path, data: bytes | memoryview, *, mode: int = 0o644) -> None:
    """Replace `path` with `data`. On any failure the temporary file is removed, the old file
    (if any) is untouched, and the OSError is raised. Past the rename only the directory's
    fsync can fail: the new file is then in place but its name may not yet be durable."""
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
