"""Segment files: Arrow IPC streams of envelope batches, one file per run of positions.

A segment is named after its first position (``00000000000000000001.arrow``). The last one is
active: each durable append writes one record batch to its end and fsyncs. When it passes the
size limit the next segment is started and the full one sealed: rewritten as a few large
zstd-compressed batches (atomically, by rename) and given a sidecar index (``.idx``) with what
reads need to skip it or jump into it. A segment that is not the last takes no appends, whether
or not it was compacted yet; one without an index is compacted when the stream next opens.
After a crash, the active segment's tail is read message by message, its rows validated (Arrow
full validation, each row's position, previous hash and hash: `verify.check_rows`), and the
file cut back to the last row that verifies (`ActiveSegment.recover`). Every read of a segment
goes through `scan_segment`, the reader `verify` uses.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mnemoflow.eventlog.atomic import fsync_path, write_atomic
from mnemoflow.eventlog.errors import CorruptSegment, StorageError
from mnemoflow.eventlog.keys import keys64
from mnemoflow.eventlog.schema import ELIDED_HASH, ENVELOPE_SCHEMA, HASH_BYTES
from mnemoflow.eventlog.verify import check_rows

SEGMENT_SUFFIX = ".arrow"
INDEX_SUFFIX = ".idx"
_SEALED_BATCH_ROWS = 65_536
_SEALED_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"

RECOVERY_CHECKED_BATCHES = 8  # the tail a crash can have reached, with room to spare


def segment_path(directory: Path, first_position: int) -> Path:
    return directory / f"{first_position:020d}{SEGMENT_SUFFIX}"


def segment_first_position(path: Path) -> int:
    try:
        return int(path.name.removesuffix(SEGMENT_SUFFIX))
    except ValueError as exc:
        raise CorruptSegment(path, "segment file name is not a position") from exc


@dataclass(frozen=True, slots=True)
class ScanResult:
    batches: list[pa.RecordBatch]
    good_end: int  # byte offset just past the last whole batch (0: not even a whole header)
    size: int
    starts: list[int]  # where each batch begins


@dataclass(frozen=True, slots=True)
class TailCut:
    """What opening an active segment cut from its end, and why."""

    bytes: int
    first_position: int  # the first position no longer in the log
    reason: str


def scan_segment(path: Path, start: int = 0) -> ScanResult:
    """Every whole batch of a segment (from byte `start`, a batch boundary past the header),
    and where the whole part of the file ends."""
    try:
        data = pa.memory_map(str(path), "r")
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot open segment {path}: {exc}") from exc
    size = data.size()
    if start == 0:
        try:
            message = pa.ipc.read_message(data)
            schema = pa.ipc.read_schema(message)
        except (OSError, EOFError, pa.ArrowException):
            return ScanResult([], 0, size, [])  # torn while the header was being written
        if not schema.remove_metadata().equals(ENVELOPE_SCHEMA.remove_metadata()):
            raise CorruptSegment(path, "schema is not the event envelope")
    else:
        data.seek(start)
    batches: list[pa.RecordBatch] = []
    starts: list[int] = []
    good_end = data.tell()
    while good_end < size:
        try:
            message = pa.ipc.read_message(data)
            batch = pa.ipc.read_record_batch(message, ENVELOPE_SCHEMA)
        except (OSError, EOFError, pa.ArrowException):
            break
        batches.append(batch)
        starts.append(good_end)
        good_end = data.tell()
    return ScanResult(batches, good_end, size, starts)


def read_sealed(path: Path) -> pa.Table:
    """A sealed segment as one table: read as `verify` reads it (`scan_segment`, against the
    envelope schema), so what verify passed is what reads get; decompressed, or memory-mapped
    when it was sealed uncompressed (as segments were before)."""
    scan = scan_segment(path)
    if not scan.batches or scan.good_end < scan.size:
        raise CorruptSegment(path, f"cannot be read past byte {scan.good_end} of {scan.size}")
    return _restore_prev_hash(pa.Table.from_batches(scan.batches, ENVELOPE_SCHEMA))


def _elide_prev_hash(table: pa.Table) -> pa.Table:
    n = table.num_rows
    if n < 2:
        return table
    prev = table["prev_hash"].combine_chunks()
    zeros = pa.array([ELIDED_HASH] * (n - 1), pa.binary(HASH_BYTES))
    column = table.schema.get_field_index("prev_hash")
    field = table.schema.field(column)
    return table.set_column(column, field, pa.concat_arrays([prev.slice(0, 1), zeros]))


def _restore_prev_hash(table: pa.Table) -> pa.Table:
    """Each elided previous hash (past the first row) back from the row before's hash;
    segments sealed before eliding hold them all and are left as they are."""
    n = table.num_rows
    if n < 2:
        return table
    prev = table["prev_hash"].combine_chunks()
    elided = pc.equal(prev.slice(1), pa.scalar(ELIDED_HASH, pa.binary(HASH_BYTES)))
    if not pc.any(elided).as_py():
        return table
    before = table["hash"].combine_chunks().slice(0, n - 1)
    restored = pc.if_else(elided, before, prev.slice(1))
    column = table.schema.get_field_index("prev_hash")
    field = table.schema.field(column)
    return table.set_column(column, field, pa.concat_arrays([prev.slice(0, 1), restored]))


def compact_tail(batches: list[pa.RecordBatch]) -> None:
    """Merge the newest in-memory batches while the last is as large as the one before.

    Like a binary counter this keeps O(log n) batches for n appends, so reads of the active
    segment stay fast however small the appends were; the file keeps the original batches.
    """
    while len(batches) >= 2 and batches[-1].num_rows >= batches[-2].num_rows:
        last = batches.pop()
        batches[-1] = pa.concat_batches([batches[-1], last])


class ActiveSegment:
    """The one segment a stream appends to. Only the stream's writer touches it."""

    def __init__(self, path: Path, fd: int, offset: int, batches: list[pa.RecordBatch]) -> None:
        self.path = path
        self.first_position = segment_first_position(path)
        self._fd = fd
        self.offset = offset
        self.batches = batches

    @classmethod
    def create(cls, path: Path) -> ActiveSegment:
        header = ENVELOPE_SCHEMA.serialize().to_pybytes()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, header)
            os.fsync(fd)
            fsync_path(path.parent)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise StorageError(f"cannot create segment {path}: {exc}") from exc
        return cls(path, fd, len(header), [])

    @classmethod
    def recover(
        cls, path: Path, prev_hash: bytes, first_position: int
    ) -> tuple[ActiveSegment, TailCut | None]:
        """Open for appending after whatever ended the last run. The tail is checked for
        content, not only framing: its last batches are validated in full and each row's
        hash recomputed, chaining on from the rows before them (from `prev_hash` at
        `first_position`). The file is cut back to the last row that verifies (a batch's
        good leading rows are written again), so the next append never chains onto a
        damaged record; what was cut is returned. Only the last `RECOVERY_CHECKED_BATCHES`
        batches are checked: each earlier one was fdatasynced before the next write began, so
        no crash can have touched it (damage there is `verify`'s to find), and checking an
        8 MiB segment of single-event batches cost seconds on every open."""
        scan = scan_segment(path)
        if scan.good_end == 0:
            path.unlink()
            cut = TailCut(scan.size, first_position, "its header is torn") if scan.size else None
            return cls.create(path), cut
        keep_end, kept, partial, reason = scan.good_end, [], None, None
        position, prev = first_position, prev_hash
        # Batches made durable before the next write began are verify's part, not this.
        checked_from = max(0, len(scan.batches) - RECOVERY_CHECKED_BATCHES)
        kept = scan.batches[:checked_from]
        position += sum(b.num_rows for b in kept)
        for batch in reversed(kept):
            if batch.num_rows:
                prev = batch.column("hash")[-1].as_py()
                break
        checked = zip(scan.batches[checked_from:], scan.starts[checked_from:], strict=True)
        for batch, start in checked:
            good, prev, why = check_rows(batch, prev, position, first_in_stream=position == 1)
            position += good
            if why is not None:
                keep_end, reason = start, why
                if good:  # copied out: the file is mapped, and its end is about to go
                    message = pa.ipc.read_message(batch.slice(0, good).serialize())
                    partial = pa.ipc.read_record_batch(message, ENVELOPE_SCHEMA)
                break
            kept.append(batch)
        fd = os.open(path, os.O_RDWR)
        if scan.size > keep_end:
            os.ftruncate(fd, keep_end)
            os.fsync(fd)
        segment = cls(path, fd, keep_end, [pa.concat_batches(kept)] if kept else [])
        if partial is not None:
            segment.write(partial)
        if scan.size == keep_end:
            return segment, None
        reason = reason or "a batch is torn (a write the crash cut short)"
        return segment, TailCut(scan.size - keep_end, position, reason)

    def write(self, batch: pa.RecordBatch) -> None:
        """Write one batch durably, or leave the file as it was and raise."""
        data = batch.serialize()
        try:
            written = os.pwrite(self._fd, data, self.offset)
            if written != data.size:
                raise OSError(f"short write: {written} of {data.size} bytes")
            os.fdatasync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.offset)
            raise StorageError(f"cannot write to {self.path}: {exc}") from exc
        self.offset += data.size
        self.batches.append(batch)
        compact_tail(self.batches)

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=ENVELOPE_SCHEMA)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def compact_segment(path: Path, table: pa.Table | None = None) -> SegmentIndex:
    """Seal a segment that no longer takes appends: rewrite it as large zstd-compressed
    batches (same rows, same bytes hashed) and write its index, each file atomically.

    The envelope's ids, kinds and times compress (about 100 bytes an event); sealed payloads
    do not, so they are compressed before sealing (`Payload.encode`). `table` is the segment's
    rows when the caller holds them. Safe to repeat: a fault leaves the segment as it was (or
    compacted without its index), readable either way, and it is done again later."""
    if table is None:
        table = read_sealed(path)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ENVELOPE_SCHEMA, options=_SEALED_OPTIONS) as writer:
        sealed = _elide_prev_hash(table.combine_chunks())
        for batch in sealed.to_batches(max_chunksize=_SEALED_BATCH_ROWS):
            writer.write_batch(batch)
    data = memoryview(sink.getvalue())
    # Same framing as the active file (header, then batches, no end-of-stream marker), so
    # one reader and one recovery rule serve every segment.
    if bytes(data[-len(_END_OF_STREAM) :]) == _END_OF_STREAM:
        data = data[: -len(_END_OF_STREAM)]
    write_atomic(path, data)
    index = SegmentIndex.build(segment_first_position(path), table)
    # Last: a sealed segment with an index is compacted; one without is compacted on open.
    write_index(index_path(path), index)
    return index


