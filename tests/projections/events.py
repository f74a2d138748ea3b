"""Opened events made by hand, for folding projections without a log or a model."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np

from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import (
    FeedbackRecorded,
    MemoryEmbedded,
    MemoryForgotten,
    MemoryStored,
    MemoryUpdated,
    Payload,
    SubjectErased,
)
from mnemoflow.eventlog.schema import Causation, Record

T0 = datetime(2024, 3, 1, tzinfo=UTC)


class Events:
    """Numbers positions per stream, as the log would."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = defaultdict(int)

    def _make(
        self,
        stream: str,
        kind: str,
        ns: str,
        memory_id: str | None,
        payload: Payload | None,
        causation: Causation | None = None,
    ) -> Opened:
        self.positions[stream] += 1
        p = self.positions[stream]
        record = Record(
            p,
            f"{stream}-{p}",
            kind,
            1,
            ns,
            memory_id,
            T0 + timedelta(minutes=p),
            T0 + timedelta(minutes=p),
            "test",
            causation,
            "k#1",
            b"",
            b"",
            b"",
        )
        return Opened(record, payload)

    def stored(self, memory_id: str, text: str | None, ns: str = "n", **meta: object) -> Opened:
        payload = None if text is None else MemoryStored(text=text, metadata=meta)  # type: ignore[arg-type]
        return self._make("input", "memory.stored", ns, memory_id, payload)

    def updated(self, memory_id: str, text: str, ns: str = "n") -> Opened:
        return self._make("input", "memory.updated", ns, memory_id, MemoryUpdated(text=text))

    def forgotten(self, memory_id: str, ns: str = "n") -> Opened:
        return self._make("input", "memory.forgotten", ns, memory_id, MemoryForgotten())

    def feedback(self, memory_id: str, useful: bool, ns: str = "n") -> Opened:
        return self._make(
            "input", "feedback.recorded", ns, memory_id, FeedbackRecorded(useful=useful)
        )

    def erased(self, ns: str) -> Opened:
        return self._make(
            "input", "subject.erased", ns, None, SubjectErased(namespace=ns, key_ids=[f"{ns}#1"])
        )

    def embedded(
        self,
        source: Opened,
        seed: int | None = None,
        vector: np.ndarray | None = None,
        *,
        context_of: Opened | None = None,
    ) -> Opened:
        """`context_of`: the memory stored before it, whose text its context holds."""
        if vector is None:
            rng = np.random.default_rng(source.record.position if seed is None else seed)
            vector = rng.standard_normal(16).astype(np.float32)
            vector /= np.linalg.norm(vector)
        context = context_text = context_id = None
        if context_of is not None:
            assert isinstance(context_of.payload, MemoryStored)
            assert isinstance(source.payload, MemoryStored)
            context = vector[::-1].copy()
            context_text = f"{context_of.payload.text}\n{source.payload.text}"
            context_id = context_of.record.memory_id
        return self._make(
            "embedded",
            "memory.embedded",
            source.record.namespace,
            source.record.memory_id,
            MemoryEmbedded.of("test-model", vector, context, context_text, context_id),
            Causation("input", source.record.position),
        )

    def derived(
        self, stream: str, kind: str, source: Opened, payload: Payload, upstream: str = "input"
    ) -> Opened:
        """An actor's event derived from `source` (an event of `upstream`)."""
        return self._make(
            stream,
            kind,
            source.record.namespace,
            source.record.memory_id,
            payload,
            Causation(upstream, source.record.position),
        )
