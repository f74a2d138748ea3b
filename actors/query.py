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
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from actors.channels import (
    EDGE_WEIGHTS,
    Facts,
    edges_around,
    entity_search,
    facts_of,
    temporal_search,
)
from actors.decay import DecaySettings, retrievability
from actors.decay import zone as decay_zone
from actors.extraction import query_entities
from actors.timeexpr import find_times
from eventlog.schema import EMBEDDED_STREAM, INPUT_STREAM
from projections.duck import DuckProjection
from projections.lexical import BM25Settings, LexicalIndex
from projections.memstate import ACTIVE, CONTEXT_FIELD, TEXT_FIELD, MemoryRow
from projections.text import tokenize
from projections.vector_projection import CONTEXT, TEXT, VectorProjection

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
SEARCH_CHANNELS = (
    "semantic",
    "semantic_context",
    "lexical",
    "lexical_context",
    "entity",
    "temporal",
)
CHANNELS = (*SEARCH_CHANNELS, "graph")
SPARSE_CHANNELS = frozenset({"entity", "temporal"})  # they return evidence, not a ranking


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
            "entity": 0.25,
            "temporal": 1.5,
            "graph": 0.1,
        }
    )
    neighbor_weight: float = Field(0.5, ge=0, le=2)
    feedback_weight: float = Field(1.0, ge=0, le=5)
    graph_seeds: int = Field(10, ge=1, le=1000, description="top memories activation spreads from")
    superseded_penalty: float = Field(1.0, ge=0, le=10)
    decay_weight: float = Field(0.1, ge=0, le=5)
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


