"""A memory as the API hands it out: what it says and where it stands, without the
projections' bookkeeping (row numbers, lengths, the previous turn's row, the text in context
the embedder reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mnemoflow.eventlog.payloads import Metadata, on_clock

if TYPE_CHECKING:
    from mnemoflow.projections.memstate import MemoryRow


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
