"""Payload models: what each kind of event says, validated at the boundary by pydantic.

Later streams register their kinds here with :func:`register_payload`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from eventlog.schema import (
    FEEDBACK_RECORDED,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    SUBJECT_ERASED,
)

MetadataValue = StrictStr | StrictInt | StrictFloat | StrictBool | None
Metadata = dict[str, MetadataValue]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class MemoryStored(Payload):
    text: str
    metadata: Metadata = {}


class MemoryUpdated(Payload):
    text: str
    metadata: Metadata | None = None  # None keeps the previous metadata


class MemoryForgotten(Payload):
    reason: str | None = None


class FeedbackRecorded(Payload):
    useful: bool
    note: str | None = None


class SubjectErased(Payload):
    namespace: str
    key_ids: list[str]


_REGISTRY: dict[str, tuple[type[Payload], bool]] = {}


def register_payload(kind: str, model: type[Payload], *, encrypted: bool = True) -> None:
    """Declare the payload model of a kind, and whether its content is the subject's."""
    _REGISTRY[kind] = (model, encrypted)


def payload_model(kind: str) -> tuple[type[Payload], bool]:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"no payload model registered for kind {kind!r}") from None


register_payload(MEMORY_STORED, MemoryStored)
register_payload(MEMORY_UPDATED, MemoryUpdated)
register_payload(MEMORY_FORGOTTEN, MemoryForgotten)
register_payload(FEEDBACK_RECORDED, FeedbackRecorded)
register_payload(SUBJECT_ERASED, SubjectErased, encrypted=False)
