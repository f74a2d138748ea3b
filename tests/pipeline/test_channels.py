"""Entity, temporal and graph channels, consolidation, decay and the audit of derived
events, end to end through the Python API (real model, DuckDB, FAISS, inline actors)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.schema import ACTOR_PROGRESS
from mnemoflow.pipeline.api.config import load_settings

T = datetime(2024, 6, 10, 12, tzinfo=UTC)  # a Monday


@pytest.fixture
def mem(home: Path):  # type: ignore[no-untyped-def]
    with Memory.open(home=home) as m:
        yield m


def test_the_entity_channel_finds_a_rare_name(mem: Memory) -> None:
    for i in range(30):
        mem.store(f"Note {i}: the weather was mild and the train was late.", namespace="n")
    target = mem.store("Had lunch with Zorblat from accounting.", namespace="n")
    hits = mem.recall("Zorblat", namespace="n", k=3)
    assert hits[0].memory_id == target.memory_id
    assert hits[0].channels["entity"] > 0


def test_the_temporal_channel_reads_time_words_against_now(mem: Memory) -> None:
    days = {"walked the dog": 9, "baked bread": 3, "painted the fence": 1}
    ids = {}
    for text, ago in days.items():
        ids[text] = mem.store(
            f"I {text} in the park.", namespace="t", occurred_at=T - timedelta(days=ago)
        ).memory_id
    hits = mem.recall("what did I do yesterday?", namespace="t", k=3, now=T)
    assert hits[0].memory_id == ids["painted the fence"]
    assert hits[0].channels["temporal"] > 0
    last_week = mem.recall("what did I do last week?", namespace="t", k=2, now=T)
    # The calendar week before Monday 10 June: the 3rd to the 9th, not the 1st.
    assert {h.memory_id for h in last_week} == {ids["painted the fence"], ids["baked bread"]}


def test_the_speaker_channel_prefers_what_the_named_person_said(mem: Memory) -> None:
    """ "What does Ana enjoy?" is about Ana: her own line beats Ben's line about himself that
    mentions her, which the text channels alone rank first (it shares "Ana" and "enjoy")."""
    for i in range(12):
        mem.store(f"Ana: The bus {i} was late again this morning.", namespace="s")
        mem.store(f"Ben: My neighbour {i} mowed the lawn.", namespace="s")
    hers = mem.store("Ana: Pottery on weekends is my favourite thing.", namespace="s").memory_id
    his = mem.store("Ben: Ana, I enjoy chess more than anything.", namespace="s").memory_id
    weights = dict(load_settings().query.weights)
    plain = mem.recall("What does Ana enjoy?", "s", 2, weights={**weights, "speaker": 0})
    assert plain[0].memory_id == his and "speaker" not in plain[0].channels
    hits = mem.recall("What does Ana enjoy?", "s", 2)
    assert hits[0].memory_id == hers and hits[0].channels["speaker"] == 1.0
    assert "speaker" not in next(h for h in hits if h.memory_id != hers).channels
    # A handle in lower case is a speaker too; a label ("note: ...") is not.
    mine = mem.store("elise: Surfing is what I enjoy.", namespace="s").memory_id
    mem.store("note: Elise enjoy list pending", namespace="s")
    assert mem.recall("What does Elise enjoy?", "s", 1)[0].memory_id == mine


def test_a_name_the_chat_calls_a_speaker_by_is_learned(mem: Memory) -> None:
    """Emi writes as "Emi", lee calls her Kate: a question about Kate is about Emi's lines.
    Learned from the lines as they are now: a third address, stored after a first query,
    is what makes "kate" an alias (two votes are not enough)."""
    lines = [
        "Emi: Hello there, nice to meet you.",
        "lee: Hey Kate! Nice to meet you too.",
        "Emi: Pottery on weekends is what I love most.",
        "lee: Thank you Kate, I will try a class about what I love: Kate said it helps.",
        "Emi: The weather was grey all week.",
    ]
    for i in range(10):
        mem.store(f"lee: The train {i} was late, Kate mentioned it too.", namespace="c")
    ids = [mem.store(line, namespace="c").memory_id for line in lines]
    question = "What does Kate love?"
    assert mem.recall(question, "c", 1)[0].memory_id != ids[2]
    third = mem.store("lee: Good night Kate!", namespace="c").memory_id
    hits = mem.recall(question, "c", 1)
    assert hits[0].memory_id == ids[2] and hits[0].channels["speaker"] == 1.0
    # A line forgotten teaches nothing: without its vote, two remain.
    mem.forget(third)
    hits = mem.recall(question, "c", 1)
    assert hits[0].memory_id != ids[2] and "speaker" not in hits[0].channels


def test_a_newer_claim_supersedes_the_older_which_stays_findable(mem: Memory) -> None:
    for i, chore in enumerate(["laundry", "dishes", "groceries", "taxes", "the car", "emails"]):
        mem.store(f"Alice: I still have to do {chore} today.", namespace="a", occurred_at=T)
        mem.store(f"Bob: My cousin {i} enjoys cooking pasta.", namespace="a", occurred_at=T)
    old = mem.store("Alice: I live in Paris.", namespace="a", occurred_at=T)
    new = mem.store("Alice: I moved to Berlin.", namespace="a", occurred_at=T + timedelta(1))
    hits = mem.recall("Where does Alice live?", namespace="a", k=2)
    assert [h.memory_id for h in hits] == [new.memory_id, old.memory_id]
    assert hits[1].status == "superseded" and hits[1].zone == "archived"
    assert {"superseded_by": [new.memory_id]} in hits[1].provenance
    # The archive still answers, next to what replaced it.
    paris = mem.recall("Paris", namespace="a", k=2)
    assert old.memory_id in [h.memory_id for h in paris]
    decisions = [e for e in mem.audit(old.memory_id) if e.stream == "consolidated"]
    assert len(decisions) == 1 and decisions[0].memory_id == new.memory_id
    payload = decisions[0].to_json()["payload"]
    assert payload["decision"] == "supersedes" and payload["target"] == old.memory_id
    assert [i["stream"] for i in payload["inputs"]] == ["linked", "extracted"]


def test_a_near_duplicate_is_merged_not_returned_twice(mem: Memory) -> None:
    text = "I adopted a golden retriever puppy named Max last weekend."
    first = mem.store(text, namespace="d", occurred_at=T)
    again = mem.store(text, namespace="d", occurred_at=T + timedelta(hours=1))
    mem.store("The quarterly report is due on Friday.", namespace="d")
    hits = mem.recall("What is my dog called?", namespace="d", k=3)
    ids = [h.memory_id for h in hits]
    assert first.memory_id in ids and again.memory_id not in ids
    top = hits[ids.index(first.memory_id)]
    assert {"merged_duplicates": [again.memory_id]} in top.provenance


def test_category_filters_and_explanations(mem: Memory) -> None:
    mem.store("My doctor changed my allergy medication.", namespace="c")
    mem.store("I love spicy ramen and jazz.", namespace="c")
    hits = mem.recall("what do I like?", namespace="c", k=5, filters={"category": "health"})
    assert [h.category for h in hits] == ["health"]
    (hit,) = mem.recall("ramen", namespace="c", k=1)
    assert hit.category == "preference" and hit.zone in ("active", "warm", "cold", "archived")
    assert set(hit.to_json()) >= {"category", "zone", "channels", "provenance"}


def test_the_graph_channel_spreads_from_the_best_memories(mem: Memory) -> None:
    mem.store("Quentin Vasquez-Oduya joined our chess club.", namespace="g")
    for i in range(15):
        mem.store(f"Unrelated errand number {i} about groceries.", namespace="g")
    friend = mem.store("Quentin Vasquez-Oduya plays the oboe on Sundays.", namespace="g")
    hits = mem.recall("Who joined the chess club?", namespace="g", k=3)
    reached = {h.memory_id: h.channels.get("graph", 0.0) for h in hits}
    assert reached.get(friend.memory_id, 0.0) > 0  # linked by the shared name


def test_feedback_reviews_the_memory_in_decay(mem: Memory) -> None:
    r = mem.store("I keep my passport in the blue drawer.", namespace="f", occurred_at=T)
    mem.feedback(r.memory_id, useful=True)
    mem.feedback(r.memory_id, useful=False)
    mem.sync()
    schedules = [e.to_json()["payload"] for e in mem.events(stream="decay")]
    assert [s["grade"] for s in schedules] == [3, 3, 1]
    assert schedules[2]["lapses"] == 1


def test_decay_reads_a_schedule_back_from_its_stream_after_a_restart(home: Path) -> None:
    settings = load_settings(home=home)
    with Memory.open(settings=settings) as mem:
        r = mem.store("The spare key is under the flowerpot.", namespace="f", occurred_at=T)
        mem.feedback(r.memory_id, useful=False)
        mem.sync()
    with Memory.open(settings=settings) as mem:  # a new decay actor, holding nothing
        mem.feedback(r.memory_id, useful=True)
        mem.sync()
        schedules = [e.to_json()["payload"] for e in mem.events(stream="decay")]
    assert [(s["grade"], s["reps"], s["lapses"]) for s in schedules] == [
        (3, 1, 0),
        (1, 2, 1),
        (3, 3, 1),
    ]
    assert schedules[2]["stability"] > schedules[1]["stability"]


def test_stateful_actors_restart_where_they_left_off(home: Path, tmp_path: Path) -> None:
    texts = [f"Zed met Ola in Lisbon, visit {i}." for i in range(10)]
    settings = load_settings(home=home)
    with Memory.open(settings=settings) as mem:
        for text in texts[:6]:
            mem.store(text, namespace="r", occurred_at=T)
        mem.sync()
    with Memory.open(settings=settings) as mem:  # new actors: the linker restores its state
        for text in texts[6:]:
            mem.store(text, namespace="r", occurred_at=T)
        mem.sync()
        restarted = Counter(
            (e.to_json()["payload"]["edges"].__len__()) for e in mem.events(stream="linked")
        )
        derived = _derived(mem)
    other = load_settings(home=tmp_path / "one-go")
    with Memory.open(settings=other) as mem:
        for text in texts:
            mem.store(text, namespace="r", occurred_at=T)
        mem.sync()
        one_go = Counter(
            (e.to_json()["payload"]["edges"].__len__()) for e in mem.events(stream="linked")
        )
        assert _derived(mem) == derived
    assert restarted == one_go


def _derived(mem: Memory) -> Counter[tuple[str, str]]:
    """Events per stream and kind, but for the markers of how far an actor read when it
    derived nothing (one per run that did: a restart adds one)."""
    return Counter(
        (stream, e.kind)
        for stream in mem.stats()["streams"]
        for e in mem.events(stream=stream)
        if e.kind != ACTOR_PROGRESS
    )
