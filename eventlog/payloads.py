"""Payload models: what each kind of event says, validated at the boundary by pydantic.

Later streams register their kinds here with :func:`register_payload`.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Literal, Self, overload

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from mnemoflow.eventlog.schema import (
    FEEDBACK_RECORDED,
    MEMORY_EMBEDDED,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    SUBJECT_ERASED,
    TASK_EMBEDDED,
)

MetadataValue = StrictStr | StrictInt | StrictFloat | StrictBool | None
Metadata = dict[str, MetadataValue]


# A zlib stream starts with 0x78 ("x"), a JSON object with "{": the first byte tells them apart.
_ZLIB = b"x"
_DEFLATE_FROM = 128  # bytes of JSON; shorter payloads gain nothing


class Payload(BaseModel):
    """What an event says. Stored as JSON, deflated (zlib) when that is smaller: sealed
    payloads cannot be compressed after encryption, and the linker's edges or the extractor's
    entities repeat their keys (a `memory.linked` payload: ~980 bytes of JSON, ~290 deflated).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    # Kinds stored in clear for anyone to read (an erasure's record) stay plain JSON.
    deflate: ClassVar[bool] = True

    # Fields left out of the stored JSON while None (added later: events without them read
    # the same, and the bytes of events that do not use them stay as they were).
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    def _left_out(self) -> set[str] | None:
        return {f for f in self.omitted_when_none if getattr(self, f) is None} or None

    def to_json(self) -> dict[str, object]:
        """What the event says, as JSON values: the fields `encode` stores."""
        return self.model_dump(mode="json", exclude=self._left_out())

    def encode(self) -> bytes:
        """The bytes the log stores (before sealing): JSON unless a kind says otherwise."""
        raw = self.model_dump_json(exclude=self._left_out()).encode()
        if self.deflate and len(raw) >= _DEFLATE_FROM:
            packed = zlib.compress(raw, 6)
            if len(packed) < len(raw):
                return packed
        return raw

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        return cls.model_validate_json(_inflated(raw))

    @classmethod
    def stored_fields(cls, raw: bytes) -> dict[str, Any]:
        """The stored bytes as a dict of fields, unvalidated: what an upcaster rewrites."""
        doc = json.loads(_inflated(raw))
        if not isinstance(doc, dict):
            raise ValueError("payload is not a JSON object")
        return doc


def _inflated(raw: bytes) -> bytes:
    if raw[:1] == _ZLIB:
        try:
            return zlib.decompress(raw)
        except zlib.error as exc:
            raise ValueError(f"payload is not a whole zlib stream: {exc}") from exc
    return raw


# The writer's offset from UTC in minutes, when the time they gave carried one other than
# UTC: date words in the text ("yesterday") and the day it is indexed under are read on the
# writer's clock, not UTC's. None: UTC.
UtcOffset = Field(None, ge=-1439, le=1439)


class MemoryStored(Payload):
    text: str
    metadata: Metadata = {}
    utc_offset: StrictInt | None = UtcOffset

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"utc_offset"})


class MemoryUpdated(Payload):
    text: str
    metadata: Metadata | None = None  # None keeps the previous metadata
    utc_offset: StrictInt | None = UtcOffset

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"utc_offset"})


def local_now() -> datetime:
    """This process's clock, with its zone's UTC offset: "today" and "yesterday" said without
    a time (a store, a question) are the writer's or asker's days, not the UTC day."""
    return datetime.now().astimezone()


