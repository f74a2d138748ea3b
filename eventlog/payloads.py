"""Payload models: what each kind of event says, validated at the boundary by pydantic.

Later streams register their kinds here with :func:`register_payload`.
"""

from __future__ import annotations

import json
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
    """A memory's vectors (float32, little-endian) and the model that made them.

    `vector` embeds the memory's own text (with its date), as float32; `context_vector`, when
    present, embeds it together with `context_text`, the conversational context it was stored
    in (the memory just before it in the namespace, `context_memory_id`), as float16 (it only
    ranks candidates, and half the bytes keeps a memory within its disk budget). Stored as a
    small JSON header followed by the raw vectors: vectors are most of the log's bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, ser_json_bytes="base64")

    model_id: str
    vector: bytes
    context_vector: bytes = b""
    context_text: str | None = None
    context_memory_id: str | None = None

    @classmethod
    def of(
        cls,
        model_id: str,
        vector: npt.NDArray[np.float32],
        context_vector: npt.NDArray[np.float32] | None = None,
        context_text: str | None = None,
        context_memory_id: str | None = None,
    ) -> MemoryEmbedded:
        return cls(
            model_id=model_id,
            vector=np.ascontiguousarray(vector, "<f4").tobytes(),
            context_vector=b""
            if context_vector is None
            else np.ascontiguousarray(context_vector, "<f2").tobytes(),
            context_text=context_text,
            context_memory_id=context_memory_id,
        )

    def array(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.vector, dtype="<f4")

    def context_array(self) -> npt.NDArray[np.float32] | None:
        if not self.context_vector:
            return None
        return np.frombuffer(self.context_vector, dtype="<f2").astype(np.float32)

    def encode(self) -> bytes:
        header = json.dumps(
            {
                "model_id": self.model_id,
                "context_text": self.context_text,
                "context_memory_id": self.context_memory_id,
                "split": len(self.vector),
            }
        ).encode()
        return struct.pack("<I", len(header)) + header + self.vector + self.context_vector

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        (n,) = struct.unpack_from("<I", raw)
        header = json.loads(raw[4 : 4 + n])
        body = raw[4 + n :]
        split = int(header.pop("split"))
        return cls(vector=bytes(body[:split]), context_vector=bytes(body[split:]), **header)


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
