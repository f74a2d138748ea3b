"""The Python API: ``Memory.open(home)`` gives an agent its long-term memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from eventlog import EventLog, EventView, InputLog, LogReport, Receipt, StoreRequest
from eventlog.payloads import Metadata
from eventlog.schema import INPUT_STREAM
from pipeline.config import Settings, load_settings
from pipeline.errors import HomeError
from pipeline.logsetup import configure_logging


class Memory:
    """Long-term memory over one data directory. Use as a context manager, or call close()."""

    def __init__(self, settings: Settings, *, actor: str = "api", read_only: bool = False) -> None:
        self.settings = settings
        self.home = settings.home
        configure_logging(settings.logging)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HomeError(f"cannot use {self.home} as the data directory: {exc}") from exc
        self._log = EventLog(self.home / "log", settings.log, writable=not read_only)
        self._inputs = InputLog(self._log, actor=actor)
        if not read_only:
            self._inputs.log_pending_erasures()  # finish an erase a crash interrupted

    @classmethod
    def open(
        cls,
        home: str | Path | None = None,
        *,
        config_file: str | Path | None = None,
        settings: Settings | None = None,
        actor: str = "api",
        read_only: bool = False,
    ) -> Memory:
        if settings is None:
            settings = load_settings(home=home, config_file=config_file)
        elif home is not None:
            settings = settings.model_copy(
                update={"paths": settings.paths.model_copy(update={"home": str(home)})}
            )
        return cls(settings, actor=actor, read_only=read_only)

    # -- writing -------------------------------------------------------------------------

    def store(
        self,
        text: str | bytes,
        namespace: str,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        """Store a memory; returns its receipt (event_id, memory_id, position) once durable."""
        return self._inputs.store(text, namespace, metadata, occurred_at, event_id)

    def store_many(self, requests: Sequence[StoreRequest]) -> list[Receipt]:
        """Store many memories with one durable write. All are checked before any is stored."""
        return self._inputs.store_many(requests)

    def update(
        self,
        memory_id: str,
        text: str | bytes,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        """Give a memory new text (and, if given, new metadata)."""
        return self._inputs.update(memory_id, text, metadata, occurred_at, event_id)

    def forget(
        self, memory_id: str, reason: str | None = None, event_id: str | None = None
    ) -> Receipt:
        """Mark a memory forgotten: it stays in the log, but recall no longer returns it."""
        return self._inputs.forget(memory_id, reason, event_id)

    def feedback(
        self, memory_id: str, useful: bool, note: str | None = None, event_id: str | None = None
    ) -> Receipt:
        """Record whether a recalled memory helped."""
        return self._inputs.feedback(memory_id, useful, note, event_id)

    def erase(self, namespace: str) -> Receipt:
        """Destroy the namespace's data key: its text and metadata become unreadable everywhere."""
        return self._inputs.erase(namespace)

    # -- reading -------------------------------------------------------------------------

    def history(self, memory_id: str) -> list[EventView]:
        """The memory's events, oldest first."""
        return self._inputs.history(memory_id)

    def events(
        self,
        *,
        namespace: str | None = None,
        start: int = 1,
        kind: str | None = None,
        stream: str = INPUT_STREAM,
    ) -> Iterator[EventView]:
        """Every event of a stream from `start` on, optionally of one namespace or kind."""
        source = self._log.stream(stream)
        for record in source.read(start, namespace=namespace, kind=kind):
            yield self._log.view(stream, record)

    def namespaces(self) -> list[str]:
        return sorted(self._inputs.namespaces())

    def verify(self) -> LogReport:
        """Recompute every stream's hash chain; the report names the first bad position."""
        return self._log.verify()

    @property
    def log(self) -> EventLog:
        return self._log

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
