"""The hash chain's encoding is part of the log's format: logs written by earlier versions
must verify, so the bytes hashed for an event never change."""

from __future__ import annotations

from mnemoflow.eventlog.hashchain import HashInput, event_hash


def test_event_hashes_are_those_of_the_first_format() -> None:
    # Digests computed by the encoding as first written (before any optimisation of it).
    first = HashInput(
        7, "evt-1", "memory.stored", 1, "alice", "m1", 1_700_000_000_000_000, None, "api",
        None, None, "k1", b"\x00payload",
    )  # fmt: skip
    second = HashInput(
        8, "évt-2", "memory.linked", 2, "ns/ü", None, 1_700_000_000_000_001, -5, "linker",
        "extracted", 3, None, b"",
    )  # fmt: skip
    h1 = event_hash(b"\x11" * 32, first)
    assert h1.hex() == "f5d744bcf1b6efe6f3dd757f727e5559b94fdd5553e4ebacf083c509b1263f6a"
    for _ in range(2):  # the second time, from what was encoded the first time
        h2 = event_hash(h1, second)
        assert h2.hex() == "d3db366e948c1925ff74c935f03049ee4b56db6020c662882e0f22ac723c1137"
    # Any field moves the digest: namespace and kind are not confused with one another.
    swapped = second._replace(namespace=second.kind, kind=second.namespace)
    assert event_hash(h1, swapped) != event_hash(h1, second)
