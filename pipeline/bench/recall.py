"""`mnemo bench recall`: warm recall latency at several sizes, against a brute-force baseline.

For each size N, a fresh home gets N memories of the synthetic agent corpus in one namespace
(the hard case: one user with a long history). Their embeddings are the stand-ins of
`bench_projections.WordVectors` unless `real_vectors` (embedding 100,000 texts twice takes
ten minutes); every other actor — extractor, linker, consolidator, decay — runs
for real, and the projections are caught up. Then the same questions are asked through the
Python API (k = 10, every channel, the query embedded by the real model each time) and,
as the baseline, by brute force: the query embedded, one matrix product over every vector,
a top-10 — in the same process, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mnemoflow.actors.embedder import EmbedderActor
from mnemoflow.eventlog import StoreRequest
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.corpus import corpus, queries
from mnemoflow.pipeline.bench.log import scratch
from mnemoflow.pipeline.bench.projections import fill_with_word_vectors
from mnemoflow.projections.vectors import Ids, VectorIndex, Vectors

NAMESPACE = "bench"


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": round(statistics.median(ordered) * 1e3, 2),
        "p95_ms": round(at(0.95) * 1e3, 2),
        "p99_ms": round(at(0.99) * 1e3, 2),
    }


def _timed(call: Callable[[], object], repeat: Sequence[object]) -> list[float]:
    out = []
    for _ in repeat:
        began = time.perf_counter()
        call()
        out.append(time.perf_counter() - began)
    return out


def build(mem: Memory, n: int, *, real_vectors: bool) -> float:
    """Fill the home with n corpus memories and catch every actor up; returns seconds."""
    began = time.perf_counter()
    requests = [
        StoreRequest(item.text, NAMESPACE, {"kind": item.kind}, item.occurred_at)
        for item in corpus(n)
    ]
    if real_vectors:
        for start in range(0, n, 2000):
            mem.store_many(requests[start : start + 2000])
    else:
        fill_with_word_vectors(mem.log, requests)
    mem.sync()
    return time.perf_counter() - began


def measure(mem: Memory, questions: Sequence[str]) -> dict[str, Any]:
    embedder = next(f for f in mem.runtime.followers if isinstance(f, EmbedderActor)).embedder
    for q in questions[:20]:  # warm: caches, ONNX session, DuckDB
        mem.recall(q, NAMESPACE, 10)
    it = iter(questions)
    ours = _timed(lambda: mem.recall(next(it), NAMESPACE, 10), questions)
    index = mem.runtime.projector.vectors._indexes[(NAMESPACE, "text")]
    ids, matrix = index.export()
    it = iter(questions)

    def brute_force() -> object:
        vector = embedder.embed([next(it)])[0]
        scores = matrix @ vector
        top = np.argpartition(-scores, 10)[:10]
        return ids[top[np.argsort(-scores[top])]]

    baseline = _timed(brute_force, questions)
    ours_p, base_p = percentiles(ours), percentiles(baseline)
    return {
        "python_api": ours_p,
        "brute_force_dense": base_p,
        "ratio_p50": round(ours_p["p50_ms"] / base_p["p50_ms"], 2),
        "semantic_index_recall_at_10": index_recall(
            index, ids, matrix, embedder.embed(list(questions))
        ),
    }


def index_recall(
    index: VectorIndex, ids: Ids, matrix: Vectors, queries: Vectors, k: int = 10
) -> float:
    """The share of the exact top k (over the index's own vectors, `ids` ascending) that the
    index's search finds, a tie with the k-th score counting as found: 1.0 for a flat index,
    below it for IVF or HNSW. (With word stand-ins for the memories and the model's vectors
    for the questions, they find less than where both come from the model: at 10^5, IVF 0.88
    against 0.96, HNSW 0.39 against 0.96. Ask with real vectors.)"""
    k = min(k, len(ids))
    if k == 0:
        return 1.0
    found, _ = index.search(queries, k)
    scores = queries @ matrix.T
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    columns = np.clip(np.searchsorted(ids, found), 0, len(ids) - 1)
    mine = ids[columns] == found
    hit = mine & (np.take_along_axis(scores, columns, axis=1) >= kth - 1e-5)
    return round(float(hit.sum()) / (k * len(queries)), 3)


def after_store(mem: Memory, questions: Sequence[str], rounds: int = 20) -> dict[str, float]:
    """Recall right after a store, as an agent that stores each turn and then recalls: each
    round stores a memory and lets every actor and projection catch up (not timed), then
    one recall is timed. The first round (the actors restoring their state) is not counted."""
    latencies = []
    for i, question in enumerate(questions[: rounds + 1]):
        mem.store(f"Asked myself: {question}", namespace=NAMESPACE)
        mem.sync()
        began = time.perf_counter()
        mem.recall(question, NAMESPACE, 10)
        if i:
            latencies.append(time.perf_counter() - began)
    return percentiles(latencies)


def run_recall_bench(
    settings: Settings,
    sizes: Sequence[int] = (10_000, 100_000),
    n_queries: int = 200,
    *,
    real_vectors: bool = False,
    home: str | None = None,
) -> dict[str, Any]:
    questions = queries(n_queries)
    out: dict[str, Any] = {"k": 10, "queries": n_queries, "real_vectors": real_vectors}
    for n in sizes:
        with scratch(home) as tmp:
            local = settings.model_copy(
                update={"paths": settings.paths.model_copy(update={"home": tmp})}
            )
            with Memory.open(settings=local) as mem:
                build_s = build(mem, n, real_vectors=real_vectors)
                result = measure(mem, questions)
                result["build_s"] = round(build_s, 1)
                out[str(n)] = result
    return out


def format_recall_bench(result: dict[str, Any]) -> str:
    lines = [
        f"recall benchmark: k={result['k']}, {result['queries']} queries, one namespace, "
        f"{'model' if result['real_vectors'] else 'word'} memory vectors, query embedded"
    ]
    for size, r in result.items():
        if not size.isdigit():
            continue
        ours, base = r["python_api"], r["brute_force_dense"]
        lines.append(
            f"  {int(size):>9,} memories  p50 {ours['p50_ms']:>7} ms  p95 {ours['p95_ms']:>7} ms"
            f"  p99 {ours['p99_ms']:>7} ms   brute-force dense p50 {base['p50_ms']} ms"
            f"  (x{r['ratio_p50']})  index recall@10 {r['semantic_index_recall_at_10']}"
            f"  built in {r['build_s']} s"
        )
    return "\n".join(lines)
