"""The linker: edges between a memory and earlier memories of its namespace.

It follows the extracted stream and writes one `memory.linked` event per memory version:
- `entity`: the memory and the latest few earlier memories that mention the same entity
  (co-occurrence; the speaker of a conversation is left out, since every other turn has it);
- `similar`: its nearest earlier memories by cosine (a FAISS flat index per namespace) above
  a threshold, with the Hamming distance of their SimHashes for the consolidator;
- `updates` / `extends` / `contradicts`: the latest earlier memory with a claim about the same
  subject and attribute — a new value of a single-valued attribute updates it, a value that
  adds up extends it, the same value denied (or affirmed after a denial) contradicts it.

Its indexes are a fold over the extracted stream (and the vectors the embedder derived from
the same input positions), so a restarted linker rebuilds them by `observe` and carries on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from actors.extraction import hamming
from actors.follower import Derived, Lookups, Opened
from eventlog.derived import ClaimPart, Edge, EdgeKind, MemoryExtracted, MemoryLinked
from eventlog.payloads import MemoryEmbedded
from eventlog.schema import EXTRACTED_STREAM, LINKED_STREAM, MEMORY_LINKED
from projections.memstate import doc_id
from projections.vectors import FaissIndex


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


@dataclass
class _Namespace:
    """What the linker remembers of one namespace."""

    dim: int
    fanout: int
    mentions: dict[str, deque[str]] = field(default_factory=dict)
    claims: dict[tuple[str, str], _Claim] = field(default_factory=dict)
    simhashes: dict[str, int] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    index: FaissIndex | None = None

    def vectors(self) -> FaissIndex:
        if self.index is None:
            self.index = FaissIndex(self.dim)
        return self.index


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
        out = []
        for event in events:
            r = event.record
            assert isinstance(event.payload, MemoryExtracted) and r.memory_id is not None
            vector = vectors.get(r.memory_id)
            space = self._space(r.namespace, vector)
            if emit:
                linked = self._link(space, r.memory_id, event.payload, vector)
                out.append(Derived(MEMORY_LINKED, r.namespace, r.memory_id, linked, r.position))
            self._remember(space, r.memory_id, event.payload, vector)
        return out

    def _vectors(self, events: Sequence[Opened]) -> dict[str, np.ndarray]:
        if self.lookups is None or self.settings.similar_k == 0:
            return {}
        sources = {
            e.record.causation.position: e.record.memory_id
            for e in events
            if e.record.causation is not None
        }
        out = {}
        for position, embedded in self.lookups.embedded(list(sources)).items():
            memory_id = sources[position]
            if embedded is not None and isinstance(embedded.payload, MemoryEmbedded) and memory_id:
                out[memory_id] = embedded.payload.array()
        return out

    def _space(self, namespace: str, vector: np.ndarray | None) -> _Namespace:
        space = self._spaces.get(namespace)
        if space is None:
            dim = 0 if vector is None else len(vector)
            space = self._spaces[namespace] = _Namespace(dim, self.settings.entity_fanout)
        if space.dim == 0 and vector is not None:
            space.dim = len(vector)
        return space

    def _link(
        self, space: _Namespace, memory_id: str, found: MemoryExtracted, vector: np.ndarray | None
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
        if vector is not None and space.index is not None and len(space.index):
            k = self.settings.similar_k
            ids, scores = space.index.search(vector[None, :], k + 1)
            for i, score in zip(ids[0].tolist(), scores[0].tolist(), strict=True):
                near = space.ids.get(i)
                if near is None or near == memory_id or score < self.settings.similar_threshold:
                    continue
                known = space.simhashes.get(near)
                distance = 64 if known is None else hamming(found.simhash, known)
                edges[(near, "similar")] = Edge(
                    target=near, kind="similar", weight=round(score, 6), hamming=distance
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
        if vector is not None and space.dim == len(vector):
            doc = doc_id(memory_id)
            space.ids[doc] = memory_id
            space.vectors().upsert(np.array([doc], np.int64), vector[None, :])


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
