"""Fused recall through the Python API: real model, DuckDB, FAISS."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import MnemoError, NamespaceNotFound, ValidationError
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.memory import PAST_VIEWS, PASTS_DIR
from tests.pipeline.rows import projected

FACTS = [
    "Alice moved to Lyon in May and works at a bakery.",
    "Alice adopted a dog named Pepper last spring.",
    "Alice's sister is getting married in June.",
    "Alice prefers green tea over coffee.",
    "Alice is training for the Paris marathon.",
]


@pytest.fixture
def mem(home: Path):  # type: ignore[no-untyped-def]
    with Memory.open(home=home) as m:
        for i, text in enumerate(FACTS):
            m.store(
                text,
                namespace="alice",
                metadata={"topic": "pets" if "dog" in text else "x"},
                occurred_at=datetime(2024, 5, 1 + i, tzinfo=UTC),
            )
        m.store("Bob adopted a cat named Miso.", namespace="bob")
        yield m


def test_the_best_memory_comes_first_with_its_explanation(mem: Memory) -> None:
    hits = mem.recall("What is the name of Alice's dog?", namespace="alice", k=3)
    assert hits[0].text == FACTS[1]
    top = hits[0]
    assert top.score >= hits[1].score >= hits[2].score
    assert {"semantic", "lexical"} <= set(top.channels)
    assert top.status == "active" and top.namespace == "alice"
    assert top.occurred_at == datetime(2024, 5, 2, tzinfo=UTC)
    assert top.provenance == [{"stream": "input", "position": 2, "kind": "memory.stored"}]
    assert top.metadata == {"topic": "pets"}


def test_read_your_writes(mem: Memory) -> None:
    r = mem.store("Alice bought a red kayak yesterday.", namespace="alice")
    hits = mem.recall("kayak", namespace="alice", k=1, min_position=r.position)
    assert hits[0].memory_id == r.memory_id


def test_updates_and_forgets_are_seen(mem: Memory) -> None:
    tea = mem.recall("tea or coffee", namespace="alice", k=1)[0]
    mem.update(tea.memory_id, "Alice switched to drinking coffee every morning.")
    assert mem.recall("tea or coffee", namespace="alice", k=1)[0].text.startswith("Alice switched")  # type: ignore[union-attr]
    dog = mem.recall("dog", namespace="alice", k=1)[0]
    mem.forget(dog.memory_id)
    assert dog.memory_id not in [h.memory_id for h in mem.recall("dog", namespace="alice", k=5)]


def test_namespaces_are_isolated(mem: Memory) -> None:
    hits = mem.recall("adopted a cat named Miso", namespace="alice", k=10)
    assert all(h.namespace == "alice" for h in hits)
    assert mem.recall("cat Miso", namespace="bob", k=10)[0].text == "Bob adopted a cat named Miso."


def test_filters_on_metadata(mem: Memory) -> None:
    hits = mem.recall("Alice", namespace="alice", k=10, filters={"topic": "pets"})
    assert [h.text for h in hits] == [FACTS[1]]


def test_k_is_respected(mem: Memory) -> None:
    assert len(mem.recall("Alice", namespace="alice", k=2)) == 2
    assert len(mem.recall("Alice", namespace="alice", k=50)) == 5


def test_recall_as_of_the_past(mem: Memory) -> None:
    late = mem.store("Alice now lives in Marseille.", namespace="alice")
    now = [h.memory_id for h in mem.recall("where does Alice live", namespace="alice", k=10)]
    past = [
        h.memory_id
        for h in mem.recall(
            "where does Alice live", namespace="alice", k=10, as_of=late.position - 1
        )
    ]
    assert late.memory_id in now and late.memory_id not in past


def test_erased_namespace_recalls_nothing(mem: Memory) -> None:
    """The erased name is forgotten (no such namespace), and under the id its events
    carried the projections hold nothing."""
    bob = mem.log.keyring.namespace_id("bob")
    assert bob is not None and mem.recall("cat", namespace="bob", k=5)
    mem.erase("bob")
    with pytest.raises(NamespaceNotFound):
        mem.recall("cat", namespace="bob", k=5)
    assert mem.runtime.engine.recall("cat", bob, 5) == []


def test_recall_goes_on_after_an_erasure_rewrote_the_projection(mem: Memory) -> None:
    """An erasure compacts the DuckDB file (a new connection): indexes read before it must
    not keep the old one."""
    others = {h.memory_id for h in mem.recall("cat", namespace="alice", k=5)}
    assert mem.recall("cat", namespace="bob", k=5)
    bob = mem.log.keyring.namespace_id("bob")
    mem.erase("bob")
    assert {h.memory_id for h in mem.recall("cat", namespace="alice", k=5)} == others
    assert bob is not None and mem.runtime.engine.recall("cat", bob, 5) == []


def test_a_namespace_lives_on_after_its_erasure(mem: Memory) -> None:
    """New memories after an erase get a new key; the erased ones are no one's context."""
    mem.erase("bob")
    r = mem.store("Bob adopted a second cat named Tofu.", namespace="bob")
    (hit,) = mem.recall("cat", namespace="bob", k=5)
    assert hit.memory_id == r.memory_id and "Miso" not in (
        projected(mem, r.memory_id).context or ""
    )


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE memories; --",
        'Alice" OR 1=1',
        "a* AND b~ NOT (c:d)",
        "[a-z]+(?=x)\\",
        "\u202eecilA\u202c",
        "🐶 dog 🐕",
        "SELECT * FROM postings",
        "%_%",
        "$ns $k",
    ],
)
def test_hostile_queries_are_answered_safely(mem: Memory, query: str) -> None:
    hits = mem.recall(query, namespace="alice", k=5)
    assert all(h.namespace == "alice" for h in hits)
    assert mem.stats()["memories"]["total"] == 6  # nothing changed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "empty"),
        ({"query": "nul\x00byte"}, "NUL"),
        ({"query": "x" * (2 << 20)}, "over the limit"),
        ({"query": 42}, "must be a string"),
        ({"k": 0}, "k must be"),
        ({"k": 10**6}, "k must be"),
        ({"k": True}, "k must be"),
        ({"namespace": "no such"}, "namespace must match"),
        ({"filters": {"a": {"b": 1}}}, "flat"),
        ({"min_position": 999}, "min_position"),
        ({"weights": {"telepathy": 1.0}}, "unknown channels"),
    ],
)
def test_bad_recall_calls_are_refused(mem: Memory, kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"query": "Alice", "namespace": "alice", "k": 5, **kwargs}
    with pytest.raises(ValidationError, match=message):
        mem.recall(**call)  # type: ignore[arg-type]


