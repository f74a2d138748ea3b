"""Payload encodings: what the log stores for each kind, and that older encodings still read."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from mnemoflow.eventlog.derived import Edge, MemoryExtracted, MemoryLinked
from mnemoflow.eventlog.payloads import MemoryEmbedded, MemoryStored, SubjectErased, unpack_rows


def _linked(n: int) -> MemoryLinked:
    return MemoryLinked(
        mentions=["person:alice", "place:paris"],
        edges=[
            Edge(target=f"{i:032x}", kind="entity", weight=1.0, via="person:alice")
            for i in range(n)
        ],
    )


def test_long_json_payloads_are_deflated_and_read_back() -> None:
    payload = _linked(10)
    raw = payload.encode()
    plain = payload.model_dump_json().encode()
    assert raw[:1] == b"x" and len(raw) < len(plain) / 2
    assert zlib.decompress(raw) == plain
    assert MemoryLinked.decode(raw) == payload


def test_short_payloads_stay_plain_json() -> None:
    payload = MemoryStored(text="Alice lives in Paris")
    assert payload.encode() == b'{"text":"Alice lives in Paris","metadata":{}}'  # as before
    assert MemoryStored.decode(payload.encode()) == payload
    west = MemoryStored(text="Alice lives in Paris", utc_offset=-300)
    assert MemoryStored.decode(west.encode()) == west and b'"utc_offset":-300' in west.encode()


def test_events_written_as_plain_json_still_read() -> None:
    payload = _linked(10)
    assert MemoryLinked.decode(payload.model_dump_json().encode()) == payload
    extracted = MemoryExtracted(extractor="rules", facts=["Alice lives in Paris"] * 5)
    assert MemoryExtracted.decode(extracted.model_dump_json().encode()) == extracted


def test_clear_kinds_are_never_deflated() -> None:
    erased = SubjectErased(namespace="alice", key_ids=[f"k{i:040d}" for i in range(20)])
    assert erased.encode() == erased.model_dump_json().encode()


def test_a_damaged_deflated_payload_is_an_error_not_a_guess() -> None:
    raw = _linked(10).encode()
    with pytest.raises(ValueError, match="zlib"):
        MemoryLinked.decode(raw[: len(raw) // 2])


def test_embedded_vectors_are_int8_with_a_scale_and_older_events_still_read() -> None:
    rng = np.random.default_rng(7)
    vector = rng.standard_normal(384).astype(np.float32)
    vector /= np.linalg.norm(vector)
    context = vector[::-1].copy()
    payload = MemoryEmbedded.of("m", vector, context, "before " * 20, "id0")
    raw = payload.encode()
    assert len(raw) < 2 * (4 + 384) + 120  # two int8 vectors with their scales; a deflated header
    back = MemoryEmbedded.decode(raw)
    assert back == payload
    for got, want in ((back.array(), vector), (back.context_array(), context)):
        assert got is not None and got.dtype == np.float32
        assert np.abs(got - want).max() <= np.abs(want).max() / 254 + 1e-7  # half a step
        assert float(got @ want) > 0.9999
    half = MemoryEmbedded.of("m", vector, context, "before", "id0", dtype="<f2")
    assert MemoryEmbedded.decode(half.encode()) == half
    assert np.abs(half.array() - vector).max() < 1e-3
    assert half.context_array() is not None and np.abs(half.context_array() - context).max() < 1e-3
    # An event of the first format: a float32 own vector, no dtype, a plain JSON header.
    header = json.dumps(
        {"model_id": "m", "context_text": None, "context_memory_id": None, "split": 384 * 4}
    ).encode()
    old = struct.pack("<I", len(header)) + header + vector.astype("<f4").tobytes()
    assert MemoryEmbedded.decode(old).array().tobytes() == vector.tobytes()
    zero = MemoryEmbedded.of("m", np.zeros(4, np.float32))
    assert not MemoryEmbedded.decode(zero.encode()).array().any()
    assert raw[4:5] == b"x"  # the header was deflated
    with pytest.raises(ValueError, match="zlib"):
        MemoryEmbedded.decode(struct.pack("<I", 3) + b"xyz" + raw[4:])


def test_a_batch_of_packed_vectors_unpacks_to_the_rows_each_gives_alone() -> None:
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((5, 384)).astype(np.float32)
    for dtype in ("i1", "<f2"):
        payloads = [MemoryEmbedded.of("m", v, v[::-1].copy(), dtype=dtype) for v in vectors]
        for raws, dtypes, alone in (
            ([p.vector for p in payloads], [p.vector_dtype for p in payloads], "array"),
            (
                [p.context_vector for p in payloads],
                [p.context_dtype for p in payloads],
                "context_array",
            ),
        ):
            rows = unpack_rows(raws, dtypes)
            want = np.stack([getattr(p, alone)() for p in payloads])
            assert rows.dtype == np.float32 and rows.tobytes() == want.tobytes()
    # Mixed formats in one batch (events from before int8): each row as its own dtype says.
    old = vectors[0].astype("<f4").tobytes()
    mixed = [MemoryEmbedded.of("m", vectors[1]).vector, old]
    rows = unpack_rows(mixed, ["i1", "<f4"])
    assert rows[1].tobytes() == vectors[0].tobytes()
    assert rows[0].tobytes() == MemoryEmbedded.of("m", vectors[1]).array().tobytes()
    with pytest.raises(ValueError, match="scale"):
        unpack_rows([b"ab", b"cd"], ["i1", "i1"])
