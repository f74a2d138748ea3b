"""Request and response bodies of the HTTP API: pydantic at the edge, so the OpenAPI
document says exactly what each route takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StoreIn(_In):
    text: str = Field(description="the memory, UTF-8, at most [log] max_text_bytes")
    namespace: str = Field(description="whose memory: a user, an agent, a project")
    metadata: dict[str, Scalar] | None = Field(None, description="flat: string keys, scalars")
    occurred_at: datetime | None = Field(None, description="when it happened (default: now)")
    event_id: str | None = Field(
        None,
        description="idempotency key: stored once. The log keeps an HMAC of it under the"
        " namespace's key (the receipt's event_id), never the key as given",
    )

    model_config = ConfigDict(extra="forbid", strict=False)  # ISO strings for datetimes


class StoreManyIn(_In):
    items: list[StoreIn] = Field(min_length=1, max_length=1000)


class UpdateIn(_In):
    memory_id: str
    text: str
    metadata: dict[str, Scalar] | None = None
    occurred_at: datetime | None = None
    event_id: str | None = None

    model_config = ConfigDict(extra="forbid", strict=False)


class ForgetIn(_In):
    memory_id: str
    reason: str | None = None
    event_id: str | None = None


class FeedbackIn(_In):
    memory_id: str
    useful: bool = Field(description="did the recalled memory help")
    note: str | None = None
    event_id: str | None = None


class RecallIn(_In):
    query: str
    namespace: str
    k: int = Field(10, ge=1, description="how many, up to [query] max_k")
    min_position: int | None = Field(None, ge=0, description="wait until this write is seen")
    as_of: int | str | None = Field(None, description="an input position or ISO 8601 time")
    filters: dict[str, Scalar] | None = Field(None, description="metadata values, or category")
    now: datetime | None = Field(
        None,
        strict=False,  # an ISO 8601 string
        description="when the question is asked, with the asker's UTC offset: 'yesterday' is "
        "read on that clock (default: the server's clock)",
    )


class EraseIn(_In):
    namespace: str


class EpisodeStartIn(_In):
    task: str = Field(description="what the agent set out to do")
    namespace: str
    domain: str | None = None
    language: str | None = None
    tags: list[str] = Field([], max_length=50)
    occurred_at: datetime | None = None
    event_id: str | None = Field(None, description="idempotency key, as for /store")

    model_config = ConfigDict(extra="forbid", strict=False)


class EpisodeStepIn(_In):
    tool: str
    action: str
    error: str | None = Field(None, description="set: the step failed, with this message")
    latency_ms: float | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    observation: str | None = None
    occurred_at: datetime | None = None
    event_id: str | None = None

    model_config = ConfigDict(extra="forbid", strict=False)


class EpisodeStepsIn(_In):
    steps: list[EpisodeStepIn] = Field(min_length=1, max_length=1000)


class EpisodeCompleteIn(_In):
    success: bool
    score: float | None = Field(None, ge=0, le=1, description="default: from the steps")
    result: str | None = None
    error: str | None = None
    occurred_at: datetime | None = None
    event_id: str | None = None

    model_config = ConfigDict(extra="forbid", strict=False)


class GuardAddIn(_In):
    text: str = Field(description="the rule, in words (matched by its words and meaning)")
    namespace: str
    action: Literal["warn", "block"] = "warn"
    pattern: str | None = Field(None, description="a regular expression the action may match")
    event_id: str | None = None


class GuardRemoveIn(_In):
    rule_id: str = Field(description="a rule's id, or a learned warning's (learned:...)")
    namespace: str
    reason: str | None = None


class GuardCheckIn(_In):
    action: str = Field(description="what the agent is about to do")
    namespace: str


class ContextIn(_In):
    task: str
    namespace: str
    domain: str | None = None
    tags: list[str] = []
    k: int = Field(5, ge=1)


class ImportIn(_In):
    rows: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, description="rows of a mnemoflow.export, in order"
    )
    ns_map: dict[str, str] = Field({}, description="old namespace name -> new")
    lines: list[int] = Field([], description="each row's line in its file, named in errors")


class RederiveIn(_In):
    actor: Literal["embedder", "extractor"] = "embedder"
    model: str | None = Field(None, description="embedder: the new ONNX model, PACKAGE:PATH")
    tokenizer: str | None = Field(None, description="embedder: its tokenizer.json")
    model_id: str | None = Field(None, description="embedder: the new vectors' model id")
    llm_model: str | None = Field(None, description="extractor: the LLM's model")
    llm_base_url: str | None = Field(None, description="extractor: its endpoint")
    drop_old: bool = Field(False, description="remove replaced generations after the switch")


class ImportOut(BaseModel):
    rows: int
    added: int
    present: int = Field(description="rows this log already held (imported before)")
    seconds: float


class Mem0AddIn(_In):
    """mem0-style: `user_id` is the namespace."""

    user_id: str
    text: str
    metadata: dict[str, Scalar] | None = None


class Mem0SearchIn(_In):
    user_id: str
    query: str
    limit: int = Field(10, ge=1)


class ReceiptOut(BaseModel):
    stream: str
    position: int
    event_id: str
    memory_id: str | None
    recorded_at: str


class HitOut(BaseModel):
    memory_id: str
    text: str | None
    score: float
    channels: dict[str, float]
    metadata: dict[str, Any]
    occurred_at: str | None
    status: str
    namespace: str
    category: str | None
    zone: str | None
    provenance: list[dict[str, Any]]


class RowOut(BaseModel):
    memory_id: str
    namespace: str
    text: str | None = Field(description="None once its namespace was erased")
    status: str = Field(description="active, forgotten, merged or erased")
    version: int = Field(description="1, then one more per update")
    occurred_at: str | None = Field(description="when it happened, in its writer's UTC offset")
    recorded_at: str = Field(description="when the log took it (UTC)")
    created_position: int = Field(description="the input position of its store")
    text_position: int = Field(description="the input position that set its text")
    metadata: dict[str, Any]


class CausationOut(BaseModel):
    stream: str
    position: int


class EventOut(BaseModel):
    stream: str
    position: int
    event_id: str
    kind: str
    namespace: str
    memory_id: str | None
    recorded_at: str
    occurred_at: str | None
    actor: str
    causation: CausationOut | None
    hash: str
    prev_hash: str
    erased: bool
    payload: dict[str, Any] | None


class StreamCheck(BaseModel):
    ok: bool
    checked: int
    lost: list[tuple[int, int, str]] = Field(
        default_factory=list,
        description="positions the stream's signed head once held and the log no longer does "
        "(first, last, why): recorded when the log was opened after damage or a cut",
    )


class ReportOut(BaseModel):
    ok: bool
    checked: int
    first_bad_position: int | None
    stream: str | None
    segment: str | None
    reason: str | None
    streams: dict[str, StreamCheck]


class ErrorOut(BaseModel):
    error: str = Field(description="the kind of error, e.g. ValidationError")
    detail: str = Field(description="what was wrong, in words")


class Mem0Result(BaseModel):
    id: str
    memory: str | None
    score: float
    metadata: dict[str, Any]


class Mem0SearchOut(BaseModel):
    results: list[Mem0Result]


class HealthOut(BaseModel):
    status: str
    input_position: int = Field(description="the log's last input position")
    projected_position: int = Field(description="the last input position folded into DuckDB")
    ready: bool = Field(description="recall sees every acknowledged write (extracted, embedded)")
