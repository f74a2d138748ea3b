"""The synthetic benchmark corpus: deterministic, varied, with near-duplicates."""

from __future__ import annotations

from collections import Counter

from pipeline.corpus import KINDS, corpus, queries


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