def index_path(segment: Path) -> Path:
    return segment.with_suffix(INDEX_SUFFIX)


@dataclass(frozen=True, slots=True)
class SegmentSpan:
    """What a read needs to skip a sealed segment."""

    first: int
    last: int
    namespaces: frozenset[str]
    kinds: frozenset[str]


@dataclass(frozen=True)
class SegmentIndex:
    """A segment's span, and its id keys to find rows in it without a scan (a stream merges
    these into one lookup across its segments and keeps only the span)."""

    first: int
    last: int
    namespaces: frozenset[str]
    kinds: frozenset[str]
    event_keys: npt.NDArray[np.uint64]
    event_positions: npt.NDArray[np.int64]
    memory_keys: npt.NDArray[np.uint64]
    memory_positions: npt.NDArray[np.int64]

    @property
    def span(self) -> SegmentSpan:
        return SegmentSpan(self.first, self.last, self.namespaces, self.kinds)

    @classmethod
    def build(cls, first: int, table: pa.Table) -> SegmentIndex:
        positions = np.asarray(table.column("position").to_numpy(), dtype=np.int64)
        event_keys = keys64(table.column("event_id").to_pylist())
        memory_ids = table.column("memory_id").to_pylist()
        with_memory = [i for i, m in enumerate(memory_ids) if m is not None]
        memory_keys = keys64(memory_ids[i] for i in with_memory)
        memory_positions = positions[with_memory] if with_memory else positions[:0]
        e_order = np.argsort(event_keys, kind="stable")
        m_order = np.argsort(memory_keys, kind="stable")
        return cls(
            first=first,
            last=first + table.num_rows - 1,
            namespaces=frozenset(table.column("namespace").unique().to_pylist()),
            kinds=frozenset(table.column("kind").unique().to_pylist()),
            event_keys=event_keys[e_order],
            event_positions=positions[e_order],
            memory_keys=memory_keys[m_order],
            memory_positions=memory_positions[m_order],
        )


