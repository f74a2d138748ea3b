"""The linker: edges between a memory and earlier memories of its namespace.

It follows the extracted stream and writes one `memory.linked` event per memory version:
- `entity`: the memory and the latest few earlier memories that mention the same entity
  (co-occurrence; the speaker of a conversation is left out, since every other turn has it);
- `similar`: its nearest earlier memories by cosine (exact, one matrix product per batch and
  namespace) above a threshold, with the Hamming distance of their SimHashes for the consolidator;
- `updates` / `extends` / `contradicts`: the latest earlier memory with a claim about the same
  subject and attribute — a new value of a single-valued attribute updates it, a value that
  adds up extends it, the same value denied (or affirmed after a denial) contradicts it.

Its indexes are a fold over the extracted stream (and the vectors the embedder derived from
the same input positions), so a restarted linker rebuilds them by `observe` and carries on.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.extraction import hamming, stance
from mnemoflow.actors.follower import Derived, Lookups, Opened
from mnemoflow.eventlog.derived import ClaimPart, Edge, EdgeKind, MemoryExtracted, MemoryLinked
from mnemoflow.eventlog.payloads import MemoryEmbedded
from mnemoflow.eventlog.schema import EXTRACTED_STREAM, LINKED_STREAM, MEMORY_LINKED


class LinkerSettings(BaseModel):
    """The ``[linker]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entity_fanout: int = Field(5, ge=0, le=100, description="earlier memories per entity")
    similar_k: int = Field(5, ge=0, le=100)
    similar_threshold: float = Field(0.8, ge=-1, le=1)


@dataclass
class _Claim:
    memory_id: str
    value: str
    negated: bool


