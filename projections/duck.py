"""The DuckDB projection: memories, versions, feedback and BM25 postings, folded from the log.

Applying a batch and advancing the stream's applied position is one transaction, so a crash
between batches neither applies one twice nor skips one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import MemoryEmbedded
from mnemoflow.eventlog.schema import (
    EMBEDDED_STREAM,
    PATTERNS_STREAM,
    SUBJECT_ERASED,
    from_micros,
)
from mnemoflow.projections import postings
from mnemoflow.projections.changes import Changes
from mnemoflow.projections.derived_rows import (
    DERIVED_ARROW,
    DERIVED_TABLES,
    KEY_COLUMN,
    DerivedFold,
)
from mnemoflow.projections.episode_rows import EPISODE_TABLES, fill_docs, fold_episodes
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.guard_rows import GUARD_TABLES, fold_guards
from mnemoflow.projections.memstate import (
    ACTIVE,
    CONTEXT_FIELD,
    ERASED,
    FIELDS,
    FORGOTTEN,
    BatchFold,
    Contradicting,
    MemoryRow,
    doc_id,
    with_context,
)
from mnemoflow.projections.pattern_rows import PATTERN_TABLES, fold_patterns
from mnemoflow.projections.rows import FEEDBACK_ARROW, MEMORY_ARROW, VERSION_ARROW

_SCHEMA = (Path(__file__).parent / "schema.sql").read_text()
TABLES = (
    "applied",
    "memories",
    "versions",
    "feedback",
    "postings",
    "term_stats",
    "corpus",
    *DERIVED_TABLES,
    *EPISODE_TABLES,
    *GUARD_TABLES,
    *PATTERN_TABLES,
)
_TIME_COLUMNS = ("occurred_at", "recorded_at")
# Times leave DuckDB as microseconds: converting TIMESTAMPTZ values in Python goes through
# pytz, which costs more than the rest of reading a row.
_MEMORY_COLUMNS = ", ".join(
    f"epoch_us({c})" if c in _TIME_COLUMNS else c for c in MemoryRow.__dataclass_fields__
)
_SELECT_MEMORIES = f"SELECT {_MEMORY_COLUMNS} FROM memories"
# What a hit shows of a memory: all but its context (the longest column).
SELECT_HITS = _SELECT_MEMORIES.replace(", context,", ", NULL AS context,")
_OCCURRED, _RECORDED = (list(MemoryRow.__dataclass_fields__).index(c) for c in _TIME_COLUMNS)


def memory_row(values: Sequence[Any]) -> MemoryRow:
    """A row as `SELECT_HITS` (or the whole-row select) gives it."""
    row = list(values)
    for i in (_OCCURRED, _RECORDED):
        if row[i] is not None:
            row[i] = from_micros(row[i])
    return MemoryRow(*row)


# A row of `applied` that is no stream: set with an erasure, cleared by the rewrite after it.
COMPACTION_OWED = "~compaction-owed"
_BULK_CHECKPOINT = "1GB"  # the write-ahead log a bulk fold lets grow before a checkpoint
_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log beside its database file."""
    return path.with_name(path.name + ".wal")


def compaction_path(path: Path) -> Path:
    """Where `DuckProjection.compact` writes the copy it swaps in."""
    return path.with_suffix(".compact")