def write_index(path: Path, index: SegmentIndex) -> None:
    meta = {
        "first": index.first,
        "last": index.last,
        "namespaces": sorted(index.namespaces),
        "kinds": sorted(index.kinds),
    }
    n_events, n_memories = len(index.event_keys), len(index.memory_keys)
    pad = n_events - n_memories
    table = pa.table(
        {
            "event_key": pa.array(index.event_keys, pa.uint64()),
            "event_position": pa.array(index.event_positions, pa.int64()),
            "memory_key": pa.array(
                np.concatenate([index.memory_keys, np.zeros(pad, np.uint64)]), pa.uint64()
            ),
            "memory_position": pa.array(
                np.concatenate([index.memory_positions, np.full(pad, -1, np.int64)]), pa.int64()
            ),
        }
    ).replace_schema_metadata({"mnemoflow.index": json.dumps(meta)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    write_atomic(path, sink.getvalue())


def read_index(path: Path) -> SegmentIndex:
    """Load a sidecar index; raises CorruptSegment when it is missing or unreadable."""
    try:
        with pa.ipc.open_file(pa.memory_map(str(path), "r")) as reader:
            table = reader.read_all()
        meta = json.loads(table.schema.metadata[b"mnemoflow.index"])
        memory_positions = table.column("memory_position").to_numpy()
        keep = memory_positions >= 0
        return SegmentIndex(
            first=int(meta["first"]),
            last=int(meta["last"]),
            namespaces=frozenset(meta["namespaces"]),
            kinds=frozenset(meta["kinds"]),
            event_keys=table.column("event_key").to_numpy(),
            event_positions=table.column("event_position").to_numpy(),
            memory_keys=table.column("memory_key").to_numpy()[keep],
            memory_positions=memory_positions[keep],
        )
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise CorruptSegment(path, f"index unreadable: {exc}") from exc