class _Matrix:
    """A namespace's vectors, one row per memory (an update overwrites its row), searched
    exactly with matrix products: the linker's similarity must not depend on how its input
    was cut into batches, which an approximate index cannot promise. Rows are half floats
    (a unit vector's components move by under 1e-3), half the memory of float32 at 10^5,
    kept in fixed blocks: growing never copies, and at most one block stands empty."""

    _BLOCK = 16_384  # rows per block, widened to float32 one block at a time for a product

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.blocks: list[np.ndarray] = []
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def put(self, memory_id: str, vector: np.ndarray) -> None:
        row = self.row_of.get(memory_id)
        if row is None:
            row = self.row_of[memory_id] = len(self.ids)
            self.ids.append(memory_id)
            if row >= len(self.blocks) * self._BLOCK:
                self.blocks.append(np.zeros((self._BLOCK, self.dim), np.float16))
        self.blocks[row // self._BLOCK][row % self._BLOCK] = vector

    def rows(self, numbers: np.ndarray) -> np.ndarray:
        """The rows at these numbers, in order (float16)."""
        out = np.empty((len(numbers), self.dim), np.float16)
        for i, block in enumerate(self.blocks):
            mine = (numbers // self._BLOCK) == i
            out[mine] = block[numbers[mine] % self._BLOCK]
        return out

    def near(self, block: np.ndarray, floor: float) -> np.ndarray:
        """The rows scoring at least `floor` (in float32) with any of the block's vectors."""
        hits = []
        for i, rows in enumerate(self.blocks):
            used = rows[: min(self._BLOCK, len(self) - i * self._BLOCK)].astype(np.float32)
            hits.append(i * self._BLOCK + np.flatnonzero((used @ block.T >= floor).any(axis=1)))
        return np.concatenate(hits) if hits else np.zeros(0, np.int64)


@dataclass
class _Namespace:
    """What the linker remembers of one namespace."""

    dim: int
    fanout: int
    mentions: dict[str, deque[str]] = field(default_factory=dict)
    claims: dict[tuple[str, str], _Claim] = field(default_factory=dict)
    simhashes: dict[str, int] = field(default_factory=dict)
    facts: dict[str, int] = field(default_factory=dict)  # memory -> digest of its facts
    matrix: _Matrix | None = None

    def vectors(self) -> _Matrix:
        if self.matrix is None:
            self.matrix = _Matrix(self.dim)
        return self.matrix


_MARGIN = 1e-4  # float32 products are within ~1e-6 of exact for unit vectors


@dataclass
class _Group:
    """A batch's memories of one namespace (one column each, in batch order), scored exactly
    in float64 against each other and against the earlier memories that come near the
    threshold: the same numbers whether two memories meet in one batch or across two, so
    how the input was cut cannot change an edge."""

    ids: list[str]
    within: np.ndarray  # column x column
    next_same: np.ndarray  # per column: the next column of the same memory (or len(ids))
    first: dict[str, int]  # memory -> its first column
    before_ids: list[str]
    before: np.ndarray  # len(before_ids) x column

    @classmethod
    def of(cls, ids: list[str], block: np.ndarray, matrix: _Matrix | None, floor: float) -> _Group:
        half = block.astype(np.float16)  # as the matrix keeps them
        exact = half.astype(np.float64)
        next_same = np.full(len(ids), len(ids))
        last: dict[str, int] = {}
        first: dict[str, int] = {}
        for column, memory_id in enumerate(ids):
            if memory_id in last:
                next_same[last[memory_id]] = column
            last[memory_id] = column
            first.setdefault(memory_id, column)
        before_ids: list[str] = []
        before = np.zeros((0, len(ids)))
        if matrix is not None and len(matrix) and matrix.dim == block.shape[1]:
            # float32 finds the few rows near the threshold; float64 scores them
            near = matrix.near(half.astype(np.float32), floor - _MARGIN)
            before_ids = [matrix.ids[row] for row in near]
            before = matrix.rows(near).astype(np.float64) @ exact.T
        return cls(ids, exact @ exact.T, next_same, first, before_ids, before)

    def candidates(self, column: int, floor: float) -> dict[str, float]:
        """Earlier memories scoring at least `floor` with this column's: those before the
        batch (unless stored again earlier in it: the newer vector counts), then those
        earlier in the batch (each by its latest vector before this column)."""
        out = {}
        for row in np.flatnonzero(self.before[:, column] >= floor):
            other = self.before_ids[row]
            if self.first.get(other, column) >= column:
                out[other] = float(self.before[row, column])
        earlier = (self.within[column, :column] >= floor) & (self.next_same[:column] >= column)
        for col in np.flatnonzero(earlier):
            out[self.ids[col]] = float(self.within[column, col])
        return out


class LinkerActor:
    name = "linker"
    upstream = EXTRACTED_STREAM
    output = LINKED_STREAM

    def __init__(self, settings: LinkerSettings | None = None, lookups: Lookups | None = None):
        self.settings = settings or LinkerSettings()
        self.lookups = lookups
        self.restored = False
        self._spaces: dict[str, _Namespace] = {}

    def observe(self, batch: Sequence[Opened]) -> None:
        self._step(batch, emit=False)

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        return self._step(batch, emit=True)

    def _step(self, batch: Sequence[Opened], *, emit: bool) -> list[Derived]:
        events = [e for e in batch if isinstance(e.payload, MemoryExtracted) and e.record.memory_id]
        vectors = self._vectors(events)
        similar = self._prepare(events, vectors) if emit else {}
        out = []
        for i, event in enumerate(events):
            r = event.record
            assert isinstance(event.payload, MemoryExtracted) and r.memory_id is not None
            vector = vectors.get(i)
            space = self._space(r.namespace, vector)
            if emit:
                near = self._nearest(similar.get(i), r.memory_id)
                linked = self._link(space, r.memory_id, event.payload, near)
                out.append(Derived(MEMORY_LINKED, r.namespace, r.memory_id, linked, r.position))
            self._remember(space, r.memory_id, event.payload, vector)
        return out

    def _vectors(self, events: Sequence[Opened]) -> dict[int, np.ndarray]:
        """Each event's embedding (by index in the batch), from the embedder's stream."""
        if self.lookups is None or self.settings.similar_k == 0:
            return {}
        at = {e.record.causation.position: i for i, e in enumerate(events) if e.record.causation}
        out = {}
        for position, embedded in self.lookups.embedded(list(at)).items():
            if embedded is not None and isinstance(embedded.payload, MemoryEmbedded):
                out[at[position]] = embedded.payload.array()
        return out

    def _prepare(
        self, events: Sequence[Opened], vectors: dict[int, np.ndarray]
    ) -> dict[int, tuple[_Group, int]]:
        """Each event with a vector: its group (namespace and dimension) and column."""
        grouped: dict[tuple[str, int], list[int]] = {}
        for i in sorted(vectors):
            grouped.setdefault((events[i].record.namespace, len(vectors[i])), []).append(i)
        out = {}
        floor = self.settings.similar_threshold - 1e-5
        for (namespace, _), indexes in grouped.items():
            space = self._spaces.get(namespace)
            group = _Group.of(
                [str(events[i].record.memory_id) for i in indexes],
                np.stack([vectors[i] for i in indexes]),
                None if space is None else space.matrix,
                floor,
            )
            out.update({i: (group, column) for column, i in enumerate(indexes)})
        return out

    def _nearest(self, at: tuple[_Group, int] | None, memory_id: str) -> list[tuple[str, float]]:
        """The memory's nearest earlier memories at or above the threshold, best first, with
        scores rounded to 1e-5."""
        if at is None or self.settings.similar_k == 0:
            return []
        threshold = self.settings.similar_threshold
        candidates = at[0].candidates(at[1], threshold - 1e-5)
        candidates.pop(memory_id, None)
        ranked = sorted(
            ((other, round(score, 5)) for other, score in candidates.items()),
            key=lambda pair: (-pair[1], pair[0]),
        )
        return [p for p in ranked if p[1] >= threshold][: self.settings.similar_k]

    def _space(self, namespace: str, vector: np.ndarray | None) -> _Namespace:
        space = self._spaces.get(namespace)
        if space is None:
            dim = 0 if vector is None else len(vector)
            space = self._spaces[namespace] = _Namespace(dim, self.settings.entity_fanout)
        if space.dim == 0 and vector is not None:
            space.dim = len(vector)
        return space

    def _link(
        self,
        space: _Namespace,
        memory_id: str,
        found: MemoryExtracted,
        near: list[tuple[str, float]],
    ) -> MemoryLinked:
        edges: dict[tuple[str, str], Edge] = {}
        speaker = (found.speaker or "").casefold()
        for entity in found.entities:
            if entity.type == "date" or entity.key == speaker:
                continue
            for other in space.mentions.get(entity.key, ()):
                if other != memory_id and (other, "entity") not in edges:
                    edges[(other, "entity")] = Edge(
                        target=other, kind="entity", weight=1.0, via=entity.key
                    )
        facts = _facts(found)
        for other, score in near:
            known = space.simhashes.get(other)
            distance = 64 if known is None else hamming(found.simhash, known)
            theirs = space.facts.get(other)
            edges[(other, "similar")] = Edge(
                target=other,
                kind="similar",
                weight=score,
                hamming=distance,
                same_facts=None if theirs is None else theirs == facts,
            )
        if found.claim is not None:
            typed = _typed_edge(found.claim, space.claims.get(_claim_key(found.claim)))
            if typed is not None and typed.target != memory_id:
                edges[(typed.target, typed.kind)] = typed
        return MemoryLinked(mentions=[e.key for e in found.entities], edges=list(edges.values()))

    def _remember(
        self, space: _Namespace, memory_id: str, found: MemoryExtracted, vector: np.ndarray | None
    ) -> None:
        for entity in found.entities:
            recent = space.mentions.setdefault(entity.key, deque(maxlen=space.fanout or 1))
            if memory_id not in recent:
                recent.append(memory_id)
        if found.claim is not None:
            space.claims[_claim_key(found.claim)] = _Claim(
                memory_id, found.claim.value, found.claim.negated
            )
        space.simhashes[memory_id] = found.simhash
        space.facts[memory_id] = _facts(found)
        if vector is not None and space.dim == len(vector):
            space.vectors().put(memory_id, vector)


def _facts(found: MemoryExtracted) -> int:
    """A digest of the entities and resolved times a memory names and the stance its facts
    take (negation, numbers, opposites: see `stance`). Stable across processes, so the Ray
    and inline runners derive the same edges."""
    parts = sorted(
        {f"e:{e.key}" for e in found.entities}
        | {f"t:{t.start}:{t.end}" for t in found.times}
        | {f"s:{mark}" for mark in stance(" ".join(found.facts))}
    )
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _claim_key(claim: ClaimPart) -> tuple[str, str]:
    return (claim.subject, claim.attribute)


def _typed_edge(claim: ClaimPart, before: _Claim | None) -> Edge | None:
    if before is None:
        return None
    kind: EdgeKind
    if claim.value == before.value:
        kind = "contradicts" if claim.negated != before.negated else "extends"
    else:
        kind = "updates" if claim.single_valued and not claim.negated else "extends"
    return Edge(target=before.memory_id, kind=kind, weight=1.0, via=claim.attribute)
