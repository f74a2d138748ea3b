"""The contract of a vector index (FAISS flat, FAISS HNSW, brute-force NumPy)."""

from __future__ import annotations

import numpy as np

from mnemoflow.projections.vectors import BruteForceIndex, VectorIndex, checksum

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class VectorIndexContract:
    #: How far scores may differ from exact float32 (fp16 storage rounds the vectors).
    tolerance = 1e-5

    def make_index(self) -> VectorIndex:
        raise AssertionError("subclasses say which index")

    def stored(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors as the index under test keeps them (the reference gets the same)."""
        return vectors

    def filled(self, n: int = 120, seed: int = 7) -> tuple[VectorIndex, BruteForceIndex]:
        rng = np.random.default_rng(seed)
        index, reference = self.make_index(), BruteForceIndex(DIM)
        ids = rng.choice(10_000_000, size=n, replace=False).astype(np.int64)
        vectors = self.stored(unit(rng, n))
        for chunk in range(0, n, 25):
            index.upsert(ids[chunk : chunk + 25], vectors[chunk : chunk + 25])
            reference.upsert(ids[chunk : chunk + 25], vectors[chunk : chunk + 25])
        return index, reference

    def test_search_matches_brute_force(self) -> None:
        index, reference = self.filled()
        queries = unit(np.random.default_rng(1), 10)
        got_ids, got_scores = index.search(queries, 10)
        want_ids, want_scores = reference.search(queries, 10)
        assert np.array_equal(got_ids, want_ids)
        assert np.allclose(got_scores, want_scores, atol=self.tolerance)

    def test_upsert_replaces(self) -> None:
        index, _ = self.filled()
        ids = index.export()[0]
        target = ids[:1]
        new = unit(np.random.default_rng(3), 1)
        index.upsert(target, new)
        assert len(index) == len(ids)
        found, scores = index.search(new, 1)
        assert found[0, 0] == target[0] and scores[0, 0] > 0.999

    def test_last_vector_wins_within_one_upsert(self) -> None:
        index = self.make_index()
        rng = np.random.default_rng(5)
        a, b = unit(rng, 2)
        index.upsert(np.array([9, 9], np.int64), np.stack([a, b]))
        assert len(index) == 1
        assert np.allclose(index.export()[1][0], b, atol=max(self.tolerance, 1e-5) * 10)

    def test_remove(self) -> None:
        index, reference = self.filled()
        ids, _ = index.export()
        gone = ids[::3]
        index.remove(gone)
        reference.remove(gone)
        index.remove(np.array([123456789012], np.int64))  # unknown ids are ignored
        assert len(index) == len(reference)
        queries = unit(np.random.default_rng(2), 5)
        assert np.array_equal(index.search(queries, 8)[0], reference.search(queries, 8)[0])
        assert not set(index.search(queries, 8)[0].ravel()) & set(gone.tolist())

    def test_ids_replaced_removed_and_added_again_agree_with_reference(self) -> None:
        """Random upserts and removals over a small pool of ids: the same id is replaced,
        removed and stored again many times (a removed HNSW slot stays in the graph)."""
        rng = np.random.default_rng(11)
        index, reference = self.make_index(), BruteForceIndex(DIM)
        for _ in range(150):
            ids = rng.choice(40, size=int(rng.integers(1, 6)), replace=False).astype(np.int64)
            if rng.random() < 0.3:
                index.remove(ids)
                reference.remove(ids)
            else:
                vectors = self.stored(unit(rng, len(ids)))
                index.upsert(ids, vectors)
                reference.upsert(ids, vectors)
            assert len(index) == len(reference)
        assert np.array_equal(index.export()[0], reference.export()[0])
        queries = unit(rng, 5)
        assert np.array_equal(index.search(queries, 6)[0], reference.search(queries, 6)[0])

    def test_export_and_checksum_agree_with_reference(self) -> None:
        index, reference = self.filled(60)
        assert np.array_equal(index.export()[0], reference.export()[0])
        assert np.allclose(index.export()[1], reference.export()[1], atol=self.tolerance)
        if self.tolerance == 1e-5:
            assert checksum(index) == checksum(reference)

    def test_empty_and_short_results_are_padded(self) -> None:
        index = self.make_index()
        ids, _ = index.search(unit(np.random.default_rng(0), 1), 3)
        assert ids.tolist() == [[-1, -1, -1]]
        index.upsert(np.array([1], np.int64), unit(np.random.default_rng(0), 1))
        ids, _ = index.search(unit(np.random.default_rng(1), 1), 3)
        assert ids.tolist() == [[1, -1, -1]]
