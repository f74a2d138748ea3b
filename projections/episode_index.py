"""A namespace's completed episodes as a task's context ranks them, kept in memory.

Read from the DuckDB projection once, then kept up to date with its changes (`Changes`: the
docs each committed batch touched): the episodes completed since are read and appended, so a
context costs no scan of the namespace's episodes. (A completed episode never changes again;
only an erasure removes it.) An erasure resets the changes, and every copy read before it is
dropped at the next use of the index (`drop_stale`, which an erasure in this process calls
at once): no task of an erased namespace stays here.

The copy is columns that grow by appending (`array`), seen by NumPy without a copy: per
episode its task's length, score, position and domain; per term the episodes having it and
how often. Ranking: BM25 of the tasks' terms (over the completed episodes of the domain asked
for) and the cosine of the tasks' embeddings (the nearest, from FAISS),
`0.5 * bm25 / best bm25 + 0.5 * cosine`, times `0.5 + 0.5 * score` (a failed episode still
counts, half as much, for what it warns of); ties to the latest.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mnemoflow.projections.changes import Changes, KeptCopies, overlay_limit
from mnemoflow.projections.episode_rows import (
    EPISODE_COLUMNS,
    EpisodeRow,
    StepRow,
    episode_row,
    step_rows,
)

if TYPE_CHECKING:
    pass

STEPS_KEPT = 2_000  # episodes whose steps a copy keeps, at most


@dataclass(slots=True)
class _View:
    changes: Changes
    at: int  # the changes' sequence number this copy is up to date with
    rows: list[EpisodeRow] = field(default_factory=list)
    row_of: dict[int, int] = field(default_factory=dict)  # doc -> row
    lengths: array[int] = field(default_factory=lambda: array("i"))
    scores: array[float] = field(default_factory=lambda: array("d"))
    positions: array[int] = field(default_factory=lambda: array("q"))
    domains: array[int] = field(default_factory=lambda: array("i"))
    domain_code: dict[str | None, int] = field(default_factory=dict)
    postings: dict[str, tuple[array[int], array[int]]] = field(default_factory=dict)
    steps: dict[str, list[StepRow]] = field(default_factory=dict)  # of episodes ranked lately

    def add(self, doc: int, row: EpisodeRow, terms: Sequence[str]) -> None:
        if doc in self.row_of:
            return  # completed before: it has not changed
        at = self.row_of[doc] = len(self.rows)
        self.rows.append(row)
        self.lengths.append(len(terms))
        self.scores.append(row.score or 0.0)
        self.positions.append(row.position)
        self.domains.append(self.domain_code.setdefault(row.domain, len(self.domain_code)))
        for term, tf in Counter(terms).items():
            rows, tfs = self.postings.setdefault(term, (array("i"), array("i")))
            rows.append(at)
            tfs.append(tf)

    def column(self, values: array[int] | array[float], dtype: type) -> npt.NDArray[Any]:
        return np.frombuffer(values, dtype) if len(values) else np.zeros(0, dtype)


class EpisodeIndex(KeptCopies[_View]):
    """Each namespace's completed episodes, kept (at most `keep` namespaces)."""

    def rank(
        self,
        namespace: str,
        terms: Sequence[str],
        similar: Sequence[tuple[int, float]],
        *,
        domain: str | None,
        tags: Sequence[str],
        k: int,
        k1: float,
        b: float,
    ) -> list[tuple[EpisodeRow, float]]:
        """The k completed episodes (of one domain, with one of the tags) that bear most on
        a task: sharing its `terms`, or near it by meaning (`similar`: docs and cosines)."""
        with self._lock:
            view = self._load(namespace)
            return _ranked(view, terms, similar, domain, set(tags), k, k1, b)

    def steps(self, namespace: str, episode_ids: Sequence[str]) -> dict[str, list[StepRow]]:
        """The steps of completed episodes of the namespace, each in order: those asked for
        lately are kept (a completed episode's steps never change)."""
        with self._lock:
            view = self._load(namespace)
            missing = [e for e in episode_ids if e not in view.steps]
            if missing:
                if len(view.steps) + len(missing) > STEPS_KEPT:
                    view.steps.clear()
                view.steps.update(step_rows(self._connection(), missing))
            return {e: view.steps[e] for e in episode_ids}

    def drop_stale(self) -> None:
        """Drop every copy read before an erasure (or from a replaced projection)."""
        with self._lock:
            self._drop_stale(self._changes())

    def _drop_stale(self, changes: Changes) -> None:
        for namespace, view in self._kept.items():
            if view.changes is not changes or changes.since(view.at, namespace) is None:
                self._kept.pop(namespace)

    def _load(self, namespace: str) -> _View:
        changes = self._changes()
        now = changes.seq  # before reading: the rows read are at least this new
        self._drop_stale(changes)
        view = self._kept.get(namespace)
        if view is not None and view.at != now:
            changed = changes.since(view.at, namespace)
            if changed is not None and len(changed) <= overlay_limit(len(view.rows)):
                fresh = [d for d in changed if d not in view.row_of]
                for doc, row, terms in self._read(namespace, sorted(fresh)) if fresh else ():
                    view.add(doc, row, terms)
                view.at = now
            else:
                view = None
        if view is None:
            view = _View(changes, now)
            for doc, row, terms in self._read(namespace, None):
                view.add(doc, row, terms)
            self._kept.put(namespace, view)
        return view

    def _read(
        self, namespace: str, docs: Sequence[int] | None
    ) -> list[tuple[int, EpisodeRow, list[str]]]:
        """The completed episodes of the namespace (of those docs), oldest first."""
        cursor = self._connection().cursor()
        try:
            found = cursor.execute(
                f"SELECT doc, terms, {EPISODE_COLUMNS} FROM episodes WHERE namespace = ? "
                "AND completed_at IS NOT NULL AND (? OR list_contains(?::BIGINT[], doc)) "
                "ORDER BY position",
                [namespace, docs is None, list(docs or ())],
            ).fetchall()
        finally:
            cursor.close()
        return [(int(row[0]), episode_row(row[2:]), list(row[1])) for row in found]


