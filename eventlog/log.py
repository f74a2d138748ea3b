"""The event log: a directory of streams, the keyring that seals their payloads, one writer.

Layout under the log directory::

    LOCK                 held (flock) by the one process that writes
    keyring.json         per-namespace data keys, mode 0600
    keyring.lock         flock: derived appends (shared) against key destruction (exclusive)
    streams/<name>/      one ArrowStream per stream: input, and later the derived ones
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

from mnemoflow.eventlog.errors import LogError, StorageError, ValidationError
from mnemoflow.eventlog.generations import read_layout, stream_directory
from mnemoflow.eventlog.heads import load_key
from mnemoflow.eventlog.held import HeldDict
from mnemoflow.eventlog.keyring import Keyring
from mnemoflow.eventlog.locks import WriterLock
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import Payload, decode_payload, payload_model, payload_version
from mnemoflow.eventlog.schema import INPUT_STREAM, Causation, Record
from mnemoflow.eventlog.settings import LogSettings
from mnemoflow.eventlog.stream import ArrowStream
from mnemoflow.eventlog.verify import VerifyReport
from mnemoflow.eventlog.writer import utc_now

STREAM_NAME_RE = re.compile(r"[a-z0-9._-]{1,64}")
# What a kept payload is kept by: kind, namespace, event id, key id, the stored bytes.
_KeptKey = tuple[str, str, str, str | None, bytes]


@dataclass(frozen=True, slots=True)
class EventView:
    """An event with its payload opened: what `history`, `log` and audits show."""

    stream: str
    position: int
    event_id: str
    kind: str
    namespace: str
    memory_id: str | None
    recorded_at: datetime
    occurred_at: datetime | None
    actor: str
    causation: Causation | None
    hash: str
    prev_hash: str
    erased: bool
    payload: dict[str, Any] | None

    @property
    def text(self) -> str | None:
        return None if self.payload is None else self.payload.get("text")

    @property
    def metadata(self) -> dict[str, Any] | None:
        return None if self.payload is None else self.payload.get("metadata")

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "position": self.position,
            "event_id": self.event_id,
            "kind": self.kind,
            "namespace": self.namespace,
            "memory_id": self.memory_id,
            "recorded_at": self.recorded_at.isoformat(),
            "occurred_at": None if self.occurred_at is None else self.occurred_at.isoformat(),
            "actor": self.actor,
            "causation": (
                None
                if self.causation is None
                else {"stream": self.causation.stream, "position": self.causation.position}
            ),
            "hash": self.hash,
            "prev_hash": self.prev_hash,
            "erased": self.erased,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class LogReport:
    """`verify` over every stream: ok only if each stream's chain is whole."""

    ok: bool
    checked: int
    first_bad_position: int | None
    stream: str | None
    segment: str | None
    reason: str | None
    streams: tuple[VerifyReport, ...]


def _aad(namespace: str, event_id: str, kind: str) -> bytes:
    return f"{namespace}\x00{event_id}\x00{kind}".encode()


