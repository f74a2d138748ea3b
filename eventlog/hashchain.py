"""The SHA-256 chain that makes each stream tamper-evident.

Each event's hash covers every envelope field, the payload bytes (ciphertext, so erasing a key
leaves the chain intact) and the previous event's hash. The encoding is length-prefixed and in
a fixed field order, so no two different events encode alike.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import NamedTuple

_DOMAIN = b"mnemoflow/event/v1\x00"
_NONE = struct.pack(">I", 0xFFFFFFFF)


def _text(value: str | None) -> bytes:
    if value is None:
        return _NONE
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


# Kinds, namespaces, actors, streams and key ids repeat from event to event: encoded once.
_label = functools.lru_cache(maxsize=4096)(_text)


def _int(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + struct.pack(">q", value)


class HashInput(NamedTuple):
    """The hashed fields of one event, as primitive values (timestamps in microseconds)."""

    position: int
    event_id: str
    kind: str
    schema_version: int
    namespace: str
    memory_id: str | None
    recorded_at_us: int
    occurred_at_us: int | None
    actor: str
    causation_stream: str | None
    causation_position: int | None
    key_id: str | None
    payload: bytes


def event_hash(prev_hash: bytes, fields: HashInput) -> bytes:
    parts = [
        _DOMAIN,
        prev_hash,
        struct.pack(">qh", fields.position, fields.schema_version),
        _text(fields.event_id),
        _label(fields.kind),
        _label(fields.namespace),
        _text(fields.memory_id),
        _label(fields.actor),
        _int(fields.recorded_at_us),
        _int(fields.occurred_at_us),
        _label(fields.causation_stream),
        _int(fields.causation_position),
        _label(fields.key_id),
        struct.pack(">Q", len(fields.payload)),
        fields.payload,
    ]
    return hashlib.sha256(b"".join(parts)).digest()


def rows_hash_inputs(cols: dict[str, list[object]]) -> list[HashInput]:
    """Hash inputs for every row of a batch, from :func:`eventlog.schema.batch_columns`."""
    n = len(cols["position"])
    return [
        HashInput(
            position=cols["position"][i],  # type: ignore[arg-type]
            event_id=cols["event_id"][i],  # type: ignore[arg-type]
            kind=cols["kind"][i],  # type: ignore[arg-type]
            schema_version=cols["schema_version"][i],  # type: ignore[arg-type]
            namespace=cols["namespace"][i],  # type: ignore[arg-type]
            memory_id=cols["memory_id"][i],  # type: ignore[arg-type]
            recorded_at_us=cols["recorded_at"][i],  # type: ignore[arg-type]
            occurred_at_us=cols["occurred_at"][i],  # type: ignore[arg-type]
            actor=cols["actor"][i],  # type: ignore[arg-type]
            causation_stream=cols["causation_stream"][i],  # type: ignore[arg-type]
            causation_position=cols["causation_position"][i],  # type: ignore[arg-type]
            key_id=cols["key_id"][i],  # type: ignore[arg-type]
            payload=cols["payload"][i],  # type: ignore[arg-type]
        )
        for i in range(n)
    ]
