"""A dict that exists only while some block holds it: what a long piece of work keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class HeldDict(Generic[K, V]):
    """`items` is a dict while at least one `held()` block runs, else None. Blocks may nest
    and overlap across threads; what was put in goes when the last one ends. Readers take
    `items` once and use that: it may be dropped under them, never changed into another."""

    def __init__(self) -> None:
        self.items: dict[K, V] | None = None
        self.lock = threading.Lock()  # guards `items` being made, dropped, and bounded
        self._holders = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.lock:
            self._holders += 1
            if self.items is None:
                self.items = {}
        try:
            yield
        finally:
            with self.lock:
                self._holders -= 1
                if not self._holders:
                    self.items = None
