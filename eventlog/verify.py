"""Recompute a stream's hash chain and name the first place it breaks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from eventlog.hashchain import event_hash, rows_hash_inputs
from eventlog.schema import GENESIS_HASH, batch_columns
from eventlog.segments import ELIDED_HASH


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_chunks` for one stream (or, combined, for a whole log)."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    stream: str | None = None
    segment: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of events as stored: a readable batch, or the reason it could not be read."""

    segment: str
    first_position: int
    batch: pa.RecordBatch | pa.Table | None
    error: str | None = None


def verify_chunks(stream: str, chunks: Iterable[Chunk]) -> VerifyReport:
    expected_position = 1
    prev = GENESIS_HASH
    checked = 0

    def bad(position: int, segment: str, reason: str) -> VerifyReport:
        return VerifyReport(False, checked, position, stream, segment, reason)

    for chunk in chunks:
        if chunk.batch is None:
            return bad(chunk.first_position, chunk.segment, chunk.error or "unreadable")
        cols = batch_columns(chunk.batch)
        for fields, stored_prev, stored_hash in zip(
            rows_hash_inputs(cols), cols["prev_hash"], cols["hash"], strict=True
        ):
            if fields.position != expected_position:
                return bad(
                    expected_position,
                    chunk.segment,
                    f"position {fields.position} where {expected_position} was expected",
                )
            # The stored previous hash only repeats the chain (the hash below is recomputed
            # from the previous row's): sealed segments elide it past their first row.
            if stored_prev != prev and not (stored_prev == ELIDED_HASH and checked):
                return bad(fields.position, chunk.segment, "previous hash does not match")
            if event_hash(prev, fields) != stored_hash:
                return bad(fields.position, chunk.segment, "hash does not match the content")
            prev = stored_hash
            expected_position += 1
            checked += 1
    return VerifyReport(True, checked, stream=stream)