class QueryEngine:
    def __init__(
        self,
        duck: DuckProjection,
        vectors: VectorProjection,
        embed: Embed,
        settings: QuerySettings | None = None,
        lexical: BM25Settings | None = None,
        decay: DecaySettings | None = None,
    ) -> None:
        self.duck = duck
        self.vectors = vectors
        self.embed = embed
        self.settings = settings or QuerySettings()
        self.decay = decay or DecaySettings()
        self.lexical = LexicalIndex(duck.con, lexical or BM25Settings(), self._projection_version)
        self._pool = ThreadPoolExecutor(
            max_workers=len(SEARCH_CHANNELS), thread_name_prefix="channel"
        )
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
        now: datetime | None = None,
    ) -> list[Hit]:
        """`now` is when the query is asked (default: the clock): time words in the query are
        read against it, and decay is measured up to it."""
        now = now or datetime.now(UTC)
        weights = dict(self.settings.weights if weights is None else weights)
        active = [c for c in SEARCH_CHANNELS if weights.get(c, 0.0) > 0]
        raw = self._channels(query, namespace, active, now)
        fused = self._fuse(raw, weights)
        a = self.settings.neighbor_weight if neighbor_weight is None else neighbor_weight
        if a > 0 and fused:
            fused = self._propagate(namespace, fused, a)
        if weights.get("graph", 0.0) > 0 and fused:
            raw["graph"] = self._spread(namespace, fused)
            fused = _add_scaled(fused, raw["graph"], weights["graph"])
        facts = facts_of(self.duck.con.cursor(), list(fused))
        fused = self._adjust(fused, facts, now)
        return self._hits(fused, raw, facts, k, filters, now)

    def _hits(
        self,
        fused: dict[int, float],
        raw: Mapping[str, Mapping[int, float]],
        facts: Facts,
        k: int,
        filters: Mapping[str, object] | None,
        now: datetime,
    ) -> list[Hit]:
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
                if row is None or row.status != ACTIVE:
                    continue
                category = facts.category.get(doc)
                if not _matches(row, category, filters):
                    continue
                channels = {c: s[doc] for c, s in raw.items() if doc in s}
                hits.append(self._hit(row, fused[doc], channels, facts, now))
                if len(hits) == k:
                    return hits
        return hits

    # -- channels ------------------------------------------------------------------------

    def _channels(
        self, query: str, namespace: str, active: Sequence[str], now: datetime
    ) -> dict[str, dict[int, float]]:
        n = self.settings.candidates
        terms = tokenize(query)
        jobs = {}
        # Lexical and SQL channels start first: the query is embedded while they run.
        for channel in ("lexical", "lexical_context"):
            if channel in active:
                fld = TEXT_FIELD if channel == "lexical" else CONTEXT_FIELD
                jobs[channel] = self._pool.submit(self.lexical.search, namespace, terms, n, fld)
        if "entity" in active:
            keys = [e.key for e in query_entities(query)] + terms
            jobs["entity"] = self._pool.submit(
                entity_search, self.duck.con.cursor(), namespace, keys, n
            )
        spans = find_times(query, now) if "temporal" in active else []
        if spans:
            jobs["temporal"] = self._pool.submit(
                temporal_search, self.duck.con.cursor(), namespace, spans, n
            )
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
            if channel in SPARSE_CHANNELS:
                # Evidence or none: a memory the channel did not return scores 0 there, and
                # the statistics run over every candidate (else one hit would get z = 0).
                scores = {d: scores.get(d, 0.0) for d in docs}
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

    def _spread(self, namespace: str, fused: Mapping[int, float]) -> dict[int, float]:
        """Spreading activation, one hop: each of the top seeds passes its strength (its
        fused score relative to the best and the median, in [0, 1]) along its edges, scaled
        by the edge's weight and kind; a memory keeps the strongest activation it receives."""
        seeds = sorted(fused, key=lambda d: (-fused[d], d))[: self.settings.graph_seeds]
        top, middle = fused[seeds[0]], float(np.median(list(fused.values())))
        span = top - middle or 1.0
        strength = {d: min(1.0, max(0.0, (fused[d] - middle) / span)) for d in seeds}
        activation: dict[int, float] = {}
        for seed, near, kind, weight in edges_around(self.duck.con.cursor(), namespace, seeds):
            value = strength[seed] * weight * EDGE_WEIGHTS.get(kind, 0.5)
            if value > activation.get(near, 0.0):
                activation[near] = value
        return activation

    def _projection_version(self) -> tuple[int, int]:
        return (self.duck.applied(INPUT_STREAM), self.duck.applied(EMBEDDED_STREAM))

    def _read_model(self) -> _ReadModel:
        """Links and votes, re-read only when the projection has changed since."""
        with self._cache_lock:
            version = self._projection_version()
            if self._cache is None or self._cache.version != version:
                self._cache = _ReadModel(self.duck, version)
            return self._cache

    def _adjust(self, fused: dict[int, float], facts: Facts, now: datetime) -> dict[int, float]:
        """Feedback, decay and consolidation: votes move a memory; retrievability (FSRS, at
        `now`) nudges it; a superseded memory drops (it stays findable: the archive); a merged
        duplicate gives its score to the memory it was merged into and leaves the ranking."""
        if not fused:
            return fused
        spread = float(np.std(list(fused.values()))) or 1.0
        out = dict(fused)
        w = self.settings.feedback_weight
        if w > 0:
            votes = self._read_model().votes()
            for d in out:
                if d in votes:
                    out[d] += w * float(np.tanh(votes[d]))
        if self.settings.decay_weight > 0:
            for d, (stability, reviewed) in facts.schedule.items():
                if d in out:
                    days = (now - reviewed).total_seconds() / 86_400
                    r = retrievability(days, stability)
                    out[d] += self.settings.decay_weight * spread * (r - 0.5)
        margin = self.settings.superseded_penalty * spread
        for d, newer in facts.superseded_by.items():
            if d in out:
                out[d] -= margin
                # Where the newer memory answers nearly as well, it goes first.
                if newer in out and out[newer] >= out[d] - margin:
                    out[d] = min(out[d], out[newer] - 1e-6)
        for d, target in facts.duplicate_of.items():
            if d in out:
                out[target] = max(out.get(target, out[d]), out.pop(d))
        return out

    def _hit(
        self,
        row: MemoryRow,
        score: float,
        channels: dict[str, float],
        facts: Facts,
        now: datetime,
    ) -> Hit:
        provenance: list[dict[str, Any]] = [
            {"stream": INPUT_STREAM, "position": row.created_position, "kind": "memory.stored"}
        ]
        if row.text_position != row.created_position:
            provenance.append(
                {"stream": INPUT_STREAM, "position": row.text_position, "kind": "memory.updated"}
            )
        merged = [d for d, target in facts.duplicate_of.items() if target == row.doc]
        if merged:
            ids = sorted(r.memory_id for r in self.duck.rows_by_doc(merged).values())
            provenance.append({"merged_duplicates": ids})
        zone = None
        if row.doc in facts.schedule:
            stability, reviewed = facts.schedule[row.doc]
            days = (now - reviewed).total_seconds() / 86_400
            zone = decay_zone(retrievability(days, stability), self.decay)
        status = row.status
        if row.doc in facts.superseded_by:
            status = "superseded"
            zone = "archived"
            newer = self.duck.rows_by_doc([facts.superseded_by[row.doc]])
            provenance.append({"superseded_by": [r.memory_id for r in newer.values()] or None})
        return Hit(
            memory_id=row.memory_id,
            text=row.text,
            score=score,
            channels=channels,
            metadata=row.metadata_dict(),
            occurred_at=row.occurred_at,
            status=status,
            namespace=row.namespace,
            provenance=provenance,
            category=facts.category.get(row.doc),
            zone=zone,
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


def _matches(row: MemoryRow, category: str | None, filters: Mapping[str, object] | None) -> bool:
    """Filters name metadata keys, or `category` (what the extractor decided)."""
    if not filters:
        return True
    metadata = row.metadata_dict()
    return all(
        (category if key == "category" else metadata.get(key)) == value
        for key, value in filters.items()
    )


def _add_scaled(
    fused: dict[int, float], extra: Mapping[int, float], weight: float
) -> dict[int, float]:
    """Add a [0, 1] signal in units of the fused scores' spread (a memory it alone reached
    starts from the lowest fused score)."""
    spread = float(np.std(list(fused.values()))) or 1.0
    floor = min(fused.values())
    out = dict(fused)
    for d, value in extra.items():
        out[d] = out.get(d, floor) + weight * spread * value
    return out


__all__ = ["CHANNELS", "SEARCH_CHANNELS", "Hit", "QueryEngine", "QuerySettings"]