def utc_offset_of(moment: datetime | None) -> int | None:
    """The offset a given time carries, in minutes (None: naive, or UTC)."""
    offset = None if moment is None else moment.utcoffset()
    if not offset:
        return None
    return int(offset.total_seconds() // 60)


@overload
def writer_time(moment: datetime, payload: object) -> datetime: ...
@overload
def writer_time(moment: None, payload: object) -> None: ...
def writer_time(moment: datetime | None, payload: object) -> datetime | None:
    """An event's time on its writer's clock: in the UTC offset its text payload keeps."""
    return on_clock(moment, getattr(payload, "utc_offset", None))


@overload
def on_clock(moment: datetime, utc_offset: int | None) -> datetime: ...
@overload
def on_clock(moment: None, utc_offset: int | None) -> None: ...
def on_clock(moment: datetime | None, utc_offset: int | None) -> datetime | None:
    """The same instant on a clock `utc_offset` minutes from UTC (None: as it is)."""
    if moment is None or utc_offset is None:
        return moment
    return moment.astimezone(timezone(timedelta(minutes=utc_offset)))


class MemoryForgotten(Payload):
    reason: str | None = None


class FeedbackRecorded(Payload):
    useful: bool
    note: str | None = None


class SubjectErased(Payload):
    deflate: ClassVar[bool] = False

    namespace: str
    key_ids: list[str]


VectorDtype = Literal["i1", "<f2", "<f4"]


def _pack(vector: npt.NDArray[np.float32], dtype: VectorDtype) -> bytes:
    if dtype != "i1":
        return bytes(np.ascontiguousarray(vector, dtype).data)
    peak = float(np.abs(vector).max(initial=0.0))
    scale = peak / 127 if peak > 0 else 1.0
    codes = np.clip(np.rint(np.asarray(vector, np.float32) / scale), -127, 127).astype(np.int8)
    return struct.pack("<f", scale) + bytes(codes.data)


def _unpack(raw: bytes, dtype: VectorDtype) -> npt.NDArray[np.float32]:
    if dtype != "i1":
        return np.frombuffer(raw, dtype=dtype).astype(np.float32)
    if len(raw) < 4:
        raise ValueError("an int8 vector needs its 4-byte scale")
    (scale,) = struct.unpack_from("<f", raw)
    vector: npt.NDArray[np.float32] = np.frombuffer(raw, np.int8, offset=4).astype(np.float32)
    return vector * np.float32(scale)


def unpack_rows(raws: Sequence[bytes], dtypes: Sequence[VectorDtype]) -> npt.NDArray[np.float32]:
    """Packed vectors as the rows of one matrix, exactly as `_unpack` gives each: all at
    once when they share a dtype and a length (a fold's batch, one model), else one by one."""
    if len(set(dtypes)) != 1 or len({len(r) for r in raws}) != 1:
        return np.stack([_unpack(r, d) for r, d in zip(raws, dtypes, strict=True)])
    dtype, width = dtypes[0], len(raws[0])
    if dtype != "i1":
        return np.frombuffer(b"".join(raws), dtype).reshape(len(raws), -1).astype(np.float32)
    if width < 4:
        raise ValueError("an int8 vector needs its 4-byte scale")
    rows = np.frombuffer(b"".join(raws), np.uint8).reshape(len(raws), width)
    scales = rows[:, :4].copy().view("<f4")  # one (n, 1) column of each row's scale
    matrix: npt.NDArray[np.float32] = rows[:, 4:].view(np.int8).astype(np.float32) * scales
    return matrix


class MemoryEmbedded(Payload):
    """A memory's vectors and the model that made them.

    `vector` embeds the memory's own text (with its date); `context_vector`, when present,
    embeds it together with `context_text`, the conversational context it was stored in (the
    memory just before it in the namespace, `context_memory_id`).

    Vectors are most of the log's bytes, and the text they embed is in the log too, so they
    are kept small: `vector_dtype` "i1" is int8 codes after a float32 scale (the vector's
    largest component / 127), per vector: a cosine between unit vectors moves by ~3e-4 on
    average and ~2e-3 at most (LoCoMo dev recall@10 0.763 -> 0.759, within the noise of tie
    order). "<f2" is half floats (events written before int8); "<f4" a float32 own
    vector with a half-float context vector (the oldest events).

    Stored as a small JSON header, deflated when that is smaller, followed by the raw vectors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, ser_json_bytes="base64")

    model_id: str
    vector: bytes
    context_vector: bytes = b""
    context_text: str | None = None
    context_memory_id: str | None = None
    vector_dtype: VectorDtype = "<f4"

    @classmethod
    def of(
        cls,
        model_id: str,
        vector: npt.NDArray[np.float32],
        context_vector: npt.NDArray[np.float32] | None = None,
        context_text: str | None = None,
        context_memory_id: str | None = None,
        dtype: Literal["i1", "<f2"] = "i1",
    ) -> MemoryEmbedded:
        return cls(
            model_id=model_id,
            vector=_pack(vector, dtype),
            context_vector=b"" if context_vector is None else _pack(context_vector, dtype),
            context_text=context_text,
            context_memory_id=context_memory_id,
            vector_dtype=dtype,
        )

    def array(self) -> npt.NDArray[np.float32]:
        return _unpack(self.vector, self.vector_dtype)

    def context_array(self) -> npt.NDArray[np.float32] | None:
        if not self.context_vector:
            return None
        return _unpack(self.context_vector, self.context_dtype)

    @property
    def context_dtype(self) -> VectorDtype:
        return "<f2" if self.vector_dtype == "<f4" else self.vector_dtype

    def encode(self) -> bytes:
        header = json.dumps(
            {
                "model_id": self.model_id,
                "context_text": self.context_text,
                "context_memory_id": self.context_memory_id,
                "split": len(self.vector),
                "vector_dtype": self.vector_dtype,
            },
            separators=(",", ":"),
        ).encode()
        packed = zlib.compress(header, 6)
        if len(packed) < len(header):
            header = packed
        return struct.pack("<I", len(header)) + header + self.vector + self.context_vector

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        return cls(**cls.stored_fields(raw))

    @classmethod
    def stored_fields(cls, raw: bytes) -> dict[str, Any]:
        (n,) = struct.unpack_from("<I", raw)
        header_bytes = raw[4 : 4 + n]
        if header_bytes[:1] == _ZLIB:
            try:
                header_bytes = zlib.decompress(header_bytes)
            except zlib.error as exc:
                raise ValueError(f"embedding header is not a whole zlib stream: {exc}") from exc
        header = json.loads(header_bytes)
        body = raw[4 + n :]
        split = int(header.pop("split"))
        fields: dict[str, Any] = header
        return fields | {"vector": bytes(body[:split]), "context_vector": bytes(body[split:])}


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Kind:
    model: type[Payload]
    encrypted: bool
    version: int
    upcasters: Mapping[int, Upcaster]  # from version v to v + 1, for v below `version`


_REGISTRY: dict[str, _Kind] = {}


def register_payload(
    kind: str,
    model: type[Payload],
    *,
    encrypted: bool = True,
    version: int = 1,
    upcasters: Mapping[int, Upcaster] | None = None,
) -> None:
    """Declare the payload model of a kind, whether its content is the subject's, and its
    schema version: every event records the version it was written in, and an event of an
    older version is read through the upcasters (`upcasters[v]` rewrites version v's stored
    fields as version v + 1's), so a log written by an older mnemoflow opens with a newer."""
    steps = dict(upcasters or {})
    if version < 1 or set(steps) != set(range(1, version)):
        raise ValueError(f"{kind} version {version} needs upcasters from 1 to {version - 1}")
    _REGISTRY[kind] = _Kind(model, encrypted, version, steps)


def payload_model(kind: str) -> tuple[type[Payload], bool]:
    try:
        entry = _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"no payload model registered for kind {kind!r}") from None
    return entry.model, entry.encrypted


def payload_version(kind: str) -> int:
    """The version events of this kind are written in now (1 for a kind not registered)."""
    entry = _REGISTRY.get(kind)
    return 1 if entry is None else entry.version


def decode_payload(kind: str, version: int, raw: bytes) -> Payload:
    """A stored payload of `kind` written in schema `version`, as today's model: through the
    upcasters if it is older; a ValueError if it is newer than this code reads."""
    model, _ = payload_model(kind)
    current = _REGISTRY[kind]
    if version == current.version:
        return model.decode(raw)
    if not 1 <= version < current.version:
        raise ValueError(
            f"{kind} schema version {version}: this mnemoflow reads 1 to {current.version}"
        )
    fields = model.stored_fields(raw)
    for step in range(version, current.version):
        fields = current.upcasters[step](fields)
    return model.model_validate(fields)


register_payload(MEMORY_STORED, MemoryStored)
register_payload(MEMORY_UPDATED, MemoryUpdated)
register_payload(MEMORY_FORGOTTEN, MemoryForgotten)
register_payload(FEEDBACK_RECORDED, FeedbackRecorded)
register_payload(SUBJECT_ERASED, SubjectErased, encrypted=False)
register_payload(MEMORY_EMBEDDED, MemoryEmbedded)
register_payload(TASK_EMBEDDED, MemoryEmbedded)
