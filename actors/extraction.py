"""Rule-based extraction: facts, entities, a category, times and a subject-attribute claim.

No model and no network: regular expressions, small word lists and the capitalisation of
English text. It is deliberately conservative — an entity it misses costs one channel a
little recall; a wrong one only adds a weak candidate that fusion outweighs.

- facts: the sentences of the text;
- entities: capitalised spans (people, organisations, places, products) and dates, each with
  a normalised key (casefolded) so "Alice" and "alice" meet;
- category: preference, personal, plan, professional, health or other, by cue words;
- times: temporal expressions resolved against the event's time (see `timeexpr`);
- claim: who (subject) said what about which attribute, for typed links between memories
  ("I moved to Berlin" → subject I, attribute residence, value berlin).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mnemoflow.actors.timeexpr import MONTHS, WEEKDAYS, TimeRef, find_times
from mnemoflow.projections.text import tokenize

_LEXICON = tomllib.loads((Path(__file__).parent / "lexicon.toml").read_text("utf-8"))
CATEGORIES = ("preference", "personal", "plan", "professional", "health", "other")
ENTITY_TYPES = ("person", "organisation", "place", "product", "date", "other")

_CUE_PATTERNS = {
    category: re.compile(r"\b(?:" + "|".join(map(re.escape, cues)) + r")\b", re.IGNORECASE)
    for category, cues in _LEXICON["category_cues"].items()
}

_ORG_WORDS = frozenset(_LEXICON["organisation_words"])
_PLACE_WORDS = frozenset(_LEXICON["place_words"])
_PLACES = frozenset(_LEXICON["places"])
_PRODUCT_CUES = frozenset(_LEXICON["product_cues"])
_PLACE_CUES = frozenset(_LEXICON["place_cues"])
# Capitalised words that start sentences or are pronouns, not names.
NOT_NAMES = frozenset(_LEXICON["not_names"]) | frozenset(MONTHS) | frozenset(WEEKDAYS)

# "Mercy Hospital", "Bank of America", "iPhone 15": capitalised (or camel-case) words, joined
# by a few particles, with an optional model number.
_NAME_WORD = r"(?:[A-Z]|[a-z][A-Z])[\w'\u2019&.-]*"
_CAPITALISED = re.compile(
    rf"\b{_NAME_WORD}(?:\s+(?:of|the|de|du|van|von|la|le|&)?\s*{_NAME_WORD})*(?:\s\d{{1,3}}\b)?"
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[\"'\u201c(]?[A-Z0-9])")
# "Caroline: ...", "Mary Jane: ...", or a chat handle in lower case ("elise: ...").
_SPEAKER = re.compile(
    r"^\s*(?P<speaker>[A-Z][\w'\u2019-]*(?:\s[A-Z][\w'\u2019-]*)?|[a-z][a-z0-9_.-]{1,23}):\s+"
)
# Lower-case words that head a line as a label, not as someone speaking.
_LABELS = frozenset(_LEXICON["labels"])


@dataclass(frozen=True, slots=True)
class Entity:
    text: str
    type: str
    key: str  # casefolded, for matching across memories and queries


@dataclass(frozen=True, slots=True)
class Claim:
    """What the text asserts about its subject: (subject, attribute) = value, maybe negated."""

    subject: str
    attribute: str
    value: str
    negated: bool = False
    single_valued: bool = True  # a new value replaces the old (residence), or adds (likes)


@dataclass(frozen=True, slots=True)
class Extraction:
    facts: list[str]
    entities: list[Entity]
    category: str
    times: list[TimeRef]
    claim: Claim | None
    simhash: int
    speaker: str | None = None


def speaker_of(text: str) -> tuple[str | None, str]:
    """Who speaks in a chat line ("Caroline: I went hiking"), and what they say. A line
    without a speaker's name in front is all body."""
    found = _SPEAKER.match(text)
    if found is None or found.group("speaker") in _LABELS:
        return None, text
    return found.group("speaker"), text[found.end() :]


