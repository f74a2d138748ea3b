"""Load over HTTP against the real service (`mnemo serve`: real Ray, real uvicorn): 16 clients
storing 500 memories each while 16 others recall 500 times each. No error, positions gapless,
every hash chain valid, every stored memory listed and recallable afterwards."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from pathlib import Path

import pytest

from mnemoflow.pipeline.api.client import RemoteMemory
from mnemoflow.pipeline.bench.corpus import corpus, queries
from mnemoflow.pipeline.bench.suite import served

CLIENTS = 16
EACH = 500
NAMESPACES = [f"load-{i}" for i in range(4)]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.timeout(900)  # ~4 minutes on 2 shared cores: 16,000 requests and the catch-up
def test_sixteen_writers_and_sixteen_readers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    texts = [item.text for item in corpus(CLIENTS * EACH, seed=3)]
    # Client c stores texts c, c+16, ...: every text once, each with its own event id.
    stored: dict[str, list[tuple[int, str, str]]] = {ns: [] for ns in NAMESPACES}
    errors: list[str] = []
    store_latency: list[float] = []
    recall_latency: list[float] = []
    lock = threading.Lock()
    env = {
        "MNEMO_SERVER__RATE_PER_SECOND": "100000",
        "MNEMO_SERVER__BURST": "100000",
        "MNEMO_QUERY__WAIT_TIMEOUT": "300",  # the catch-up after the load, below
    }
    with served(home, env=env) as (url, _):
        with RemoteMemory(url) as first:  # the namespaces exist before the readers ask
            for ns in NAMESPACES:
                r = first.store(f"{ns} starts here.", ns)
                stored[ns].append((r.position, r.memory_id or "", f"{ns} starts here."))

        def writer(c: int) -> None:
            ns = NAMESPACES[c % len(NAMESPACES)]
            with RemoteMemory(url) as client:
                for i in range(c, len(texts), CLIENTS):
                    began = time.perf_counter()
                    try:
                        r = client.store(texts[i], ns, event_id=f"load-{i}")
                    except Exception as exc:  # every failure is reported, none is retried
                        errors.append(f"store {i}: {type(exc).__name__}: {exc}")
                        continue
                    with lock:
                        store_latency.append(time.perf_counter() - began)
                        stored[ns].append((r.position, r.memory_id or "", texts[i]))

        def reader(c: int) -> None:
            asked = queries(EACH, seed=100 + c)
            with RemoteMemory(url) as client:
                for i, q in enumerate(asked):
                    began = time.perf_counter()
                    try:
                        client.recall(q, NAMESPACES[(c + i) % len(NAMESPACES)], 10)
                    except Exception as exc:
                        errors.append(f"recall {c}/{i}: {type(exc).__name__}: {exc}")
                        continue
                    with lock:
                        recall_latency.append(time.perf_counter() - began)

        threads = [threading.Thread(target=writer, args=(c,)) for c in range(CLIENTS)]
        threads += [threading.Thread(target=reader, args=(c,)) for c in range(CLIENTS)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - began
        assert errors == []

        receipts = [r for rows in stored.values() for r in rows]
        positions = sorted(position for position, _, _ in receipts)
        assert positions == list(range(1, len(receipts) + 1))  # gapless, each once
        # The catch-up after the load (~60 s here) may take as long as the server lets a
        # read-your-writes recall wait (MNEMO_QUERY__WAIT_TIMEOUT above), not the client's
        # default minute.
        with RemoteMemory(url, timeout=300) as client:
            assert client.verify().ok
            last = positions[-1]
            client.recall("caught up?", NAMESPACES[0], 1, min_position=last)  # waits
            for ns, rows in stored.items():  # every memory is there
                listed: set[str] = set()
                while batch := client.memories(ns, limit=500, offset=len(listed)):
                    listed |= {row.memory_id for row in batch}
                assert listed == {memory_id for _, memory_id, _ in rows}
            # ... and recallable: a sample asked for by their own text finds them, as a hit
            # or as a near-duplicate merged into one (the corpus repeats its sentence shapes:
            # "... last June" and "... last July" are one memory to the consolidator).
            for ns, rows in stored.items():
                for _, memory_id, text in random.Random(5).sample(rows, 25):
                    hits = client.recall(text, ns, 10, min_position=last)
                    found = {h.text for h in hits} | {h.memory_id for h in hits}
                    for h in hits:
                        for note in h.provenance:
                            found |= set(note.get("merged_duplicates") or [])
                    assert memory_id in found or text in found, text
    report = {
        "seconds": round(seconds, 1),
        "stores": len(store_latency),
        "stores_per_s": round(len(store_latency) / seconds, 1),
        "store_p50_ms": round(statistics.median(store_latency) * 1e3, 1),
        "store_p99_ms": round(_percentile(store_latency, 0.99) * 1e3, 1),
        "recalls": len(recall_latency),
        "recalls_per_s": round(len(recall_latency) / seconds, 1),
        "recall_p50_ms": round(statistics.median(recall_latency) * 1e3, 1),
        "recall_p99_ms": round(_percentile(recall_latency, 0.99) * 1e3, 1),
    }
    print("load:", json.dumps(report))  # figures for the closing note (pytest -s)
    assert report["stores"] == CLIENTS * EACH and report["recalls"] == CLIENTS * EACH
