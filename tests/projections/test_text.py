"""The lexical tokeniser, and dates as words."""

from __future__ import annotations

from datetime import UTC, datetime

from mnemoflow.projections.text import date_words, dated, stem, tokenize


def test_lowercase_unicode_words_without_stop_words() -> None:
    assert tokenize("The CAFÉ in Zürich, and the café!") == ["café", "zürich", "café"]
    assert tokenize("I am at the") == []


def test_light_stemming_folds_inflections() -> None:
    for forms in (
        ["loves", "loved", "loving", "love"],
        ["dogs", "dog"],
        ["parties", "party"],
        ["stopped", "stop", "stopping"],
    ):
        assert len({stem(f) for f in forms}) == 1, forms


def test_numbers_and_short_words_are_kept_as_they_are() -> None:
    assert tokenize("In 2023 I ran 5k") == ["2023", "ran", "5k"]


def test_hostile_strings_tokenise_harmlessly() -> None:
    assert tokenize("'; DROP TABLE postings; --") == ["drop", "tabl", "post"]
    assert tokenize("a* OR b~2 (c) [d] {e} ^f $") == ["b", "2", "c", "e", "f"]
    assert tokenize("\u202eevil\u202c 😀 \x00") == ["evil"]


def test_dates_in_words_name_every_month_whatever_the_locale() -> None:
    days = [datetime(2023, month, 1 + month, 13, tzinfo=UTC) for month in range(1, 13)]
    assert [date_words(d) for d in days][:3] == [
        "2 January 2023",
        "3 February 2023",
        "4 March 2023",
    ]
    assert [date_words(d) for d in days] == [f"{d.day} {d:%B} {d.year}" for d in days]  # C locale
    assert date_words(None) == "" and dated("text", None) == "text"
    assert dated("went home", days[4]) == "6 May 2023: went home"