def extract(text: str, occurred_at: datetime) -> Extraction:
    """Everything the rules find in one memory's text, with times resolved at `occurred_at`."""
    speaker, body = speaker_of(text)
    times = find_times(body, occurred_at)
    entities = _entities(body, times)
    if speaker is not None:
        entities.insert(0, Entity(speaker, "person", speaker.casefold()))
    return Extraction(
        facts=sentences(body),
        entities=_unique(entities),
        category=categorise(body),
        times=times,
        claim=claim_of(body, speaker),
        simhash=simhash(body),
        speaker=speaker,
    )


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text.strip()) if s.strip()]


def categorise(text: str) -> str:
    scores = Counter({c: len(p.findall(text)) for c, p in _CUE_PATTERNS.items()})
    best, count = scores.most_common(1)[0] if scores else ("other", 0)
    return best if count > 0 else "other"


def query_entities(text: str) -> list[Entity]:
    """Entities of a question: the same rules, and no speaker prefix."""
    return _unique(_entities(text, []))


def _entities(text: str, times: list[TimeRef]) -> list[Entity]:
    found: list[Entity] = [Entity(t.text, "date", t.text.casefold()) for t in times]
    for m in _CAPITALISED.finditer(text):
        words = m.group(0).split()
        while words and words[0].casefold().strip("'\u2019") in NOT_NAMES:
            words = words[1:]  # "The Louvre" → "Louvre"; "I" alone → nothing
        while words and words[-1].casefold() in ("of", "the", "de", "&"):
            words = words[:-1]
        if not words:
            continue
        name = " ".join(words).rstrip(".'\u2019")
        if len(name) < 2 or name.casefold() in NOT_NAMES:
            continue
        if len(words) == 1 and _sentence_start(text, m.start()) and _INFLECTED.search(name):
            continue  # "Working at ..." opens a sentence; it names nothing
        before = text[: m.start()].split()[-1:] or [""]
        found.append(Entity(name, _entity_type(name, before[0].casefold()), name.casefold()))
    return found


_INFLECTED = re.compile(r"(?:ing|ed|ly|s)$")


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in '.!?:"\u201c'


def _entity_type(name: str, before: str) -> str:
    words = [w.casefold().strip(".,") for w in name.split()]
    if any(w in _ORG_WORDS for w in words) or (name.isupper() and len(name) >= 2):
        return "organisation"
    if any(w in _PLACE_WORDS for w in words) or name.casefold() in _PLACES:
        return "place"
    if before in _PLACE_CUES:
        return "place"
    if before in _PRODUCT_CUES or any(c.isdigit() for c in name):
        return "product"
    return "person"


def _unique(entities: list[Entity]) -> list[Entity]:
    seen: set[str] = set()
    out = []
    for e in entities:
        if e.key not in seen:
            seen.add(e.key)
            out.append(e)
    return out


# -- claims --------------------------------------------------------------------------------

_V = r"(?P<value>[\w'\u2019 -]{2,40}?)"
_END = (
    r"(?=[.,!?;]|\s+(?:and|but|because|since|with|now|these days|anymore|last|next|this|"
    r"yesterday|today|tomorrow|in \d{4}|a few|for)\b|$)"
)
_CLAIMS: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(pattern.replace("{V}", _V) + _END, re.IGNORECASE), attribute, single)
    for pattern, attribute, single in (
        (r"\b(?:live|living|lives|moved|relocated)\s+(?:to|in)\s+{V}", "residence", True),
        (r"\b(?:work|works|working)\s+(?:at|for)\s+{V}", "employer", True),
        (r"\b(?:joined|started at)\s+{V}", "employer", True),
        (r"\b(?:am|i'm|is)\s+(?P<value>\d{1,3})\s+years?\s+old\b", "age", True),
        (r"\bfavou?rite\s+(?P<attr>\w+)\s+(?:is|was)\s+{V}", "favorite", True),
        (r"\b(?:work|works|working)\s+as\s+(?:an?\s+)?{V}", "occupation", True),
        (
            r"\b(?P<neg>don't|do not|doesn't|does not|no longer|never)\s+(?:really\s+)?"
            r"(?:like|love|enjoy)\s+{V}",
            "likes",
            False,
        ),
        (r"\b(?:like|love|enjoy|likes|loves|enjoys)\s+{V}", "likes", False),
        (r"\ballergic to\s+{V}", "allergy", False),
    )
]
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|me)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:don't|do not|doesn't|does not|no longer|never|not)\b", re.I)


