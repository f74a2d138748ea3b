"""`mnemo ingest`: every format, idempotent re-runs, malformed files named by file and row,
and embeddings from the Ray Data pool equal to what the embedder actor would have made."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.ingest.job import _Pool, ingest
from mnemoflow.pipeline.ingest.sources import IngestError

pytestmark = pytest.mark.usefixtures("ray_session")

ROWS = [
    {
        "text": f"Nia planted {kind} in the garden.",
        "occurred_at": f"2024-04-0{1 + i % 3}T09:00:00+00:00",
    }
    for i, kind in enumerate(["tulips", "basil", "tomatoes", "roses", "mint", "chillies"])
]


def within_rounding(ratio: float | None, rate: float, raw: float | None) -> bool:
    """The ratio (to 0.001) is computed from the unrounded rates, reported to 0.1/s."""
    assert ratio is not None and raw is not None
    low = (rate - 0.05) / (raw + 0.05) - 0.0005
    high = (rate + 0.05) / max(raw - 0.05, 1e-9) + 0.0005
    return low <= ratio <= high


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _embedded(home: Path) -> list[tuple[int, str]]:
    """(source position, payload) of every embedding, for comparing two homes."""
    with EventLog(home / "log", writable=False) as log:
        out = []
        for r in log.stream("embedded").read():
            payload = log.open_payload(r)
            if r.kind == "memory.embedded" and r.causation and payload is not None:
                doc = json.loads(payload.model_dump_json())
                doc["context_memory_id"] = doc["context_memory_id"] is not None
                out.append((r.causation.position, json.dumps(doc, sort_keys=True)))
        return out


def test_jsonl_end_to_end_equals_the_embedder_and_reruns_add_nothing(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "garden.jsonl", ROWS)
    with Memory.open(home=tmp_path / "a") as mem:
        report = ingest(mem, [source], "nia", actors=1, progress=False, compare=None)
        assert (report.rows, report.stored) == (6, 6)
        assert report.memories_per_s > 0 and report.raw_embedder_memories_per_s
        assert within_rounding(
            report.ratio, report.memories_per_s, report.raw_embedder_memories_per_s
        )
        stats = mem.stats()
        assert all(a["lag"] == 0 for a in stats["actors"].values())
        assert stats["memories"]["total"] == 6
        hits = mem.recall("Which herbs did Nia plant?", "nia", k=6)
        assert {h.text for h in hits} == {r["text"] for r in ROWS}
        again = ingest(mem, [source], "nia", progress=False)
        assert (again.rows, again.stored) == (6, 0)
        assert again.ratio is None  # nothing new to embed, no comparison asked for
        assert mem.stats()["memories"]["total"] == 6
    with Memory.open(home=tmp_path / "b") as mem:  # the same rows, embedded by the actor
        from mnemoflow.pipeline.ingest.sources import read

        mem.store_many([row.request for row in read(source, "jsonl", "nia")])
        mem.sync()
    assert _embedded(tmp_path / "a") == _embedded(tmp_path / "b")


def test_csv_parquet_and_chatgpt(tmp_path: Path) -> None:
    table = tmp_path / "notes.csv"
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "occurred_at", "source"])
        writer.writeheader()
        writer.writerow({"text": "Omar fixed the bike.", "occurred_at": "", "source": "sms"})
    parquet = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"text": ["Omar sold the car."], "topic": ["cars"]}), parquet)
    export = tmp_path / "conversations.json"
    export.write_text(
        json.dumps(
            [
                {
                    "id": "c1",
                    "title": "Trip",
                    "mapping": {
                        "a": {
                            "message": {
                                "id": "m1",
                                "author": {"role": "user"},
                                "create_time": 1.7e9,
                                "content": {"parts": ["I fly to Oslo on Monday."]},
                            }
                        },
                        "b": {
                            "message": {
                                "id": "m2",
                                "author": {"role": "assistant"},
                                "create_time": 1.7e9 + 5,
                                "content": {"parts": ["Have a good flight!"]},
                            }
                        },
                        "c": {"message": None},
                    },
                }
            ]
        )
    )
    with Memory.open(home=tmp_path / "h") as mem:
        report = ingest(mem, [table, parquet, export], "omar", progress=False)
        assert report.stored == 4
        rows = {r.text: r for r in mem.memories("omar")}
        assert rows["Omar fixed the bike."].metadata == {"source": "sms"}
        assert rows["Omar sold the car."].metadata == {"topic": "cars"}
        assert rows["user: I fly to Oslo on Monday."].metadata["title"] == "Trip"


def test_a_locomo_file_gives_one_namespace_per_conversation(tmp_path: Path) -> None:
    sample = {
        "sample_id": "s1",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I got a puppy!"},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "What is its name?"},
            ],
        },
        "qa": [],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    with Memory.open(home=tmp_path / "h") as mem:
        assert ingest(mem, [path], "", "locomo", progress=False).stored == 2
        (first, second) = mem.memories("s1")
        assert first.metadata == {"dia_id": "D1:1"} and second.text == "Ben: What is its name?"


@pytest.mark.parametrize(
    ("content", "row"),
    [
        (b'{"text": "fine one"}\n{"text": "fine two"}\n{"text": "cut off', 3),
        (b'{"text": "fine one"}\n{"text": "fine two"}\n["not", "an", "object"]\n', 3),
        (b'{"text": "fine one"}\n{"text": "fine two"}\n{"body": "no text"}\n', 3),
        (b'{"text": "fine one"}\n{"text": "fine two"}\n\xff\xfe\x00junk\n', 3),
        (b'{"text": "fine one"}\n{"text": "fine two"}\n{"text": "' + b"x" * 70_000 + b'"}\n', 3),
    ],
    ids=["truncated", "not-an-object", "no-text", "binary-junk", "oversized-text"],
)
def test_a_malformed_row_is_named_earlier_rows_stay_and_a_rerun_completes(
    tmp_path: Path, content: bytes, row: int
) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(content)
    with Memory.open(home=tmp_path / "h") as mem:
        with pytest.raises(IngestError, match=rf"broken\.jsonl: row {row}"):
            ingest(mem, [path], "n", batch_size=10, progress=False)
        assert len(mem.memories("n")) == 2  # the rows before it are stored
        path.write_bytes(b"\n".join(content.split(b"\n")[:2]) + b'\n{"text": "fixed three"}\n')
        report = ingest(mem, [path], "n", progress=False)
        assert (report.rows, report.stored) == (3, 1)
        assert [m.text for m in mem.memories("n")] == ["fine one", "fine two", "fixed three"]


def test_a_csv_without_a_text_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("body,when\nhello,now\n")
    with (
        Memory.open(settings=load_settings(home=tmp_path / "h")) as mem,
        pytest.raises(IngestError, match=r"wrong\.csv: row 1: .*'text'"),
    ):
        ingest(mem, [path], "n", progress=False)


def test_pool_size_follows_the_cluster() -> None:
    """By default: in this process unless there is a cluster to join; then a pool as large
    as the cluster's CPUs allow (the session's Ray has 2 CPUs here or more)."""
    import ray

    assert not _Pool(None, None).on_ray
    assert _Pool(None, "ray://cluster:10001").on_ray
    assert _Pool(2, None).on_ray and not _Pool(0, "ray://cluster:10001").on_ray
    cpus = int(ray.cluster_resources()["CPU"])
    assert _Pool(None, "auto").size(threads=1) == cpus
    assert _Pool(None, "auto").size(threads=cpus * 4) == 1
    assert _Pool(3, None).size(threads=2) == 3


def test_in_process_embedding_gives_the_same_stream(tmp_path: Path) -> None:
    """`--actors 0` embeds in this process instead of on Ray Data: the same events."""
    source = _jsonl(tmp_path / "garden.jsonl", ROWS)
    for name, actors in (("ray", 1), ("local", 0)):
        with Memory.open(home=tmp_path / name) as mem:
            assert ingest(mem, [source], "nia", actors=actors, progress=False).stored == 6
    assert _embedded(tmp_path / "ray") == _embedded(tmp_path / "local")


def test_work_beside_the_block_is_waited_for_and_its_error_raised() -> None:
    """`_beside` runs its work on another thread while the block runs; the block's end waits
    for it, and an error of the work is raised there, not lost on its thread."""
    import threading

    from mnemoflow.pipeline.ingest.job import _beside

    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def work() -> None:
        started.set()
        release.wait(10)
        done.append(threading.current_thread().name)

    with _beside(work, "mnemo-test-beside"):
        assert started.wait(10)
        assert not done  # still running beside the block
        release.set()
    assert done == ["mnemo-test-beside"]

    def fail() -> None:
        raise RuntimeError("the actors failed")

    with pytest.raises(RuntimeError, match="the actors failed"), _beside(fail, "mnemo-test"):
        pass


def test_chunks_keep_to_a_count_and_a_size() -> None:
    from mnemoflow.eventlog import StoreRequest
    from mnemoflow.pipeline.ingest.job import chunks
    from mnemoflow.pipeline.ingest.sources import Row

    rows = [Row(Path("f"), i, StoreRequest("x" * 400, "n")) for i in range(1, 8)]
    assert [len(c) for c in chunks(rows, 3)] == [3, 3, 1]
    # About 1,000 bytes a chunk: two rows of 400 (and "{}" of metadata) each.
    assert [len(c) for c in chunks(rows, 3, 1000)] == [2, 2, 2, 1]
    big = [Row(Path("f"), 1, StoreRequest("y" * 5000, "n")), *rows[:1]]
    assert [len(c) for c in chunks(big, 3, 1000)] == [1, 1]  # a larger row goes alone
