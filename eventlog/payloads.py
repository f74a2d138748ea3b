"""Payload models: what each kind of event says, validated at the boundary by pydantic.

Later streams register their kinds here with :func:`register_payload`.
"""

from __future__ import annotations

import struct
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from eventlog.schema import (
    FEEDBACK_RECORDED,
    MEMORY_EMBEDDED,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    SUBJECT_ERASED,
)

MetadataValue = StrictStr | StrictInt | StrictFloat | StrictBool | None
Metadata = dict[str, MetadataValue]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def encode(self) -> bytes:
        """The bytes the log stores (before sealing): JSON unless a kind says otherwise."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        return cls.model_validate_json(raw)


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


class MemoryEmbedded(Payload):
    """A memory's vector (float32, little-endian) and the model that made it.

    Stored in binary, not JSON: vectors are most of the log's bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, ser_json_bytes="base64")

    model_id: str
    vector: bytes

    @classmethod
    def of(cls, model_id: str, vector: npt.NDArray[np.float32]) -> MemoryEmbedded:
        return cls(model_id=model_id, vector=np.ascontiguousarray(vector, "<f4").tobytes())

    def array(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.vector, dtype="<f4")

    def encode(self) -> bytes:
        name = self.model_id.encode()
        return struct.pack("<H", len(name)) + name + self.vector

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        (n,) = struct.unpack_from("<H", raw)
        return cls(model_id=raw[2 : 2 + n].decode(), vector=bytes(raw[2 + n :]))


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
register_payload(MEMORY_EMBEDDED, MemoryEmbedded)
