"""Recompute a stream's hash chain and name the first place it breaks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import pyarrow as pa

from mnemoflow.eventlog.hashchain import event_hash, rows_hash_inputs
from mnemoflow.eventlog.heads import HEAD_FILE, Head, Lost
from mnemoflow.eventlog.schema import ELIDED_HASH, GENESIS_HASH, batch_columns


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_chunks` for one stream (or, combined, for a whole log)."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    stream: str | None = None
    segment: str | None = None
    reason: str | None = None
    lost: tuple[Lost, ...] = ()  # positions the signed head says were cut, and why


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of events as stored: a readable batch, or the reason it could not be read."""

    segment: str
    first_position: int
    batch: pa.RecordBatch | pa.Table | None
    error: str | None = None


class RowCheck(NamedTuple):
    """How far a batch chains on: its first `good` rows do, ending on hash `prev`; `reason`
    says why the row after them does not (None when every row does)."""

    good: int
    prev: bytes
    reason: str | None


def check_rows(
    batch: pa.RecordBatch | pa.Table, prev: bytes, position: int, *, first_in_stream: bool
) -> RowCheck:
    """Check a batch's rows against the chain: full Arrow validation (a damaged batch can
    parse and still hold offsets that point anywhere), then each row's position, previous
    hash and own hash, recomputed from its content. `prev` and `position` are what the first
    row must chain on from."""
    try:
        batch.validate(full=True)
    except pa.ArrowException as exc:
        return RowCheck(0, prev, f"the batch is not valid Arrow: {exc}")
    cols = batch_columns(batch)
    good = 0
    for fields, stored_prev, stored_hash in zip(
        rows_hash_inputs(cols), cols["prev_hash"], cols["hash"], strict=True
    ):
        expected = position + good
        if fields.position != expected:
            return RowCheck(good, prev, f"position {fields.position} where {expected} was expected")
        # The stored previous hash only repeats the chain (the hash below is recomputed from
        # the previous row's): sealed segments elide it past the stream's first row.
        elided = stored_prev == ELIDED_HASH and not (first_in_stream and good == 0)
        if stored_prev != prev and not elided:
            return RowCheck(good, prev, "previous hash does not match")
        if event_hash(prev, fields) != stored_hash:
            return RowCheck(good, prev, "hash does not match the content")
        prev = stored_hash
        good += 1
    return RowCheck(good, prev, None)


def verify_chunks(
    stream: str, chunks: Iterable[Chunk], head: Head | None = None, *, anchored: bool = False
) -> VerifyReport:
    """Recompute the chain; with `head` (read before the chunks: it never leads the log),
    also check that the chain reaches it and holds its hash there. `anchored`: the log signs
    its heads, so a stream with events but no head has lost it."""
    expected_position = 1
    prev = GENESIS_HASH
    checked = 0
    at_head: bytes | None = None
    for chunk in chunks:
        if chunk.batch is None:
            why = chunk.error or "unreadable"
            return VerifyReport(False, checked, chunk.first_position, stream, chunk.segment, why)
        good, prev, reason = check_rows(
            chunk.batch, prev, expected_position, first_in_stream=checked == 0
        )
        if head is not None and expected_position <= head.position < expected_position + good:
            at_head = chunk.batch.column("hash")[head.position - expected_position].as_py()
        checked += good
        expected_position += good
        if reason is not None:
            return VerifyReport(False, checked, expected_position, stream, chunk.segment, reason)
    if head is None:
        if anchored and checked:
            return VerifyReport(
                False, checked, None, stream, HEAD_FILE, "its signed head is missing"
            )
        return VerifyReport(True, checked, stream=stream)

    def bad(position: int | None, reason: str) -> VerifyReport:
        return VerifyReport(False, checked, position, stream, HEAD_FILE, reason, head.lost)

    if not head.valid:
        return bad(None, "its head's signature does not verify (forged, damaged or another key)")
    if head.position > checked:
        return bad(
            checked + 1,
            f"the log ends at position {checked}, before its signed head at "
            f"{head.position}: events {checked + 1}-{head.position} were cut",
        )
    if head.position and at_head != head.hash:
        return bad(
            head.position,
            f"position {head.position}'s hash differs from the signed head: rewritten",
        )
    return VerifyReport(True, checked, stream=stream, lost=head.lost)
