"""Who a name in a question means: aliases learned from how people in a chat address each other.

In real chats a person writes under a handle ("Emi") while the others call them by their name
("Kate"), and questions use the name. The evidence, from a namespace's active chat lines:
- a self-introduction, "I'm Kate" or "my name is Kate", in a line of Emi's (3 votes for Emi);
- an address, "Hey Kate!", "Thank you Kate", "..., Kate!", in a line that answers one of Emi's
  (the memory stored just before it is Emi's, and this line is someone else's) (1 vote).
A name becomes an alias of the speaker most of its votes point to when it has 3 votes or more,
three quarters of them for that speaker, it is no speaker's own name, and the namespace writes
it capitalised (in lower case at most a tenth as often): "..., Take care!" names no one.

It is learned at query time from the projection's rows, so an erased or forgotten line teaches
nothing; `readparts.Rows` keeps each table's evidence and counts, laid over like its rows.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mnemoflow.actors.extraction import NOT_NAMES, speaker_of

_NAME = r"([A-Z][a-z]{1,20})"
_SELF = re.compile(
    r"\b(?:I'm|I\u2019m|I am|[Mm]y name is|[Mm]y name's|[Cc]all me)\s+" + _NAME + r"\b"
)
_CUES = (
    r"[Hh]ey|[Hh]i|[Hh]ello|[Tt]hanks|[Tt]hank you|[Bb]ye|[Mm]orning|[Nn]ight|[Cc]ongrats|"
    r"[Cc]ongratulations|[Ww]ow|[Oo]h|[Hh]aha|[Yy]es|[Ss]orry|[Gg]ood (?:morning|night|luck)|"
    r"[Ss]ee you(?: tomorrow)?|[Tt]alk (?:to you )?(?:soon|tomorrow|later)"
)
_ADDRESS = (
    re.compile(r"\b(?:" + _CUES + r")[,!.]?\s+" + _NAME + r"\b"),
    re.compile(r",\s+" + _NAME + r"\s*[!?.]"),
)
# A coarse filter (RE2, over a whole column at once) for the lines worth the patterns above.
_MAYBE = (
    r"\b(?:I'm|I\x{2019}m|I am|name is|name's|call me|" + _CUES + r")[,!.]?\s+[A-Z][a-z]"
    r"|,\s+[A-Z][a-z]{1,20}\s*[!?.]"
)

SELF_VOTES, ADDRESS_VOTES, MIN_VOTES, MAJORITY, LOWER_SHARE = 3, 1, 3, 0.75, 0.1
Tally = dict[str, Counter[str]]  # name -> speaker -> votes


@dataclass(frozen=True, slots=True)
class Evidence:
    """One line's evidence: `name` (casefolded) in the line `doc` of `speaker`, which
    introduces the speaker (`own`) or addresses whoever spoke in `prev` (the doc before)."""

    doc: int
    name: str
    speaker: str
    own: bool
    prev: int | None


def evidence(table: pa.Table) -> list[Evidence]:
    """The evidence in a table of rows as `readrows.hits` reads them (active rows only)."""
    active = pc.equal(table.column("status"), "active")
    maybe = pc.and_(active, pc.match_substring_regex(table.column("text"), _MAYBE))
    rows = table.filter(pc.fill_null(maybe, False))
    out: list[Evidence] = []
    columns = (rows.column(c).to_pylist() for c in ("doc", "text", "prev_doc"))
    for doc, text, prev in zip(*columns, strict=True):
        speaker, body = speaker_of(text)
        if speaker is None:
            continue
        who = speaker.casefold()
        for found in _SELF.finditer(body):
            out.append(Evidence(doc, found.group(1).casefold(), who, True, prev))
        named = {m.group(1).casefold() for pattern in _ADDRESS for m in pattern.finditer(body)}
        out.extend(Evidence(doc, name, who, False, prev) for name in sorted(named))
    return out


def census(table: pa.Table, name: str) -> tuple[int, int]:
    """How often the active rows write `name` (casefolded) capitalised, and in lower case."""
    texts = table.filter(pc.fill_null(pc.equal(table.column("status"), "active"), False))
    column = texts.column("text")
    capital = pc.count_substring_regex(column, rf"\b{name.capitalize()}\b")
    lower = pc.count_substring_regex(column, rf"\b{name}\b")
    return int(pc.sum(capital).as_py() or 0), int(pc.sum(lower).as_py() or 0)


@dataclass(frozen=True, slots=True)
class Vote:
    doc: int  # the line it comes from
    name: str
    speaker: str  # whom the name would be
    weight: int


def votes(found: Iterable[Evidence], speaker_at: Mapping[int, str]) -> list[Vote]:
    """The evidence as votes: a self-introduction for its speaker, an address for the
    speaker of the line it answers (`speaker_at`: the speakers of those lines)."""
    out = []
    for item in found:
        if item.name in NOT_NAMES:
            continue
        if item.own:
            out.append(Vote(item.doc, item.name, item.speaker, SELF_VOTES))
            continue
        addressed = speaker_at.get(item.prev) if item.prev is not None else None
        if addressed is not None and addressed != item.speaker:
            out.append(Vote(item.doc, item.name, addressed, ADDRESS_VOTES))
    return out


def tally(cast: Iterable[Vote], sign: int = 1, into: Tally | None = None) -> Tally:
    """Votes added up per name and speaker (`sign` -1 takes them away again)."""
    out: Tally = into if into is not None else defaultdict(Counter)
    for vote in cast:
        out[vote.name][vote.speaker] += sign * vote.weight
    return out


def learn(
    tallied: Mapping[str, Counter[str]],
    speakers: set[str],
    counts: Callable[[str], tuple[int, int]],
) -> dict[str, str]:
    """Alias (casefolded) → speaker (casefolded). `speakers`: every speaker's own name;
    `counts`: `census` over the rows."""
    aliases = {}
    for name, votes_for in sorted(tallied.items()):
        if name in speakers or not votes_for:
            continue
        (speaker, top), total = votes_for.most_common(1)[0], sum(votes_for.values())
        if top < MIN_VOTES or top < MAJORITY * total:
            continue
        capital, lower = counts(name)
        if lower <= LOWER_SHARE * capital:
            aliases[name] = speaker
    return aliases