def _check_length(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A file too short to hold the blocks DuckDB uses was cut short (a torn copy, a full
    disk): DuckDB itself would only fail later, when a query reads a missing block.

    Only used blocks count: a checkpoint cuts free blocks off the end of the file, and the
    block count DuckDB reports on the next open still includes them."""
    row = con.execute("PRAGMA database_size").fetchone()
    if row is None:
        return
    block_size, used_blocks = int(row[2]), int(row[4])
    expected = _HEADER_BYTES + block_size * used_blocks
    actual = path.stat().st_size
    if actual < expected:
        raise ProjectionError(f"{path} is {actual} bytes, its blocks need {expected}: truncated")


class DuckProjection:
    def __init__(self, path: Path | None = None, *, read_only: bool = False) -> None:
        self.path = path
        self._applied: dict[str, int] | None = None
        self.changes = Changes()  # what readers holding copies of rows re-read
        target = ":memory:" if path is None else str(path)
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            # With a write-ahead log to replay, the blocks counted may not all be in the file.
            whole = path is not None and path.exists() and not wal_path(path).exists()
            self.con = duckdb.connect(target, read_only=read_only)
            if whole and path is not None:
                _check_length(self.con, path)
            if not read_only:
                self.con.execute(_SCHEMA)
                fill_docs(self.con)
        except (duckdb.Error, OSError, ProjectionError) as exc:
            with contextlib.suppress(AttributeError, duckdb.Error):
                self.con.close()
            raise ProjectionError(f"cannot open the DuckDB projection {target}: {exc}") from exc

    # -- positions -----------------------------------------------------------------------

    def applied(self, stream: str) -> int:
        """How far the stream has been applied. This object is the file's only writer, so the
        positions are read once and then kept as each transaction commits them."""
        if self._applied is None:
            rows = self.con.cursor().execute("SELECT stream, position FROM applied").fetchall()
            self._applied = {str(name): int(position) for name, position in rows}
        return self._applied.get(stream, 0)

    def version(self) -> tuple[tuple[str, int], ...]:
        """Every stream's applied position: changes whenever any table may have."""
        self.applied("")
        assert self._applied is not None
        return tuple(sorted(self._applied.items()))

    # -- applying ------------------------------------------------------------------------

    def apply(self, stream: str, events: Sequence[Opened]) -> None:
        """Fold a batch of the input stream and record its last position, atomically."""
        if not events:
            return
        touched = _touched(events)
        erased = any(e.record.kind == SUBJECT_ERASED for e in events)
        if erased:  # no reader lays a change over rows an erasure is about to drop...
            self.changes.reset()
        positions = {stream: events[-1].record.position}
        if erased:  # committed with the erasure: a compaction cut short is done later
            positions[COMPACTION_OWED] = events[-1].record.position
        with self._transaction(positions):
            for run in _split_at_erasures(events):
                if run[0].record.kind == SUBJECT_ERASED:
                    self._erase(run[0].record.namespace)
                else:
                    for row in self._apply_run(run):
                        touched.setdefault(row.namespace, set()).add(row.doc)
        if erased:  # ...nor keeps what it read while the erasure was being applied
            self.changes.reset()
        else:
            self.changes.record(touched)

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """For a long fold (a rebuild, a large catch-up): one checkpoint at the end (and those
        the fold asks for), not one per 16 MB of write-ahead log, each rewriting the row
        groups the batches since the last one touched (a 10^5 rebuild: ~40 s -> ~34 s)."""
        try:
            self.con.execute(f"SET checkpoint_threshold = '{_BULK_CHECKPOINT}'")
        except duckdb.Error as exc:
            raise ProjectionError(f"cannot set DuckDB's checkpoint threshold: {exc}") from exc
        try:
            yield
        finally:
            with contextlib.suppress(duckdb.Error):  # an error on its way is the one to see
                self.con.execute("RESET checkpoint_threshold")
                self.con.execute("CHECKPOINT")

    def checkpoint(self) -> None:
        """Write what the write-ahead log holds into the database file now."""
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise ProjectionError(f"cannot checkpoint DuckDB: {exc}") from exc

    def merge(self, path: Path, streams: Sequence[str]) -> None:
        """Copy in what a fold into another file made of `streams` (`projections.aside`),
        with their positions, in one transaction. Their tables here must be empty: each
        stream's rows come from that fold alone.

        On one thread: DuckDB's parallel insert leaves a part-filled row group per thread,
        and how many depends on how the other file was written (a 10^5 rebuild's file was
        ~3 MB larger after the child's transactions grew fourfold; on one thread, not)."""
        try:
            self.con.execute(f"ATTACH {_literal(path)} AS aside (READ_ONLY)")
            self.con.execute("SET threads = 1")
        except duckdb.Error as exc:
            raise ProjectionError(f"cannot open the fold in {path}: {exc}") from exc
        try:
            rows = self.con.execute(
                "SELECT stream, position FROM aside.applied WHERE list_contains(?, stream)",
                [list(streams)],
            ).fetchall()
            with self._transaction({str(s): int(p) for s, p in rows}):
                for table in (*DERIVED_TABLES, *PATTERN_TABLES):
                    self.con.execute(f"INSERT INTO {table} SELECT * FROM aside.{table}")
        except duckdb.Error as exc:
            raise ProjectionError(f"cannot copy in the fold in {path}: {exc}") from exc
        finally:
            for undo in ("RESET threads", "DETACH aside"):
                with contextlib.suppress(duckdb.Error):
                    self.con.execute(undo)
        self.changes.reset()  # rows of every memory came in at once

    @contextlib.contextmanager
    def _transaction(self, positions: dict[str, int]) -> Iterator[None]:
        """One transaction for a batch and the positions it brings its streams to."""
        try:
            self.con.begin()
            yield
            for stream, position in positions.items():
                self.con.execute(
                    "INSERT INTO applied VALUES (?, ?) ON CONFLICT (stream) "
                    "DO UPDATE SET position = excluded.position",
                    [stream, position],
                )
            self.con.commit()
            if self._applied is not None:
                self._applied.update(positions)
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                self.con.rollback()
            raise ProjectionError(f"cannot apply a batch to DuckDB: {exc}") from exc

    def _apply_run(self, events: Sequence[Opened]) -> list[MemoryRow]:
        """Fold a run of input events; returns the rows it changed beyond the events' own
        memories (those whose context a forget emptied)."""
        touched = sorted({e.record.memory_id for e in events if e.record.memory_id})
        fold = BatchFold(before=self._rows(touched))
        fold.apply(events)
        unindex, index = fold.reindexed()
        uncontexted = self._contexts_of(fold.forgotten(), fold.after)
        postings.unindex(self.con, unindex, FIELDS)
        postings.unindex(self.con, uncontexted, (CONTEXT_FIELD,))
        for row in uncontexted:
            fold.after[row.memory_id] = replace(row, context=None)
        self._replace_rows(list(fold.after.values()))
        self._bulk("versions", VERSION_ARROW, fold.versions)
        self._bulk("feedback", FEEDBACK_ARROW, fold.feedback)
        postings.index(self.con, index, FIELDS)
        fold_episodes(self.con, events)
        fold_guards(self.con, events)
        return uncontexted

    def _contexts_of(
        self, forgotten: Sequence[int], folded: dict[str, MemoryRow]
    ) -> list[MemoryRow]:
        """The live rows whose context holds the text of a memory just forgotten (the memory
        stored after it): a forgotten text must not stay searchable through its neighbour."""
        if not forgotten:
            return []
        postings.register(
            self.con, "_forgotten", pa.table({"doc": pa.array(list(forgotten), pa.int64())})
        )
        found = self.con.execute(
            "SELECT memory_id FROM memories WHERE prev_doc IN (SELECT doc FROM _forgotten) "
            "AND context IS NOT NULL"
        ).fetchall()
        ids = [str(m) for (m,) in found]
        rows = self._rows([m for m in ids if m not in folded])
        current = [folded.get(m) or rows[m] for m in ids]
        return [r for r in current if r.status == ACTIVE and r.context]

    def apply_embedded(self, events: Sequence[Opened]) -> None:
        """Fold a batch of the embedded stream (contexts and neighbours), atomically."""
        if not events:
            return
        touched = sorted({e.record.memory_id for e in events if e.record.memory_id})
        with self._transaction({EMBEDDED_STREAM: events[-1].record.position}):
            after, unindex, index = with_context(
                self._rows(touched), events, self._forgotten_among(events)
            )
            postings.unindex(self.con, unindex, (CONTEXT_FIELD,))
            self._set_contexts(list(after.values()))
            postings.index(self.con, index, (CONTEXT_FIELD,))
        self.changes.record(_touched(events))

    def _forgotten_among(self, events: Sequence[Opened]) -> set[str]:
        """The memories these embedded events took a context from that are forgotten now."""
        ids = {
            e.payload.context_memory_id
            for e in events
            if isinstance(e.payload, MemoryEmbedded) and e.payload.context_memory_id
        }
        if not ids:
            return set()
        postings.register(self.con, "_wanted", pa.table({"memory_id": sorted(ids)}))
        found = self.con.execute(
            "SELECT memory_id FROM memories WHERE status = ? "
            "AND memory_id IN (SELECT memory_id FROM _wanted)",
            [FORGOTTEN],
        ).fetchall()
        return {str(m) for (m,) in found}

    def apply_derived(self, stream: str, events: Sequence[Opened]) -> None:
        """Fold a batch of an actor's stream (extracted, linked, consolidated, decay,
        patterns)."""
        if not events:
            return
        if stream == PATTERNS_STREAM:  # rows of their own, not a memory's
            with self._transaction({stream: events[-1].record.position}):
                fold_patterns(self.con, events)
            return
        fold = DerivedFold()
        fold.apply(events)
        with self._transaction({stream: events[-1].record.position}):
            for table, by_doc in fold.rows.items():
                if not by_doc:
                    continue
                if table != "consolidation":  # decisions accumulate; the rest is replaced
                    column = KEY_COLUMN.get(table, "doc")
                    postings.register(
                        self.con, "_docs", pa.table({"doc": pa.array(list(by_doc), pa.int64())})
                    )
                    self.con.execute(
                        f"DELETE FROM {table} WHERE {column} IN (SELECT doc FROM _docs)"
                    )
                rows = [row for doc_rows in by_doc.values() for row in doc_rows]
                self._bulk(table, DERIVED_ARROW[table], rows)
        self.changes.record(_touched(events))

    def _replace_rows(self, rows: Sequence[MemoryRow]) -> None:
        if not rows:
            return
        postings.register(self.con, "_ids", pa.table({"memory_id": [r.memory_id for r in rows]}))
        self.con.execute("DELETE FROM memories WHERE memory_id IN (SELECT memory_id FROM _ids)")
        self._bulk(
            "memories",
            MEMORY_ARROW,
            [tuple(getattr(r, f) for f in MemoryRow.__dataclass_fields__) for r in rows],
        )

    def _set_contexts(self, rows: Sequence[MemoryRow]) -> None:
        """Write the rows' context and previous memory, the only columns an embedding sets:
        an UPDATE of two columns, not the whole row deleted and inserted again (a tenth of
        the time in DuckDB)."""
        if not rows:
            return
        contexts = pa.table(
            {
                "memory_id": pa.array([r.memory_id for r in rows], pa.string()),
                "context": pa.array([r.context for r in rows], pa.string()),
                "prev_doc": pa.array([r.prev_doc for r in rows], pa.int64()),
            }
        )
        postings.register(self.con, "_contexts", contexts)
        self.con.execute(
            "UPDATE memories SET context = c.context, prev_doc = c.prev_doc "
            "FROM _contexts AS c WHERE memories.memory_id = c.memory_id"
        )

    def _bulk(self, table: str, schema: pa.Schema, rows: Sequence[tuple[object, ...]]) -> None:
        """Insert rows through one Arrow table: far faster in DuckDB than executemany."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        arrow = pa.table(
            [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )
        postings.register(self.con, "_bulk", arrow)
        self.con.execute(f"INSERT INTO {table} SELECT * FROM _bulk")

    def _rows(self, memory_ids: Sequence[str]) -> dict[str, MemoryRow]:
        if not memory_ids:
            return {}
        postings.register(self.con, "_wanted", pa.table({"memory_id": list(memory_ids)}))
        found = self.con.execute(
            _SELECT_MEMORIES + " WHERE memory_id IN (SELECT memory_id FROM _wanted)"
        ).fetchall()
        return {row[0]: memory_row(row) for row in found}

    def _erase(self, namespace: str) -> None:
        """Keep tombstones (id, status, times) and drop everything the subject said."""
        self.con.execute(
            "UPDATE memories SET text = NULL, metadata = NULL, context = NULL, status = ?, "
            "length = 0 "
            "WHERE namespace = ?",
            [ERASED, namespace],
        )
        for table in (
            "versions",
            "feedback",
            "postings",
            "term_stats",
            "corpus",
            *DERIVED_TABLES,
            *EPISODE_TABLES,
            *GUARD_TABLES,
            *PATTERN_TABLES,
        ):
            self.con.execute(f"DELETE FROM {table} WHERE namespace = ?", [namespace])

    # -- reading -------------------------------------------------------------------------

    # Reads go through a cursor of their own: in the service, recall and listing run on
    # other threads while the projector writes through the connection.

    def get(self, memory_id: str) -> MemoryRow | None:
        found = (
            self.con.cursor()
            .execute(_SELECT_MEMORIES + " WHERE memory_id = ?", [memory_id])
            .fetchall()
        )
        return memory_row(found[0]) if found else None

    def memories(
        self,
        namespace: str | None = None,
        status: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[MemoryRow]:
        found = (
            self.con.cursor()
            .execute(
                _SELECT_MEMORIES
                + " WHERE (? IS NULL OR namespace = ?) AND (? IS NULL OR status = ?) "
                "ORDER BY created_position LIMIT ? OFFSET ?",
                [namespace, namespace, status, status, limit, offset],
            )
            .fetchall()
        )
        return [memory_row(row) for row in found]

    def contradictions(self, namespace: str) -> list[Contradicting]:
        """The linker's `contradicts` edges of a namespace, oldest first, each with both
        memories and the consolidator's `supersedes` decision between them, if it made one."""
        pairs = (
            self.con.cursor()
            .execute(
                "SELECT e.src, e.dst, e.position, c.doc, c.position FROM edges e "
                "LEFT JOIN consolidation c ON c.namespace = e.namespace "
                "AND c.decision = 'supersedes' AND ((c.doc = e.src AND c.target = e.dst) "
                "OR (c.doc = e.dst AND c.target = e.src)) "
                "WHERE e.namespace = ? AND e.kind = 'contradicts' ORDER BY e.position, c.position",
                [namespace],
            )
            .fetchall()
        )
        docs = sorted({d for src, dst, *_ in pairs for d in (src, dst)})
        rows = {
            row.doc: row
            for row in map(
                memory_row,
                self.con.cursor()
                .execute(_SELECT_MEMORIES + " WHERE doc IN (SELECT unnest(?))", [docs])
                .fetchall(),
            )
        }
        found: dict[int, Contradicting] = {}  # by edge: the latest decision between the two
        for src, dst, edge, winner, decided in pairs:
            if src in rows and dst in rows:
                found[edge] = Contradicting(rows[src], rows[dst], edge, winner, decided)
        return list(found.values())

    def referencing(self, doc: int) -> list[tuple[str, int]]:
        """(stream, position) of the linked and consolidated events that target a memory."""
        rows = (
            self.con.cursor()
            .execute(
                "SELECT 'linked', position FROM edges WHERE dst = ? "
                "UNION SELECT 'consolidated', position FROM consolidation WHERE target = ? "
                "ORDER BY 1, 2",
                [doc, doc],
            )
            .fetchall()
        )
        return [(str(stream), int(position)) for stream, position in rows]

    def counts(self) -> dict[str, int]:
        rows = (
            self.con.cursor()
            .execute("SELECT status, count(*) FROM memories GROUP BY status")
            .fetchall()
        )
        return {str(status): int(n) for status, n in rows}

    def namespaces(self) -> list[str]:
        rows = (
            self.con.cursor()
            .execute("SELECT DISTINCT namespace FROM memories ORDER BY 1")
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    def checksums(self) -> dict[str, str]:
        """A content digest per table, independent of row order and storage layout."""
        out = {}
        for table in TABLES:
            digest = hashlib.sha256()
            for row in self._ordered(table):
                digest.update(repr(row).encode())
            out[table] = digest.hexdigest()
        return out

    def _ordered(self, table: str) -> Iterator[tuple[Any, ...]]:
        cursor = self.con.cursor().execute(f"SELECT * FROM {table} ORDER BY ALL")
        while batch := cursor.fetchmany(10_000):
            yield from batch

    # -- upkeep --------------------------------------------------------------------------

    def compaction_owed(self) -> bool:
        """Whether an erasure was applied since the file was last rewritten."""
        return self.applied(COMPACTION_OWED) > 0

    def compact(self) -> None:
        """Rewrite the database file, so no erased row survives in a free page. The debt an
        erasure recorded is cleared in the copy alone: a rewrite cut short (a full disk)
        leaves the old file, still owing it, and no part of the new one."""
        if self.path is None:
            return
        fresh = compaction_path(self.path)
        fresh.unlink(missing_ok=True)
        try:
            try:
                name = self.con.execute("SELECT current_database()").fetchall()[0][0]
                self.con.execute(f"ATTACH {_literal(fresh)} AS fresh")
                self.con.execute(
                    f'COPY FROM DATABASE "{name.replace(chr(34), chr(34) * 2)}" TO fresh'
                )
                self.con.execute("DELETE FROM fresh.applied WHERE stream = ?", [COMPACTION_OWED])
                self.con.execute("DETACH fresh")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    self.con.execute("DETACH fresh")
                raise ProjectionError(f"cannot compact {self.path}: {exc}") from exc
            self.con.close()
            try:
                fresh.replace(self.path)
                wal_path(self.path).unlink(missing_ok=True)
            except OSError as exc:
                raise ProjectionError(f"cannot compact {self.path}: {exc}") from exc
            finally:
                self.con = duckdb.connect(str(self.path))
                self._applied = None
        finally:
            with contextlib.suppress(OSError):
                fresh.unlink(missing_ok=True)
                wal_path(fresh).unlink(missing_ok=True)
            self.changes.reset()  # a new connection: readers start afresh

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()


def _literal(path: Path) -> str:
    """A path as an SQL string literal (ATTACH takes no bound parameter)."""
    return "'" + str(path).replace("'", "''") + "'"


def _touched(events: Sequence[Opened]) -> dict[str, set[int]]:
    """The docs of the events' memories, by namespace."""
    out: dict[str, set[int]] = {}
    for event in events:
        r = event.record
        if r.memory_id:
            out.setdefault(r.namespace, set()).add(doc_id(r.memory_id))
    return out


def _split_at_erasures(events: Sequence[Opened]) -> list[Sequence[Opened]]:
    """Runs of ordinary events, with each erasure a run of its own, in log order."""
    runs: list[Sequence[Opened]] = []
    start = 0
    for i, event in enumerate(events):
        if event.record.kind == SUBJECT_ERASED:
            if i > start:
                runs.append(events[start:i])
            runs.append(events[i : i + 1])
            start = i + 1
    if start < len(events):
        runs.append(events[start:])
    return runs
