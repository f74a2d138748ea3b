"""The query actor's work: channels run concurrently, fused into one ranked, explained answer.

Channels (each returns its best candidates with raw scores):
- ``semantic`` / ``semantic_context``: FAISS inner product against the memory's own vector and
  its in-context vector;
- ``lexical`` / ``lexical_context``: BM25 over the dated text and over the text in context.

Fusion normalises each channel's scores over its own candidates (z-scores; reciprocal rank
fusion is the alternative, `fusion = "rrf"`), adds them with the configured weights (a memory a
channel did not return gets that channel's lowest score), then propagates: a memory gains a
share of its best neighbour's score (the memory stored just before or after it), because the
turn that answers a question often sits beside the one that matches it. Feedback moves a
memory up or down a little.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from eventlog.schema import EMBEDDED_STREAM, INPUT_STREAM
from projections.duck import DuckProjection
from projections.lexical import BM25Settings, LexicalIndex
from projections.memstate import ACTIVE, CONTEXT_FIELD, TEXT_FIELD, MemoryRow
from projections.text import tokenize
from projections.vector_projection import CONTEXT, TEXT, VectorProjection

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
CHANNELS = ("semantic", "semantic_context", "lexical", "lexical_context")


class QuerySettings(BaseModel):
    """The ``[query]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    candidates: int = Field(100, ge=1, le=10_000, description="per channel")
    fusion: Literal["zscore", "rrf"] = "zscore"
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "semantic": 1.0,
            "semantic_context": 1.0,
            "lexical": 1.0,
            "lexical_context": 1.0,
        }
    )
    neighbor_weight: float = Field(0.5, ge=0, le=2)
    feedback_weight: float = Field(1.0, ge=0, le=5)
    max_k: int = Field(1000, ge=1)


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
            "provenance": self.provenance,
        }


