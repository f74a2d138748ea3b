"""The query actor's work: channels run concurrently, fused into one ranked, explained answer.

Channels (each returns its best candidates with raw scores):
- ``semantic`` / ``semantic_context``: FAISS inner product against the memory's own vector and
  its in-context vector;
- ``lexical`` / ``lexical_context``: BM25 over the dated text and over the text in context.

and two that re-rank the fused candidates: ``graph`` (activation spread along the linker's
edges) and ``speaker`` (the chat lines of a speaker the query names).

Fusion normalises each channel's scores over its own candidates (z-scores; reciprocal rank
fusion is the alternative, `fusion = "rrf"`), adds them with the configured weights (a memory a
channel did not return gets that channel's lowest score), then propagates: a memory gains a
share of its best neighbour's score (the memory stored just before or after it), because the
turn that answers a question often sits beside the one that matches it. Feedback moves a
memory up or down a little.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from mnemoflow.actors.decay import DecaySettings
from mnemoflow.actors.decay import zone as decay_zone
from mnemoflow.actors.extraction import NOT_NAMES, query_entities
from mnemoflow.actors.query.channels import temporal_search
from mnemoflow.actors.query.fusion import (
    add_scaled,
    adjust,
    fuse,
    propagate,
    retrievability_at,
    spread,
    top,
)
from mnemoflow.actors.query.hit import Hit
from mnemoflow.actors.query.readmodel import NamespaceModel, ReadModel
from mnemoflow.actors.query.settings import CHANNELS, SEARCH_CHANNELS, QuerySettings
from mnemoflow.actors.timeexpr import find_times
from mnemoflow.eventlog.payloads import local_now
from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.projections.duck import DuckProjection
from mnemoflow.projections.lexical import BM25Settings, LexicalIndex
from mnemoflow.projections.memstate import ACTIVE, CONTEXT_FIELD, TEXT_FIELD, MemoryRow
from mnemoflow.projections.text import tokenize
from mnemoflow.projections.vector_projection import CONTEXT, TEXT, VectorProjection

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
_WORDS = re.compile(r"[^\W_]+")
_QUERIES_KEPT = 16
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")


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
        self.lexical = LexicalIndex(
            lambda: duck.con, lexical or BM25Settings(), lambda: duck.changes
        )
        self._pool = ThreadPoolExecutor(
            max_workers=len(SEARCH_CHANNELS), thread_name_prefix="channel"
        )
        self._queries: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._queries_lock = threading.Lock()
        self._read = ReadModel(lambda: duck.con, lambda: duck.changes)

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
        """`now` is when the query is asked (default: this process's clock, in its zone): time
        words in the query are read against it, on its clock, and decay is measured up to it."""
        now = now or local_now()
        weights = dict(self.settings.weights if weights is None else weights)
        active = [c for c in SEARCH_CHANNELS if weights.get(c, 0.0) > 0]
        raw = self._channels(query, namespace, active, now)
        rrf = self.settings.rrf_k if self.settings.fusion == "rrf" else None
        fused = fuse(raw, weights, rrf_k=rrf, min_spread=self.settings.min_spread)
        model = self._read_model().namespace(namespace)
        a = self.settings.neighbor_weight if neighbor_weight is None else neighbor_weight
        fused = top(propagate(fused, model.neighbours, a), max(2 * self.settings.candidates, 3 * k))
        if weights.get("graph", 0.0) > 0 and fused:
            raw["graph"] = spread(fused, model.edges, self.settings.graph_seeds)
            fused = add_scaled(fused, raw["graph"], weights["graph"])
        if weights.get("speaker", 0.0) > 0 and fused:
            raw["speaker"] = spoken_by(query, fused, model)
            fused = add_scaled(fused, raw["speaker"], weights["speaker"])
        fused = adjust(
            fused,
            model,
            self._read_model().votes(),
            now,
            feedback_weight=self.settings.feedback_weight,
            decay_weight=self.settings.decay_weight,
            superseded_penalty=self.settings.superseded_penalty,
        )
        return self._hits(fused, raw, model, k, filters, now)

    def _hits(
        self,
        fused: dict[int, float],
        raw: Mapping[str, Mapping[int, float]],
        model: NamespaceModel,
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
            # One read for the slice and the memories its hits will name.
            related = [d for c in chunk for d in model.merged_into.get(c, ())]
            related += [model.superseded_by[c] for c in chunk if c in model.superseded_by]
            rows = model.rows(np.array(chunk + related, np.int64))
            categories = model.categories(np.array(chunk, np.int64))
            for doc in chunk:
                row = rows.get(doc)
                if row is None or row.status != ACTIVE:
                    continue
                category = categories.get(doc)
                if not _matches(row, category, filters):
                    continue
                channels = {c: s[doc] for c, s in raw.items() if doc in s}
                hits.append(self._hit(row, fused[doc], channels, model, category, now, rows))
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
            keys = [e.key for e in query_entities(query)] + _WORDS.findall(query.casefold())
            model = self._read_model().namespace(namespace)
            jobs["entity"] = self._pool.submit(model.mentions, keys, n)
        spans = find_times(query, now) if "temporal" in active else []
        if spans:
            jobs["temporal"] = self._pool.submit(
                temporal_search, self.duck.con.cursor(), namespace, spans, n
            )
        semantic = [c for c in active if c.startswith("semantic")]
        if semantic:
            vector = self.query_vector(query)
            for channel in semantic:
                kind = TEXT if channel == "semantic" else CONTEXT
                jobs[channel] = self._pool.submit(self.vectors.search, namespace, vector, n, kind)
        return {channel: dict(job.result()) for channel, job in jobs.items()}

    def query_vector(self, query: str) -> npt.NDArray[np.float32]:
        """The query's embedding. The last few are kept: a task's context asks for the same
        text's twice (its past episodes, then its memories)."""
        with self._queries_lock:
            kept = self._queries.get(query)
            if kept is not None:
                self._queries.move_to_end(query)
                return kept
        vector: npt.NDArray[np.float32] = self.embed([query])[0]
        with self._queries_lock:
            self._queries[query] = vector
            while len(self._queries) > _QUERIES_KEPT:
                self._queries.popitem(last=False)
        return vector

    def _read_model(self) -> ReadModel:
        """Neighbours, edges, facets, schedules, decisions and votes, kept up to date with
        the projections."""
        return self._read

    def _hit(
        self,
        row: MemoryRow,
        score: float,
        channels: dict[str, float],
        model: NamespaceModel,
        category: str | None,
        now: datetime,
        rows: Mapping[int, MemoryRow],
    ) -> Hit:
        provenance: list[dict[str, Any]] = [
            {"stream": INPUT_STREAM, "position": row.created_position, "kind": "memory.stored"}
        ]
        if row.text_position != row.created_position:
            provenance.append(
                {"stream": INPUT_STREAM, "position": row.text_position, "kind": "memory.updated"}
            )
        merged = model.merged_into.get(row.doc)
        if merged:
            ids = sorted(rows[d].memory_id for d in merged if d in rows)
            provenance.append({"merged_duplicates": ids})
        (r,) = retrievability_at(model, np.array([row.doc], np.int64), now)
        zone = None if r != r else decay_zone(float(r), self.decay)
        status = row.status
        if row.doc in model.superseded_by:
            status = "superseded"
            zone = "archived"
            newer = rows.get(model.superseded_by[row.doc])
            provenance.append({"superseded_by": [newer.memory_id] if newer else None})
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
            category=category,
            zone=zone,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def spoken_by(query: str, fused: Mapping[int, float], model: NamespaceModel) -> dict[int, float]:
    """The speaker channel: 1 for each candidate whose speaker the query names (every word
    of the name, in any case: "emi's" names Emi), or calls by a name the chat learned for
    them ("Kate" for Emi, where the others call her Kate)."""
    words = set(_WORDS.findall(query.casefold()))
    speakers = model.speakers(np.fromiter(sorted(fused), np.int64, len(fused)))
    named = {who for who in set(speakers.values()) if words.issuperset(_WORDS.findall(who))}
    # Names in the query no candidate speaks under (the aliases are learned only for these).
    others = {w.casefold() for w in _CAPITALISED.findall(query)} - NOT_NAMES
    others -= {w for who in named for w in _WORDS.findall(who)}
    if others:
        learned = model.aliases()
        named |= {learned[name] for name in others if name in learned}
    return {doc: 1.0 for doc, who in speakers.items() if who in named}


def _matches(row: MemoryRow, category: str | None, filters: Mapping[str, object] | None) -> bool:
    """Filters name metadata keys, or `category` (what the extractor decided)."""
    if not filters:
        return True
    metadata = row.metadata_dict()
    return all(
        (category if key == "category" else metadata.get(key)) == value
        for key, value in filters.items()
    )


__all__ = ["CHANNELS", "SEARCH_CHANNELS", "Hit", "QueryEngine", "QuerySettings"]
