"""Integrity: verify names the first bad position and its segment."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest

from mnemoflow.eventlog import EventLog, InputLog, LogSettings
from mnemoflow.eventlog.schema import ENVELOPE_SCHEMA
from mnemoflow.eventlog.segments import (
    _END_OF_STREAM,
    _SEALED_OPTIONS,
    SEGMENT_SUFFIX,
    index_path,
    read_sealed,
)


def _filled(tmp_path: Path, n: int = 60) -> Path:
    directory = tmp_path / "log"
    with EventLog(directory, LogSettings(segment_bytes=4096)) as log:
        inputs = InputLog(log)
        for i in range(n):
            inputs.store(
                f"memory {i:04d} with some words", f"ns{i % 2}", {"i": i}, event_id=f"event-{i:04d}"
            )
    return directory


def _segments(directory: Path) -> list[Path]:
    return sorted((directory / "streams" / "input").glob(f"*{SEGMENT_SUFFIX}"))


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("field", "segment"),
    [
        ("hash", 2),  # a sealed segment: zstd keeps random bytes as they are
        ("event_id", -1),  # the active segment, not compressed
        ("hash", -1),
    ],
)
def test_flipped_byte_fails_verify_at_its_position(
    tmp_path: Path, field: str, segment: int
) -> None:
    directory = _filled(tmp_path, 62)  # the active segment holds two
    damaged = _segments(directory)[segment]
    with EventLog(directory, writable=False) as log:
        records = [r for r in log.input.read() if r.position >= int(damaged.stem)]
        target = records[1]
    needle = target.event_id.encode() if field == "event_id" else target.hash
    data = damaged.read_bytes()
    # In the active segment a hash is stored twice: as this event's hash and as the next
    # one's prev_hash, which comes first in the file; rfind lands on the event's own hash.
    offset = data.rfind(needle)
    assert offset > 0
    _flip(damaged, offset + len(needle) - 1)

    report = EventLog(directory, writable=False).verify()
    assert not report.ok
    assert report.first_bad_position == target.position
    assert report.segment == damaged.name
    assert report.stream == "input"


def test_no_flipped_byte_in_a_compressed_segment_goes_unnoticed(tmp_path: Path) -> None:
    """Sealed segments are zstd-compressed: a flipped bit anywhere in one either fails verify
    there, or falls where it changes nothing that is read (padding, unused metadata)."""
    directory = _filled(tmp_path)
    sealed = _segments(directory)[2]
    first, original = int(sealed.stem), sealed.read_bytes()
    with EventLog(directory, writable=False) as log:
        before = list(log.input.read())
    caught = 0
    for offset in range(0, len(original), 7):
        _flip(sealed, offset)
        try:
            report = EventLog(directory, writable=False).verify()
            if report.ok:
                with EventLog(directory, writable=False) as log:
                    assert list(log.input.read()) == before, f"offset {offset} changed records"
            else:
                assert report.segment == sealed.name
                assert report.first_bad_position is not None
                assert report.first_bad_position >= first
                caught += 1
        finally:
            sealed.write_bytes(original)
    assert caught > len(original) // 7 // 2  # most bytes matter


def test_sealed_segments_keep_each_hash_once_and_older_ones_still_read(tmp_path: Path) -> None:
    """A sealed segment stores zeros for every previous hash but its first row's (it is the
    row before's hash), restored on read; segments sealed before that hold them all."""
    directory = _filled(tmp_path)
    sealed = _segments(directory)[2]
    with EventLog(directory, writable=False) as log:
        before = list(log.input.read())
    for earlier, record in itertools.pairwise(before):
        assert record.prev_hash == earlier.hash
    middle = next(r for r in before if r.position == int(sealed.stem) + 1)
    assert sealed.read_bytes().count(middle.hash) == 1
    # The same rows sealed the older way, every previous hash in full.
    table = read_sealed(sealed)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ENVELOPE_SCHEMA, options=_SEALED_OPTIONS) as writer:
        writer.write_table(table)
    sealed.write_bytes(sink.getvalue().to_pybytes()[: -len(_END_OF_STREAM)])
    assert sealed.read_bytes().count(middle.hash) == 2
    assert EventLog(directory, writable=False).verify().ok
    with EventLog(directory, writable=False) as log:
        assert list(log.input.read()) == before


def test_flipped_ciphertext_byte_is_caught(tmp_path: Path) -> None:
    """The chain covers the payload bytes: a flip inside a ciphertext breaks it there."""
    directory = _filled(tmp_path)
    sealed = _segments(directory)[1]
    with EventLog(directory, writable=False) as log:
        target = next(r for r in log.input.read() if r.position == int(sealed.stem))
    data = sealed.read_bytes()
    offset = data.find(target.payload[20:40])
    assert offset > 0
    _flip(sealed, offset)
    report = EventLog(directory, writable=False).verify()
    assert (report.ok, report.first_bad_position, report.segment) == (
        False,
        target.position,
        sealed.name,
    )


def test_unparseable_segment_is_named(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    sealed = _segments(directory)[3]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2 :] = b"\x00" * (len(data) - len(data) // 2)
    sealed.write_bytes(bytes(data))
    report = EventLog(directory, writable=False).verify()
    assert not report.ok and report.segment == sealed.name
    assert report.first_bad_position is not None
    assert report.first_bad_position >= int(sealed.stem)


def test_intact_log_verifies(tmp_path: Path) -> None:
    directory = _filled(tmp_path)
    report = EventLog(directory, writable=False).verify()
    assert report.ok and report.checked == 60 and report.first_bad_position is None


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_missing_or_garbled_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    """Sidecar indexes are derived: a lost one is rebuilt from its segment on open."""
    directory = _filled(tmp_path)
    idx = index_path(_segments(directory)[1])
    if damage == "delete":
        idx.unlink()
    else:
        idx.write_bytes(b"not an index")
    with EventLog(directory, LogSettings(segment_bytes=4096)) as log:
        ns0, ns1 = log.keyring.namespace_id("ns0"), log.keyring.namespace_id("ns1")
        assert ns0 and log.input.get(InputLog(log).keyed_event_id(ns0, "event-0010"))
        assert len(list(log.input.read(namespace=ns1))) == 30
        assert log.verify().ok
    assert idx.stat().st_size > 100
