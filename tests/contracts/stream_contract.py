"""The contract every stream implementation keeps (Arrow segments, in memory, …).

A mixin without the Test prefix: subclass it with `make_stream` per implementation.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from mnemoflow.eventlog.protocols import AppendableStream
from mnemoflow.eventlog.schema import GENESIS_HASH, Causation, Draft

KINDS = ("memory.stored", "memory.updated", "feedback.recorded")


def draft(
    i: int,
    *,
    namespace: str | None = None,
    memory_id: str | None = None,
    kind: str | None = None,
    event_id: str | None = None,
) -> Draft:
    return Draft(
        event_id=event_id or f"ev-{i}",
        kind=kind or KINDS[i % len(KINDS)],
        namespace=namespace or f"ns{i % 3}",
        payload=f"payload {i}".encode() * 3,
        actor="contract",
        memory_id=memory_id if memory_id is not None else f"mem-{i % 5}",
        occurred_at=datetime(2024, 1, 1 + i % 28, tzinfo=UTC),
        causation=Causation("input", i) if i % 4 == 0 else None,
        key_id=None,
    )


class StreamContract:
    def make_stream(self) -> AppendableStream:
        raise AssertionError("subclasses say how to make the stream under test")

    def fill(self, stream: AppendableStream, n: int) -> None:
        for i in range(0, n, 7):
            stream.append([draft(j) for j in range(i, min(n, i + 7))])

    def test_empty_stream(self) -> None:
        """A new stream has position 0, reads nothing and verifies."""
        stream = self.make_stream()
        assert stream.last_position == 0
        assert list(stream.read()) == []
        report = stream.verify()
        assert report.ok and report.checked == 0

    def test_positions_are_gapless_from_one(self) -> None:
        """Receipts come back in draft order with consecutive positions."""
        stream = self.make_stream()
        receipts = stream.append([draft(i) for i in range(5)])
        receipts += stream.append([draft(i) for i in range(5, 9)])
        assert [r.position for r in receipts] == list(range(1, 10))
        assert [r.event_id for r in receipts] == [f"ev-{i}" for i in range(9)]
        assert stream.last_position == 9

    def test_records_keep_every_envelope_field(self) -> None:
        """What is read back is what was appended, plus position, time and chain."""
        stream = self.make_stream()
        sent = draft(4)
        (receipt,) = stream.append([sent])
        (record,) = stream.read()
        assert (record.event_id, record.kind, record.namespace, record.memory_id) == (
            sent.event_id,
            sent.kind,
            sent.namespace,
            sent.memory_id,
        )
        assert record.payload == sent.payload and record.occurred_at == sent.occurred_at
        assert record.causation == sent.causation and record.actor == "contract"
        assert record.prev_hash == GENESIS_HASH and len(record.hash) == 32
        assert record.recorded_at == receipt.recorded_at
        assert record.recorded_at.tzinfo is not None

    def test_chain_links_each_event_to_the_previous(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 30)
        records = list(stream.read())
        for before, after in itertools.pairwise(records):
            assert after.prev_hash == before.hash
        assert stream.verify().ok and stream.verify().checked == 30

    def test_same_event_id_is_recorded_once(self) -> None:
        """A second append of an id returns the first receipt and appends nothing."""
        stream = self.make_stream()
        (first,) = stream.append([draft(1, event_id="once")])
        self.fill(stream, 20)
        (again,) = stream.append([draft(2, event_id="once")])
        assert again == first
        assert stream.last_position == 21
        assert sum(1 for r in stream.read() if r.event_id == "once") == 1

    def test_duplicate_ids_within_one_batch(self) -> None:
        stream = self.make_stream()
        receipts = stream.append([draft(1, event_id="x"), draft(2, event_id="x"), draft(3)])
        assert receipts[0] == receipts[1]
        assert stream.last_position == 2

    def test_read_by_position_range(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 40)
        assert [r.position for r in stream.read(11, 17)] == list(range(11, 18))
        assert [r.position for r in stream.read(38)] == [38, 39, 40]
        assert list(stream.read(41)) == []

    def test_read_by_namespace_kind_and_memory(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 60)
        everything = list(stream.read())
        for namespace in ("ns0", "ns2"):
            want = [r.position for r in everything if r.namespace == namespace]
            assert [r.position for r in stream.read(namespace=namespace)] == want
        want = [r.position for r in everything if r.kind == "memory.updated"]
        assert [r.position for r in stream.read(kind="memory.updated")] == want
        want = [r.position for r in everything if r.memory_id == "mem-3"]
        assert [r.position for r in stream.read(memory_id="mem-3")] == want
        both = [r.position for r in everything if r.memory_id == "mem-3" and r.namespace == "ns1"]
        assert [r.position for r in stream.read(memory_id="mem-3", namespace="ns1")] == both
        assert list(stream.read(namespace="nobody")) == []

    def test_scan_returns_the_same_events_as_tables(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 50)
        tables = list(stream.scan(5, 44, namespace="ns1"))
        assert all(isinstance(t, pa.Table) for t in tables)
        positions = [p for t in tables for p in t.column("position").to_pylist()]
        assert positions == [r.position for r in stream.read(5, 44, namespace="ns1")]

    def test_last_is_the_newest_matching_event(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 400)  # several segments where they are sealed at 32 KiB
        everything = list(stream.read())
        for start, stop, namespace, kind in [
            (1, None, None, None),
            (5, 44, "ns1", None),
            (1, 30, None, "memory.updated"),
            (1, 2, "ns2", None),
            (20, 19, None, None),
        ]:
            matching = [
                r.position
                for r in everything
                if start <= r.position <= (stop or r.position)
                and namespace in (None, r.namespace)
                and kind in (None, r.kind)
            ]
            found = stream.last(start, stop, namespace=namespace, kind=kind)
            assert (found and found.position) == (matching[-1] if matching else None)
        assert stream.last(namespace="nobody") is None

    def test_get_by_event_id(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 30)
        record = stream.get("ev-17")
        assert record is not None and record.position == 18
        assert stream.get("no-such-event") is None

    def test_concurrent_appends_stay_gapless(self) -> None:
        """8 threads x 500 appends: 4,000 events, every position once, chain valid."""
        stream = self.make_stream()
        receipts: list[list[int]] = [[] for _ in range(8)]

        def worker(t: int) -> None:
            for i in range(500):
                (r,) = stream.append([draft(t * 1000 + i, event_id=f"t{t}-{i}")])
                receipts[t].append(r.position)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        positions = sorted(p for per_thread in receipts for p in per_thread)
        assert positions == list(range(1, 4001))
        assert all(r == sorted(r) for r in receipts)  # each thread sees its own order kept
        report = stream.verify()
        assert report.ok and report.checked == 4000

    def test_recorded_at_never_runs_backwards(self) -> None:
        stream = self.make_stream()
        self.fill(stream, 30)
        times = [r.recorded_at for r in stream.read()]
        assert times == sorted(times)

    def test_empty_append_is_a_no_op(self) -> None:
        stream = self.make_stream()
        empty: Sequence[Draft] = []
        assert stream.append(empty) == []
        assert stream.last_position == 0

    @pytest.mark.parametrize("n", [1, 3])
    def test_receipts_match_records(self, n: int) -> None:
        stream = self.make_stream()
        receipts = stream.append([draft(i) for i in range(n)])
        for receipt, record in zip(receipts, stream.read(), strict=True):
            assert (receipt.position, receipt.event_id, receipt.memory_id) == (
                record.position,
                record.event_id,
                record.memory_id,
            )

    def test_tail_is_the_newest_record(self) -> None:
        stream = self.make_stream()
        assert stream.tail() is None
        self.fill(stream, 25)
        tail = stream.tail()
        assert tail is not None and tail.position == 25 and tail.event_id == "ev-24"
