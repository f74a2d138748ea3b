"""The vector index contract, run against FAISS (flat and HNSW) and brute force."""

from __future__ import annotations

import pickle

import numpy as np

from projections.vectors import BruteForceIndex, FaissIndex, VectorIndex
from tests.contracts.vector_contract import DIM, VectorIndexContract, unit


class TestBruteForce(VectorIndexContract):
    def make_index(self) -> VectorIndex:
        return BruteForceIndex(DIM)


class TestFaissFlat(VectorIndexContract):
    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM)


class TestFaissHnsw(VectorIndexContract):
    """Above `hnsw_above` the index turns into HNSW; on these sizes it is still exact."""

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, hnsw_above=20, ef_search=256)


class TestFaissFlatFp16(VectorIndexContract):
    tolerance = 2e-3

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, storage="fp16")

    def stored(self, vectors: np.ndarray) -> np.ndarray:
        return vectors.astype(np.float16).astype(np.float32)


class TestFaissHnswFp16(TestFaissFlatFp16):
    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, hnsw_above=20, ef_search=256, storage="fp16")


def test_switches_to_hnsw_above_the_threshold() -> None:
    index = FaissIndex(DIM, hnsw_above=10)
    index.upsert(np.arange(10, dtype=np.int64), unit(np.random.default_rng(0), 10))
    assert index.kind == "flat"
    index.upsert(np.arange(10, 12, dtype=np.int64), unit(np.random.default_rng(1), 2))
    assert index.kind == "hnsw" and len(index) == 12


def test_hnsw_rebuilds_when_many_are_removed() -> None:
    index = FaissIndex(DIM, hnsw_above=10)
    index.upsert(np.arange(40, dtype=np.int64), unit(np.random.default_rng(0), 40))
    index.remove(np.arange(0, 30, dtype=np.int64))
    assert len(index) == 10
    assert sorted(index.export()[0].tolist()) == list(range(30, 40))


def test_brute_force_pickles() -> None:
    index = BruteForceIndex(DIM)
    index.upsert(np.array([4], np.int64), unit(np.random.default_rng(0), 1))
    assert pickle.loads(pickle.dumps(index)).export()[0].tolist() == [4]
