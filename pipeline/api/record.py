"""A memory as the API hands it out: what it says and where it stands, without the
projections' bookkeeping (row numbers, lengths, the previous turn's row, the text in context
the embedder reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mnemoflow.eventlog.payloads import Metadata, on_clock

if TYPE_CHECKING:
    from mnemoflow.projections.memstate import Contradicting, MemoryRow


@dataclass(frozen=True)
class MemoryRecord:
    memory_id: str
    namespace: str
    text: str | None  # None once its namespace was erased
    status: str  # active, forgotten, merged, erased
    version: int  # 1, then one more per update
    occurred_at: datetime | None  # when it happened, on its writer's clock (their UTC offset)
    recorded_at: datetime  # when the log took it (UTC)
    created_position: int  # the input position of its store
    text_position: int  # the input position of the event that set its text
    metadata: Metadata = field(default_factory=dict)

    @classmethod
    def of(cls, row: MemoryRow, namespace: str) -> MemoryRecord:
        return cls(
            memory_id=row.memory_id,
            namespace=namespace,
            text=row.text,
            status=row.status,
            version=row.version,
            occurred_at=on_clock(row.occurred_at, row.utc_offset),
            recorded_at=row.recorded_at,
            created_position=row.created_position,
            text_position=row.text_position,
            metadata=row.metadata_dict(),
        )


@dataclass(frozen=True)
class Contradiction:
    """Two memories the linker found contradicting (the same claim affirmed and denied),
    which one the consolidator let supersede the other (None: it has not decided), and the
    events behind it: both texts' input events, the link, the decision."""

    memory: MemoryRecord  # the later one
    contradicts: MemoryRecord  # the earlier one
    superseded: str | None  # the memory id archived in favour of the other
    provenance: list[dict[str, object]]  # {"stream", "position", "kind"} each

    @classmethod
    def of(cls, found: Contradicting, namespace: str) -> Contradiction:
        later = MemoryRecord.of(found.memory, namespace)
        earlier = MemoryRecord.of(found.contradicts, namespace)
        loser = None
        if found.superseding_doc is not None:
            loser = earlier if found.superseding_doc == found.memory.doc else later
        provenance: list[dict[str, object]] = [
            {"stream": "input", "position": m.text_position, "kind": "text"}
            for m in (earlier, later)
        ]
        provenance.append({"stream": "linked", "position": found.linked_position, "kind": "link"})
        if found.consolidated_position is not None:
            decided = {"stream": "consolidated", "position": found.consolidated_position}
            provenance.append(decided | {"kind": "decision"})
        return cls(later, earlier, None if loser is None else loser.memory_id, provenance)