def test_unknown_namespace(mem: Memory) -> None:
    with pytest.raises(NamespaceNotFound):
        mem.recall("anything", namespace="carol")


def test_feedback_moves_a_memory_by_the_configured_weight(home: Path) -> None:
    """Score += feedback_weight * tanh(useful - not useful); ranks follow the scores.
    (Feedback is also a review for decay; that is switched off here to see this term alone.)"""
    import math

    settings = load_settings(home=home)
    settings = settings.model_copy(
        update={"query": settings.query.model_copy(update={"decay_weight": 0.0})}
    )
    with Memory.open(settings=settings) as mem:
        for i, text in enumerate(FACTS):
            mem.store(text, namespace="alice", occurred_at=datetime(2024, 5, 1 + i, tzinfo=UTC))
        query = "What does Alice do?"
        before = {h.memory_id: h.score for h in mem.recall(query, namespace="alice", k=5)}
        target = list(before)[-1]
        for _ in range(3):
            mem.feedback(target, useful=True)
        mem.feedback(next(iter(before)), useful=False)
        after = {h.memory_id: h.score for h in mem.recall(query, namespace="alice", k=5)}
        weight = mem.settings.query.feedback_weight
        assert after[target] - before[target] == pytest.approx(weight * math.tanh(3))
        first = next(iter(before))
        assert after[first] - before[first] == pytest.approx(-weight * math.tanh(1))
        ranked = sorted(after, key=lambda m: -after[m])
        assert ranked.index(target) <= list(before).index(target)


def test_rrf_fusion_is_selectable(home: Path) -> None:
    settings = load_settings(home=home)
    settings = settings.model_copy(
        update={"query": settings.query.model_copy(update={"fusion": "rrf"})}
    )
    with Memory.open(settings=settings) as m:
        for text in FACTS:
            m.store(text, namespace="alice")
        assert m.recall("name of the dog", namespace="alice", k=1)[0].text == FACTS[1]


DENIAL = (
    "Caroline told me about the support group she goes to on Tuesdays. She said the people "
    "there are kind, the coffee is awful, and the room is in the old library on Main Street. "
    "{} She plans to keep going through the summer."
)


def test_a_denial_is_kept_beside_what_it_denies(mem: Memory) -> None:
    """One word apart in a long text: with the real model the two are near-duplicates
    (cosine 0.99, the same SimHash), but the second denies what the first says, so it must
    stay recallable, not be merged away as a repeat."""
    liked = DENIAL.format("She likes the new counselor.")
    denied = DENIAL.format("She does not like the new counselor.")
    mem.store(liked, "care", occurred_at=datetime(2024, 3, 1, 12, tzinfo=UTC))
    r = mem.store(denied, "care", occurred_at=datetime(2024, 3, 9, 12, tzinfo=UTC))
    hits = mem.recall("Does Caroline like the new counselor?", "care", k=5, min_position=r.position)
    assert denied in [h.text for h in hits]


