"""The vector index contract, run against FAISS (flat, IVF and HNSW) and brute force."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mnemoflow.projections.ann import IvfIndex
from mnemoflow.projections.vectors import BruteForceIndex, FaissIndex, VectorIndex, checksum
from tests.contracts.vector_contract import DIM, VectorIndexContract, unit


class TestBruteForce(VectorIndexContract):
    def make_index(self) -> VectorIndex:
        return BruteForceIndex(DIM)


class TestFaissFlat(VectorIndexContract):
    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM)


class TestFaissIvf(VectorIndexContract):
    """Above `approximate_above` the index turns into IVF (two lists at these sizes); with
    every list scanned it is still exact."""

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, approximate_above=80, nprobe=1000)


class TestFaissHnsw(VectorIndexContract):
    """HNSW instead; on these sizes it is still exact."""

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, approximate_above=20, approximate="hnsw", ef_search=256)


class TestFaissFlatFp16(VectorIndexContract):
    tolerance = 2e-3

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, storage="fp16")

    def stored(self, vectors: np.ndarray) -> np.ndarray:
        return vectors.astype(np.float16).astype(np.float32)


class TestFaissIvfFp16(TestFaissFlatFp16):
    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, approximate_above=80, nprobe=1000, storage="fp16")


class TestFaissHnswFp16(TestFaissFlatFp16):
    def make_index(self) -> VectorIndex:
        return FaissIndex(
            DIM, approximate_above=20, approximate="hnsw", ef_search=256, storage="fp16"
        )


def _vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n, dtype=np.int64), unit(np.random.default_rng(seed), n)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_switches_above_the_threshold(kind: str) -> None:
    index = FaissIndex(DIM, approximate_above=10, approximate=kind)
    index.upsert(*_vectors(10))
    assert index.kind == "flat"
    index.upsert(np.arange(10, 12, dtype=np.int64), unit(np.random.default_rng(1), 2))
    assert index.kind == kind and len(index) == 12


def test_hnsw_rebuilds_when_many_are_removed() -> None:
    index = FaissIndex(DIM, approximate_above=10, approximate="hnsw")
    index.upsert(*_vectors(40))
    index.remove(np.arange(0, 30, dtype=np.int64))
    assert len(index) == 10
    assert sorted(index.export()[0].tolist()) == list(range(30, 40))
    assert len(index._ann._slot_ids) == 10  # type: ignore[union-attr]  # rebuilt, no tombstone


def test_ivf_learns_its_lists_again_when_it_grows_or_shrinks_fourfold() -> None:
    """Trained at 100 vectors (two lists), it keeps them up to 400; past that it learns
    sqrt(n) lists from what it holds, and again when it falls under a quarter of that."""
    ids, vectors = _vectors(2000)
    index = FaissIndex(DIM, approximate_above=99, nprobe=1)
    index.upsert(ids[:100], vectors[:100])
    ivf = index._ann
    assert isinstance(ivf, IvfIndex) and ivf._index.nlist == 2
    index.upsert(ids[100:400], vectors[100:400])
    assert ivf._index.nlist == 2
    index.upsert(ids[400:401], vectors[400:401])
    assert ivf._index.nlist == 10 and ivf._trained_at == 401  # min(sqrt(401), 401 // 39)
    index.upsert(ids[401:], vectors[401:])
    assert ivf._trained_at == 2000 and ivf._index.nlist == IvfIndex.lists_for(2000) == 44
    index.remove(ids[:1600])
    assert ivf._trained_at == 400 and ivf._index.nlist == 10
    # One list scanned: a stored vector is filed under the centroid nearest to it, so a
    # search for it finds it first.
    found, scores = index.search(vectors[1600:], 1)
    assert found[:, 0].tolist() == ids[1600:].tolist() and np.all(scores > 0.999)
    assert np.array_equal(index.export()[1], vectors[1600:])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_index_emptied_by_removals_takes_vectors_again(kind: str) -> None:
    ids, vectors = _vectors(30)
    index = FaissIndex(DIM, approximate_above=10, approximate=kind)
    index.upsert(ids[:20], vectors[:20])
    index.remove(ids[:20])
    assert len(index) == 0 and index.search(vectors[:1], 3)[0].tolist() == [[-1, -1, -1]]
    index.upsert(ids[20:], vectors[20:])
    assert index.kind == kind and len(index) == 10
    assert index.search(vectors[25:26], 1)[0][0, 0] == 25


@pytest.mark.parametrize(("kind", "other"), [("ivf", "hnsw"), ("hnsw", "ivf")])
def test_restores_its_state_and_a_state_of_the_other_kind(kind: str, other: str) -> None:
    ids, vectors = _vectors(300)
    index = FaissIndex(DIM, approximate_above=100, approximate=kind, nprobe=1000)
    index.upsert(ids, vectors)
    index.remove(ids[:5])
    state = index.state()
    assert state is not None and FaissIndex(DIM).state() is None  # flat: the vectors do
    for want in (kind, other):
        again = FaissIndex(DIM, approximate_above=100, approximate=want, nprobe=1000)
        again.restore(state)
        assert again.kind == want and checksum(again) == checksum(index)
        assert np.array_equal(again.search(vectors[5:9], 3)[0], index.search(vectors[5:9], 3)[0])
        again.remove(ids[5:6])  # still an index that removes
        assert len(again) == len(index) - 1


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="storage"):
        FaissIndex(DIM, storage="int4")
    with pytest.raises(ValueError, match="approximate"):
        FaissIndex(DIM, approximate="lsh")


def test_brute_force_pickles() -> None:
    index = BruteForceIndex(DIM)
    index.upsert(np.array([4], np.int64), unit(np.random.default_rng(0), 1))
    assert pickle.loads(pickle.dumps(index)).export()[0].tolist() == [4]
