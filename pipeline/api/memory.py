"""The Python API: ``Memory.open(home)`` gives an agent its long-term memory."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from mnemoflow.actors.query.engine import CHANNELS, Hit
from mnemoflow.eventlog import EventLog, EventView, InputLog, LogReport, Receipt, StoreRequest
from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.errors import MemoryNotFound, MnemoError, NamespaceNotFound, ValidationError
from mnemoflow.eventlog.generations import read_layout
from mnemoflow.eventlog.payloads import Metadata, local_now
from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.config import Settings, load_settings
from mnemoflow.pipeline.api.episodes import Episodes, TaskContext
from mnemoflow.pipeline.api.errors import ErasureUnfinished, HomeError
from mnemoflow.pipeline.api.generation import projections_directory, with_generation
from mnemoflow.pipeline.api.guards import Guards
from mnemoflow.pipeline.api.logsetup import configure_logging
from mnemoflow.pipeline.api.patterns import Patterns, pattern_trail
from mnemoflow.pipeline.api.record import Contradiction, MemoryRecord
from mnemoflow.pipeline.api.runtime import Runtime, SyncReport, drop_views, view_of
from mnemoflow.pipeline.api.transfer import ImportReport, Numbered, export_rows, import_rows
from mnemoflow.projections.memstate import doc_id
from mnemoflow.projections.projector import AsOf

if TYPE_CHECKING:
    from mnemoflow.pipeline.api.client import RemoteMemory


class Memory:
    """Long-term memory over one data directory. Use as a context manager, or call close()."""

    def __init__(
        self,
        settings: Settings,
        *,
        actor: str = "api",
        read_only: bool = False,
        as_of: AsOf | None = None,
        projections_dir: Path | None = None,
        external_actors: bool = False,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        """`external_actors`: the actors run elsewhere (the service's Ray actors write their
        streams); this object writes only the input and reads what they derive.
        `generations`: the generation of each derived stream to use (a re-derivation's);
        by default the current ones, with the settings they were derived with."""
        self.home = settings.home
        configure_logging(settings.logging)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HomeError(f"cannot use {self.home} as the data directory: {exc}") from exc
        writable = not read_only and as_of is None
        self._writable = writable
        self._log = EventLog(
            self.home / "log",
            settings.log,
            writable=writable,
            writes={INPUT_STREAM} if writable and external_actors else None,
            generations=generations,
        )
        if generations is None:
            settings = with_generation(settings, self._log.layout.settings)
            if projections_dir is None and as_of is None:
                projections_dir = projections_directory(self.home, self._log.layout.current)
        self.settings = settings
        self._inputs = InputLog(self._log, actor=actor)
        if writable:
            self._inputs.log_pending_erasures()  # finish an erase a crash interrupted
        self._runtime = Runtime(
            self._log,
            settings,
            as_of=as_of,
            projections_dir=projections_dir,
            inline_actors=not external_actors,
        )
        # recall(as_of=...) views by input position, least recently used first, built under
        # the data directory (an erase drops them) and used under one lock
        self._pasts: OrderedDict[int, Memory] = OrderedDict()
        self._retired: list[Runtime] = []  # runtimes of generations switched away from
        self._pasts_lock = threading.Lock()
        if writable:  # views a crashed process left behind
            shutil.rmtree(self.home / PASTS_DIR, ignore_errors=True)

    @classmethod
    def open(
        cls,
        home: str | Path | None = None,
        *,
        config_file: str | Path | None = None,
        settings: Settings | None = None,
        actor: str = "api",
        read_only: bool = False,
        as_of: int | str | datetime | None = None,
        projections_dir: str | Path | None = None,
    ) -> Memory:
        """Open the memory in `home`. With `as_of` (an input position, a time, or an ISO 8601
        string) it is read-only and its projections are built as they were at that point, in
        `projections_dir` (kept for reuse) or a temporary directory. A `projections_dir` so
        built opens as a home: the same view, read-only."""
        if settings is None:
            settings = load_settings(home=home, config_file=config_file)
        elif home is not None:
            settings = _at_home(settings, home)
        if as_of is None and projections_dir is None and (view := view_of(settings.home)):
            projections_dir, (source, as_of) = settings.home, view
            settings = _at_home(settings, source)
        point = None if as_of is None else _as_of(as_of)
        folder = None if projections_dir is None else Path(projections_dir)
        return cls(settings, actor=actor, read_only=read_only, as_of=point, projections_dir=folder)

    @staticmethod
    def connect(url: str, api_key: str | None = None, *, timeout: float = 60.0) -> RemoteMemory:
        """The same API against a running service (`mnemo serve`) over HTTP."""
        from mnemoflow.pipeline.api.client import RemoteMemory

        return RemoteMemory(url, api_key, timeout=timeout)

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
        if self._writable:  # (a read-only one is refused by the log below)
            if self._inputs.namespace_id(namespace) is None:
                raise NamespaceNotFound(f"no namespace {namespace!r} in this log")
            # First out of the API keys' scopes (so that no file names it once the erase is
            # done; should the erase then fail, the keys have only lost a scope).
            KeyStore(self.home / "keys.json").drop_namespace(namespace)
        # A past view built before the erasure holds the plaintext: dropped, and none built
        # until the key is destroyed (one built after it cannot read the text).
        with self._pasts_lock:
            self._drop_pasts()
            receipt = self._inputs.erase(namespace)
            drop_views(self.home)  # views built into folders of their own (`--into`)
        # Folded now, not by the service's next round: once erase returns, no read shows
        # the text (the projections hold it in the clear until they apply the erasure).
        try:
            self._runtime.project()
            self.episodes.index.drop_stale()  # its tasks, kept in memory to rank them
        except MnemoError as exc:  # the message names no namespace: it may reach a log
            raise ErasureUnfinished(
                f"erased in the log at position {receipt.position}, but the projections "
                f"have not finished dropping its rows; the next catch-up will: {exc}"
            ) from exc
        return receipt

    # -- reading -------------------------------------------------------------------------

    def history(self, memory_id: str) -> list[EventView]:
        """The memory's events, oldest first."""
        return self._inputs.history(memory_id)

    def audit(self, memory_id: str) -> list[EventView]:
        """Every event, in every stream, that produced, changed or was derived for the memory,
        or that links it or decides about it from another memory (as far as the projections
        have caught up), oldest first by time recorded: each with its stream, position, actor,
        time and hash. For a pattern's id: each event that logged the pattern, and the
        completion of each episode that caused one. (Recall is read-only and leaves no event;
        feedback is how a memory is boosted.)"""
        check.memory_id(memory_id)
        trail = []
        for name in self._log.stream_names():
            stream = self._log.stream(name)
            stream.refresh()
            trail += [self._log.view(name, r) for r in stream.read(memory_id=memory_id)]
        if not trail:  # a pattern: its events, and the completions of the episodes behind it
            trail = pattern_trail(self._log, memory_id)
        elif self._runtime.as_of is None:
            # Links and decisions of other memories that name this one as their target.
            for name, position in self._runtime.projector.duck.referencing(doc_id(memory_id)):
                record = next(iter(self._log.stream(name).read(position, position)), None)
                if record is not None and record.memory_id != memory_id:
                    trail.append(self._log.view(name, record))
        if not trail:
            raise MemoryNotFound(f"no memory {memory_id!r} in this log")
        return sorted(trail, key=lambda e: (e.recorded_at, e.stream != INPUT_STREAM, e.position))

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
        if namespace is not None:
            namespace = self._inputs.namespace_id(namespace)
            if namespace is None:
                return
        for record in source.read(start, namespace=namespace, kind=kind):
            yield self._log.view(stream, record)

    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        *,
        min_position: int | None = None,
        as_of: int | str | datetime | None = None,
        filters: Metadata | None = None,
        weights: Mapping[str, float] | None = None,
        neighbor_weight: float | None = None,
        now: datetime | None = None,
    ) -> list[Hit]:
        """The k memories of the namespace that best answer the query, best first.

        Every channel's score is on each hit (`hit.channels`), and where it came from in the
        log (`hit.provenance`). `min_position` is a position your store returned: recall then
        sees that write (read-your-writes). `as_of` recalls what was known at that point.
        `filters` keeps memories whose metadata has those values (the key `category` matches
        the extractor's category). `weights` (channel -> weight) and `neighbor_weight` override
        the configured fusion for this call (evaluations use them to run single-channel
        baselines). `now` is when the question is asked: time words in it ("last week") are
        read against it, on its clock, and decay runs up to it (default: the `as_of` time, or
        this process's clock in its zone, so "yesterday" is the asker's yesterday).
        """
        query, wanted, now = self._recall_checks(query, namespace, k, min_position, filters, now)
        if weights is not None and not set(weights) <= set(CHANNELS):
            raise ValidationError(f"unknown channels {sorted(set(weights) - set(CHANNELS))}")
        namespace_id = self._inputs.namespace_id(namespace)  # what the projections know
        if namespace_id is None:
            raise NamespaceNotFound(f"no namespace {namespace!r} in this log")
        if as_of is not None:
            point = _as_of(as_of)
            with self._pasts_lock:  # no view is dropped while it answers
                return self._past(as_of).recall(
                    query,
                    namespace,
                    k,
                    filters=filters,
                    weights=weights,
                    neighbor_weight=neighbor_weight,
                    now=now or point.time,
                )
        if min_position is not None or self._runtime.inline_actors:
            # Inline: the actors run here and now, so every acknowledged write is seen.
            self._runtime.wait_for(min_position or 0, self.settings.query.wait_timeout)
        hits = self._runtime.engine.recall(
            query,
            namespace_id,
            k,
            filters=wanted,
            weights=weights,
            neighbor_weight=neighbor_weight,
            now=now or local_now(),  # here, not where the engine runs (a Ray actor)
        )
        return [replace(hit, namespace=namespace) for hit in hits]

    def _recall_checks(
        self,
        query: str,
        namespace: str,
        k: int,
        min_position: int | None,
        filters: Metadata | None,
        now: datetime | None,
    ) -> tuple[str, Metadata, datetime | None]:
        """Recall's arguments checked before anything is read: the query as recall uses it,
        the filters as the projections hold them, `now` with a zone."""
        query = check.text(query, self.settings.log)
        check.namespace(namespace)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.settings.query.max_k:
            raise ValidationError(f"k must be a whole number from 1 to {self.settings.query.max_k}")
        wanted = check.metadata(filters, self.settings.log)
        if min_position is not None and (
            isinstance(min_position, bool)
            or not isinstance(min_position, int)
            or not 0 <= min_position <= self._log.input.last_position
        ):
            raise ValidationError(f"min_position {min_position!r} is not a position of this log")
        if now is not None and not isinstance(now, datetime):
            raise ValidationError("now must be a datetime")
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return query, wanted, now

    def get(self, memory_id: str) -> MemoryRecord | None:
        """The memory as it stands (text, status, version, metadata, times), from the
        projection; None if the projections do not hold it (yet)."""
        check.memory_id(memory_id)
        self._runtime.refresh()
        row = self._runtime.projector.duck.get(memory_id)
        return (
            None if row is None else MemoryRecord.of(row, self._log.namespace_name(row.namespace))
        )

    def memories(
        self, namespace: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        """The namespace's memories, oldest first (optionally of one status)."""
        check.namespace(namespace)
        self._runtime.refresh()
        namespace_id = self._inputs.namespace_id(namespace)
        if namespace_id is None:
            return []
        rows = self._runtime.projector.duck.memories(namespace_id, status, limit, offset)
        return [MemoryRecord.of(row, namespace) for row in rows]

    # -- moving data in and out ----------------------------------------------------------

    def export(
        self,
        namespaces: Sequence[str] | None = None,
        as_of: int | str | datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """What the outside world said to these namespaces (all: None), up to `as_of`, as
        the lines of a `mnemoflow.export` (see `mnemoflow.pipeline.api.transfer`): a header,
        one row per store, update, forget and feedback, oldest first, and an end line."""
        self._log.input.refresh()
        stop = (
            self._log.input.last_position if as_of is None else _as_of(as_of).input_stop(self._log)
        )
        return export_rows(self._log, self._inputs, namespaces, stop)

    def import_rows(
        self, rows: Iterable[Numbered], ns_map: Mapping[str, str] | None = None
    ) -> ImportReport:
        """Append numbered export rows (`transfer.export_lines`, `transfer.mem0_rows`) with
        their memory ids and times, each under its namespace renamed by `ns_map`. A row
        already imported adds nothing; a row that cannot be applied raises `ImportRejected`
        naming its line, after the rows before it."""
        return import_rows(self._inputs, rows, ns_map)

    @functools.cached_property
    def episodes(self) -> Episodes:
        """What agents did in their tasks: `start`, `step`, `complete`, `get`, `list`."""
        return Episodes(self)

    @functools.cached_property
    def patterns(self) -> Patterns:
        """What completed episodes of a kind of task share: `find` (for a task, an error),
        `get`."""
        return Patterns(self)

    @functools.cached_property
    def guards(self) -> Guards:
        """Rules about actions, checked before an agent takes one: `add`, `remove`, `list`,
        `check`."""
        return Guards(self)

    def context(
        self,
        task: str,
        namespace: str,
        *,
        domain: str | None = None,
        tags: Sequence[str] = (),
        k: int = 5,
    ) -> TaskContext:
        """For a new task: the past episodes of the namespace that bear on it (with their
        outcome, score and steps), the patterns learned from its kind of task (sequences,
        decision points, recoveries from its errors) and the memories recall finds for it."""
        task = check.text(task, self.settings.log)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.settings.query.max_k:
            raise ValidationError(f"k must be a whole number from 1 to {self.settings.query.max_k}")
        patterns = self.patterns.find(namespace, task=task, domain=domain, k=max(k, 10))
        episodes = self.episodes.relevant(task, namespace, domain=domain, tags=tags, k=k)
        return TaskContext(episodes, patterns, self.recall(task, namespace, k))

    def contradictions(self, namespace: str) -> list[Contradiction]:
        """The namespace's contradicting memories (as far as the projections have caught
        up), oldest link first, with the supersession between them and its provenance."""
        namespace_id = self._caught_up(namespace, derived=True)  # the linker finds them
        found = self._runtime.projector.duck.contradictions(namespace_id)
        return [Contradiction.of(c, namespace) for c in found]

    @overload
    def _caught_up(self, namespace: str, *, derived: bool = False) -> str: ...
    @overload
    def _caught_up(self, namespace: None, *, derived: bool = False) -> None: ...

    def _caught_up(self, namespace: str | None, *, derived: bool = False) -> str | None:
        """The namespace's id (NamespaceNotFound: the log has none of that name), with the
        projections caught up with the log; `derived`: with what the actors derive from it
        (run first when they run in this process)."""
        if namespace is not None:
            check.namespace(namespace)
        if derived and self._runtime.inline_actors and self._writable:
            self._runtime.sync()
        else:
            self._runtime.refresh()
        if namespace is None:
            return None
        namespace_id = self._inputs.namespace_id(namespace)
        if namespace_id is None:
            raise NamespaceNotFound(f"no namespace {namespace!r} in this log")
        return namespace_id

    def sync(self) -> SyncReport:
        """Run the actors (embedding) over what is new and fold it into the projections."""
        return self._runtime.sync()

    def rebuild(self) -> int:
        """Drop the projections and replay the log into them; returns the events replayed."""
        return self._runtime.rebuild()

    def stats(self) -> dict[str, Any]:
        """Events per stream, applied positions and lag, memory counts, disk bytes."""
        return self._runtime.stats()

    def checksums(self) -> dict[str, str]:
        """Content digests of every projection table and index (equal after a rebuild)."""
        self._runtime.project()
        return self._runtime.projector.checksums()

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    def namespaces(self) -> list[str]:
        return sorted(self._inputs.namespaces())

    def verify(self) -> LogReport:
        """Recompute every stream's hash chain; the report names the first bad position."""
        return self._log.verify()

    @property
    def log(self) -> EventLog:
        return self._log

    def adopt_generation(self) -> None:
        """Take up the current generation of derived streams after a re-derivation switched
        to it (a long-lived Memory: the service's): its streams, its settings (the model that
        embeds queries) and its projections, in one step. A recall under way finishes on the
        old ones, which are closed and removed when this Memory is."""
        layout = read_layout(self.home / "log")
        self._log.use_generations(layout.streams)
        settings = with_generation(self.settings, layout.settings)
        runtime = Runtime(
            self._log,
            settings,
            projections_dir=projections_directory(self.home, layout.current),
            inline_actors=self._runtime.inline_actors,
        )
        old, self._runtime, self.settings = self._runtime, runtime, settings
        self._retired.append(old)
        with self._pasts_lock:
            self._drop_pasts()  # built on the old generation

    def _past(self, as_of: int | str | datetime) -> Memory:
        """The read-only view as of a point, built once per input position it resolves to;
        at most `PAST_VIEWS` are kept (each holds projections of the whole log up to its
        point, plaintext included). The caller holds `_pasts_lock`."""
        stop = _as_of(as_of).input_stop(self._log)
        past = self._pasts.get(stop)
        if past is None:
            while len(self._pasts) >= PAST_VIEWS:
                _, oldest = self._pasts.popitem(last=False)
                _close_past(oldest)
            folder = self.home / PASTS_DIR / str(stop)
            shutil.rmtree(folder, ignore_errors=True)
            try:
                past = Memory.open(settings=self.settings, as_of=stop, projections_dir=folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._pasts[stop] = past
        self._pasts.move_to_end(stop)
        return past

    def _drop_pasts(self) -> None:
        """Close and delete every past view. The caller holds `_pasts_lock`."""
        while self._pasts:
            _close_past(self._pasts.popitem()[1])

    def close(self) -> None:
        # Each part is closed whatever the others raise (a full disk under the projections,
        # say): the log's lock above all, so this process can open the directory again.
        with contextlib.ExitStack() as parts:
            parts.callback(self._log.close)
            parts.callback(self._runtime.cleanup)
            for retired in self._retired:  # generations switched away from
                parts.callback(shutil.rmtree, retired.projections_dir, ignore_errors=True)
                parts.callback(retired.cleanup)
            with self._pasts_lock:
                self._drop_pasts()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _at_home(settings: Settings, home: str | Path) -> Settings:
    return settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"home": str(home)})}
    )


PASTS_DIR = "pasts"  # under the data directory: recall(as_of=...) views
PAST_VIEWS = 4


def _close_past(past: Memory) -> None:
    folder = past._runtime.projections_dir
    try:
        past.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as_of(value: int | str | datetime) -> AsOf:
    if isinstance(value, bool):
        raise ValidationError("as_of takes a position, a datetime or an ISO 8601 string")
    if isinstance(value, int):
        return AsOf(position=value)
    if isinstance(value, datetime):
        return AsOf(time=value if value.tzinfo else value.replace(tzinfo=UTC))
    return AsOf.parse(value)
