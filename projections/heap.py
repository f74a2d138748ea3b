"""Give freed heap memory back to the operating system.

Loading a read model or a namespace's postings from DuckDB makes large short-lived Python
and Arrow objects; glibc keeps the pages they freed, so a long-running service's resident
size only grows (~75 MB at 10^5 memories). `malloc_trim` returns them (elsewhere than glibc
it does nothing), and Arrow's pool is asked to release what it holds unused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

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