class EventLog:
    def __init__(
        self,
        directory: Path,
        settings: LogSettings | None = None,
        *,
        writable: bool = True,
        writes: Collection[str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        generations: Mapping[str, int] | None = None,
    ) -> None:
        """`writable`: this process owns the log (its lock and keyring) and writes the input.
        `writes`: the streams this process may append to; by default all of them if
        writable, none if not. A deriving actor in another process opens the log with
        writable=False and writes={its output stream}. `generations`: which generation of
        each derived stream to open (default: the current ones, see eventlog.generations)."""
        self.directory = directory
        self.layout = read_layout(directory)
        self.generations = dict(self.layout.streams if generations is None else generations)
        self.settings = settings or LogSettings()
        self.writable = writable
        self.writes = None if writes is None else frozenset(writes)
        self._clock = clock
        self._streams: dict[str, ArrowStream] = {}
        self._streams_lock = threading.Lock()
        if writable:
            try:
                (directory / "streams").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the log directory {directory}: {exc}") from exc
            self._writer_lock: WriterLock | None = WriterLock(
                directory / "LOCK", f"the log at {directory}"
            )
        else:
            self._writer_lock = None
        self.keyring = Keyring(directory / "keyring.json")
        # Signs each stream's head; made by the first process that writes (see eventlog.heads).
        self._heads_key = load_key(directory, create=writable or bool(self.writes))
        # Payloads kept while `remembering` blocks run, by what opening them depends on.
        self._kept: HeldDict[_KeptKey, Payload] = HeldDict()

    # -- streams -------------------------------------------------------------------------

    def stream(self, name: str) -> ArrowStream:
        with self._streams_lock:  # two first callers must not open two writers on one stream
            return self._stream(name)

    def _stream(self, name: str) -> ArrowStream:
        stream = self._streams.get(name)
        if stream is None:
            if STREAM_NAME_RE.fullmatch(name) is None:
                raise ValidationError(f"not a stream name: {name!r}")
            directory = stream_directory(self.directory, name, self.generations.get(name, 1))
            stream = ArrowStream(
                directory,
                segment_bytes=self.settings.segment_bytes,
                writable=self.may_write(name),
                clock=self._clock,
                heads_key=self._heads_key,
            )
            self._streams[name] = stream
        return stream

    def use_generations(self, generations: Mapping[str, int]) -> None:
        """Read each derived stream from the generation given from now on (a service whose
        re-derivation has switched): a stream whose generation changes is closed here, and
        opened from its new directory on its next use."""
        with self._streams_lock:
            for name, stream in list(self._streams.items()):
                if generations.get(name, 1) != self.generations.get(name, 1):
                    if self.may_write(name):
                        raise LogError(f"stream {name!r} is written here: it cannot switch")
                    stream.close()
                    del self._streams[name]
            self.generations = dict(generations)
            self.layout = read_layout(self.directory)

    def may_write(self, name: str) -> bool:
        return self.writable if self.writes is None else name in self.writes

    @property
    def input(self) -> ArrowStream:
        return self.stream(INPUT_STREAM)

    def stream_names(self) -> list[str]:
        root = self.directory / "streams"
        names = {p.name for p in root.iterdir() if p.is_dir()} if root.exists() else set()
        return sorted(names | set(self._streams) | set(self.generations))

    # -- payloads ------------------------------------------------------------------------

    def seal(
        self,
        kind: str,
        namespace: str,
        event_id: str,
        payload: Payload,
        *,
        key_id: str | None = None,
    ) -> tuple[str | None, bytes]:
        """The payload as stored: (key id, ciphertext), or (None, bytes) for clear kinds.

        Derived events pass the key of the event they came from, so that erasing a namespace
        also makes what was derived from it unreadable; that key may already be destroyed,
        and then KeyErased is raised and nothing may be stored.
        """
        model, encrypted = payload_model(kind)
        if not isinstance(payload, model):
            raise ValidationError(f"{kind} takes a {model.__name__} payload")
        raw = payload.encode()
        if encrypted:
            key_id = key_id or self.keyring.key_for(namespace)
            sealed = self.keyring.seal(key_id, raw, _aad(namespace, event_id, kind))
        else:
            key_id, sealed = None, raw
        if self._kept.items is not None:  # what is appended now is opened next: keep it
            self._keep((kind, namespace, event_id, key_id, sealed), payload)
        return key_id, sealed

    # One sync's actors and projections open each event two to four times (the extractor,
    # the decay actor and the projection read each memory; the linker and the projection
    # each vector). Kept for a `remembering` block, a second opening is a lookup instead of
    # AES-GCM, zlib, JSON and validation again (~5-20 us an event). 8,192 embedded, linked
    # and extracted events kept take ~15 MiB (tracemalloc), given back when the block ends.
    KEEP = 8192

    def remembering(self) -> AbstractContextManager[None]:
        """While the block runs, payloads opened or sealed here are kept (the last `KEEP`) and
        opening the same event again returns what was kept. They are kept by all that opening
        them depends on (kind, namespace, event id, key id and the stored bytes), and one
        whose key has since been destroyed opens as None, as it would from the log. Blocks
        may nest and overlap across threads; what was kept goes when the last one ends."""
        return self._kept.held()

    def open_payload(self, record: Record) -> Payload | None:
        """The record's payload, decrypted and validated; None when its key was destroyed."""
        kept = self._kept.items
        if kept is None:
            return self._open(record)
        key = (record.kind, record.namespace, record.event_id, record.key_id, record.payload)
        payload = kept.get(key)
        if payload is not None:
            if record.key_id is not None and self.keyring.is_destroyed(record.key_id):
                return None
            return payload
        payload = self._open(record)
        if payload is not None:
            self._keep(key, payload)
        return payload

    def _keep(self, key: _KeptKey, payload: Payload) -> None:
        with self._kept.lock:
            kept = self._kept.items
            if kept is None:  # the block ended meanwhile
                return
            if len(kept) >= self.KEEP:
                del kept[next(iter(kept))]
            kept[key] = payload

    def _open(self, record: Record) -> Payload | None:
        if record.schema_version > (reads := payload_version(record.kind)):
            raise LogError(
                f"event at position {record.position} ({record.kind}) is schema version "
                f"{record.schema_version}, newer than this mnemoflow reads ({reads}): upgrade it"
            )
        raw: bytes | None = record.payload
        if record.key_id is not None:
            aad = _aad(record.namespace, record.event_id, record.kind)
            raw = self.keyring.open(record.key_id, record.payload, aad)
        if raw is None:
            return None
        try:
            return decode_payload(record.kind, record.schema_version, raw)
        except (KeyError, ValueError, pydantic.ValidationError) as exc:
            raise LogError(
                f"event at position {record.position} ({record.kind}) has a malformed payload"
            ) from exc

    def namespace_name(self, namespace_id: str) -> str:
        """The name behind an event's namespace id, or the id itself once the name is gone
        (erased) or for the pipeline's own events."""
        return self.keyring.name_of(namespace_id) or namespace_id

    def opened(self, records: Iterable[Record]) -> list[Opened]:
        return [Opened(r, self.open_payload(r)) for r in records]

    def view(self, stream: str, record: Record) -> EventView:
        payload = self.open_payload(record)
        return EventView(
            stream=stream,
            position=record.position,
            event_id=record.event_id,
            kind=record.kind,
            namespace=self.namespace_name(record.namespace),
            memory_id=record.memory_id,
            recorded_at=record.recorded_at,
            occurred_at=record.occurred_at,
            actor=record.actor,
            causation=record.causation,
            hash=record.hash.hex(),
            prev_hash=record.prev_hash.hex(),
            erased=payload is None,
            payload=None if payload is None else payload.to_json(),
        )

    # -- integrity -----------------------------------------------------------------------

    def verify(self) -> LogReport:
        reports = tuple(self.stream(name).verify() for name in self.stream_names())
        bad = next((r for r in reports if not r.ok), None)
        return LogReport(
            ok=bad is None,
            checked=sum(r.checked for r in reports),
            first_bad_position=bad.first_bad_position if bad else None,
            stream=bad.stream if bad else None,
            segment=bad.segment if bad else None,
            reason=bad.reason if bad else None,
            streams=reports,
        )

    def heads(self) -> dict[str, dict[str, Any]]:
        """Each stream's signed head, to be kept elsewhere (`mnemo verify --heads`)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.stream_names():
            head = self.stream(name).signed_head()
            if head is not None and head.valid:
                out[name] = {"position": head.position, "hash": head.hash.hex()}
        return out

    def check_anchor(self, heads: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """How the log differs from heads kept before (`heads()`): each must still be in the
        log, with its hash. Whoever rewrites the data directory can re-sign its own heads,
        not a copy kept elsewhere. Empty: nothing differs."""
        problems: list[str] = []
        names = set(self.stream_names())
        for name, head in sorted(heads.items()):
            try:
                position, digest = int(head["position"]), bytes.fromhex(str(head["hash"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValidationError(f"not a head for stream {name!r}: {exc}") from exc
            if position == 0:
                continue
            found = self.stream(name).hash_at(position) if name in names else None
            if found is None:
                problems.append(f"stream {name}: position {position} is gone (events were cut)")
            elif found != digest:
                problems.append(f"stream {name}: position {position}'s hash differs (rewritten)")
        return problems

    def drop_cached_tables(self) -> None:
        """Every open stream's decompressed sealed segments (see `ArrowStream`)."""
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.drop_cached_tables()

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
        self.keyring.close()
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
