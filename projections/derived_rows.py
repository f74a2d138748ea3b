"""The rows the actors' streams fold into: entities, times, facets, edges, consolidation
decisions and decay schedules, per memory (doc).

A memory's rows in a table are replaced by its newest event there (an updated memory is
extracted and linked again), so a batch is folded here to the last event per (table, doc) and
written as one delete and one bulk insert per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from mnemoflow.eventlog.derived import (
    MemoryConsolidated,
    MemoryExtracted,
    MemoryLinked,
    MemoryScheduled,
)
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import from_micros
from mnemoflow.projections.memstate import doc_id
from mnemoflow.projections.rows import TS

DERIVED_ARROW: dict[str, pa.Schema] = {
    "entities": pa.schema(
        [
            ("namespace", pa.string()),
            ("doc", pa.int64()),
            ("key", pa.string()),
            ("type", pa.string()),
        ]
    ),
    "times": pa.schema(
        [("namespace", pa.string()), ("doc", pa.int64()), ("t_start", TS), ("t_end", TS)]
    ),
    "facets": pa.schema(
        [
            ("namespace", pa.string()),
            ("doc", pa.int64()),
            ("category", pa.string()),
            ("extractor", pa.string()),
            ("subject", pa.string()),
            ("attribute", pa.string()),
            ("value", pa.string()),
            ("position", pa.int64()),
        ]
    ),
    "edges": pa.schema(
        [
            ("namespace", pa.string()),
            ("src", pa.int64()),
            ("dst", pa.int64()),
            ("kind", pa.string()),
            ("weight", pa.float64()),
            ("position", pa.int64()),
        ]
    ),
    "consolidation": pa.schema(
        [
            ("namespace", pa.string()),
            ("doc", pa.int64()),
            ("decision", pa.string()),
            ("target", pa.int64()),
            ("position", pa.int64()),
        ]
    ),
    "schedule": pa.schema(
        [
            ("namespace", pa.string()),
            ("doc", pa.int64()),
            ("stability", pa.float64()),
            ("difficulty", pa.float64()),
            ("reviewed_at", TS),
            ("reps", pa.int32()),
            ("lapses", pa.int32()),
            ("position", pa.int64()),
        ]
    ),
}
DERIVED_TABLES = tuple(DERIVED_ARROW)
KEY_COLUMN = {"edges": "src"}  # the column naming the memory a row belongs to


@dataclass
class DerivedFold:
    """Per table: the docs whose rows are replaced, and their new rows."""

    rows: dict[str, dict[int, list[tuple[object, ...]]]] = field(
        default_factory=lambda: {t: {} for t in DERIVED_TABLES}
    )

    def apply(self, events: Sequence[Opened]) -> None:
        docs: dict[str, int] = {}  # a batch's ~10 edges per event name the same memories

        def doc_of(memory_id: str) -> int:
            doc = docs.get(memory_id)
            if doc is None:
                doc = docs[memory_id] = doc_id(memory_id)
            return doc

        for event in events:
            r, p = event.record, event.payload
            if r.memory_id is None or p is None:
                continue  # erased: nothing of it may be kept
            doc, ns = doc_of(r.memory_id), r.namespace
            if isinstance(p, MemoryExtracted):
                self.rows["entities"][doc] = [(ns, doc, e.key, e.type) for e in p.entities]
                self.rows["times"][doc] = [
                    (ns, doc, from_micros(t.start), from_micros(t.end)) for t in p.times
                ]
                claim = p.claim
                self.rows["facets"][doc] = [
                    (
                        ns,
                        doc,
                        p.category,
                        p.extractor,
                        None if claim is None else claim.subject,
                        None if claim is None else claim.attribute,
                        None if claim is None else claim.value,
                        r.position,
                    )
                ]
            elif isinstance(p, MemoryLinked):
                self.rows["edges"][doc] = [
                    (ns, doc, doc_of(e.target), e.kind, e.weight, r.position) for e in p.edges
                ]
            elif isinstance(p, MemoryConsolidated):
                row = (ns, doc, p.decision, doc_of(p.target), r.position)
                self.rows["consolidation"].setdefault(doc, []).append(row)
            elif isinstance(p, MemoryScheduled):
                self.rows["schedule"][doc] = [
                    (
                        ns,
                        doc,
                        p.stability,
                        p.difficulty,
                        from_micros(p.reviewed_at),
                        p.reps,
                        p.lapses,
                        r.position,
                    )
                ]
