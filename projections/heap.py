"""The process's heap: give freed memory back to the operating system, and keep Python's
cycle collector out of bulk folds.

Loading a read model or a namespace's postings from DuckDB makes large short-lived Python
and Arrow objects; glibc keeps the pages they freed, so a long-running service's resident
size only grows (~75 MB at 10^5 memories). `malloc_trim` returns them (elsewhere than glibc
it does nothing), and Arrow's pool is asked to release what it holds unused.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Return what glibc's heap and Arrow's memory pool hold free."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    pa.default_memory_pool().release_unused()


_pause_lock = threading.Lock()
_pauses = 0  # callers inside gc_paused(), across threads
_resume = False  # whether the collector was on when the first of them came in


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep Python's cycle collector from running while a batch of events is folded.

    A batch decodes hundreds of thousands of small objects (payload models, edges, rows)
    that stay alive until it is folded, so they survive the young collections and count
    towards a full one: a rebuild at 10^5 memories ran ~90 full collections over every
    live object, a quarter of its time. The objects folded hold no cycles; reference
    counting frees them as usual, and the collector resumes when the last caller leaves.
    """
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
