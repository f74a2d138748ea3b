"""The synthetic benchmark corpus: deterministic, varied, with near-duplicates."""

from __future__ import annotations

from collections import Counter

import numpy as np

from mnemoflow.pipeline.bench.corpus import KINDS, corpus, queries
from mnemoflow.pipeline.bench.projections import WordVectors


def test_the_same_seed_gives_the_same_corpus() -> None:
    assert list(corpus(300)) == list(corpus(300))
    assert [i.text for i in corpus(50, seed=1)] != [i.text for i in corpus(50, seed=2)]


def test_it_looks_like_agent_memory_not_one_sentence() -> None:
    items = list(corpus(3000))
    texts = Counter(i.text for i in items)
    assert len(texts) > 0.9 * len(items)
    assert set(Counter(i.kind for i in items)) == set(KINDS)
    assert len({i.person for i in items}) >= 50
    times = [i.occurred_at for i in items]
    assert times == sorted(times) and (times[-1] - times[0]).days > 700
    duplicates = [i for i in items if i.duplicate_of is not None]
    assert 0.01 < len(duplicates) / len(items) < 0.06
    for d in duplicates[:20]:
        assert d.duplicate_of is not None
        original = items[d.duplicate_of].text.rstrip(".!")
        assert d.text.startswith(original)


def test_queries_are_varied_questions() -> None:
    asked = queries(200)
    assert len(set(asked)) > 150
    assert any(q.endswith("?") for q in asked)


def test_the_benchmarks_stand_in_vectors_have_neighbours_as_embeddings_do() -> None:
    """Word vectors: unit length, the same for the same text in any process, and texts that
    share words nearer than texts that do not (random vectors have no neighbours at all)."""
    texts = [
        "Alice moved to Lisbon in May.",
        "In May Alice moved to Lisbon with her cat.",
        "The quarterly budget review is on Friday.",
        "",
    ]
    vectors = WordVectors()(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no words: no direction, and no division by zero
    assert np.array_equal(WordVectors()(texts[:1]), vectors[:1])
    near, far = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert near > 0.6 and abs(far) < 0.3
