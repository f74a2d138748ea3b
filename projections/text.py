"""The lexical tokeniser: Unicode words, case-folded, stop words dropped, lightly stemmed.

Light stemming folds plurals and -ing/-ed forms and a final -e onto one stem ("loves",
"loved", "loving", "love" -> "lov"), which is what lexical recall over chat needs; it never
touches numbers, and it is deterministic, so postings rebuilt from the log are identical.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import datetime

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_VOWELS = frozenset("aeiouy")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don
    down during each few for from further had hadn has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just ll let me more most my
    myself no nor not now of off on once only or other ought our ours ourselves out over own re
    s same she should shouldn so some such t than that the their theirs them themselves then
    there these they this those through to too under until up ve very was wasn we were weren
    what when where which while who whom why will with won would wouldn you your yours yourself
    yourselves d m o y
    """.split()  # noqa: SIM905 -- a word list reads best as words
)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6 and _VOWELS & set(word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) >= 5 and _VOWELS & set(word[:-2]):
        word = _undouble(word[:-2])
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "lsz" + "aeiou":
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """The text's index terms, in order (repeats kept: term frequency counts them)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [stem(w) for w in _WORD.findall(folded) if w not in STOP_WORDS]


_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)


def date_words(moment: datetime | None) -> str:
    """A day as words a question may use: "8 May 2023". The months are named here, not by
    strftime: the same words whatever the locale, in a seventh of the time."""
    if moment is None:
        return ""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def dated(text: str, moment: datetime | None) -> str:
    """The text with its date in front, as it is indexed and embedded."""
    words = date_words(moment)
    return f"{words}: {text}" if words else text


def in_context(text: str, moment: datetime | None, previous: str) -> str:
    """The text with the memory before it, as one passage."""
    return dated(f"{previous} {text}", moment)
