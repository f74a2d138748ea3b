"""Writing a whole file so that a crash or a fault leaves the old one or the new one, never a mix.

Every file the project replaces as a whole (a sealed segment, its index, the keyring, the API
keys, `server.json`, the chain's anchored heads) is written here, with the same care: a
temporary file beside it, written in full and fsynced, renamed over it, the directory fsynced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import structlog

log = structlog.get_logger()


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (its entries: a rename or a new name in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """Where `write_atomic` writes before the rename (left behind only by a crash)."""
    return path.with_name(path.name + ".tmp")


def sweep_leftovers(paths: Iterable[Path]) -> list[Path]:
    """Remove what a crash left half-written (files or directories), naming each in the log;
    return them. Only the process that owns the directory as its sole writer (it holds the
    lock) may call this: elsewhere a leftover may be a live writer's work in progress. A
    leftover may hold what an erasure since destroyed (a keyring copy with its keys)."""
    removed = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        log.warning("eventlog.leftover_removed", file=str(path))
        removed.append(path)
    for directory in {path.parent for path in removed}:
        fsync_path(directory)
    return removed


def temporaries(directory: Path) -> list[Path]:
    """The `write_atomic` temporaries in a directory."""
    return sorted(directory.glob("*.tmp"))


def write_atomic(path: Path, data: bytes | memoryview, *, mode: int = 0o644) -> None:
    """Replace `path` with `data`. On any failure the temporary file is removed, the old file
    (if any) is untouched, and the OSError is raised. Past the rename only the directory's
    fsync can fail: the new file is then in place but its name may not yet be durable."""
    write_atomic_from(path, [data], mode=mode)


def write_atomic_from(
    path: Path, chunks: Iterable[bytes | memoryview], *, mode: int = 0o644
) -> None:
    """`write_atomic` of the chunks one after another, each written as it comes (an export,
    a backup's copy of a segment: never held whole in memory). An exception from the chunks'
    producer also leaves the old file as it was."""
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            for data in chunks:
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
    fsync_path(path.parent)
