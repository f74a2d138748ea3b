"""The fold of input events over memories, in memory, for one batch.

The DuckDB projection loads the rows a batch touches, folds the batch here, and writes the
result back in bulk: a handful of statements per batch instead of several per event.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime

from mnemoflow.eventlog.held import HeldDict
from mnemoflow.eventlog.keys import key64
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import (
    FeedbackRecorded,
    MemoryEmbedded,
    MemoryStored,
    MemoryUpdated,
    Metadata,
    on_clock,
)
from mnemoflow.eventlog.schema import (
    FEEDBACK_RECORDED,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
)
from mnemoflow.projections.text import dated, tokenize

ACTIVE, FORGOTTEN, ERASED = "active", "forgotten", "erased"
TEXT_FIELD, CONTEXT_FIELD = 0, 1
FIELDS = (TEXT_FIELD, CONTEXT_FIELD)


def doc_id(memory_id: str) -> int:
    """The stable int64 of a memory (non-negative), shared by DuckDB and FAISS."""
    docs = _docs.items
    if docs is None:
        return key64(memory_id) & 0x7FFF_FFFF_FFFF_FFFF
    doc = docs.get(memory_id)
    if doc is None:
        if len(docs) >= _DOCS_KEPT_MAX:
            docs.clear()
        doc = docs[memory_id] = key64(memory_id) & 0x7FFF_FFFF_FFFF_FFFF
    return doc


_DOCS_KEPT_MAX = 1 << 18  # ~30 MB of ids and ints at most; then it starts again
_docs: HeldDict[str, int] = HeldDict()


def keeping_doc_ids() -> AbstractContextManager[None]:
    """While a long fold runs, keep the doc id of every memory it names. A rebuild asks for
    each memory's about nine times (in every stream, and as the target of other memories'
    edges), and each is a BLAKE2b hash of the id. Blocks may nest and overlap across
    threads; what was kept goes when the last one ends."""
    return _docs.held()


@dataclass(frozen=True, slots=True)
class MemoryRow:
    memory_id: str
    doc: int
    namespace: str
    text: str | None
    metadata: str | None
    status: str
    occurred_at: datetime | None
    recorded_at: datetime
    created_position: int
    text_position: int
    version: int
    length: int
    context: str | None = None
    prev_doc: int | None = None
    utc_offset: int | None = None  # the writer's clock (see eventlog.payloads.writer_time)

    def terms(self, field: int = TEXT_FIELD) -> list[str]:
        """The BM25 terms of a field: the dated text (0), or the text in context (1)."""
        if self.status != ACTIVE or self.text is None:
            return []
        if field == TEXT_FIELD:
            return _text_terms(self.text, self.occurred_at, self.utc_offset)
        return _context_terms(self.context) if self.context else []

    def metadata_dict(self) -> Metadata:
        return {} if self.metadata is None else dict(json.loads(self.metadata))


# Cached by what they are made of, not by row: a batch asks for a row's terms to count them,
# to index them and to count them again, on rows that differ in other fields. Each cache
# spans a batch (`[projections] batch_size`, 5,000); the two hold as many as the one by row.
@functools.lru_cache(maxsize=16384)
def _text_terms(text: str, occurred_at: datetime | None, utc_offset: int | None) -> list[str]:
    """Dated on the writer's clock: 23:30 at UTC-5 is indexed under its own day."""
    return tokenize(dated(text, on_clock(occurred_at, utc_offset)))


@functools.lru_cache(maxsize=16384)
def _context_terms(context: str) -> list[str]:
    return tokenize(context)


@dataclass(frozen=True, slots=True)
class Contradicting:
    """A `contradicts` edge: the later memory, the earlier one it contradicts, the linked
    event's position, and the consolidator's `supersedes` decision between them (the doc that
    won and the consolidated event's position), if it made one."""

    memory: MemoryRow
    contradicts: MemoryRow
    linked_position: int
    superseding_doc: int | None
    consolidated_position: int | None


