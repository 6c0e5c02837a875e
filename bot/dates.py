"""Calendar helpers of the grammar: the hours of the parts of the day, hours with am/pm or a part
of the day, numeric and named dates, and calendar arithmetic (months, years) in local time."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

# The documented hours of the parts of the day (README, docs/bot.md): "tomorrow morning" is 09:00.
PART_HOURS = {"morning": 9, "afternoon": 14, "evening": 19, "night": 22, "noon": 12, "midnight": 0,
              "tonight": 20, "lunch": 13}


def hour_with_part(hour: int, part: str) -> int | None:
    """The 24-hour hour of "7 in the evening", "7pm", "в 2 ночи"; None when they contradict."""
    if part in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        return hour % 12 + (12 if part == "pm" else 0)
    if hour > 12:
        return hour if part in ("afternoon", "evening", "night", "tonight") else None
    if part == "morning":
        return 0 if hour == 12 else hour
    if part in ("afternoon", "lunch"):
        return hour if hour == 12 else hour + 12
    if part == "evening":
        return None if hour == 12 else hour + 12
    if part in ("night", "tonight"):
        if hour == 12:
            return 0
        return hour if hour < 5 else hour + 12
    return hour


# the hours a part of the day covers: an explicit time outside them contradicts it
PART_SPANS = {"morning": range(3, 12), "afternoon": range(11, 19), "lunch": range(11, 16),
              "evening": range(16, 24), "night": (*range(20, 24), *range(0, 6)),
              "tonight": (*range(16, 24), *range(0, 6)), "noon": (12,), "midnight": (0,)}


def in_part(hour: int, part: str) -> bool:
    return hour in PART_SPANS.get(part, range(24))


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    if not 1 <= y <= 9999:
        raise OverflowError("date out of range")
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def add_months_dt(t: datetime, months: int) -> datetime:
    d = add_months(t.date(), months)
    return t.replace(year=d.year, month=d.month, day=d.day)


def valid_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def next_date(today: date, month: int, day: int) -> date | None:
    """The next `day` `month` from today on (this year or the next); None if there is none."""
    for y in (today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4):
        d = valid_date(y, month, day)
        if d is not None and d >= today:
            return d
    return None


def next_month_day(today: date, day: int) -> date | None:
    """The next date with this day of the month (today counts), skipping months without it."""
    for k in range(0, 13):
        first = add_months(today.replace(day=1), k)
        d = valid_date(first.year, first.month, day)
        if d is not None and d >= today:
            return d
    return None


def weekday_from(today: date, weekday: int, skip_today: bool = False) -> date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and skip_today:
        ahead = 7
    return today + timedelta(days=ahead)