def test_past_views_are_bounded_built_under_the_home_and_dropped_by_an_erase(
    home: Path, mem: Memory
) -> None:
    """recall(as_of=...) builds a view of the whole log at that point: at most PAST_VIEWS are
    kept, under the data directory (not /tmp), and an erase drops every one of them."""
    receipts = [mem.store(f"Alice visited city number {i}.", namespace="alice") for i in range(7)]
    for r in receipts:
        mem.recall("which city", namespace="alice", k=3, as_of=r.position)
        built = sorted(p.name for p in (home / PASTS_DIR).iterdir())
        assert len(built) <= PAST_VIEWS
        assert str(r.position) in built  # the view just used is kept
    assert len(built) == PAST_VIEWS
    mem.erase("alice")
    assert not any((home / PASTS_DIR).iterdir())


def test_past_views_answer_concurrent_calls(mem: Memory) -> None:
    """Many threads ask for more points in time than are kept (views built and dropped while
    others answer); each gets the answer of its own point."""
    receipts = [mem.store(f"Bea learned language number {i}.", namespace="bea") for i in range(8)]
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            for i in range(n % 3, len(receipts), 2):
                hits = mem.recall("language", "bea", k=10, as_of=receipts[i].position)
                assert {h.memory_id for h in hits} == {r.memory_id for r in receipts[: i + 1]}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.fixture
def zone_on_another_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's zone set (TZ, a POSIX rule: no tz database needed) to one whose
    calendar day is not the UTC day right now."""
    hour = datetime.now(UTC).hour
    # west of UTC by hour+1 (an hour before local midnight), or east by 24-hour (just after)
    monkeypatch.setenv("TZ", f"ZZZ{hour + 1}" if hour <= 10 else f"ZZZ-{24 - hour}")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("zone_on_another_day")
def test_time_words_without_a_time_are_of_the_local_day(home: Path) -> None:
    """With no `now` and no `occurred_at`, the question and the memory are of this process's
    clock in its zone: "yesterday" is the local yesterday, and a memory stored now is dated by
    the local day (both were the UTC day, a day off for part of every day outside UTC)."""
    local, utc = datetime.now().astimezone(), datetime.now(UTC)
    assert local.date() != utc.date()

    def noon(day: date, tz: tzinfo | None) -> datetime:
        return datetime.combine(day - timedelta(days=1), dtime(12), tzinfo=tz)

    with Memory.open(home=home) as mem:
        ours = mem.store(
            "I had pasta for dinner.", "me", occurred_at=noon(local.date(), local.tzinfo)
        )
        mem.store("I had sushi for dinner.", "me", occurred_at=noon(utc.date(), UTC))
        now = mem.store("The boiler was repaired.", "me")
        hits = mem.recall("What did I have for dinner yesterday?", "me", k=2)
        assert hits[0].memory_id == ours.memory_id, [h.text for h in hits]
        assert hits[0].channels.get("temporal", 0) > hits[1].channels.get("temporal", 0)
        row = projected(mem, now.memory_id)
        assert row.context is not None
        assert row.context.startswith(f"{local.day} {local:%B} {local.year}:"), row.context


def test_a_view_built_into_a_folder_is_a_home_to_read_and_an_erase_reaches_it(
    home: Path, tmp_path: Path
) -> None:
    """`rebuild --as-of P --into DIR` left a folder nobody could query; it opens as a home
    (read-only, as of P). It holds plaintext, so an erase of the source drops its rows too."""
    with Memory.open(home=home) as mem:
        first = mem.store("Gus grows chillies on the balcony.", namespace="gus")
        mem.store("Gus moved to a flat without a balcony.", namespace="gus")
    view = tmp_path / "view"
    with Memory.open(home=home, as_of=first.position, projections_dir=view) as past:
        past.runtime.project()
    with Memory.open(home=view) as past:
        assert [h.memory_id for h in past.recall("balcony", "gus", k=5)] == [first.memory_id]
        with pytest.raises(MnemoError, match="read-only"):
            past.store("not here", "gus")

    def holding() -> list[Path]:
        return [p for p in view.rglob("*") if p.is_file() and b"chillies" in p.read_bytes()]

    assert holding()  # the view's projections hold the text in the clear
    with Memory.open(home=home) as mem:
        mem.erase("gus")
    assert holding() == []
    # Opened again it is rebuilt from the log, where the name and the text are gone.
    with Memory.open(home=view) as past, pytest.raises(NamespaceNotFound):
        past.recall("balcony", "gus", k=5)