@dataclass
class BatchFold:
    """What one batch does to the memories it touches."""

    before: dict[str, MemoryRow]
    after: dict[str, MemoryRow] = field(default_factory=dict)
    versions: list[tuple[object, ...]] = field(default_factory=list)
    feedback: list[tuple[object, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.after = dict(self.before)

    def apply(self, events: Iterable[Opened]) -> None:
        for event in events:
            kind = event.record.kind
            if kind == MEMORY_STORED:
                self._stored(event)
            elif kind == MEMORY_UPDATED:
                self._updated(event)
            elif kind == MEMORY_FORGOTTEN:
                self._set_status(event, FORGOTTEN)
            elif kind == FEEDBACK_RECORDED:
                self._feedback(event)

    def _stored(self, event: Opened) -> None:
        r, payload = event.record, event.payload
        assert r.memory_id is not None
        if r.memory_id in self.after:
            return
        text = metadata = offset = None
        if isinstance(payload, MemoryStored):
            text, metadata = payload.text, json.dumps(payload.metadata, sort_keys=True)
            offset = payload.utc_offset
        row = MemoryRow(
            memory_id=r.memory_id,
            doc=doc_id(r.memory_id),
            namespace=r.namespace,
            text=text,
            metadata=metadata,
            status=ACTIVE if text is not None else ERASED,
            occurred_at=r.occurred_at,
            recorded_at=r.recorded_at,
            created_position=r.position,
            text_position=r.position,
            version=1,
            length=0 if text is None else len(_text_terms(text, r.occurred_at, offset)),
            utc_offset=offset,
        )
        self._put(row, r.position)

    def _updated(self, event: Opened) -> None:
        r, payload = event.record, event.payload
        row = self.after.get(r.memory_id or "")
        if row is None or row.status != ACTIVE or not isinstance(payload, MemoryUpdated):
            return
        metadata = row.metadata
        if payload.metadata is not None:
            metadata = json.dumps(payload.metadata, sort_keys=True)
        occurred_at = r.occurred_at or row.occurred_at
        updated = replace(
            row,
            context=None,  # the context belonged to the old text; the embedder sends a new one
            text=payload.text,
            metadata=metadata,
            occurred_at=occurred_at,
            recorded_at=r.recorded_at,
            text_position=r.position,
            version=row.version + 1,
            length=len(_text_terms(payload.text, occurred_at, payload.utc_offset)),
            utc_offset=payload.utc_offset,
        )
        self._put(updated, r.position)

    def _put(self, row: MemoryRow, position: int) -> None:
        self.after[row.memory_id] = row
        self.versions.append(
            (
                row.memory_id,
                row.namespace,
                row.version,
                row.text,
                row.metadata,
                position,
                row.recorded_at,
                row.occurred_at,
            )
        )

    def _set_status(self, event: Opened, status: str) -> None:
        row = self.after.get(event.record.memory_id or "")
        if row is not None and row.status == ACTIVE:
            # Its context goes too: a rebuild, folding the forget before the embedding, never
            # gives it one (the postings of both fields go with the old row).
            self.after[row.memory_id] = replace(row, status=status, context=None)

    def _feedback(self, event: Opened) -> None:
        r, payload = event.record, event.payload
        if r.memory_id in self.after and isinstance(payload, FeedbackRecorded):
            self.feedback.append(
                (r.memory_id, r.namespace, r.position, payload.useful, payload.note, r.recorded_at)
            )

    def forgotten(self) -> list[int]:
        """Docs of the memories this batch forgot."""
        return [
            row.doc
            for memory_id, row in self.after.items()
            if row.status == FORGOTTEN
            and (old := self.before.get(memory_id)) is not None
            and old.status == ACTIVE
        ]

    def reindexed(self) -> tuple[list[MemoryRow], list[MemoryRow]]:
        """(rows whose postings must go, rows whose postings must come), by text and status."""
        out: list[MemoryRow] = []
        into: list[MemoryRow] = []
        for memory_id, new in self.after.items():
            old = self.before.get(memory_id)
            old_indexed = old is not None and old.status == ACTIVE
            new_indexed = new.status == ACTIVE
            changed = old is None or old.text_position != new.text_position
            if old_indexed and (not new_indexed or changed):
                assert old is not None
                out.append(old)
            if new_indexed and (not old_indexed or changed):
                into.append(new)
        return out, into


def with_context(
    before: dict[str, MemoryRow], events: Iterable[Opened], forgotten: Set[str] = frozenset()
) -> tuple[dict[str, MemoryRow], list[MemoryRow], list[MemoryRow]]:
    """Fold embedded events: each brings the context of the text the memory holds now, unless
    that context is the text of a memory since forgotten (`forgotten`: their ids).

    Returns the changed rows, those whose context postings must go and those whose must come.
    """
    after: dict[str, MemoryRow] = {}
    for event in events:
        r, payload = event.record, event.payload
        row = after.get(r.memory_id or "") or before.get(r.memory_id or "")
        source = r.causation.position if r.causation else None
        if (
            row is None
            or row.status != ACTIVE
            or source != row.text_position
            or not isinstance(payload, MemoryEmbedded)
        ):
            continue
        prev = None if payload.context_memory_id is None else doc_id(payload.context_memory_id)
        context = None if payload.context_memory_id in forgotten else payload.context_text
        after[row.memory_id] = replace(row, context=context, prev_doc=prev)
    out = [before[m] for m in after if m in before and before[m].context]
    into = [row for row in after.values() if row.context]
    return after, out, into
