"""A synthetic corpus that looks like an agent's long-term memory, generated from a seed.

Many people, places, organisations, foods, hobbies, pets and dates, in varied sentences of
several kinds (moves, jobs, preferences, plans, health, family, pets, trips); some memories
later update an earlier fact about the same person (a new city, a new employer), and some
restate an earlier memory almost word for word (near-duplicates). The same seed gives the
same corpus, so benchmarks compare like with like.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

_VOCAB = tomllib.loads((Path(__file__).parent / "corpus.toml").read_text("utf-8"))
FIRST, LAST, CITIES, ORGS, FOODS, HOBBIES, PETS, JOBS, RELATIVES, MONTHS = (
    _VOCAB[name]
    for name in (
        "first", "last", "cities", "orgs", "foods", "hobbies", "pets", "jobs", "relatives",
        "months",
    )
)  # fmt: skip
TEMPLATES: dict[str, list[str]] = _VOCAB["templates"]
KINDS = tuple(TEMPLATES)


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    occurred_at: datetime
    person: str
    kind: str
    duplicate_of: int | None = None  # index of the memory it restates


def people(n: int, rng: random.Random) -> list[str]:
    names = [f"{first} {last}" for last in LAST for first in FIRST]
    rng.shuffle(names)
    return names[:n]


def corpus(n: int, seed: int = 7, *, start: datetime | None = None) -> Iterator[Item]:
    """n memories, about sqrt(n)-ish people, over two years of event time."""
    rng = random.Random(seed)
    start = start or datetime(2024, 1, 1, tzinfo=UTC)
    cast = people(max(10, min(len(FIRST) * len(LAST), int(n**0.5) * 2)), rng)
    step = timedelta(days=730) / max(n, 1)
    made: list[Item] = []
    for i in range(n):
        when = start + step * i
        if made and rng.random() < 0.03:  # a near-duplicate restatement
            j = rng.randrange(len(made))
            text = made[j].text.rstrip(".!") + rng.choice(["!", ".", " again.", ", as I said."])
            item = Item(text, when, made[j].person, made[j].kind, duplicate_of=j)
        else:
            person = rng.choice(cast)
            kind = rng.choice(KINDS)
            foods = FOODS
            text = rng.choice(TEMPLATES[kind]).format(
                name=person.split()[0] if rng.random() < 0.5 else person,
                city=rng.choice(CITIES),
                month=rng.choice(MONTHS),
                day=rng.randint(1, 28),
                org=rng.choice(ORGS),
                job=rng.choice(JOBS),
                food=rng.choice(foods),
                food2=rng.choice(foods),
                hobby=rng.choice(HOBBIES),
                pet=rng.choice(PETS),
                relative=rng.choice(RELATIVES),
            )
            item = Item(text, when, person, kind)
        made.append(item)
        yield item


def queries(n: int, seed: int = 11) -> list[str]:
    """Questions an agent would ask of such a memory."""
    rng = random.Random(seed)
    cast = people(len(FIRST) * len(LAST), random.Random(7))
    forms = [
        "Where does {name} live now?",
        "Where does {first} work?",
        "What food does {first} like?",
        "What is the name of {first}'s pet?",
        "Who is allergic to {food}?",
        "Who is planning a trip to {city}?",
        "What hobby did {first} pick up?",
        "What happened with {first}'s {relative}?",
        "{first} {hobby}",
        "anything about {city} last month?",
    ]
    out = []
    for _ in range(n):
        name = rng.choice(cast)
        out.append(
            rng.choice(forms).format(
                name=name,
                first=name.split()[0],
                food=rng.choice(FOODS),
                city=rng.choice(CITIES),
                relative=rng.choice(RELATIVES),
                hobby=rng.choice(HOBBIES),
            )
        )
    return out