def _ranked(
    view: _View,
    terms: Sequence[str],
    similar: Sequence[tuple[int, float]],
    domain: str | None,
    tags: set[str],
    k: int,
    k1: float,
    b: float,
) -> list[tuple[EpisodeRow, float]]:
    size = len(view.rows)
    if not size:
        return []
    lengths = view.column(view.lengths, np.int32).astype(np.float64)
    if domain is None:
        pool = np.ones(size, bool)
    elif domain in view.domain_code:
        pool = view.column(view.domains, np.int32) == view.domain_code[domain]
    else:
        return []
    n = int(pool.sum())
    avgdl = max(float(lengths[pool].mean()), 1.0) if n else 1.0
    lexical = np.zeros(size)
    for term in set(terms):
        if term not in view.postings:
            continue
        rows_, tfs_ = view.postings[term]
        rows = view.column(rows_, np.int32)
        tf = view.column(tfs_, np.int32).astype(np.float64)
        keep = pool[rows]
        rows, tf = rows[keep], tf[keep]
        idf = np.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
        lexical[rows] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[rows] / avgdl))
    near = np.zeros(size)
    for doc, cosine in similar:
        row = view.row_of.get(doc)
        if row is not None and pool[row]:
            near[row] = max(cosine, 0.0)
    best = float(lexical.max()) or 1e-9
    scores = view.column(view.scores, np.float64)
    relevance = (0.5 * lexical / best + 0.5 * near) * (0.5 + 0.5 * scores)
    positions = view.column(view.positions, np.int64)
    candidates = np.flatnonzero(relevance > 0)
    order = candidates[np.lexsort((-positions[candidates], -relevance[candidates]))]
    out = []
    for row in order:
        episode = view.rows[int(row)]
        if tags and not tags & set(episode.tags):
            continue
        out.append((episode, round(float(relevance[row]), 6)))
        if len(out) == k:
            break
    return out
