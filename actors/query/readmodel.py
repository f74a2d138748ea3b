"""What recall reads for every query but changes only when the projections do.

Per namespace, loaded on first use after a change and kept as NumPy arrays (so a reload after
each batch of a steady ingest stays cheap): the conversation neighbours (each memory and the
one stored before it), the linker's edges, categories, decay schedules, the
consolidator's decisions, and the memories' rows as hits show them. Lookups for a query's
candidates are vectorised.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb
import numpy as np

from mnemoflow.actors.query import aliases
from mnemoflow.actors.query.readparts import Docs, Entities, Lookup, Rows, both_ways
from mnemoflow.projections import readrows
from mnemoflow.projections.changes import Changes, KeptCopies
from mnemoflow.projections.heap import release_freed_memory
from mnemoflow.projections.memstate import MemoryRow, doc_id


class NamespaceModel:
    """What recall reads about one namespace: read whole, or (`changed`) for the memories in
    the `_changed` table only, to be laid over a whole one (`overlaid`) after a change."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, namespace: str, changed: bool = False
    ) -> None:
        self._con, self._namespace = con, namespace
        self._over: tuple[NamespaceModel, NamespaceModel, Docs] | None = None
        # A part is read through the caller's cursor, which has `_changed`, and at once
        cursor = con if changed else con.cursor()
        self._entities = Entities(cursor, namespace, True) if changed else None
        self._rows = Rows(readrows.hits(cursor, namespace, changed))
        self._aliases: dict[str, str] | None = None
        # Each active memory and the one stored before it, from the rows.
        doc, prev = self._rows.neighbours()
        self.neighbours = both_ways(doc, prev, np.ones(len(doc)))
        edges = readrows.edges(cursor, namespace, changed)
        self.edges = both_ways(
            edges["src"].astype(np.int64), edges["dst"].astype(np.int64), edges["w"].astype(float)
        )
        facets = readrows.facets(cursor, namespace, changed)
        # A handful of categories: every row's value one of their objects, not a string each.
        names, codes = np.unique(np.asarray(facets["category"], dtype=object), return_inverse=True)
        self.category = Lookup.of(facets["doc"].astype(np.int64), names[codes])
        schedule = readrows.schedules(cursor, namespace, changed)
        self.stability = Lookup.of(
            schedule["doc"].astype(np.int64),
            np.stack([schedule["stability"], schedule["at"].astype(float)], axis=1)
            if len(schedule["doc"])
            else np.zeros((0, 2)),
        )
        decisions = readrows.decisions(cursor, namespace, changed)
        if changed:  # laid over a whole model's by `overlaid`
            self.decided: list[tuple[int, str, int, int]] = decisions
        else:
            self._decisions(decisions)

    def _decisions(self, rows: list[tuple[int, str, int, int]]) -> None:
        """The consolidator's decisions, oldest first: the latest about a memory wins."""
        self.superseded_by: dict[int, int] = {}
        self.duplicate_of: dict[int, int] = {}
        self.decided_through = 0  # the last position read
        for doc, decision, target, position in rows:
            if decision == "supersedes":
                self.superseded_by[int(target)] = int(doc)
            else:
                self.duplicate_of[int(doc)] = int(target)
            self.decided_through = int(position)
        self.merged_into: dict[int, list[int]] = {}
        for doc, target in sorted(self.duplicate_of.items()):
            self.merged_into.setdefault(target, []).append(doc)

    def _decide(self, doc: int, decision: str, target: int) -> None:
        """One more decision (on dicts not shared with the model this one overlays)."""
        if decision == "supersedes":
            self.superseded_by[target] = doc
            return
        before = self.duplicate_of.get(doc)
        if before is not None:
            left = [d for d in self.merged_into[before] if d != doc]
            if left:
                self.merged_into[before] = left
            else:
                del self.merged_into[before]
        self.duplicate_of[doc] = target
        merged = list(self.merged_into.get(target, ()))
        bisect.insort(merged, doc)
        self.merged_into[target] = merged

    def overlaid(self, delta: NamespaceModel, changed: Docs) -> NamespaceModel:
        """This model with the rows of the `changed` memories (sorted) replaced by `delta`'s
        (a model read for those memories only)."""
        out = copy.copy(self)
        out._over = (self, delta, changed)
        out.neighbours = self.neighbours.overlaid(delta.neighbours, changed)
        out.edges = self.edges.overlaid(delta.edges, changed)
        out.category = self.category.overlaid(delta.category, changed)
        out.stability = self.stability.overlaid(delta.stability, changed)
        # Decisions only accumulate: those after this model's are added, in order, to copies
        # of its dicts (shared as they are when there is none, as after most writes)
        newer = [row for row in delta.decided if row[3] > self.decided_through]
        if newer:
            out.superseded_by, out.duplicate_of = dict(self.superseded_by), dict(self.duplicate_of)
            out.merged_into = dict(self.merged_into)
            for doc, decision, target, position in newer:
                out._decide(int(doc), decision, int(target))
                out.decided_through = int(position)
        out._rows = self._rows.overlaid(delta._rows, changed)
        out._aliases = None
        out._entities = None  # laid over the whole model's on first use
        return out

    def entities(self) -> Entities:
        if self._entities is None:
            if self._over is None:
                self._entities = Entities(self._con.cursor(), self._namespace, False)
            else:  # the whole model keeps its own, for the next overlay
                base, delta, changed = self._over
                self._entities = base.entities().overlaid(delta.entities(), changed)
        return self._entities

    @property
    def size(self) -> int:
        """How many memories the model has rows for."""
        return len(self._rows.docs)

    def rows(self, docs: Docs) -> dict[int, MemoryRow]:
        """The memories' rows as hits show them (without context), by doc."""
        return self._rows.get(docs)

    def speakers(self, docs: Docs) -> dict[int, str]:
        """Who speaks in each of the memories that have a speaker (casefolded), by doc."""
        return self._rows.speakers(docs)

    def aliases(self) -> dict[str, str]:
        """The names people are called by in this namespace's chat lines, and whose they are
        (`aliases`), learned on first use after each change."""
        if self._aliases is None:
            rows = self._rows
            self._aliases = aliases.learn(rows.votes(), rows.speaker_names(), rows.census)
        return self._aliases

    def mentions(self, keys: list[str], n: int) -> list[tuple[int, float]]:
        """The entity channel: memories mentioning any of the keys, scored by the summed
        idf (ln(1 + memories / memories mentioning it)) of the keys they mention."""
        entities = self.entities()
        total = entities.total
        parts_docs, parts_scores = [], []
        for key in sorted(set(keys)):
            chunk = entities.docs_of(key)
            if len(chunk):
                parts_docs.append(chunk)
                parts_scores.append(np.full(len(chunk), np.log(1 + total / len(chunk))))
        if not parts_docs:
            return []
        unique, where = np.unique(np.concatenate(parts_docs), return_inverse=True)
        scores = np.bincount(where, weights=np.concatenate(parts_scores))
        order = np.lexsort((unique, -scores))[:n]
        return [(int(unique[i]), float(scores[i])) for i in order]

    def categories(self, docs: Docs) -> dict[int, str]:
        hit, values = self.category.get(docs)
        return {int(d): str(v) for d, v, h in zip(docs, values, hit, strict=True) if h}


