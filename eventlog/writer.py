"""The single writer of a stream: places events in the chain and group-commits them.

Appenders enqueue their drafts; when no commit is under way, one of them leads the next:
it takes everything queued so far and commits it in one batch with one fsync, while the
others wait and are woken when their drafts are durable (or have failed). A draft whose
event id the stream already holds is not placed again: its appender gets the first receipt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mnemoflow.eventlog.errors import AppendFailed, LogError, StorageError
from mnemoflow.eventlog.hashchain import HashInput, event_hash
from mnemoflow.eventlog.payloads import payload_version
from mnemoflow.eventlog.schema import Draft, Receipt, Record, receipt_of, to_micros, utc

FindRecords = Callable[[Sequence[str]], dict[str, Record]]
Persist = Callable[[list[Record]], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Request:
    drafts: Sequence[Draft]
    receipts: list[Receipt] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class ChainWriter:
    """Positions, hashes and durably commits drafts; safe to call from many threads."""

    def __init__(
        self,
        stream: str,
        *,
        tail_position: int,
        tail_hash: bytes,
        tail_recorded_at: datetime | None,
        find: FindRecords,
        persist: Persist,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._stream = stream
        self._position = tail_position
        self._hash = tail_hash
        self._last_recorded = tail_recorded_at
        self._find = find
        self._persist = persist
        self._clock = clock
        self._queue: list[_Request] = []
        self._turn = threading.Condition()  # guards the queue and who is leading a commit
        self._leading = False
        self.commits = 0  # how many durable writes served the appends so far

    @property
    def position(self) -> int:
        return self._position

    @property
    def last_hash(self) -> bytes:
        return self._hash

    def follow(self, tail: Record) -> None:
        """For a reader following another process's writer: the stream now ends at `tail`."""
        with self._turn:
            self._position, self._hash, self._last_recorded = (
                tail.position,
                tail.hash,
                tail.recorded_at,
            )

    def append(self, drafts: Sequence[Draft]) -> list[Receipt]:
        if not drafts:
            return []
        request = _Request(drafts)
        with self._turn:
            self._queue.append(request)
            # Wait until our drafts are committed, or until no commit is under way, in which
            # case we lead one for everything queued so far (ours included).
            while not request.done and self._leading:
                self._turn.wait()
            if not request.done:
                batch, self._queue = self._queue, []
                self._leading = True
        if not request.done:
            try:
                self._commit(batch)
            finally:
                with self._turn:
                    self._leading = False
                    self._turn.notify_all()
        if request.error is not None:
            raise request.error
        return request.receipts

    def _commit(self, requests: list[_Request]) -> None:
        placed: list[Record] = []
        try:
            existing = self._find([d.event_id for r in requests for d in r.drafts])
            placed = self._place(requests, existing)
            if placed:
                self._persist(placed)
                self.commits += 1
        except BaseException as exc:
            # Every appender in this group learns its events were not acknowledged; none is
            # left waiting for a commit that will not come.
            error = _append_error(exc)
            for request in requests:
                request.error, request.done = error, True
            if not isinstance(exc, Exception):
                raise
            return
        if placed:
            last = placed[-1]
            self._position, self._hash = last.position, last.hash
            self._last_recorded = last.recorded_at
        for request in requests:
            request.done = True

    def _place(self, requests: list[_Request], existing: dict[str, Record]) -> list[Record]:
        now = utc(self._clock())
        if self._last_recorded is not None and now < self._last_recorded:
            now = self._last_recorded  # recorded-at never runs backwards along the stream
        position, prev = self._position, self._hash
        now_us = to_micros(now)
        seen: dict[str, Record] = dict(existing)
        placed: list[Record] = []
        for request in requests:
            for draft in request.drafts:
                record = seen.get(draft.event_id)
                if record is None:
                    position += 1
                    record = _seal(draft, position, now, now_us, prev)
                    prev = record.hash
                    seen[draft.event_id] = record
                    placed.append(record)
                request.receipts.append(receipt_of(self._stream, record))
        return placed


def _append_error(exc: BaseException) -> BaseException:
    """What the appenders see: the log's own refusals as they are, anything else (the disk,
    a bug) as AppendFailed, so "not acknowledged" is one exception to catch."""
    if isinstance(exc, LogError) and not isinstance(exc, StorageError):
        return exc
    if isinstance(exc, AppendFailed) or not isinstance(exc, Exception):
        return exc
    return AppendFailed(f"append not acknowledged: {exc}")


def _seal(
    draft: Draft, position: int, recorded_at: datetime, recorded_at_us: int, prev: bytes
) -> Record:
    """The draft as the record at `position`, chained to `prev`. Both tuples are made by
    position, not by keyword: half the time (~0.36 against ~0.73 us), once per appended event."""
    occurred_at = None if draft.occurred_at is None else utc(draft.occurred_at)
    causation = draft.causation
    # The fields both tuples open with, in the same order.
    version = draft.schema_version or payload_version(draft.kind)
    head = (position, draft.event_id, draft.kind, version, draft.namespace)
    fields = HashInput(
        *head,
        draft.memory_id,
        recorded_at_us,
        None if occurred_at is None else to_micros(occurred_at),
        draft.actor,
        None if causation is None else causation.stream,
        None if causation is None else causation.position,
        draft.key_id,
        draft.payload,
    )
    return Record(
        *head,
        draft.memory_id,
        recorded_at,
        occurred_at,
        draft.actor,
        causation,
        draft.key_id,
        draft.payload,
        prev,
        event_hash(prev, fields),
    )
