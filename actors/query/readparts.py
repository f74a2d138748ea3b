"""The parts of a namespace's read model (`actors.readmodel`), each looked up many docs at a
time and each able to be laid over: a part read for the memories changed since replaces
theirs in the part read whole."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mnemoflow.actors.extraction import speaker_of
from mnemoflow.actors.query import aliases
from mnemoflow.projections import readrows
from mnemoflow.projections.changes import in_sorted, ranges
from mnemoflow.projections.duck import memory_row
from mnemoflow.projections.memstate import ACTIVE, MemoryRow

Docs = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Weights = npt.NDArray[np.float32]


class Adjacency:
    """Edges grouped by source (compressed rows): the neighbours of many memories at once.
    Each edge remembers whether its source's row made it, or its target's (`by_src`), so
    that an overlay can replace the edges of the memories changed since (`overlaid`).
    Weights are float32: at 10^5 memories there are millions of edges."""

    def __init__(
        self,
        src: Docs,
        dst: Docs,
        weight: Floats,
        by_src: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        order = np.argsort(src, kind="stable")
        src, self.dst = src[order], dst[order]
        self.weight = weight[order].astype(np.float32)
        self.by_src = np.ones(len(src), bool) if by_src is None else by_src[order]
        first = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0)
        self.keys = src[first.astype(np.int64)]
        self.offsets = np.append(first, len(src)).astype(np.int64)
        self._over: tuple[Adjacency, Docs] | None = None

    def overlaid(self, delta: Adjacency, changed: Docs) -> Adjacency:
        """These edges less those of the `changed` memories (sorted), plus `delta`'s."""
        out = copy.copy(self)
        out._over = (delta, changed)
        return out

    def expand(self, docs: Docs) -> tuple[Docs, Docs, Weights]:
        """(index into `docs`, neighbour, weight) for every edge leaving one of `docs`."""
        owner, index = self._index(docs)
        if self._over is None:
            return owner, self.dst[index], self.weight[index]
        delta, changed = self._over
        origin = np.where(self.by_src[index], docs[owner], self.dst[index])
        keep = ~in_sorted(origin, changed)
        more_owner, more_dst, more_weight = delta.expand(docs)
        return (
            np.concatenate([owner[keep], more_owner]),
            np.concatenate([self.dst[index[keep]], more_dst]),
            np.concatenate([self.weight[index[keep]], more_weight]),
        )

    def _index(self, docs: Docs) -> tuple[Docs, Docs]:
        if not len(self.keys) or not len(docs):
            empty = np.zeros(0, np.int64)
            return empty, empty
        at = np.searchsorted(self.keys, docs)
        at = np.minimum(at, len(self.keys) - 1)
        found = np.flatnonzero(self.keys[at] == docs)
        starts, ends = self.offsets[at[found]], self.offsets[at[found] + 1]
        counts = ends - starts
        return np.repeat(found, counts), ranges(starts, counts)


def both_ways(src: Docs, dst: Docs, weight: Floats) -> Adjacency:
    """Each row (src, dst) as an edge in both directions, both made by src's row."""
    return Adjacency(
        np.concatenate([src, dst]),
        np.concatenate([dst, src]),
        np.tile(weight, 2),
        np.repeat([True, False], len(src)),
    )


@dataclass(frozen=True, slots=True)
class Lookup:
    """A sorted key array and the values beside it, looked up many keys at a time; an
    overlay's values replace those of the memories changed since."""

    keys: Docs
    values: npt.NDArray[np.generic]
    over: tuple[Lookup, Docs] | None = None

    @classmethod
    def of(cls, keys: Docs, values: npt.NDArray[np.generic]) -> Lookup:
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], values[order])

    def overlaid(self, delta: Lookup, changed: Docs) -> Lookup:
        return Lookup(self.keys, self.values, (delta, changed))

    def get(self, docs: Docs) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.generic]]:
        if not len(self.keys):
            hit = np.zeros(len(docs), bool)
            values = np.zeros((len(docs), *self.values.shape[1:]), self.values.dtype)
        else:
            at = np.minimum(np.searchsorted(self.keys, docs), len(self.keys) - 1)
            hit, values = self.keys[at] == docs, self.values[at]
        if self.over is None:
            return hit, values
        delta, changed = self.over
        newer, newer_values = delta.get(docs)
        hit = (hit & ~in_sorted(docs, changed)) | newer
        values = values.astype(np.result_type(values.dtype, newer_values.dtype))  # a copy
        values[newer] = newer_values[newer]
        return hit, values


