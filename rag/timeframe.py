"""Timeframes: what "this week", "yesterday", "in March" or "since June" mean for a question asked on `as_of`.

News questions speak of time relative to when they are asked. Every phrase names a range, and passages published
in it rank higher (`prefer_from`/`prefer_to`): "this week", "yesterday", "on Tuesday", "in March". An explicit
calendar phrase ("in 2022", "in March 2021", "since June") is also a hard filter, but only from below
(`date_from`): what happened in 2022 is reported in 2022 or later, so an article of 2023 looking back is kept
(measured: the seed questions "in 2019" and "in 2022" are answered from 2023 articles). For the same reason
"before 2020" is only preferred. Undated articles pass the hard bound. A question that names no time is taken
to be about recent news: the last `recent_days` days are preferred, which changes nothing when the index holds
nothing that recent. Soft ranges end a day after their last day, because a story is dated in its own time zone.

Among several phrases a calendar one wins, else the narrowest ("this week ... on Tuesday": Tuesday).
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

from rag.models import Timeframe

_MONTHS = {
    name: n
    for n, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = (
    r"(?P<month>" + "|".join(sorted((m for m in _MONTHS if len(m) > 3 or m == "may"), key=len, reverse=True)) + r")"
)
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}
_NUMBERS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}
_COUNT = r"(?P<count>\d{1,3}|a|one|two|three|four|five|six|seven|ten)"

_CALENDAR = (
    ("in", re.compile(rf"\b(?:in|during|throughout)\s+(?:{_MONTH},?\s+)?{_YEAR}\b", re.I)),
    ("since", re.compile(rf"\bsince\s+(?:(?:{_MONTH})(?:,?\s+{_YEAR})?|{_YEAR.replace('year', 'year2')})\b", re.I)),
    ("before", re.compile(rf"\bbefore\s+(?:{_MONTH},?\s+)?{_YEAR}\b", re.I)),
)
_SOFT = (
    ("today", re.compile(r"\b(?:today|tonight|this morning|this afternoon|this evening)\b", re.I)),
    ("yesterday", re.compile(r"\b(?:yesterday|last night)\b", re.I)),
    ("weekday", re.compile(r"\b(?:on|last|this\s+past)\s+(?P<weekday>" + "|".join(_WEEKDAYS) + r")\b", re.I)),
    ("this_week", re.compile(r"\b(?:this|the past|the last|this past)\s+week(?:end)?\b", re.I)),
    ("last_week", re.compile(r"\blast\s+week(?:end)?\b", re.I)),
    ("this_month", re.compile(r"\bthis\s+month\b", re.I)),
    ("last_month", re.compile(r"\blast\s+month\b", re.I)),
    ("this_year", re.compile(r"\bthis\s+year\b", re.I)),
    ("last_year", re.compile(r"\blast\s+year\b", re.I)),
    ("ago", re.compile(rf"\b{_COUNT}\s+(?P<unit>day|week|month|year)s?\s+ago\b", re.I)),
    ("past", re.compile(rf"\b(?:in\s+)?(?:the\s+)?(?:past|last)\s+{_COUNT}\s+(?P<unit>day|week|month|year)s?\b", re.I)),
    ("in_month", re.compile(rf"\b(?:(?:in|during|early|late)\s+|mid-?){_MONTH}\b(?!\s*,?\s*\d)", re.I)),
    ("recent", re.compile(r"\b(?:recently|recent(?:\s+(?:days|weeks))?|lately)\b", re.I)),
)


@dataclass(frozen=True, slots=True)
class TimeframePolicy:
    """`recent_days`: the soft window of a question that names no time (and of "recently"); 7 was chosen on
    news-quiz's tune half (eval/README.md). `default_recent`: False prefers nothing then."""

    recent_days: int = 7
    default_recent: bool = True


def _month_range(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def _last_month_named(month: int, as_of: date) -> int:
    """The year of the latest `month` that has begun by `as_of` ("in March" asked in May 2023: 2023)."""
    return as_of.year if month <= as_of.month else as_of.year - 1


def _count(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBERS[text.lower()]


def _calendar(kind: str, m: re.Match[str], as_of: date) -> Timeframe:
    groups = m.groupdict()
    month = _MONTHS[groups["month"].lower()] if groups.get("month") else None
    year = int(groups.get("year") or groups.get("year2") or 0) or None
    phrase = m.group(0).strip()
    if kind == "since":
        if year is None and month is not None:
            year = _last_month_named(month, as_of)
        assert year is not None
        start = date(year, month or 1, 1)
        return Timeframe(start, as_of + timedelta(days=1), phrase, as_of, published_from=start)
    assert year is not None
    start, end = _month_range(year, month) if month else (date(year, 1, 1), date(year, 12, 31))
    if kind == "before":
        return Timeframe(None, start - timedelta(days=1), phrase, as_of)
    return Timeframe(start, end + timedelta(days=1), phrase, as_of, published_from=start)


def _soft(kind: str, m: re.Match[str], as_of: date, policy: TimeframePolicy) -> tuple[date, date]:
    groups = m.groupdict()
    if kind == "today":
        return as_of, as_of
    if kind == "yesterday":
        day = as_of - timedelta(days=1)
        return day, day
    if kind == "weekday":
        back = (as_of.weekday() - _WEEKDAYS.index(groups["weekday"].lower())) % 7
        day = as_of - timedelta(days=back)
        return day, day
    if kind == "this_week":
        return as_of - timedelta(days=7), as_of
    if kind == "recent":
        return as_of - timedelta(days=policy.recent_days), as_of
    if kind == "last_week":
        monday = as_of - timedelta(days=as_of.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if kind == "this_month":
        return as_of.replace(day=1), as_of
    if kind == "last_month":
        first = as_of.replace(day=1) - timedelta(days=1)
        return _month_range(first.year, first.month)
    if kind == "this_year":
        return date(as_of.year, 1, 1), as_of
    if kind == "last_year":
        return date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31)
    if kind in ("ago", "past"):
        span = _count(groups["count"]) * _UNITS[groups["unit"].lower()]
        if kind == "past":
            return as_of - timedelta(days=span), as_of
        center = as_of - timedelta(days=span)
        slack = max(1, span // 7)
        return center - timedelta(days=slack), center + timedelta(days=slack)
    month = _MONTHS[groups["month"].lower()]
    return _month_range(_last_month_named(month, as_of), month)


def resolve(question: str, as_of: date, policy: TimeframePolicy | None = None) -> Timeframe | None:
    """The timeframe `question` speaks of, asked on `as_of` (None: it names none and no default applies)."""
    policy = policy or TimeframePolicy()
    for kind, pattern in _CALENDAR:
        if m := pattern.search(question):
            return _calendar(kind, m, as_of)
    found: list[tuple[int, Timeframe]] = []
    for kind, pattern in _SOFT:
        if m := pattern.search(question):
            start, end = _soft(kind, m, as_of, policy)
            frame = Timeframe(start, end + timedelta(days=1), m.group(0).strip(), as_of)
            found.append(((end - start).days, frame))
    if found:
        return min(found, key=lambda pair: pair[0])[1]
    if policy.default_recent:
        return Timeframe(as_of - timedelta(days=policy.recent_days), as_of + timedelta(days=1), "", as_of)
    return None
