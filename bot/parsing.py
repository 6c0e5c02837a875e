"""Reminder phrases in English and Russian -> (first due time, recurrence rule, text).

A small explicit grammar covers the phrase families we promise (relative, today/tomorrow, weekday,
time of day, absolute dates, and the recurring families), because recurring rules and "the text
that is not the time" are not something a date library returns. `dateparser` (en + ru) is used
for what it is good at: absolute dates with month names in either language ("1 December",
"1 декабря", "Dec 1st 2026") and, as a last resort, any date-like prefix it recognises.

`parse(text, now, tz_name)` returns a `Parsed` or raises `ParseError` with a user-facing reason.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from .dates import _dateparser_prefix, _dates
from .limits import MAX_INPUT, REMINDER_TEXT, clean
from .phrases import (CYRILLIC, I, PREFIX_RE, RECUR_PATTERNS, REL_RE, WEEKDAYS, _UNIT, ParseError,
                      Parsed, _find_time, _Text, _wordnum)
from .recurrence import next_occurrence

__all__ = ["ParseError", "Parsed", "parse", "looks_like_reminder"]


def _recurring(t: _Text, now: datetime, tz_name: str) -> Parsed | None:
    s = t.s
    for kind, rx in RECUR_PATTERNS:
        m = rx.search(s)
        if not m:
            continue
        t.take(m.span())
        rule: dict = {"kind": kind}
        if kind == "weekly":
            rule["weekday"] = WEEKDAYS[(m.group("wd") or m.group("wd2")).lower()]
        if kind == "monthly":
            day = m.group("day") or m.group("day2") or m.group("day3")
            if day is None:
                # "every month on the 1st" with the day elsewhere
                dm = re.search(r"\b(?:on\s+)?(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b|(?<![\w])(\d{1,2})-?(?:го|е)?\s+числа",
                               s, I)
                if dm:
                    day = dm.group(1) or dm.group(2)
                    t.take(dm.span())
            rule["day"] = int(day or 1)
            if not 1 <= rule["day"] <= 31:
                raise ParseError("day of month must be 1..31")
        tm = _find_time(s)
        if tm and not (m.start() <= tm.span[0] < m.end()):
            t.take(tm.span)
            rule["hour"], rule["minute"] = tm.hour, tm.minute
        else:
            rule["hour"], rule["minute"] = 9, 0
        due = next_occurrence(rule, tz_name, now)
        return Parsed(due, rule, t.rest())
    return None


def _relative(t: _Text, now: datetime) -> Parsed | None:
    m = REL_RE.search(t.s)
    if not m:
        return None
    if m.group("half"):
        delta = timedelta(minutes=30)
    else:
        delta = timedelta()
        for n, u in (("n1", "u1"), ("n2", "u2")):
            if m.group(u):
                k = _UNIT[m.group(u).lower()]
                v = _wordnum(m.group(n))
                if v > 10**6:
                    raise ParseError("out of range")
                delta += {"m": timedelta(minutes=v), "h": timedelta(hours=v), "d": timedelta(days=v),
                          "w": timedelta(weeks=v)}[k]
    if delta <= timedelta() or delta > FURTHEST:
        raise ParseError("out of range")
    t.take(m.span())
    return Parsed(now + delta, None, t.rest())


FURTHEST = timedelta(days=3660)  # "in 10 years" is as far as a reminder may go


def parse(text: str, now: datetime, tz_name: str) -> Parsed:
    """Parse a reminder phrase (with or without a leading "remind me" / "напомни")."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    text = clean(text)
    if len(text) > MAX_INPUT:
        raise ParseError("text too long")
    s = PREFIX_RE.sub("", text.strip(), count=1).strip()
    if not s:
        raise ParseError("empty")
    for step in (lambda t: _recurring(t, now, tz_name), lambda t: _relative(t, now),
                 lambda t: _dates(t, now, tz_name), None):
        try:
            res = step(_Text(s)) if step else _dateparser_prefix(s, now, tz_name)
        except ParseError:
            raise
        except (OverflowError, ValueError):  # a number too big for a date or an interval
            raise ParseError("out of range") from None
        if res is None or (step is None and not res.text):
            continue
        return _checked(res, s, now)
    raise ParseError("no time found")


def _checked(res: Parsed, s: str, now: datetime) -> Parsed:
    res.lang = "ru" if CYRILLIC.search(s) else "en"
    res.text = res.text or "⏰"
    if len(res.text) > REMINDER_TEXT:
        raise ParseError("text too long")
    if res.due_at - now > FURTHEST:
        raise ParseError("out of range")
    return res


def looks_like_reminder(text: str) -> bool:
    return bool(PREFIX_RE.match(text or ""))

