"""The input stream's vocabulary: store, update, forget, feedback and erase.

Every call validates everything first and appends nothing when any rule is broken. A memory's
namespace and status are read from its own events, so there is no state here to lose.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.errors import (
    MemoryGone,
    MemoryIdTaken,
    MemoryNotFound,
    NamespaceNotFound,
    ValidationError,
)
from mnemoflow.eventlog.locks import ReadWriteLock
from mnemoflow.eventlog.log import EventLog, EventView
from mnemoflow.eventlog.payloads import (
    FeedbackRecorded,
    MemoryForgotten,
    MemoryStored,
    MemoryUpdated,
    Metadata,
    Payload,
    SubjectErased,
    local_now,
    utc_offset_of,
)
from mnemoflow.eventlog.schema import (
    FEEDBACK_RECORDED,
    INPUT_STREAM,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    SUBJECT_ERASED,
    Draft,
    Receipt,
    Record,
    receipt_of,
)

Status = Literal["active", "forgotten", "erased"]


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One memory to store; `store_many` takes a batch of them."""

    text: str | bytes
    namespace: str
    metadata: Metadata | None = None
    occurred_at: datetime | str | None = None
    # An idempotency key: storing it again returns the first receipt. The log keeps it
    # keyed (see `InputLog.keyed_event_id`), never as given.
    event_id: str | None = None
    # The memory's id, when the caller must keep one it already has (an import); it may not
    # be in use by another event of this log. None: a new random id.
    memory_id: str | None = None


def new_ids(n: int) -> list[str]:
    """n ids of 128 random bits as 32 hex digits each (the shape of a uuid4 hex, without the
    object), from one read of the system's randomness."""
    digits = secrets.token_hex(16 * n)
    return [digits[i : i + 32] for i in range(0, 32 * n, 32)]


def new_id() -> str:
    return new_ids(1)[0]


