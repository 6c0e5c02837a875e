"""Date families: today/tomorrow, weekdays, absolute dates (with dateparser for month names), a
bare time of day, and dateparser's reading of a date-like prefix as the last resort."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .phrases import (I, MONTHS, WEEKDAYS, _DATE_NUM, _DATE_WORD, _DAYOFFSET, _DAYWORD, _NEXT_WD,
                      ParseError, Parsed, _find_time, _Text, _Time)
from .recurrence import local_to_utc


def _at(d: date, tm: _Time | None, tz: ZoneInfo, default=(9, 0)) -> datetime:
    h, mi = (tm.hour, tm.minute) if tm else default
    return local_to_utc(d, h, mi, tz)


def _dates(t: _Text, now: datetime, tz_name: str) -> Parsed | None:
    tz = ZoneInfo(tz_name)
    for family in (_day_word, _weekday, _absolute_date, _bare_time):
        res = family(t, now, tz)
        if res is not None:
            return res
    return None


def _day_word(t: _Text, now: datetime, tz: ZoneInfo) -> Parsed | None:
    """today / tonight / tomorrow / day after tomorrow, with an optional time."""
    s, today = t.s, now.astimezone(tz).date()
    m = _DAYWORD.search(s)
    if not m:
        return None
    word = re.sub(r"\s+", " ", (m.group("en") or m.group("ru")).lower())
    off = 2 if word == "day after tomorrow" else _DAYOFFSET[word]
    t.take(m.span())
    tm = _find_time(s)
    if tm:
        t.take(tm.span)
    default = (20, 0) if word == "tonight" else (9, 0)
    due = _at(today + timedelta(days=off), tm, tz, default)
    if due <= now:
        if tm is not None or off != 0:
            raise ParseError("past")
        due = now + timedelta(hours=1)
    return Parsed(due, None, t.rest())


def _weekday(t: _Text, now: datetime, tz: ZoneInfo) -> Parsed | None:
    """(next) monday / в (следующий) понедельник: the next such day whose time is still ahead."""
    s, today = t.s, now.astimezone(tz).date()
    m = _NEXT_WD.search(s)
    if not m:
        return None
    wd = WEEKDAYS[(m.group("wd") or m.group("wd2")).lower()]
    t.take(m.span())
    tm = _find_time(s)
    if tm:
        t.take(tm.span)
    d = today + timedelta(days=(wd - today.weekday()) % 7)
    due = _at(d, tm, tz)
    if due <= now:
        due = _at(d + timedelta(days=7), tm, tz)
    return Parsed(due, None, t.rest())


def _absolute_date(t: _Text, now: datetime, tz: ZoneInfo) -> Parsed | None:
    """"1 December", "1 декабря", "Dec 1", "01.12", "2026-12-01", with an optional time."""
    s, today = t.s, now.astimezone(tz).date()
    m = _DATE_WORD.search(s)
    d = _word_date(m, today) if m else None
    if m is None:
        m = _DATE_NUM.search(s)
        d = _numeric_date(m, today) if m else None
    if d is None or m is None:
        return None
    t.take(m.span())
    tm = _find_time(s)
    if tm and not (m.start() <= tm.span[0] < m.end()):
        t.take(tm.span)
    else:
        tm = None
    due = _at(d, tm, tz)
    if due <= now:
        raise ParseError("past")
    return Parsed(due, None, t.rest())


def _word_date(m: re.Match, today: date) -> date:
    d = _absolute_date_with_dateparser(m.group(0), today)
    if d is not None:
        return d
    try:
        mon = MONTHS[(m.group("mon") or m.group("mon2")).lower().rstrip(".")]
        day = int(m.group("d") or m.group("d2"))
        y = m.group("y") or m.group("y2")
        d = date(int(y) if y else today.year, mon, day)
        return date(today.year + 1, mon, day) if not y and d < today else d
    except (ValueError, KeyError):
        raise ParseError("bad date") from None


def _numeric_date(m: re.Match, today: date) -> date:
    try:
        if m.group("iy"):
            return date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
        y = m.group("y")
        yy = (int(y) + 2000 if len(y) == 2 else int(y)) if y else today.year
        d = date(yy, int(m.group("mo")), int(m.group("d")))
        return date(yy + 1, d.month, d.day) if not y and d < today else d
    except ValueError:
        raise ParseError("bad date") from None


def _bare_time(t: _Text, now: datetime, tz: ZoneInfo) -> Parsed | None:
    """"at 18:30" -> today, or tomorrow when it has passed."""
    tm = _find_time(t.s)
    if not tm:
        return None
    today = now.astimezone(tz).date()
    t.take(tm.span)
    due = _at(today, tm, tz)
    if due <= now:
        due = _at(today + timedelta(days=1), tm, tz)
    return Parsed(due, None, t.rest())


def _absolute_date_with_dateparser(fragment: str, today: date) -> date | None:
    """Month names in en/ru and their many spellings: dateparser knows them all."""
    try:
        import dateparser
    except ImportError:  # pragma: no cover
        return None
    frag = re.sub(r"^\s*on\s+", "", fragment, flags=I)
    frag = re.sub(r"(\d)-?(?:го|е)\b", r"\1", frag)
    try:
        res = dateparser.parse(frag, languages=["en", "ru"],
                               settings={"PREFER_DATES_FROM": "future", "PREFER_DAY_OF_MONTH": "first",
                                         "RELATIVE_BASE": datetime.combine(today, datetime.min.time()),
                                         "REQUIRE_PARTS": ["day", "month"]})
    except Exception:  # dateparser on hostile text: treat as "not a date"
        return None
    if res is None:
        return None
    d = res.date()
    if d < today and not re.search(r"\d{4}", frag):
        try:
            d = d.replace(year=d.year + 1)
        except ValueError:
            return None
    return d


def _dateparser_prefix(s: str, now: datetime, tz_name: str) -> Parsed | None:
    """Last resort: the longest leading run of words dateparser reads as a future time."""
    try:
        import dateparser
    except ImportError:  # pragma: no cover
        return None
    words = s.split()
    tz = ZoneInfo(tz_name)
    base = now.astimezone(tz).replace(tzinfo=None)
    for n in range(min(len(words), 6), 0, -1):
        cand = " ".join(words[:n])
        if not re.search(r"\d", cand) and n == 1 and len(cand) < 4:
            continue
        try:
            res = dateparser.parse(cand, languages=["en", "ru"],
                                   settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base,
                                             "RETURN_AS_TIMEZONE_AWARE": False})
        except Exception:
            res = None
        if res is None:
            continue
        due = res.replace(tzinfo=tz).astimezone(timezone.utc)
        if due <= now:
            continue
        text = _Text(" ".join(words[n:])).rest()
        return Parsed(due, None, text)
    return None

