"""Exclusive writer locks: one process (and one object in it) writes a log or a stream."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from eventlog.errors import LogLocked


class WriterLock:
    """An flock on `path`, held until release(); a second holder, even in-process, is refused."""

    def __init__(self, path: Path, what: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LogLocked(f"{what} is being written by another writer (pid {holder})") from None
        with contextlib.suppress(OSError):  # the pid only names the holder in a message
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
