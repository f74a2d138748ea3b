"""Temporal expressions in text, resolved against a reference time.

"yesterday", "last week", "three days ago", "in May", "on Friday", "May 7, 2023",
"2023-05-07", "last summer", "next month": each becomes a half-open interval [start, end).
The reference is the event's occurred-at time when it is extracted from a memory, and the
query's "now" when it is read from a question, so replays resolve the same way. Days, months
and years are those of the reference's own clock: a memory written at 23:30 at UTC-5 says
"today" of that day, not of the UTC day already begun (naive references are UTC).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS.pop("may", None)
MONTHS["may"] = 5
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a few": 3, "a couple of": 2, "few": 3,
    "several": 4, "couple of": 2,
}  # fmt: skip
SEASONS = {
    "spring": (3, 6),
    "summer": (6, 9),
    "autumn": (9, 12),
    "fall": (9, 12),
    "winter": (12, 3),
}

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?P<weekday>" + "|".join(WEEKDAYS) + r")"
_NUM = r"(?P<n>\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year|weekend)s?"


@dataclass(frozen=True, slots=True)
class TimeRef:
    """One expression found in a text and the interval it names."""

    text: str
    start: datetime
    end: datetime


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_span(
    year: int, month: int, tz: tzinfo | None, months: int = 1
) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=tz)
    y, m = divmod(month - 1 + months, 12)
    return start, datetime(year + y, m + 1, 1, tzinfo=tz)


def _year_span(year: int, tz: tzinfo | None) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def _shift_months(moment: datetime, months: int) -> tuple[int, int]:
    y, m = divmod(moment.month - 1 + months, 12)
    return moment.year + y, m + 1


def _span(ref: datetime, unit: str, offset: int) -> tuple[datetime, datetime]:
    """The calendar unit `offset` units away from the one holding `ref` (0 = this one)."""
    day = _day(ref)
    if unit == "day":
        start = day + timedelta(days=offset)
        return start, start + timedelta(days=1)
    if unit == "week":
        start = day - timedelta(days=day.weekday()) + timedelta(weeks=offset)
        return start, start + timedelta(weeks=1)
    if unit == "weekend":
        saturday = day - timedelta(days=day.weekday()) + timedelta(days=5, weeks=offset)
        return saturday, saturday + timedelta(days=2)
    if unit == "month":
        return _month_span(*_shift_months(day, offset), ref.tzinfo)
    return _year_span(day.year + offset, ref.tzinfo)


def _ago(ref: datetime, n: int, unit: str) -> tuple[datetime, datetime]:
    """'n units ago': the unit around that point, widened by a day either side for days."""
    if unit in ("day", "weekend"):
        start = _day(ref) - timedelta(days=n if unit == "day" else 7 * n)
        return start, start + timedelta(days=1)
    if unit == "week":
        middle = _day(ref) - timedelta(weeks=n)
        return middle - timedelta(days=3), middle + timedelta(days=4)
    if unit == "month":
        return _month_span(*_shift_months(ref, -n), ref.tzinfo)
    return _span(ref, "year", -n)


def _number(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text.lower()]


def _year_of_month(ref: datetime, month: int, direction: str | None) -> int:
    """'in May' said in August is this May; said in March it is last May — unless 'next'."""
    if direction == "next":
        return ref.year + (1 if month <= ref.month else 0)
    if direction == "this":
        return ref.year
    return ref.year if month <= ref.month else ref.year - 1


Resolver = Callable[["re.Match[str]", datetime], tuple[datetime, datetime] | None]


def _relative_day(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    word = m.group(0).lower()
    offset = {"today": 0, "tonight": 0, "yesterday": -1, "tomorrow": 1}
    for key, value in offset.items():
        if key in word:
            if "before yesterday" in word:
                value = -2
            elif "after tomorrow" in word:
                value = 2
            return _span(ref, "day", value)
    return _span(ref, "day", 0)  # this morning / afternoon / evening


def _relative_unit(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    direction = {"last": -1, "past": -1, "previous": -1, "this": 0, "next": 1, "coming": 1}
    unit = m.group("unit").lower().rstrip("s")
    return _span(ref, unit, direction[m.group("dir").lower()])


def _ago_match(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    return _ago(ref, _number(m.group("n")), m.group("unit").lower().rstrip("s"))


def _weekday(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    target = WEEKDAYS[m.group("weekday").lower()]
    day = _day(ref)
    direction = (m.group("dir") or "").lower()
    if direction in ("next", "this coming", "coming"):
        delta = (target - day.weekday()) % 7 or 7
    elif direction == "this":
        delta = target - day.weekday()
    else:  # 'on Friday' / 'last Friday': the most recent one before the reference day
        delta = -((day.weekday() - target) % 7 or 7)
    start = day + timedelta(days=delta)
    return start, start + timedelta(days=1)


def _month_name(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime] | None:
    name = m.group("month")
    month = MONTHS[name.lower().rstrip(".")]
    year_text = m.group("year")
    day_text = m.group("day") or m.group("day2")
    direction = (m.group("dir") or "").lower() or None
    if name.islower() and not (year_text or day_text or direction):
        return None  # 'may', 'march', 'jan' in running text are rarely months
    year = int(year_text) if year_text else _year_of_month(ref, month, direction)
    if direction == "last" and not year_text:
        year = ref.year - 1 if month >= ref.month else ref.year
    if day_text:
        try:
            start = datetime(year, month, int(day_text), tzinfo=ref.tzinfo)
        except ValueError:
            return None
        return start, start + timedelta(days=1)
    return _month_span(year, month, ref.tzinfo)


def _iso_date(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime] | None:
    try:
        start = datetime(int(m.group("y")), int(m.group("m")), int(m.group("d")), tzinfo=ref.tzinfo)
    except ValueError:
        return None
    return start, start + timedelta(days=1)


def _numeric_date(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime] | None:
    """16.01.2024 is day.month (dots: the European order); 01/16/2024 month/day, unless the
    first number cannot be a month (16/01/2024). A two-digit year is this century's."""
    a, b, year = int(m.group("a")), int(m.group("b")), int(m.group("y"))
    day, month = (a, b) if m.group("sep") == "." or a > 12 else (b, a)
    try:
        start = datetime(year + 2000 if year < 100 else year, month, day, tzinfo=ref.tzinfo)
    except ValueError:
        return None
    return start, start + timedelta(days=1)


