"""A stream stored as Arrow IPC segment files in one directory."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import structlog

from mnemoflow.eventlog.errors import CorruptSegment, LogError
from mnemoflow.eventlog.heads import Head, HeadFile, Lost, with_loss
from mnemoflow.eventlog.keys import key64, keys64
from mnemoflow.eventlog.locks import WriterLock
from mnemoflow.eventlog.schema import (
    ENVELOPE_SCHEMA,
    GENESIS_HASH,
    Draft,
    Receipt,
    Record,
    batch_to_records,
    records_to_batch,
)
from mnemoflow.eventlog.segments import (
    SEGMENT_SUFFIX,
    ActiveSegment,
    SegmentIndex,
    SegmentSpan,
    compact_segment,
    index_path,
    read_index,
    read_sealed,
    scan_segment,
    segment_first_position,
    segment_path,
)
from mnemoflow.eventlog.streamindex import ActiveIndex, KeyedPositions
from mnemoflow.eventlog.tablefilter import filter_table
from mnemoflow.eventlog.verify import Chunk, VerifyReport, verify_chunks
from mnemoflow.eventlog.writer import ChainWriter, utc_now

log = structlog.get_logger(__name__)

# Sealed segments held decompressed, per stream (~8 MiB each at the default segment size): one
# for a sequential reader's next window, one more for look-ups that straddle a boundary. Every
# follower process holds several streams, so each table kept costs its memory in each of them.
_CACHED_TABLES = 2


class ArrowStream:
    """One stream: sealed segments plus one active segment, written by one ChainWriter."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 << 20,
        writable: bool = True,
        clock: Callable[[], datetime] = utc_now,
        heads_key: bytes | None = None,
    ) -> None:
        """`heads_key`: the log's key for signed heads (see `eventlog.heads`); a writable
        stream with it keeps its `HEAD`, and `verify` checks any stream against it."""
        self._dir = directory
        self._heads_key = heads_key
        self._heads: HeadFile | None = None
        self._segment_bytes = segment_bytes
        self._writable = writable
        self._lock = threading.RLock()
        self._sealed: list[SegmentSpan] = []
        self._sealed_firsts: list[int] = []
        self._event_ids = KeyedPositions()
        self._memory_ids = KeyedPositions()
        self._tables: OrderedDict[int, pa.Table] = OrderedDict()
        self._active_index = ActiveIndex()
        self._writer_lock: WriterLock | None = None
        if writable:
            directory.mkdir(parents=True, exist_ok=True)
            self._writer_lock = WriterLock(directory / "WRITER", f"stream {directory}")
        self._active: ActiveSegment | None = None
        self._active_batches: list[pa.RecordBatch] = []
        self._uncompacted: list[Path] = []  # sealed segments whose compaction a fault put off
        self._read_path: Path | None = None  # read-only: the active file followed, and how far
        self._read_offset = 0
        self._open_segments()
        tail = self._tail_record()
        if writable and heads_key is not None:
            self._heads = HeadFile(directory, directory.name, heads_key)
            self._head = self._anchor(self._heads, tail)
        self._writer = ChainWriter(
            directory.name,
            tail_position=tail.position if tail else 0,
            tail_hash=tail.hash if tail else GENESIS_HASH,
            tail_recorded_at=tail.recorded_at if tail else None,
            find=self._find,
            persist=self._persist,
            clock=clock,
        )

    # -- opening -------------------------------------------------------------------------

    def _segment_files(self) -> list[Path]:
        if not self._dir.exists():
            return []
        return sorted(self._dir.glob(f"*{SEGMENT_SUFFIX}"))

    def _open_segments(self) -> None:
        files = self._segment_files()
        expected_first = 1
        sealed: list[SegmentIndex] = []
        for path in files[:-1]:
            index = self._load_index(path)
            if index.first != expected_first:
                raise CorruptSegment(path, f"starts at {index.first}, expected {expected_first}")
            sealed.append(index)
            expected_first = index.last + 1
        self._add_sealed(*sealed)
        if files:
            last = files[-1]
            if segment_first_position(last) != expected_first:
                raise CorruptSegment(last, f"does not start at {expected_first}")
            if self._writable:
                before = self._tail_record()  # the last sealed record, if any
                self._active, cut = ActiveSegment.recover(
                    last, before.hash if before else GENESIS_HASH, expected_first
                )
                self._active_batches = self._active.batches
                if cut:
                    log.warning(
                        "log.torn_tail_cut",
                        segment=str(last),
                        bytes=cut.bytes,
                        from_position=cut.first_position,
                        reason=cut.reason,
                    )
            else:
                scan = scan_segment(last)
                self._active_batches = scan.batches
                self._read_path, self._read_offset = last, scan.good_end
        elif self._writable:
            self._active = ActiveSegment.create(segment_path(self._dir, 1))
            self._active_batches = self._active.batches
        for batch in self._active_batches:
            self._active_index.add_batch(batch)

    def _anchor(self, heads: HeadFile, tail: Record | None) -> Head:
        """Reconcile the signed head with the log as opened: a head the log does not reach,
        or whose hash the log does not hold there, is a loss, recorded in the head (signed)
        and logged; then the head moves to the log's end."""
        position, tail_hash = (tail.position, tail.hash) if tail else (0, GENESIS_HASH)
        head = heads.read()
        loss: Lost | None = None
        if head is None:
            head = Head(0, GENESIS_HASH)
        elif not head.valid:
            loss = Lost(0, 0, "the head's signature did not verify; what it said is unknown")
        elif head.position > position:
            reason = f"the log ended at {position}, before its signed head"
            loss = Lost(position + 1, head.position, reason)
        elif head.position and self.hash_at(head.position) != head.hash:
            loss = Lost(head.position, head.position, "its hash differed from the signed head")
        lost, count = (head.lost, head.lost_count) if head.valid else ((), 0)
        if loss is not None:
            log.error(
                "log.head_mismatch",
                stream=self.name,
                first=loss.first,
                last=loss.last,
                reason=loss.reason,
            )
            lost, count = with_loss(Head(0, b"", lost=lost), loss), count + 1
        anchored = Head(position, tail_hash, head.seq + 1, lost, count)
        heads.write(anchored)
        heads.sync()
        return anchored

    def hash_at(self, position: int) -> bytes | None:
        """The hash of the event at `position`, None past the end."""
        found = self._records_at([position])
        return found[0].hash if found else None

    def _sign_head(self, last: Record) -> None:
        """After a durable append: never fails it (a head may lag the log, see `heads`)."""
        if self._heads is None:
            return
        head = self._head
        head = Head(last.position, last.hash, head.seq + 1, head.lost, head.lost_count)
        try:
            self._heads.write(head)
        except LogError as exc:
            log.warning("log.head_deferred", stream=self.name, error=str(exc))
            return
        self._head = head

    def _load_index(self, path: Path) -> SegmentIndex:
        try:
            return read_index(index_path(path))
        except CorruptSegment:
            if self._writable:  # a seal cut short (or a lost index): finish it now
                index = self._compact(path)
                if index is not None:
                    log.warning("log.segment_sealed_on_open", segment=str(path))
                    return index
            return SegmentIndex.build(segment_first_position(path), read_sealed(path))

    def _compact(self, path: Path, table: pa.Table | None = None) -> SegmentIndex | None:
        """Compact and index a segment that takes no more appends; on a fault (a full disk,
        say) leave it as it is, readable, to be compacted at the next seal or open."""
        try:
            index = compact_segment(path, table)
        except (OSError, LogError, pa.ArrowException) as exc:
            if path not in self._uncompacted:
                self._uncompacted.append(path)
            log.warning("log.seal_deferred", segment=str(path), error=str(exc))
            return None
        if path in self._uncompacted:
            self._uncompacted.remove(path)
        return index

    def _add_sealed(self, *indexes: SegmentIndex) -> None:
        if not indexes:
            return
        self._sealed.extend(index.span for index in indexes)
        self._sealed_firsts.extend(index.first for index in indexes)
        # One sort for all of them: opening a log of many segments stays O(n log n).
        self._event_ids.merge(
            np.concatenate([i.event_keys for i in indexes]),
            np.concatenate([i.event_positions for i in indexes]),
        )
        self._memory_ids.merge(
            np.concatenate([i.memory_keys for i in indexes]),
            np.concatenate([i.memory_positions for i in indexes]),
        )

    def _tail_record(self) -> Record | None:
        if self._active_batches:
            last = self._active_batches[-1]
            return next(batch_to_records(last.slice(last.num_rows - 1)))
        if self._sealed:
            table = self._sealed_table(len(self._sealed) - 1)
            return next(batch_to_records(table.slice(table.num_rows - 1)))
        return None

    # -- writing -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._dir.name

    @property
    def last_position(self) -> int:
        return self._writer.position

    @property
    def commits(self) -> int:
        return self._writer.commits

    def append(self, drafts: Sequence[Draft]) -> list[Receipt]:
        if not self._writable or self._active is None:
            raise LogError(f"stream {self.name!r} is open read-only")
        return self._writer.append(drafts)

    def _persist(self, records: list[Record]) -> None:
        assert self._active is not None
        batch = records_to_batch(records)
        with self._lock:
            self._active.write(batch)  # durable, or the file as it was and an error
            self._active_index.add(records)
            self._sign_head(records[-1])
            if self._active.offset >= self._segment_bytes:
                # Never fails the append: its batch is durable, so it is acknowledged.
                self._seal_active(records[-1].position + 1)

    def _seal_active(self, next_first: int) -> None:
        """Start the next segment, then seal the full one. Once the next segment exists the
        full one takes no appends, whether or not its compaction succeeds; if the next one
        cannot be made, appends go on in the full one and sealing is tried after the next."""
        assert self._active is not None
        full = self._active
        try:
            following = ActiveSegment.create(segment_path(self._dir, next_first))
        except LogError as exc:
            log.warning("log.seal_deferred", segment=str(full.path), error=str(exc))
            return
        table = full.table()
        full.close()
        self._active, self._active_batches = following, following.batches
        self._active_index = ActiveIndex()
        index = self._compact(full.path, table)
        self._add_sealed(index or SegmentIndex.build(full.first_position, table))
        for path in list(self._uncompacted):  # what a fault put off before
            if path != full.path:
                self._compact(path)
        if index is not None:
            log.info("log.segment_sealed", stream=self.name, segment=full.path.name)
        if self._heads is not None:
            try:
                self._heads.sync()
            except OSError as exc:
                log.warning("log.head_deferred", stream=self.name, error=str(exc))

    def _find(self, event_ids: Sequence[str]) -> dict[str, Record]:
        wanted = set(event_ids)
        with self._lock:
            positions = [
                self._active_index.events[e] for e in wanted if e in self._active_index.events
            ]
            if len(self._event_ids.keys):
                positions += self._event_ids.lookup_many(keys64(wanted))
        return {r.event_id: r for r in self._records_at(positions) if r.event_id in wanted}

    # -- reading -------------------------------------------------------------------------

    def _sealed_table(self, i: int) -> pa.Table:
        first = self._sealed[i].first
        table = self._tables.get(first)
        if table is None:
            table = read_sealed(segment_path(self._dir, first))
            self._tables[first] = table
            if len(self._tables) > _CACHED_TABLES:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(first)
        return table

    def drop_cached_tables(self) -> None:
        """Let go of the decompressed sealed segments kept for the next read (after a long
        sequential read, such as an actor's restore, they are not the ones read next)."""
        with self._lock:
            self._tables.clear()

    def _snapshot(self) -> tuple[list[SegmentSpan], pa.Table, set[str], set[str]]:
        with self._lock:
            active = pa.Table.from_batches(list(self._active_batches), schema=ENVELOPE_SCHEMA)
            return (
                list(self._sealed),
                active,
                set(self._active_index.namespaces),
                set(self._active_index.kinds),
            )

    def _records_at(self, positions: list[int]) -> list[Record]:
        """The records at these positions, in order: taken from each segment at once."""
        rows: dict[int, list[int]] = {}  # segment (-1: the active one) -> row numbers
        with self._lock:
            active_first = self._sealed[-1].last + 1 if self._sealed else 1
            for position in sorted(set(positions)):
                i = bisect.bisect_right(self._sealed_firsts, position) - 1
                if i >= 0 and position <= self._sealed[i].last:
                    rows.setdefault(i, []).append(position - self._sealed[i].first)
                else:
                    rows.setdefault(-1, []).append(position - active_first)
            tables = {
                i: self._sealed_table(i)
                if i >= 0
                else pa.Table.from_batches(self._active_batches, ENVELOPE_SCHEMA)
                for i in rows
            }
        out: list[Record] = []
        for i, numbers in rows.items():  # ascending: the active segment comes last
            out.extend(batch_to_records(tables[i].take(numbers)))
        return out

    def scan(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
        memory_id: str | None = None,
    ) -> Iterator[pa.Table]:
        for table in self._segment_tables(start, stop, namespace, kind):
            yield filter_table(
                table, start=start, stop=stop, namespace=namespace, kind=kind, memory_id=memory_id
            )

    def last(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
    ) -> Record | None:
        """The newest record in start..stop matching the filters. Segments are searched newest
        first, so a match near the end of the stream decompresses no sealed segment."""
        for table in self._segment_tables(start, stop, namespace, kind, newest_first=True):
            found = filter_table(table, start=start, stop=stop, namespace=namespace, kind=kind)
            if found.num_rows:
                return next(batch_to_records(found.slice(found.num_rows - 1)))
        return None

    def _segment_tables(
        self,
        start: int,
        stop: int | None,
        namespace: str | None,
        kind: str | None,
        *,
        newest_first: bool = False,
    ) -> Iterator[pa.Table]:
        """The segments that may hold matching rows (by their spans), whole, in order; a
        sealed one is read only when the iteration reaches it."""
        sealed, active, active_ns, active_kinds = self._snapshot()
        candidates: list[int] = [
            i
            for i, index in enumerate(sealed)
            if index.last >= start
            and (stop is None or index.first <= stop)
            and (namespace is None or namespace in index.namespaces)
            and (kind is None or kind in index.kinds)
        ]
        if (namespace is None or namespace in active_ns) and (kind is None or kind in active_kinds):
            candidates.append(-1)  # the active segment, after every sealed one
        for i in reversed(candidates) if newest_first else candidates:
            if i < 0:
                yield active
                continue
            with self._lock:
                table = self._sealed_table(i)
            yield table

    def read(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        memory_id: str | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        if memory_id is not None:
            yield from self._read_memory(memory_id, start, stop, namespace, kind)
            return
        for table in self.scan(start, stop, namespace=namespace, kind=kind):
            yield from batch_to_records(table)

    def _read_memory(
        self, memory_id: str, start: int, stop: int | None, namespace: str | None, kind: str | None
    ) -> Iterator[Record]:
        with self._lock:
            positions = list(self._active_index.memories.get(memory_id, []))
            positions += self._memory_ids.lookup(key64(memory_id))
        for record in self._records_at(positions):
            if (
                record.memory_id == memory_id
                and record.position >= start
                and (stop is None or record.position <= stop)
                and (namespace is None or record.namespace == namespace)
                and (kind is None or record.kind == kind)
            ):
                yield record

    def get(self, event_id: str) -> Record | None:
        return self._find([event_id]).get(event_id)

    def get_many(self, event_ids: Sequence[str]) -> dict[str, Record]:
        """The records of those of the event ids this stream holds, by event id."""
        return self._find(event_ids)

    def refresh(self) -> int:
        """A read-only stream takes in what its writer (another process) has added since:
        new batches, and segments sealed meanwhile. Returns the last position."""
        if self._writable:
            return self.last_position
        with self._lock:
            files = self._segment_files()
            if not files:
                return 0
            if self._read_path is not None and files[-1] != self._read_path:
                # What we followed was sealed meanwhile: it and any after it are sealed now.
                self._active_batches, self._active_index = [], ActiveIndex()
                self._read_path, self._read_offset = None, 0
            if self._read_path is None:
                self._add_sealed(*(self._load_index(p) for p in files[len(self._sealed) : -1]))
                self._read_path, self._read_offset = files[-1], 0
            if self._read_path.stat().st_size > self._read_offset:
                scan = scan_segment(self._read_path, self._read_offset)
                self._active_batches.extend(scan.batches)
                for batch in scan.batches:
                    self._active_index.add_batch(batch)
                self._read_offset = scan.good_end
            tail = self._tail_record()
            if tail is not None:
                self._writer.follow(tail)
            return self.last_position

    def tail(self) -> Record | None:
        """The newest record, or None when the stream is empty."""
        with self._lock:
            return self._tail_record()

    def namespaces(self) -> set[str]:
        with self._lock:
            found = set(self._active_index.namespaces)
            for index in self._sealed:
                found |= index.namespaces
        return found

    # -- integrity -----------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Every batch as it is on disk, read afresh, for verify."""
        expected = 1
        for path in self._segment_files():
            try:
                scan = scan_segment(path)
            except LogError as exc:
                yield Chunk(path.name, expected, None, str(exc))
                return
            for batch in scan.batches:
                try:
                    batch.validate(full=True)
                except pa.ArrowException as exc:
                    yield Chunk(path.name, expected, None, f"malformed batch: {exc}")
                    return
                yield Chunk(path.name, expected, batch)
                expected += batch.num_rows
            if scan.good_end < scan.size:
                yield Chunk(
                    path.name, expected, None, f"unreadable bytes from offset {scan.good_end}"
                )
                return

    def verify(self) -> VerifyReport:
        key = self._heads_key
        head = HeadFile(self._dir, self.name, key).read() if key is not None else None
        return verify_chunks(self.name, self.chunks(), head, anchored=key is not None)

    def signed_head(self) -> Head | None:
        """The stream's head as its `HEAD` says (None without one, or without the key)."""
        if self._heads_key is None:
            return None
        return HeadFile(self._dir, self.name, self._heads_key).read()

    def close(self) -> None:
        with self._lock:
            try:
                if self._active is not None:
                    active, self._active = self._active, None
                    active.close()
                if self._heads is not None:
                    heads, self._heads = self._heads, None
                    heads.close()
            finally:  # a failed close still lets the next writer in
                if self._writer_lock is not None:
                    self._writer_lock.release()
                    self._writer_lock = None

    def segment_paths(self) -> list[Path]:
        return self._segment_files()
