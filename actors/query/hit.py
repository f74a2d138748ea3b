"""A recall hit: what the query actor answers, and what the HTTP client rebuilds from JSON.

Kept apart from the query engine so that a client needs no DuckDB, FAISS or model runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Hit:
    memory_id: str
    text: str | None
    score: float
    channels: dict[str, float]
    metadata: dict[str, Any]
    occurred_at: datetime | None
    status: str
    namespace: str
    provenance: list[dict[str, Any]] = field(default_factory=list)
    category: str | None = None
    zone: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "memory_id": self.memory_id,
            "text": self.text,
            "score": round(self.score, 6),
            "channels": {k: round(v, 6) for k, v in self.channels.items()},
            "metadata": self.metadata,
            "occurred_at": None if self.occurred_at is None else self.occurred_at.isoformat(),
            "status": self.status,
            "namespace": self.namespace,
            "category": self.category,
            "zone": self.zone,
            "provenance": self.provenance,
        }