def _year(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    return _year_span(int(m.group("year")), ref.tzinfo)


def _season(m: re.Match[str], ref: datetime) -> tuple[datetime, datetime]:
    """ "last summer", "next spring", or a season of a year ("spring of 2024", "winter 2022":
    from December into the next year)."""
    first, last = SEASONS[m.group("season").lower()]
    if m.groupdict().get("year"):
        year = int(m.group("year"))
    else:
        direction = (m.group("dir") or "last").lower()
        year = ref.year - (1 if direction == "last" else 0) + (1 if direction == "next" else 0)
    start = datetime(year, first, 1, tzinfo=ref.tzinfo)
    if last < first:  # winter runs into the next year
        return start, datetime(year + 1, last, 1, tzinfo=ref.tzinfo)
    return start, datetime(year, last, 1, tzinfo=ref.tzinfo)


_PATTERNS: list[tuple[re.Pattern[str], Resolver]] = [
    (re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>\d\d)-(?P<d>\d\d)\b"), _iso_date),
    (
        re.compile(
            r"(?<![\d./])(?P<a>\d{1,2})(?P<sep>[./])(?P<b>\d{1,2})(?P=sep)"
            r"(?P<y>(?:19|20)\d\d|\d\d)(?![\d./])"
        ),
        _numeric_date,
    ),
    (
        re.compile(
            r"\b(?:(?P<dir>last|this|next)\s+)?(?:(?P<day2>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?)?"
            + _MONTH
            + r"(?:\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?)?(?:,?\s+(?P<year>(?:19|20)\d\d))?\b",
            re.IGNORECASE,
        ),
        _month_name,
    ),
    (
        re.compile(
            r"\b(?:the\s+day\s+(?:before\s+yesterday|after\s+tomorrow)|yesterday|today|tonight|"
            r"tomorrow|this\s+(?:morning|afternoon|evening))\b",
            re.IGNORECASE,
        ),
        _relative_day,
    ),
    (
        re.compile(rf"\b(?P<dir>last|past|previous|this|next|coming)\s+{_UNIT}\b", re.IGNORECASE),
        _relative_unit,
    ),
    (re.compile(rf"\b{_NUM}\s+{_UNIT}\s+ago\b", re.IGNORECASE), _ago_match),
    (
        re.compile(
            rf"\b(?:(?P<dir>last|this coming|this|next|coming|on)\s+){_WEEKDAY}\b", re.IGNORECASE
        ),
        _weekday,
    ),
    (
        re.compile(
            r"\b(?:(?P<dir>last|this|next)\s+)(?P<season>spring|summer|autumn|fall|winter)\b",
            re.IGNORECASE,
        ),
        _season,
    ),
    (
        re.compile(
            r"\b(?P<season>spring|summer|autumn|fall|winter)\s+(?:of\s+)?(?P<year>(?:19|20)\d\d)\b",
            re.IGNORECASE,
        ),
        _season,
    ),
    (re.compile(r"\b(?:in|since|during|of)\s+(?P<year>(?:19|20)\d\d)\b", re.IGNORECASE), _year),
]


def find_times(text: str, ref: datetime) -> list[TimeRef]:
    """Every temporal expression in `text` with its interval, earliest match first; overlapping
    matches keep the first (more specific) pattern's reading."""
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=UTC)
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, TimeRef]] = []
    for pattern, resolve in _PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            span = resolve(m, ref)
            if span is None:
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), TimeRef(m.group(0), span[0], span[1])))
    return [ref_ for _, ref_ in sorted(found, key=lambda pair: pair[0])]
