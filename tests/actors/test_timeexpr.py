"""Temporal expressions resolve against the reference time, to calendar intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from mnemoflow.actors.timeexpr import find_times

REF = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("I went yesterday", date(2023, 5, 7), date(2023, 5, 8)),
        ("today was long", date(2023, 5, 8), date(2023, 5, 9)),
        ("the day before yesterday", date(2023, 5, 6), date(2023, 5, 7)),
        ("see you tomorrow", date(2023, 5, 9), date(2023, 5, 10)),
        ("last week was fun", date(2023, 5, 1), date(2023, 5, 8)),
        ("next month", date(2023, 6, 1), date(2023, 7, 1)),
        ("last year", date(2022, 1, 1), date(2023, 1, 1)),
        ("3 days ago I ran", date(2023, 5, 5), date(2023, 5, 6)),
        ("a few days ago", date(2023, 5, 5), date(2023, 5, 6)),
        ("two months ago", date(2023, 3, 1), date(2023, 4, 1)),
        ("We met last Friday", date(2023, 5, 5), date(2023, 5, 6)),
        ("on Monday", date(2023, 5, 1), date(2023, 5, 2)),
        ("next Friday", date(2023, 5, 12), date(2023, 5, 13)),
        ("in May I saw it", date(2023, 5, 1), date(2023, 6, 1)),
        ("in August", date(2022, 8, 1), date(2022, 9, 1)),  # said in May: last August
        ("on May 7, 2023 we met", date(2023, 5, 7), date(2023, 5, 8)),
        ("the 7th of June 2021", date(2021, 6, 7), date(2021, 6, 8)),
        ("2023-01-05", date(2023, 1, 5), date(2023, 1, 6)),
        ("last summer", date(2022, 6, 1), date(2022, 9, 1)),
        ("back in 2019", date(2019, 1, 1), date(2020, 1, 1)),
        # Numeric dates: with dots day.month (European); with slashes month/day unless the
        # first number cannot be a month.
        ("on 16.01.2024", date(2024, 1, 16), date(2024, 1, 17)),
        ("on 5.6.24", date(2024, 6, 5), date(2024, 6, 6)),
        ("on 01/16/2024", date(2024, 1, 16), date(2024, 1, 17)),
        ("on 16/01/2024", date(2024, 1, 16), date(2024, 1, 17)),
        ("on 05/06/2024", date(2024, 5, 6), date(2024, 5, 7)),
        ("in the spring of 2024", date(2024, 3, 1), date(2024, 6, 1)),
        ("winter 2022", date(2022, 12, 1), date(2023, 3, 1)),
    ],
)
def test_expressions_resolve_against_the_reference(text: str, start: date, end: date) -> None:
    (found,) = find_times(text, REF)
    assert (found.start.date(), found.end.date()) == (start, end)
    assert found.start.tzinfo is not None and found.text.lower() in text.lower()


@pytest.mark.parametrize(
    "text",
    ["I may go", "we march on", "nothing temporal here", "", "version 1.2.3", "rated 4.5/5",
     "on 31.02.2024", "at 12.30"],
)  # fmt: skip
def test_words_that_only_look_like_times_are_not_times(text: str) -> None:
    assert find_times(text, REF) == []


def test_several_expressions_come_in_text_order_without_overlap() -> None:
    found = find_times("Yesterday I booked a trip for next week, on May 20, 2023.", REF)
    assert [f.text for f in found] == ["Yesterday", "next week", "May 20, 2023"]


def test_a_naive_reference_is_taken_as_utc() -> None:
    (found,) = find_times("yesterday", datetime(2023, 5, 8, 13, 56))
    assert found.start == datetime(2023, 5, 7, tzinfo=UTC)


# 23:30 on Friday 5 January 2024 at UTC-5 is already Saturday the 6th in UTC; 00:30 on
# Saturday the 6th at UTC+14 (Kiribati, across the date line) is still Friday the 5th in UTC.
WRITERS = [
    (datetime(2024, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5))), date(2024, 1, 5)),
    (datetime(2024, 1, 6, 0, 30, tzinfo=timezone(timedelta(hours=14))), date(2024, 1, 6)),
    (datetime(2023, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-10))), date(2023, 12, 31)),
]


@pytest.mark.parametrize(("ref", "today"), WRITERS)
def test_date_words_are_read_on_the_writers_clock(ref: datetime, today: date) -> None:
    """The days, months and years words name are the writer's, whatever day UTC is on."""
    assert ref.astimezone(UTC).date() != today  # each writer's day differs from UTC's
    for text, first, after in [
        ("today", today, today + timedelta(days=1)),
        ("yesterday", today - timedelta(days=1), today),
        ("tomorrow", today + timedelta(days=1), today + timedelta(days=2)),
    ]:
        (found,) = find_times(text, ref)
        assert found.start == datetime.combine(first, time(), ref.tzinfo)
        assert found.end == datetime.combine(after, time(), ref.tzinfo)
    (month,) = find_times("this month", ref)
    assert month.start == datetime(today.year, today.month, 1, tzinfo=ref.tzinfo)
    (year,) = find_times("last year", ref)
    assert year.start == datetime(today.year - 1, 1, 1, tzinfo=ref.tzinfo)
    (on,) = find_times("on 2024-01-05", ref)
    assert on.start == datetime(2024, 1, 5, tzinfo=ref.tzinfo)