class QueryEngine:
    def __init__(
        self,
        duck: DuckProjection,
        vectors: VectorProjection,
        embed: Embed,
        settings: QuerySettings | None = None,
        lexical: BM25Settings | None = None,
    ) -> None:
        self.duck = duck
        self.vectors = vectors
        self.embed = embed
        self.settings = settings or QuerySettings()
        self.lexical = LexicalIndex(duck.con, lexical or BM25Settings(), self._projection_version)
        self._pool = ThreadPoolExecutor(max_workers=len(CHANNELS), thread_name_prefix="channel")
        self._cache: _ReadModel | None = None
        self._cache_lock = threading.Lock()

    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        *,
        filters: Mapping[str, object] | None = None,
        weights: Mapping[str, float] | None = None,
        neighbor_weight: float | None = None,
    ) -> list[Hit]:
        weights = dict(self.settings.weights if weights is None else weights)
        active = [c for c in CHANNELS if weights.get(c, 0.0) > 0]
        raw = self._channels(query, namespace, active)
        fused = self._fuse(raw, weights)
        a = self.settings.neighbor_weight if neighbor_weight is None else neighbor_weight
        if a > 0 and fused:
            fused = self._propagate(namespace, fused, a)
        fused = self._adjust(fused)
        ranked = sorted(fused, key=lambda d: (-fused[d], d))
        hits: list[Hit] = []
        # Rows are read for the best slice only, and the next slice when filters or
        # inactive neighbours thin it out.
        step = max(2 * k, k + 20)
        for start in range(0, len(ranked), step):
            chunk = ranked[start : start + step]
            rows = self.duck.rows_by_doc(chunk)
            for doc in chunk:
                row = rows.get(doc)
                if row is None or row.status != ACTIVE or not _matches(row, filters):
                    continue
                channels = {c: s[doc] for c, s in raw.items() if doc in s}
                hits.append(self._hit(row, fused[doc], channels))
                if len(hits) == k:
                    return hits
        return hits

    # -- channels ------------------------------------------------------------------------

    def _channels(
        self, query: str, namespace: str, active: Sequence[str]
    ) -> dict[str, dict[int, float]]:
        n = self.settings.candidates
        terms = tokenize(query)
        jobs = {}
        # Lexical channels start first: the query is embedded while they run.
        for channel in ("lexical", "lexical_context"):
            if channel in active:
                fld = TEXT_FIELD if channel == "lexical" else CONTEXT_FIELD
                jobs[channel] = self._pool.submit(self.lexical.search, namespace, terms, n, fld)
        semantic = [c for c in active if c.startswith("semantic")]
        if semantic:
            vector = self.embed([query])[0]
            for channel in semantic:
                kind = TEXT if channel == "semantic" else CONTEXT
                jobs[channel] = self._pool.submit(self.vectors.search, namespace, vector, n, kind)
        return {channel: dict(job.result()) for channel, job in jobs.items()}

    # -- fusion --------------------------------------------------------------------------

    def _fuse(
        self, raw: Mapping[str, Mapping[int, float]], weights: Mapping[str, float]
    ) -> dict[int, float]:
        docs = {d for scores in raw.values() for d in scores}
        fused = dict.fromkeys(docs, 0.0)
        for channel, scores in raw.items():
            if not scores:
                continue
            w = weights.get(channel, 0.0)
            if self.settings.fusion == "rrf":
                ranked = sorted(scores, key=lambda d: (-scores[d], d))
                for rank, d in enumerate(ranked, 1):
                    fused[d] += w / (self.settings.rrf_k + rank)
                continue
            values = np.array(list(scores.values()), np.float64)
            mean, spread = float(values.mean()), float(values.std()) or 1.0
            z = {d: (s - mean) / spread for d, s in scores.items()}
            floor = min(z.values())
            for d in docs:
                fused[d] += w * z.get(d, floor)
        return fused

    def _propagate(self, namespace: str, fused: dict[int, float], a: float) -> dict[int, float]:
        links = self._read_model().links(namespace)
        floor = min(fused.values())
        reached = set(fused) | {n for d in fused for n in links.get(d, ())}
        out = dict(fused)
        for doc in reached:
            near = links.get(doc)
            if near:
                best = max(fused.get(n, floor) for n in near)
                out[doc] = fused.get(doc, floor) + a * max(best, floor)
        return out

    def _projection_version(self) -> tuple[int, int]:
        return (self.duck.applied(INPUT_STREAM), self.duck.applied(EMBEDDED_STREAM))

    def _read_model(self) -> _ReadModel:
        """Links and votes, re-read only when the projection has changed since."""
        with self._cache_lock:
            version = self._projection_version()
            if self._cache is None or self._cache.version != version:
                self._cache = _ReadModel(self.duck, version)
            return self._cache

    def _adjust(self, fused: dict[int, float]) -> dict[int, float]:
        w = self.settings.feedback_weight
        if w == 0 or not fused:
            return fused
        votes = self._read_model().votes()
        return {d: s + w * float(np.tanh(votes[d])) if d in votes else s for d, s in fused.items()}

    def _hit(self, row: MemoryRow, score: float, channels: dict[str, float]) -> Hit:
        provenance = [
            {"stream": INPUT_STREAM, "position": row.created_position, "kind": "memory.stored"}
        ]
        if row.text_position != row.created_position:
            provenance.append(
                {"stream": INPUT_STREAM, "position": row.text_position, "kind": "memory.updated"}
            )
        return Hit(
            memory_id=row.memory_id,
            text=row.text,
            score=score,
            channels=channels,
            metadata=row.metadata_dict(),
            occurred_at=row.occurred_at,
            status=row.status,
            namespace=row.namespace,
            provenance=provenance,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _ReadModel:
    """What recall reads for every query but changes only with the projection: each
    namespace's neighbour links (loaded on first use) and the feedback balance per memory."""

    def __init__(self, duck: DuckProjection, version: object) -> None:
        self.version = version
        self._duck = duck
        self._links: dict[str, dict[int, list[int]]] = {}
        self._votes: dict[int, int] | None = None

    def links(self, namespace: str) -> dict[int, list[int]]:
        if namespace not in self._links:
            self._links[namespace] = self._duck.links(namespace)
        return self._links[namespace]

    def votes(self) -> dict[int, int]:
        if self._votes is None:
            self._votes = self._duck.votes()
        return self._votes


def _matches(row: MemoryRow, filters: Mapping[str, object] | None) -> bool:
    if not filters:
        return True
    metadata = row.metadata_dict()
    return all(metadata.get(key) == value for key, value in filters.items())


__all__ = ["CHANNELS", "Hit", "QueryEngine", "QuerySettings"]
