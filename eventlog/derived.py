"""Payloads of the streams the actors derive: extracted, linked, consolidated, decay.

Each derived event is sealed with the key of the input event it came from, so erasing a
subject makes what was derived from its words unreadable too. Times are microseconds since
the Unix epoch (UTC), as in the envelope.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from mnemoflow.eventlog.payloads import Payload, register_payload
from mnemoflow.eventlog.schema import (
    ACTOR_PROGRESS,
    MEMORY_CONSOLIDATED,
    MEMORY_EXTRACTED,
    MEMORY_LINKED,
    MEMORY_SCHEDULED,
    PATTERN_LEARNED,
)

# The parts of a payload are pydantic dataclasses, not models: a replay decodes ~10^6 of
# them per 10^5 memories (a linked event's ~11 edges), and a slotted dataclass is built in
# half the time of a frozen model (opening 10^5 linked events: 5.2 s -> 2.5 s).
_STRICT = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True, slots=True, config=_STRICT)
class EntityMention:
    text: str
    type: str
    key: str


@dataclass(frozen=True, slots=True, config=_STRICT)
class TimeSpan:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True, config=_STRICT)
class ClaimPart:
    subject: str
    attribute: str
    value: str
    negated: bool = False
    single_valued: bool = True


class MemoryExtracted(Payload):
    """What the extractor read in a memory's text (rules, or an LLM when configured)."""

    extractor: str
    facts: list[str] = Field(default_factory=list)
    entities: list[EntityMention] = Field(default_factory=list)
    category: str = "other"
    times: list[TimeSpan] = Field(default_factory=list)
    claim: ClaimPart | None = None
    simhash: int = Field(0, ge=0, lt=2**64)
    speaker: str | None = None


EdgeKind = Literal["entity", "similar", "updates", "extends", "contradicts"]


@dataclass(frozen=True, slots=True, config=_STRICT)
class Edge:
    """A link from the event's memory to an earlier one; `via` names the shared entity or the
    claim's attribute."""

    target: str
    kind: EdgeKind
    weight: float
    via: str | None = None
    hamming: int | None = None
    # `similar` edges: whether both memories name the same entities and times (None: not
    # known, as in events written before this field). Near-identical sentences that differ
    # in a date or a name ("last June" / "last July") are two facts, not one.
    same_facts: bool | None = None


class MemoryLinked(Payload):
    mentions: list[str] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)


@dataclass(frozen=True, slots=True, config=_STRICT)
class Input:
    stream: str
    position: int


class MemoryConsolidated(Payload):
    """A decision about two memories: the event's memory duplicates `target` (merged into it),
    or supersedes it (the target goes to the archive)."""

    decision: Literal["duplicate", "supersedes"]
    target: str
    reason: str
    inputs: list[Input]
    cosine: float | None = None
    hamming: int | None = None


class MemoryScheduled(Payload):
    """FSRS state after a review (or the first one, when the memory was stored)."""

    stability: float = Field(gt=0)
    difficulty: float = Field(ge=1, le=10)
    reviewed_at: int
    reps: int = Field(ge=0)
    lapses: int = Field(ge=0)
    grade: int | None = Field(None, ge=1, le=4)


@dataclass(frozen=True, slots=True, config=_STRICT)
class Branch:
    """One way episodes went on at a decision point: the step, how many took it, and the
    share of those that succeeded."""

    step: str
    support: int
    success_rate: float


PatternKind = Literal["tool_sequence", "decision_point", "error_recovery"]


class PatternLearned(Payload):
    """A pattern in a kind of task's completed episodes, as it stands after the completion
    that caused this event (see `mnemoflow.actors.patterns`). Steps are "tool:action"."""

    pattern_id: str
    kind: PatternKind
    family: str  # the kind of task, named by its first episode's id
    task: str  # that episode's task, to show what the kind is
    domain: str | None = None
    # tool_sequence: the family's task terms, each with the share of its tasks that have it
    terms: dict[str, float] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=list)
    point: str | None = None  # decision_point: the step after which they diverge (None: first)
    branches: list[Branch] = Field(default_factory=list)
    error: str | None = None  # error_recovery: the normalised error message
    failed_step: str | None = None
    families: list[str] = Field(default_factory=list)  # error_recovery: the kinds it was met in
    support: int = Field(ge=0)
    success_rate: float = Field(ge=0, le=1)
    episodes: list[str] = Field(default_factory=list)  # the newest episodes behind it
    active: bool = True  # False: it no longer holds (logged once, when it stopped)


class ActorProgress(Payload):
    """Appended when an actor's batch ends on events it derived nothing from, so that its
    output still records how far it has read (what a restart resumes after)."""

    read_through: int


register_payload(ACTOR_PROGRESS, ActorProgress, encrypted=False)
register_payload(MEMORY_EXTRACTED, MemoryExtracted)
register_payload(MEMORY_LINKED, MemoryLinked)
register_payload(MEMORY_CONSOLIDATED, MemoryConsolidated)
register_payload(MEMORY_SCHEDULED, MemoryScheduled)
register_payload(PATTERN_LEARNED, PatternLearned)
