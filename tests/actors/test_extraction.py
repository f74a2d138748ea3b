"""The rule-based extractor: entities, category, claims, times and SimHash."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from mnemoflow.actors.extraction import (
    categorise,
    extract,
    hamming,
    query_entities,
    sentences,
    simhash,
    speaker_of,
)
from mnemoflow.pipeline.bench.corpus import corpus
from mnemoflow.projections.text import tokenize

WHEN = datetime(2023, 5, 8, tzinfo=UTC)


def _entities(text: str) -> dict[str, str]:
    return {e.text: e.type for e in extract(text, WHEN).entities}


def test_entities_are_typed_and_the_speaker_is_a_person() -> None:
    found = _entities(
        "Melanie: We moved to Berlin last month. Dr. Smith at Mercy Hospital and "
        "IBM people came, and I bought a new iPhone 15."
    )
    assert found["Melanie"] == "person"
    assert found["Berlin"] == "place"
    assert found["last month"] == "date"
    assert found["Mercy Hospital"] == "organisation"
    assert found["IBM"] == "organisation"
    assert found["iPhone 15"] == "product"
    assert found["Dr. Smith"] == "person"


def test_sentence_openers_and_pronouns_are_not_entities() -> None:
    found = _entities("Thanks! I think The weather is nice. Working late again. Wow.")
    assert found == {}


def test_entity_keys_are_casefolded_and_unique() -> None:
    found = extract("Alice met Alice and ALICE", WHEN).entities
    assert [e.key for e in found].count("alice") == 1
    assert {e.key for e in query_entities("Where does alice's friend Bob live?")} == {"bob"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I love hiking and my favorite food is sushi", "preference"),
        ("My doctor says the allergy medication helps", "health"),
        ("I got promoted at work, my boss was happy", "professional"),
        ("We are planning to visit next month", "plan"),
        ("My sister's wedding and my parents' house", "personal"),
        ("The sky is blue", "other"),
    ],
)
def test_category_follows_the_cues(text: str, category: str) -> None:
    assert categorise(text) == category


@pytest.mark.parametrize(
    ("text", "subject", "attribute", "value", "negated", "single"),
    [
        ("Alice: I moved to Berlin last month!", "alice", "residence", "berlin", False, True),
        ("Bob lives in Paris, France.", "bob", "residence", "paris", False, True),
        ("I work at Acme Corp now", "self", "employer", "acm corp", False, True),
        ("My favorite food is sushi.", "self", "favorite_food", "sushi", False, True),
        ("I am 34 years old", "self", "age", "34", False, True),
        ("Dan: I don't like jazz.", "dan", "likes", "jazz", True, False),
        ("I love pottery and painting", "self", "likes", "pottery", False, False),
    ],
)
def test_claims_name_subject_attribute_and_value(
    text: str, subject: str, attribute: str, value: str, negated: bool, single: bool
) -> None:
    claim = extract(text, WHEN).claim
    assert claim is not None
    assert (claim.subject, claim.attribute, claim.value) == (subject, attribute, value)
    assert (claim.negated, claim.single_valued) == (negated, single)


def test_no_claim_where_none_is_made() -> None:
    assert extract("What a lovely afternoon.", WHEN).claim is None


def test_times_resolve_against_the_event_time() -> None:
    (time,) = extract("Caroline: I went to the group yesterday.", WHEN).times
    assert time.start == datetime(2023, 5, 7, tzinfo=UTC)


def test_facts_are_the_sentences() -> None:
    assert sentences("I ran. Then I swam! Did you? 3 laps.") == [
        "I ran.",
        "Then I swam!",
        "Did you?",
        "3 laps.",
    ]


def test_simhash_keeps_near_duplicates_close_and_others_apart() -> None:
    a = simhash("I adopted a golden retriever puppy named Max last weekend")
    b = simhash("I adopted a golden retriever puppy named Max last weekend!")
    c = simhash("I adopted a golden retriever puppy called Max last weekend")
    d = simhash("The quarterly revenue report is due on Friday morning")
    assert hamming(a, b) == 0
    assert hamming(a, c) < hamming(a, d)
    assert hamming(a, d) > 16
    assert 0 <= a < 2**64


def _simhash_bit_by_bit(text: str, bits: int = 64) -> int:
    """Charikar's definition, one feature and one bit at a time."""
    terms = tokenize(text)
    features = terms + [f"{a} {b}" for a, b in itertools.pairwise(terms)]
    weights = [0] * bits
    for feature, count in Counter(features).items():
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        for i in range(bits):
            weights[i] += count if h >> i & 1 else -count
    return sum(1 << i for i in range(bits) if weights[i] > 0)


def test_simhash_is_the_definition_computed_bit_by_bit() -> None:
    """The extractor logs it: the same text must keep the same hash across versions."""
    texts = [c.text for c in corpus(300)] + ["", "a", "the the the", "Hi, hi! HI?"]
    for text in texts:
        assert simhash(text) == _simhash_bit_by_bit(text), text
    assert simhash(texts[0], 32) == _simhash_bit_by_bit(texts[0], 32) < 2**32


@pytest.mark.parametrize(
    ("line", "speaker"),
    [
        ("Caroline: I went hiking.", "Caroline"),
        ("Mary Jane: hi there", "Mary Jane"),
        ("elise: omg yes", "elise"),
        ("note: call the plumber", None),
        ("https://example.org/a: b", None),
        ("I said: no", None),
        ("no speaker here", None),
    ],
)
def test_the_speaker_of_a_chat_line(line: str, speaker: str | None) -> None:
    who, body = speaker_of(line)
    assert who == speaker
    assert body == (line.split(": ", 1)[1] if speaker else line)
