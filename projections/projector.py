"""Keeps the DuckDB and FAISS projections caught up with the log, or builds them as of a point.

The input stream is applied first, then each actor's stream in topology order, batch by
batch; each projection skips what it has already applied, so they can resume from different
positions. As of a point in the past, a derived stream is applied only as far as it was
derived from what its upstream had by then.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.atomic import sweep_leftovers
from mnemoflow.eventlog.errors import ValidationError, loggable
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import EMBEDDED_STREAM, INPUT_STREAM, SUBJECT_ERASED
from mnemoflow.projections.aside import AsideFold, fold_stream
from mnemoflow.projections.duck import DuckProjection, compaction_path, wal_path
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.heap import gc_paused
from mnemoflow.projections.memstate import keeping_doc_ids
from mnemoflow.projections.vector_projection import VectorProjection, VectorSettings

log = structlog.get_logger(__name__)

DUCKDB_FILE = "memories.duckdb"
FAISS_DIR = "faiss"
ASIDE_FILE = "derived.aside.duckdb"  # the actors' tables, folded in a child process


@dataclass(frozen=True, slots=True)
class AsOf:
    """A point in the past: an input position, or a time (the last input recorded by then)."""

    position: int | None = None
    time: datetime | None = None

    def input_stop(self, event_log: EventLog) -> int:
        if self.position is not None:
            return min(self.position, event_log.input.last_position)
        assert self.time is not None
        stop = 0
        for table in event_log.input.scan():
            for position, recorded in zip(
                table.column("position").to_pylist(),
                table.column("recorded_at").to_pylist(),
                strict=True,
            ):
                if recorded > self.time:
                    return stop
                stop = position
        return stop

    @classmethod
    def parse(cls, text: str) -> AsOf:
        if text.isdigit():
            return cls(position=int(text))
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationError(
                f"--as-of takes a position or an ISO 8601 time: {text!r}"
            ) from exc
        return cls(time=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


class Projector:
    def __init__(
        self,
        directory: Path | None,
        vectors: VectorSettings | None = None,
        *,
        batch_size: int = 5000,
        streams: Sequence[tuple[str, str]] = ((EMBEDDED_STREAM, INPUT_STREAM),),
        aside_above: int | None = 50_000,
    ) -> None:
        """`streams`: the derived streams to fold, each with its upstream, upstream first.
        `aside_above`: from how many events the streams other than the embedded one are
        folded from scratch in a child process (None: never)."""
        self.directory = directory
        self.streams = tuple(streams)
        self.batch_size = batch_size
        self.aside_above = aside_above
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.duck = _open_duck(directory)
        if directory is not None:  # the file is ours now (DuckDB's lock): so is what is beside it
            try:
                sweep_leftovers(_leftovers(directory))
            except OSError as exc:
                self.duck.close()
                raise ProjectionError(
                    f"cannot remove what a crash left in {directory}: {exc}"
                ) from exc
        self.vectors = VectorProjection(
            None if directory is None else directory / FAISS_DIR, vectors
        )
        # The vector projection's changes run on a thread of their own, in order: FAISS builds
        # its HNSW graph outside the GIL, so the DuckDB side of the fold goes on meanwhile.
        self._vector_thread = ThreadPoolExecutor(1, thread_name_prefix="mnemo-vectors")
        self._vector_work: list[Future[None]] = []
        self._vector_failed = False

    def _to_vectors(self, change: Callable[..., None], *args: object) -> None:
        def run() -> None:
            if self._vector_failed:
                return  # once a change failed, none after it may apply: it would skip it
            try:
                change(*args)
            except BaseException:
                self._vector_failed = True
                raise

        self._vector_work.append(self._vector_thread.submit(run))

    def _vectors_caught_up(self, *, raise_error: bool = True) -> None:
        """Wait for every queued vector change; the one that failed raises here (or, when
        another error is on its way, is logged). The next fold resumes from what applied."""
        work, self._vector_work = self._vector_work, []
        errors = [e for e in (f.exception() for f in work) if e is not None]
        self._vector_failed = False
        if errors and raise_error:
            raise errors[0]
        for error in errors:
            log.error("projections.vectors_failed", error=loggable(error))

    def catch_up(self, event_log: EventLog, as_of: AsOf | None = None) -> int:
        """Apply everything new in the log (up to `as_of`); return the events applied."""
        began = time.perf_counter()
        stop = event_log.input.last_position if as_of is None else as_of.input_stop(event_log)
        long_fold = stop - self.duck.applied(INPUT_STREAM) > 4 * self.batch_size
        aside = self._fold_aside(event_log, stop)
        self.vectors.defer_snapshots = long_fold
        try:
            with gc_paused(), _long(long_fold, keeping_doc_ids), _long(long_fold, self.duck.bulk):
                applied = self._input(event_log, stop)
                stops = {INPUT_STREAM: stop}
                for stream, upstream in sorted(self.streams, key=_embedded_first):
                    if aside is None or stream not in aside.names:
                        done, stops[stream] = self._derived(
                            event_log, stream, stops.get(upstream, 0)
                        )
                        applied += done
                if long_fold:  # written while the child's tables are copied in
                    self._to_vectors(self.vectors.snapshot)
                if aside is not None:
                    if long_fold and aside.running():  # beside it; the merge then adds little
                        self.duck.checkpoint()
                    applied += aside.result()
                    self.duck.merge(aside.path, aside.names)
                    aside.discard()
        except BaseException:
            if aside is not None:
                aside.cancel()
            self._vectors_caught_up(raise_error=False)
            raise
        finally:
            self.vectors.defer_snapshots = False
        self._vectors_caught_up()
        if applied:
            log.info(
                "projections.caught_up",
                events=applied,
                ms=round((time.perf_counter() - began) * 1e3, 1),
            )
        return applied

    def _fold_aside(self, event_log: EventLog, input_stop: int) -> AsideFold | None:
        """Start folding the streams that write only tables of their own in a child process,
        when none has been folded yet and they hold at least `aside_above` events (a rebuild,
        a first catch-up): see `projections.aside`."""
        if self.directory is None or self.aside_above is None:
            return None
        streams = [(s, u) for s, u in self.streams if EMBEDDED_STREAM not in (s, u)]
        if not streams or any(self.duck.applied(s) for s, _ in streams):
            return None
        for stream, _ in streams:
            event_log.stream(stream).refresh()
        if sum(event_log.stream(s).last_position for s, _ in streams) < self.aside_above:
            return None
        return AsideFold(
            event_log, self.directory / ASIDE_FILE, streams, input_stop, self.batch_size
        )

    def _input(self, event_log: EventLog, stop: int) -> int:
        start = min(self.duck.applied(INPUT_STREAM), self.vectors.applied(INPUT_STREAM)) + 1
        applied = 0
        erased = False
        vector_from = self.vectors.applied(INPUT_STREAM)  # batches only move forward
        while start <= stop:
            end = min(stop, start + self.batch_size - 1)
            opened = event_log.opened(event_log.input.read(start, end))
            duck_from = self.duck.applied(INPUT_STREAM)
            self.duck.apply(INPUT_STREAM, [o for o in opened if o.record.position > duck_from])
            self._to_vectors(
                self.vectors.apply_input, [o for o in opened if o.record.position > vector_from]
            )
            erased |= any(o.record.kind == SUBJECT_ERASED for o in opened)
            applied += len(opened)
            start = end + 1
        if erased or self.duck.compaction_owed():  # owed: an earlier rewrite was cut short
            self._to_vectors(self.vectors.snapshot)
            self.duck.compact()
        return applied

    def _derived(self, event_log: EventLog, stream: str, upstream_stop: int) -> tuple[int, int]:
        """Apply what is new in an actor's stream, derived from upstream positions up to
        `upstream_stop`; return (events applied, the stream's last position applied)."""
        return fold_stream(
            event_log,
            stream,
            self._applied_from(stream) + 1,
            upstream_stop,
            self.batch_size,
            lambda opened: self._apply(stream, opened),
        )

    def _applied_from(self, stream: str) -> int:
        if stream == EMBEDDED_STREAM:
            return min(self.duck.applied(stream), self.vectors.applied(stream))
        return self.duck.applied(stream)

    def _apply(self, stream: str, opened: list[Opened]) -> None:
        duck_from = self.duck.applied(stream)
        if stream != EMBEDDED_STREAM:
            self.duck.apply_derived(stream, [o for o in opened if o.record.position > duck_from])
            return
        # Read while earlier batches may still be queued: it can only lag, and every batch
        # starts past the one before, so it filters no more than it should.
        vector_from = self.vectors.applied(stream)
        self.duck.apply_embedded([o for o in opened if o.record.position > duck_from])
        self._to_vectors(
            self.vectors.apply_embedded, [o for o in opened if o.record.position > vector_from]
        )

    def checksums(self) -> dict[str, str]:
        sums = {f"duckdb.{table}": digest for table, digest in self.duck.checksums().items()}
        sums.update({f"faiss.{ns}": digest for ns, digest in self.vectors.checksums().items()})
        return sums

    def close(self) -> None:
        try:
            self._vectors_caught_up()
        finally:
            self._vector_thread.shutdown()
            with contextlib.ExitStack() as parts:  # DuckDB is closed even if the snapshot fails
                parts.callback(self.duck.close)
                self.vectors.snapshot()

    @staticmethod
    def drop(directory: Path) -> None:
        """Remove every projection file: what a rebuild starts from."""
        for name in (DUCKDB_FILE, ASIDE_FILE):
            for path in (directory / name, wal_path(directory / name)):
                path.unlink(missing_ok=True)
        VectorProjection.drop(directory / FAISS_DIR)


def _long(
    long_fold: bool, context: Callable[[], contextlib.AbstractContextManager[None]]
) -> contextlib.AbstractContextManager[None]:
    """What only a long fold (a rebuild, a large catch-up) runs inside."""
    return context() if long_fold else contextlib.nullcontext()


def _embedded_first(stream: tuple[str, str]) -> bool:
    """Sort key: the embedded stream before the input's other followers, so that its graph
    is built while they are folded (any stream's upstream still comes before it)."""
    return stream != (EMBEDDED_STREAM, INPUT_STREAM)


def _open_duck(directory: Path | None) -> DuckProjection:
    """The DuckDB projection; a file DuckDB cannot open is named in the log, removed (it is
    a fold of the log: everything in it is rebuilt from there, and a damaged copy kept aside
    could outlive an erasure) and started again empty, to be caught up from the log."""
    if directory is None:
        return DuckProjection(None)
    path = directory / DUCKDB_FILE
    try:
        return DuckProjection(path)
    except ProjectionError as exc:
        if not path.exists() or "could not set lock" in str(exc).lower():
            raise  # not damage: another process has the file open (DuckDB's lock)
        log.error("projections.duckdb_damaged", file=str(path), error=str(exc), action="rebuild")
        for damaged in (path, wal_path(path)):
            damaged.unlink(missing_ok=True)
        return DuckProjection(path)


def _leftovers(directory: Path) -> list[Path]:
    """Files only a crash leaves: a compaction's copy, an aside fold's database, and their
    write-ahead logs. They may hold rows of a namespace erased since."""
    files = (compaction_path(directory / DUCKDB_FILE), directory / ASIDE_FILE)
    return [p for f in files for p in (f, wal_path(f)) if p.exists()]


def disk_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