@dataclass(frozen=True, slots=True)
class _Kept:
    changes: Changes
    seq: int  # the batch the whole model was read at
    at: int  # the batch `model` is current for
    base: NamespaceModel
    model: NamespaceModel


class ReadModel(KeptCopies["_Kept"]):
    """Every namespace's model, kept across changes of the projections: read whole once,
    then, after each change, the rows of the memories it changed (`Changes`) are read and
    laid over it, until they are many; the votes are re-read after any change."""

    def __init__(
        self,
        connection: Callable[[], duckdb.DuckDBPyConnection],
        changes: Callable[[], Changes],
        keep: int = 64,
    ) -> None:
        super().__init__(connection, changes, keep)
        self._votes: tuple[Changes, int, dict[int, int]] | None = None

    def namespace(self, namespace: str) -> NamespaceModel:
        with self._lock:
            changes = self._changes()
            now = changes.seq  # before reading: the rows read are at least this new
            kept = self._kept.get(namespace)
            if kept is not None and kept.changes is changes:
                if kept.at == now:
                    return kept.model
                changed = changes.to_lay_over(kept.seq, namespace, kept.base.size)
                if changed is not None:
                    model = self._overlay(kept.base, namespace, changed)
                    self._kept.put(namespace, replace(kept, at=now, model=model))
                    return model
            base = NamespaceModel(self._connection(), namespace)
            release_freed_memory()  # what reading it from DuckDB left behind
            self._kept.put(namespace, _Kept(changes, now, now, base, base))
            return base

    def _overlay(
        self, base: NamespaceModel, namespace: str, changed: frozenset[int]
    ) -> NamespaceModel:
        docs = np.array(sorted(changed), np.int64)
        cursor = self._connection().cursor()
        try:
            readrows.register_changed(cursor, docs)
            delta = NamespaceModel(cursor, namespace, changed=True)
            return base.overlaid(delta, docs)
        finally:
            cursor.close()

    def votes(self) -> dict[int, int]:
        """Useful minus not-useful votes per doc (only docs with votes)."""
        changes = self._changes()
        now = changes.seq
        if self._votes is not None and self._votes[0] is changes and self._votes[1] == now:
            return self._votes[2]
        # By memory id, made doc here: a join with `memories` would scan it after each change.
        rows = (
            self._connection()
            .cursor()
            .execute(
                "SELECT memory_id, sum(CASE WHEN useful THEN 1 ELSE -1 END) FROM feedback "
                "GROUP BY memory_id"
            )
            .fetchall()
        )
        votes = {doc_id(m): int(n) for m, n in rows}
        self._votes = (changes, now, votes)
        return votes