class InputLog:
    def __init__(self, log: EventLog, *, actor: str = "api") -> None:
        self._log = log
        self._actor = actor
        self._mutate = threading.Lock()  # check-then-append of changes to existing memories
        # Stores seal and append under it shared, an erasure alone: a store sealed with a key
        # the erasure then destroys would be acknowledged after `subject.erased`, unreadable.
        self._erasing = ReadWriteLock()

    @property
    def stream(self) -> str:
        return INPUT_STREAM

    @property
    def last_position(self) -> int:
        return self._log.input.last_position

    @property
    def log(self) -> EventLog:
        return self._log

    # -- store ---------------------------------------------------------------------------

    def store(
        self,
        text: str | bytes,
        namespace: str,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        return self.store_many([StoreRequest(text, namespace, metadata, occurred_at, event_id)])[0]

    def store_many(self, requests: Sequence[StoreRequest]) -> list[Receipt]:
        """Store a batch with one durable write; all rows are checked before any is appended."""
        if len(requests) > self._log.settings.max_batch_events:
            raise ValidationError(
                f"{len(requests)} events in one call, over {self._log.settings.max_batch_events}"
            )
        now = local_now()  # without a time, a memory is of now on the writer's clock
        ids = new_ids(2 * len(requests))  # an event id and a memory id each
        chosen_ids = [check.memory_id(r.memory_id) for r in requests if r.memory_id is not None]
        if len(set(chosen_ids)) < len(chosen_ids):
            raise ValidationError("a memory id is chosen twice in one batch")
        checked = [
            (
                check.namespace(r.namespace),
                MemoryStored(
                    text=check.text(r.text, self._log.settings),
                    metadata=check.metadata(r.metadata, self._log.settings),
                    utc_offset=utc_offset_of(check.occurred_at(r.occurred_at) or now),
                ),
                check.occurred_at(r.occurred_at) or now,
                None if r.event_id is None else check.event_id(r.event_id),
            )
            for r in requests
        ]
        # Chosen ids are checked free and taken under `_mutate`, as changes are.
        choosing = self._mutate if chosen_ids else contextlib.nullcontext()
        with choosing, self._erasing.reading(), self._log.keyring.pinned():
            known: dict[str, str] = {}
            for name, *_ in checked:
                if name not in known:
                    known[name] = cast(str, self._log.keyring.namespace_id(name, create=True))
            drafts = [
                self._draft(
                    MEMORY_STORED,
                    known[ns],
                    r.memory_id or ids[2 * i + 1],
                    payload,
                    ids[2 * i] if chosen is None else self.keyed_event_id(known[ns], chosen),
                    occurred,
                )
                for i, (r, (ns, payload, occurred, chosen)) in enumerate(
                    zip(requests, checked, strict=True)
                )
            ]
            if chosen_ids:
                self._check_free([d for d in drafts if d.memory_id in set(chosen_ids)])
            return self._log.input.append(drafts)

    def _check_free(self, drafts: Sequence[Draft]) -> None:
        """Each draft's chosen memory id is new to this log, unless the draft itself is
        already there (a retried import: the log records it once)."""
        there = self._log.input.get_many([d.event_id for d in drafts])
        for draft in drafts:
            if draft.event_id in there:
                continue
            assert draft.memory_id is not None
            if next(iter(self._log.input.read(memory_id=draft.memory_id)), None) is not None:
                raise MemoryIdTaken(f"memory id {draft.memory_id} is already used in this log")

    # -- changes to an existing memory ---------------------------------------------------

    def update(
        self,
        memory_id: str,
        text: str | bytes,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
        *,
        namespace: str | None = None,
    ) -> Receipt:
        """`namespace`: refuse unless the memory is in the namespace of this name (each
        change takes it: an import names the namespace a row belongs to)."""
        when = check.occurred_at(occurred_at)
        payload = MemoryUpdated(
            text=check.text(text, self._log.settings),
            metadata=None if metadata is None else check.metadata(metadata, self._log.settings),
            utc_offset=utc_offset_of(when),
        )
        # Without a new time the memory keeps its own (and its writer's clock): new words
        # about the same moment.
        return self._change(
            MEMORY_UPDATED, memory_id, payload, event_id, when, namespace, keep_time=True
        )

    def forget(
        self,
        memory_id: str,
        reason: str | None = None,
        event_id: str | None = None,
        *,
        occurred_at: datetime | str | None = None,
        namespace: str | None = None,
    ) -> Receipt:
        """`occurred_at`: when it was forgotten, if not now (an import carries the time)."""
        if reason is not None and not isinstance(reason, str):
            raise ValidationError("reason must be a string")
        payload = MemoryForgotten(reason=reason)
        when = check.occurred_at(occurred_at)
        return self._change(MEMORY_FORGOTTEN, memory_id, payload, event_id, when, namespace)

    def feedback(
        self,
        memory_id: str,
        useful: bool,
        note: str | None = None,
        event_id: str | None = None,
        *,
        occurred_at: datetime | str | None = None,
        namespace: str | None = None,
    ) -> Receipt:
        """`occurred_at`: when it was given, if not now (an import carries the time)."""
        if not isinstance(useful, bool):
            raise ValidationError(f"useful must be true or false, got {useful!r}")
        if note is not None:
            note = check.text(note, self._log.settings)
        payload = FeedbackRecorded(useful=useful, note=note)
        when = check.occurred_at(occurred_at)
        return self._change(FEEDBACK_RECORDED, memory_id, payload, event_id, when, namespace)

    def _change(
        self,
        kind: str,
        memory_id: str,
        payload: Payload | Callable[[list[Record]], Payload],
        event_id: str | None,
        occurred_at: datetime | None = None,
        expected: str | None = None,
        *,
        keep_time: bool = False,
        subject: str = MEMORY_STORED,
    ) -> Receipt:
        """`keep_time`: with no `occurred_at`, the memory's last text event's time, not now.
        `expected`: the name of the namespace the memory must be in. `subject`: the kind the
        subject's first event must be (a memory's store, an episode's start). `payload` may be
        made from the subject's records, under the lock that orders changes (it raises to
        refuse)."""
        check.memory_id(memory_id)
        chosen = None if event_id is None else check.event_id(event_id)
        if expected is not None:
            check.namespace(expected)
        with self._mutate:
            records = self._records(memory_id)
            namespace, status = self._status(records)
            if expected is not None and namespace != self._log.keyring.namespace_id(expected):
                raise ValidationError(f"memory {memory_id} is not in namespace {expected!r}")
            event_id = new_id()
            if chosen is not None and status != "erased":
                # A retried call with the caller's event id gets its first receipt back, even
                # if the memory has changed since (a retried forget must not fail as
                # "forgotten"). Erased, the key that made the id is gone: erasure wins.
                event_id = self.keyed_event_id(namespace, chosen)
                if (known := self._log.input.get(event_id)) is not None:
                    return receipt_of(INPUT_STREAM, known)
            if status != "active":
                raise MemoryGone(f"memory {memory_id} is {status}; it cannot change")
            if records[0].kind != subject:
                what = records[0].kind.split(".")[0]
                raise ValidationError(f"{memory_id} is an {what}, not what this changes")
            if callable(payload):
                payload = payload(records)
            if occurred_at is None and keep_time:
                texts = [r for r in records if r.kind in (MEMORY_STORED, MEMORY_UPDATED)]
                if texts:
                    occurred_at = texts[-1].occurred_at
                    offset = getattr(self._log.open_payload(texts[-1]), "utc_offset", None)
                    payload = payload.model_copy(update={"utc_offset": offset})
            draft = self._draft(
                kind, namespace, memory_id, payload, event_id, occurred_at or datetime.now(UTC)
            )
            return self._log.input.append([draft])[0]

    def change(
        self,
        kind: str,
        subject_id: str,
        make: Callable[[list[Record]], Payload],
        event_id: str | None,
        occurred_at: datetime | str | None,
        *,
        subject: str,
        namespace: str | None = None,
    ) -> Receipt:
        """Append an event about an existing subject of another kind than a memory (an
        episode's step): checked and made as `update` is, from the subject's records.
        `namespace`: the name of the namespace it must be in."""
        when = check.occurred_at(occurred_at)
        return self._change(kind, subject_id, make, event_id, when, namespace, subject=subject)

    def change_many(
        self,
        kind: str,
        subject_id: str,
        make: Callable[[list[Record]], list[Payload]],
        event_ids: Sequence[str | None],
        occurred_at: Sequence[datetime | str | None],
        *,
        subject: str,
        namespace: str | None = None,
    ) -> list[Receipt]:
        """`change` for a batch of events about one subject, appended with one durable write.
        A batch whose every event id the log already holds returns their receipts."""
        check.memory_id(subject_id)
        if len(event_ids) > self._log.settings.max_batch_events:
            raise ValidationError(
                f"{len(event_ids)} events in one call, over {self._log.settings.max_batch_events}"
            )
        chosen = [None if e is None else check.event_id(e) for e in event_ids]
        times = [check.occurred_at(t) for t in occurred_at]
        if namespace is not None:
            check.namespace(namespace)
        with self._mutate:
            records = self._records(subject_id)
            owner, status = self._status(records)
            if namespace is not None and owner != self._log.keyring.namespace_id(namespace):
                raise ValidationError(f"{subject_id} is not in namespace {namespace!r}")
            if status != "erased" and chosen and all(c is not None for c in chosen):
                keyed = [self.keyed_event_id(owner, c) for c in chosen if c is not None]
                known = self._log.input.get_many(keyed)
                if len(known) == len(keyed):  # a retried batch
                    return [receipt_of(INPUT_STREAM, known[e]) for e in keyed]
            if status != "active":
                raise MemoryGone(f"{subject_id} is {status}; it cannot change")
            if records[0].kind != subject:
                what = records[0].kind.split(".")[0]
                raise ValidationError(f"{subject_id} is an {what}, not what this changes")
            payloads = make(records)
            now = datetime.now(UTC)
            drafts = [
                self._draft(
                    kind,
                    owner,
                    subject_id,
                    payload,
                    new_id() if c is None else self.keyed_event_id(owner, c),
                    when or now,
                )
                for payload, c, when in zip(payloads, chosen, times, strict=True)
            ]
            return self._log.input.append(drafts)

    def begin(
        self,
        kind: str,
        namespace: str,
        payload: Payload,
        occurred_at: datetime | str | None,
        event_id: str | None,
        subject_id: str | None = None,
    ) -> Receipt:
        """Append the first event of a new subject other than a memory (an episode's start):
        a new id, or `subject_id` when the caller must keep one (an import: it may not be in
        use), in the namespace (made if it is new); idempotent by `event_id`."""
        name = check.namespace(namespace)
        when = check.occurred_at(occurred_at) or local_now()
        chosen = None if event_id is None else check.event_id(event_id)
        kept = None if subject_id is None else check.memory_id(subject_id)
        choosing = self._mutate if kept else contextlib.nullcontext()
        with choosing, self._erasing.reading(), self._log.keyring.pinned():
            namespace_id = cast(str, self._log.keyring.namespace_id(name, create=True))
            fresh_event, fresh_id = new_ids(2)
            event = fresh_event if chosen is None else self.keyed_event_id(namespace_id, chosen)
            draft = self._draft(kind, namespace_id, kept or fresh_id, payload, event, when)
            if kept:
                self._check_free([draft])
            return self._log.input.append([draft])[0]

    def keyed_event_id(self, namespace: str, chosen: str) -> str:
        """The id the log keeps for an event id a caller chose: an HMAC of it under the
        namespace's key, so it is the same on every retry while the namespace lives, and says
        nothing once it is erased (a caller's id may name a file, a chat or a person)."""
        return "id:" + self._log.keyring.keyed_digest(namespace, chosen)

    # -- erasure -------------------------------------------------------------------------

    def erase(self, name: str) -> Receipt:
        """Destroy the namespace's keys and forget its name, then record it (by the
        namespace's id). Its name is not kept, so a second erase finds no such namespace."""
        check.namespace(name)
        with self._mutate, self._erasing.writing():
            namespace = self._log.keyring.namespace_id(name)
            if namespace is None:
                raise NamespaceNotFound(f"no namespace {name!r} in this log")
            self._log.keyring.destroy(name)
            receipts = self.log_pending_erasures()
            mine = [r for ns, r in receipts if ns == namespace]
            if mine:
                return mine[-1]
            erased = list(self._log.input.read(kind=SUBJECT_ERASED, namespace=namespace))
            if not erased:
                raise NamespaceNotFound(f"namespace {name!r} holds nothing to erase")
            return receipt_of(INPUT_STREAM, erased[-1])

    def log_pending_erasures(self) -> list[tuple[str, Receipt]]:
        """Append the subject.erased events of keys destroyed but not yet logged (crash repair)."""
        by_namespace: dict[str, list[str]] = {}
        for destroyed in self._log.keyring.unlogged():
            by_namespace.setdefault(destroyed.namespace, []).append(destroyed.key_id)
        out: list[tuple[str, Receipt]] = []
        for namespace, key_ids in by_namespace.items():
            payload = SubjectErased(namespace=namespace, key_ids=sorted(key_ids))
            event_id = "erase:" + max(key_ids, key=lambda k: int(k.rsplit("#", 1)[1]))
            draft = self._draft(SUBJECT_ERASED, namespace, None, payload, event_id, None)
            out.append((namespace, self._log.input.append([draft])[0]))
            self._log.keyring.mark_logged(key_ids)
        return out

    # -- reading -------------------------------------------------------------------------

    def namespaces(self) -> set[str]:
        """The names of the namespaces (an erased one's name is gone)."""
        return self._log.keyring.names()

    def namespace_id(self, name: str) -> str | None:
        """The id the named namespace's events carry (None: no such namespace)."""
        return self._log.keyring.namespace_id(check.namespace(name))

    def history(self, memory_id: str) -> list[EventView]:
        """The memory's events, oldest first, payloads opened (or marked erased)."""
        check.memory_id(memory_id)
        views = [self._log.view(INPUT_STREAM, r) for r in self._log.input.read(memory_id=memory_id)]
        if not views:
            raise MemoryNotFound(f"no memory {memory_id!r} in this log")
        return views

    def events(self, event_ids: Sequence[str]) -> dict[str, Record]:
        """The records of those of the event ids (as the log keeps them) the input holds."""
        return self._log.input.get_many(event_ids)

    def state(self, memory_id: str) -> tuple[str, Status]:
        return self._status(self._records(memory_id))

    def _records(self, memory_id: str) -> list[Record]:
        records = list(self._log.input.read(memory_id=memory_id))
        if not records:
            raise MemoryNotFound(f"no memory {memory_id!r} in this log")
        return records

    def _status(self, records: list[Record]) -> tuple[str, Status]:
        first = records[0]
        if first.key_id is not None and self._log.keyring.is_destroyed(first.key_id):
            return first.namespace, "erased"
        if any(r.kind == MEMORY_FORGOTTEN for r in records):
            return first.namespace, "forgotten"
        return first.namespace, "active"

    def _draft(
        self,
        kind: str,
        namespace: str,
        memory_id: str | None,
        payload: Payload,
        event_id: str,
        occurred_at: datetime | None,
    ) -> Draft:
        key_id, sealed = self._log.seal(kind, namespace, event_id, payload)
        return Draft(
            event_id=event_id,
            kind=kind,
            namespace=namespace,
            payload=sealed,
            actor=self._actor,
            memory_id=memory_id,
            occurred_at=occurred_at,
            key_id=key_id,
        )
