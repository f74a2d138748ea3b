"""Aliases learned from how people in a chat address each other (`actors.query.aliases`)."""

from __future__ import annotations

import pyarrow as pa

from mnemoflow.actors.query import aliases


def _rows(lines: list[str], status: str = "active") -> pa.Table:
    """Rows as `readrows.hits` reads them (the columns the learner reads), stored in order."""
    docs = list(range(1, len(lines) + 1))
    return pa.table(
        {
            "doc": pa.array(docs, pa.int64()),
            "text": lines,
            "status": [status] * len(lines),
            "prev_doc": pa.array([None, *docs[:-1]], pa.int64()),
        }
    )


def _learn(lines: list[str]) -> dict[str, str]:
    table = _rows(lines)
    speakers = {i + 1: line.split(":")[0].casefold() for i, line in enumerate(lines)}
    cast = aliases.votes(aliases.evidence(table), speakers)
    return aliases.learn(
        aliases.tally(cast), set(speakers.values()), lambda n: aliases.census(table, n)
    )


def test_addresses_and_introductions_vote_for_the_speaker_answered() -> None:
    chat = ["Emi: hi", "lee: Hey Kate!", "Emi: ok", "lee: Thanks Kate, see you", "Emi: bye"]
    assert _learn(chat) == {}  # two addresses: not yet
    assert _learn([*chat, "lee: Good night Kate!"]) == {"kate": "emi"}
    assert _learn(["Emi: Hi, I'm Kate. You?", "lee: lee here"]) == {"kate": "emi"}


def test_words_that_are_not_names_are_not_learned() -> None:
    # "Take care!" after a comma three times, but "take" is written in lower case too.
    chat = []
    for _ in range(3):
        chat += ["Emi: I have to take the bus", "lee: Sure, Take care!"]
    assert _learn(chat) == {}
    # A speaker's own name is never another's alias; split votes elect no one.
    assert _learn(["Emi: a", "lee: Hey Emi!", "Emi: b", "lee: Hey Emi!", "Emi: c"]) == {}
    split = ["Emi: a", "lee: Hey Jo!", "Bob: b", "lee: Hey Jo!", "Emi: c", "lee: Hey Jo!"]
    assert _learn(split) == {}


def test_inactive_lines_teach_nothing() -> None:
    table = _rows(["Emi: Hi, I'm Kate."], status="forgotten")
    assert aliases.evidence(table) == []
    assert aliases.census(table, "kate") == (0, 0)
