"""The consolidator: decides, from the linker's edges, what is a duplicate and what is stale.

- duplicate: a `similar` edge at or above `duplicate_cosine` whose SimHashes differ in at most
  `duplicate_hamming` bits, between memories naming the same entities and times and taking
  the same stance (no negation, number or opposite apart) — the newer memory is merged into
  the older (recall shows the older once, with both in its provenance);
- supersedes: an `updates` or `contradicts` edge — the newer memory supersedes the older, which
  goes to the archive (still found when nothing active answers). Such an edge wins over a
  `similar` one to the same memory: a denial is never merged as a repeat.

Every decision is a `memory.consolidated` event naming the events it was made from. It keeps
no state: each decision is a function of one linked event.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.follower import Derived, Opened
from mnemoflow.eventlog.derived import Edge, Input, MemoryConsolidated, MemoryLinked
from mnemoflow.eventlog.schema import CONSOLIDATED_STREAM, LINKED_STREAM, MEMORY_CONSOLIDATED


class ConsolidatorSettings(BaseModel):
    """The ``[consolidator]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    duplicate_cosine: float = Field(0.97, ge=0, le=1)
    duplicate_hamming: int = Field(6, ge=0, le=64)
    supersede: bool = True


class ConsolidatorActor:
    name = "consolidator"
    upstream = LINKED_STREAM
    output = CONSOLIDATED_STREAM

    def __init__(self, settings: ConsolidatorSettings | None = None) -> None:
        self.settings = settings or ConsolidatorSettings()

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        out = []
        for event in batch:
            r, linked = event.record, event.payload
            if not isinstance(linked, MemoryLinked) or r.memory_id is None:
                continue
            inputs = [Input(stream=LINKED_STREAM, position=r.position)]
            if r.causation is not None:
                inputs.append(Input(stream=r.causation.stream, position=r.causation.position))
            for decision in self._decide(linked.edges, inputs):
                out.append(
                    Derived(MEMORY_CONSOLIDATED, r.namespace, r.memory_id, decision, r.position)
                )
        return out

    def _decide(self, edges: Sequence[Edge], inputs: list[Input]) -> list[MemoryConsolidated]:
        s = self.settings
        opposed = {e.target for e in edges if e.kind in ("updates", "contradicts")}
        duplicates = [
            e
            for e in edges
            if e.kind == "similar"
            and e.target not in opposed  # what it updates or denies: superseded, not merged
            and e.weight >= s.duplicate_cosine
            and e.hamming is not None
            and e.hamming <= s.duplicate_hamming
            and e.same_facts is not False  # another date or name: another fact
        ]
        if duplicates:
            best = max(duplicates, key=lambda e: (e.weight, e.target))
            return [
                MemoryConsolidated(
                    decision="duplicate",
                    target=best.target,
                    reason=f"near-duplicate: cosine {best.weight:.3f}, "
                    f"SimHash distance {best.hamming}",
                    inputs=inputs,
                    cosine=best.weight,
                    hamming=best.hamming,
                )
            ]
        if not s.supersede:
            return []
        return [
            MemoryConsolidated(
                decision="supersedes",
                target=e.target,
                reason=f"{e.kind} {e.via or 'the same attribute'}",
                inputs=inputs,
            )
            for e in edges
            if e.kind in ("updates", "contradicts")
        ]