def claim_of(text: str, speaker: str | None) -> Claim | None:
    """The first claim the patterns recognise, with its subject: the speaker (or "self") when
    the text speaks in the first person, else the first name before the verb."""
    for pattern, attribute, single in _CLAIMS:
        m = pattern.search(text)
        if m is None:
            continue
        value = " ".join(tokenize(m.group("value"))) or m.group("value").casefold().strip()
        if not value:
            continue
        if "attr" in pattern.groupindex:
            attribute = f"favorite_{m.group('attr').casefold()}"
        head = text[: m.start()]
        negated = bool(m.groupdict().get("neg")) or bool(_NEGATION.search(head[-20:]))
        return Claim(_subject(head, speaker), attribute, value, negated, single)
    return None


def _subject(head: str, speaker: str | None) -> str:
    names: list[str] = [
        w for w in re.findall(r"\b[A-Z][a-z]+\b", head) if w.casefold() not in NOT_NAMES
    ]
    if names and not _FIRST_PERSON.search(head.split(names[-1])[-1]):
        return names[-1].casefold()
    return (speaker or "self").casefold()


# -- near-duplicates -----------------------------------------------------------------------


def simhash(text: str, bits: int = 64) -> int:
    """Charikar's SimHash over word unigrams and bigrams: near-identical texts differ in few
    bits. Unsigned 64-bit."""
    terms = tokenize(text)
    counts = Counter(terms + [f"{a} {b}" for a, b in itertools.pairwise(terms)])
    if not counts:
        return 0
    hashes = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            for f in counts
        ),
        np.uint64,
        len(counts),
    )
    # Each feature votes its count for the bits its hash has set, against those it has not.
    positions = _BIT_POSITIONS[:bits]
    votes = ((hashes[:, None] >> positions) & np.uint64(1)).astype(np.int64) * 2 - 1
    weights = np.fromiter(counts.values(), np.int64, len(counts)) @ votes
    return int(np.bitwise_or.reduce(np.uint64(1) << positions[weights > 0], initial=np.uint64(0)))


_BIT_POSITIONS = np.arange(64, dtype=np.uint64)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# -- stance ----------------------------------------------------------------------------------

_STANCE = _LEXICON["stance"]
_NEGATIONS = frozenset(_STANCE["negations"])
_AXES = {
    word: f"{axis}:{side}"
    for axis, sides in _STANCE["axes"].items()
    for side, words in enumerate(sides)
    for word in words
}
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(_STANCE["numbers"])}
_STANCE_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*")


def stance(text: str) -> frozenset[str]:
    """What a sentence asserts besides its topic: its polarity (an odd number of negations),
    the numbers it names and the side it takes on an axis of opposites (like / hate, open /
    closed...). "I like sushi" and "I don't like sushi", or "2 cats" and "3 cats", share a
    topic and nearly all their words but differ here, so neither is a duplicate of the other."""
    words = _STANCE_WORDS.findall(text.casefold().replace("\u2019", "'"))
    negations = sum(w in _NEGATIONS or w.endswith("n't") for w in words)
    marks = {f"n:{_NUMBER_WORDS.get(w, w).replace(',', '')}" for w in words if w[0].isdigit()}
    marks |= {f"n:{_NUMBER_WORDS[w]}" for w in words if w in _NUMBER_WORDS}
    marks |= {_AXES[w] for w in words if w in _AXES}
    if negations % 2:
        marks.add("negated")
    return frozenset(marks)
