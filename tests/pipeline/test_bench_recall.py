"""`bench_recall.index_recall`: how much of the exact top k an index's search finds."""

from __future__ import annotations

import numpy as np

from mnemoflow.pipeline.bench.recall import index_recall
from mnemoflow.projections.vectors import BruteForceIndex, Ids, Vectors


class _MissesTheBest(BruteForceIndex):
    """Answers like the exact index without its best hit: the rest move up, the last place
    stays empty (id -1)."""

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        ids, scores = super().search(queries, k + 1)
        ids, scores = ids[:, 1:], scores[:, 1:]
        ids[:, -1] = -1
        return ids, scores


def _filled(index: BruteForceIndex, n: int = 200, dim: int = 16) -> tuple[Ids, Vectors]:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.upsert(np.arange(1000, 1000 + n, dtype=np.int64), vectors)
    return index.export()


def test_an_exact_index_finds_all_and_a_lossy_one_is_counted() -> None:
    """The exact search scores 1.0; one that loses the best of every ten scores 0.9; with
    fewer vectors than k, k shrinks to what there is."""
    queries = np.random.default_rng(8).standard_normal((30, 16)).astype(np.float32)
    exact = BruteForceIndex(16)
    ids, matrix = _filled(exact)
    assert index_recall(exact, ids, matrix, queries) == 1.0
    lossy = _MissesTheBest(16)
    ids, matrix = _filled(lossy)
    assert index_recall(lossy, ids, matrix, queries) == 0.9
    few = BruteForceIndex(16)
    ids, matrix = _filled(few, n=4)
    assert index_recall(few, ids, matrix, queries) == 1.0
    assert index_recall(BruteForceIndex(16), *BruteForceIndex(16).export(), queries) == 1.0