class Entities:
    """Entity keys (sorted), offsets into the docs mentioning each, and the docs that
    mention any (sorted); an overlay's replace those of the memories changed since."""

    def __init__(self, con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> None:
        rows = readrows.entities(con, namespace, changed)
        keys = np.asarray(rows["key"], dtype=object)
        self.docs: Docs = rows["doc"].astype(np.int64)
        self.keys, starts = np.unique(keys, return_index=True)
        self.offsets = np.append(starts, len(keys)).astype(np.int64)
        self.mentioning = np.unique(self.docs)
        self.over: tuple[Entities, Docs] | None = None

    def overlaid(self, delta: Entities, changed: Docs) -> Entities:
        out = copy.copy(self)
        out.over = (delta, changed)
        return out

    @property
    def total(self) -> int:
        """How many memories mention an entity."""
        if self.over is None:
            return len(self.mentioning)
        delta, changed = self.over
        return len(self.mentioning) - int(in_sorted(changed, self.mentioning).sum()) + delta.total

    def docs_of(self, key: str) -> Docs:
        i = int(np.searchsorted(self.keys, key))
        found = self.docs[0:0]
        if i < len(self.keys) and self.keys[i] == key:
            found = self.docs[self.offsets[i] : self.offsets[i + 1]]
        if self.over is None:
            return found
        delta, changed = self.over
        return np.concatenate([found[~in_sorted(found, changed)], delta.docs_of(key)])


class Rows:
    """The namespace's memories as recall's hits show them (all but their context), by doc;
    an overlay's replace those of the memories changed since. Kept as one Arrow table: a
    query takes its few rows from it, where a DuckDB read of them would scan the table."""

    def __init__(self, table: pa.Table) -> None:
        """`table`: as `readrows.hits` reads it, sorted by doc."""
        self.table = table
        self.docs: Docs = table.column("doc").to_numpy()
        self.over: tuple[Rows, Docs] | None = None
        # Derived from the table on first use, and shared with this table's overlays.
        self._derived: dict[str, Any] = {}

    def neighbours(self) -> tuple[Docs, Docs]:
        """(doc, the doc stored before it) of each active memory stored after another."""
        before = self.table.column("prev_doc")
        linked = pc.and_(before.is_valid(), pc.equal(self.table.column("status"), ACTIVE))
        return self.docs[linked.to_numpy(zero_copy_only=False)], before.filter(linked).to_numpy()

    def overlaid(self, delta: Rows, changed: Docs) -> Rows:
        out = copy.copy(self)
        out.over = (delta, changed)
        return out

    def _rows_of(self, docs: Docs) -> npt.NDArray[np.intp]:
        """Where this table holds those of `docs` it has (sorted docs in, row numbers out)."""
        if not len(self.docs) or not len(docs):
            return np.zeros(0, np.intp)
        at = np.minimum(np.searchsorted(self.docs, docs), len(self.docs) - 1)
        found: npt.NDArray[np.intp] = at[self.docs[at] == docs]
        return found

    def _unchanged(self, docs: Docs) -> Docs:
        """Those of `docs` this table answers for: not the overlay's."""
        return docs if self.over is None else docs[~in_sorted(docs, self.over[1])]

    def speakers(self, docs: Docs) -> dict[int, str]:
        """Who speaks in each of those of `docs` that has a speaker (casefolded)."""
        found = {} if self.over is None else self.over[0].speakers(docs)
        at = self._rows_of(self._unchanged(docs))
        if len(at):
            speakers = self._speakers()
            for doc, who in zip(self.docs[at].tolist(), speakers[at].tolist(), strict=True):
                if who:
                    found[doc] = who
        return found

    def _speakers(self) -> npt.NDArray[np.object_]:
        """Each row's speaker (casefolded; "" for none), read once per table."""
        if "speakers" not in self._derived:
            texts = self.table.column("text").to_pylist()
            self._derived["speakers"] = np.array(
                [(speaker_of(t)[0] or "").casefold() if t else "" for t in texts], object
            )
        return cast("npt.NDArray[np.object_]", self._derived["speakers"])

    def speaker_names(self) -> set[str]:
        """Every speaker's name in these rows (an overlay's and the rest's)."""
        if "names" not in self._derived:
            self._derived["names"] = frozenset(self._speakers().tolist()) - {""}
        names = set(self._derived["names"])
        if self.over is not None:
            names |= self.over[0].speaker_names()
        return names

    def votes(self) -> aliases.Tally:
        """The alias votes of these rows (`aliases`): the rest's, added up once per table,
        less those of the memories changed since, plus the overlay's."""
        if "tally" not in self._derived:
            ballots = self._ballots(aliases.evidence(self.table))
            self._derived["ballots"] = (ballots, np.array([v.doc for v in ballots], np.int64))
            self._derived["tally"] = aliases.tally(ballots)
        base: aliases.Tally = self._derived["tally"]
        if self.over is None:
            return base
        delta, changed = self.over
        ballots, docs = self._derived["ballots"]
        out: aliases.Tally = defaultdict(Counter, {n: Counter(c) for n, c in base.items()})
        gone = in_sorted(docs, changed).nonzero()[0]
        aliases.tally((ballots[i] for i in gone.tolist()), -1, out)
        # The overlay's lines answer lines of either part: their speakers are read here.
        return aliases.tally(self._ballots(aliases.evidence(delta.table)), 1, out)

    def _ballots(self, found: list[aliases.Evidence]) -> list[aliases.Vote]:
        answered = np.unique(np.array([e.prev for e in found if e.prev is not None], np.int64))
        return aliases.votes(found, self.speakers(answered))

    def census(self, name: str) -> tuple[int, int]:
        """`aliases.census` over these rows: the rest's counts (kept per table) less those of
        the memories changed since, plus the overlay's."""
        counts: dict[str, tuple[int, int]] = self._derived.setdefault("census", {})
        if name not in counts:
            counts[name] = aliases.census(self.table, name)
        capital, lower = counts[name]
        if self.over is not None:
            delta, changed = self.over
            before = aliases.census(self.table.take(self._rows_of(changed)), name)
            after = delta.census(name)
            capital, lower = capital - before[0] + after[0], lower - before[1] + after[1]
        return capital, lower

    def get(self, docs: Docs) -> dict[int, MemoryRow]:
        """The rows of those of `docs` that have one."""
        found = {} if self.over is None else self.over[0].get(docs)
        at = self._rows_of(self._unchanged(docs))
        if len(at):
            taken = self.table.take(at)
            for values in zip(*(column.to_pylist() for column in taken.columns), strict=True):
                row = memory_row(values)
                found[row.doc] = row
        return found
