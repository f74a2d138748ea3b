"""Exclusive writer locks: one process (and one object in it) writes a log or a stream."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from mnemoflow.eventlog.atomic import sweep_leftovers, temporaries
from mnemoflow.eventlog.errors import LogLocked, StorageError


class WriterLock:
    """An flock on `path`, held until release(); a second holder, even in-process, is refused.
    Once it holds the lock, the writer removes the temporaries a crashed writer left in the
    lock's directory (`eventlog.atomic.sweep_leftovers`): no other process writes there."""

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
        try:
            sweep_leftovers(temporaries(path.parent))
        except OSError as exc:
            self.release()
            raise StorageError(f"cannot remove what a crash left beside {path}: {exc}") from exc

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class ReadWriteLock:
    """Many readers at once, or one writer alone; a waiting writer goes before new readers,
    so a steady stream of readers cannot starve it. Not reentrant.

    Used where concurrent work must not straddle an exclusive step: searches against an
    index while the pump adds to it, stores against an erasure of their namespace."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._writing and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
