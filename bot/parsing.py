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
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .recurrence import local_to_utc, next_occurrence

I = re.I | re.U


class ParseError(ValueError):
    pass


@dataclass
class Parsed:
    due_at: datetime            # aware UTC
    recurrence: dict | None
    text: str
    lang: str = "en"


# ---------------------------------------------------------------------------------------------
# vocabulary
WEEKDAYS = {
    # en
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
    # ru (nominative / accusative / dative plural)
    "понедельник": 0, "понедельникам": 0, "пн": 0,
    "вторник": 1, "вторникам": 1, "вт": 1,
    "среда": 2, "среду": 2, "средам": 2, "ср": 2,
    "четверг": 3, "четвергам": 3, "чт": 3,
    "пятница": 4, "пятницу": 4, "пятницам": 4, "пт": 4,
    "суббота": 5, "субботу": 5, "субботам": 5, "сб": 5,
    "воскресенье": 6, "воскресеньям": 6, "вс": 6,
}
_WD_EN = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues|tue|wed|thurs|thu|fri|sat|sun"
_WD_RU = (r"понедельникам|понедельник|вторникам|вторник|средам|среду|среда|четвергам|четверг|"
          r"пятницам|пятницу|пятница|субботам|субботу|суббота|воскресеньям|воскресенье")
_WD = f"(?P<wd>{_WD_EN}|{_WD_RU})"

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12,
    "dec": 12,
    "января": 1, "январь": 1, "февраля": 2, "февраль": 2, "марта": 3, "март": 3, "апреля": 4,
    "апрель": 4, "мая": 5, "май": 5, "июня": 6, "июнь": 6, "июля": 7, "июль": 7, "августа": 8,
    "август": 8, "сентября": 9, "сентябрь": 9, "октября": 10, "октябрь": 10, "ноября": 11,
    "ноябрь": 11, "декабря": 12, "декабрь": 12,
}
_MON = "(?P<mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"

_AMPM = r"(?:\s*(?P<ampm>a\.?m\.?|p\.?m\.?|утра|дня|вечера|ночи))?"
# a time of day: "at 9", "at 9:30", "в 18.30", "9am", "18:30", "в 7 вечера"
_TIME = (r"(?:(?:\b(?:at|@)|(?<![\w])(?:в|во|к))\s*(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?" + _AMPM
         + r"|(?<![\d:.])(?P<h2>\d{1,2})[:](?P<m2>\d{2})(?![\d])" + _AMPM.replace("ampm", "ampm2")
         + r"|(?<![\d:.])(?P<h3>\d{1,2})\s*(?P<ampm3>am|pm)\b)")
TIME_RE = re.compile(_TIME, I)

_UNIT = {
    "minute": "m", "minutes": "m", "min": "m", "mins": "m", "m": "m",
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "h": "h",
    "day": "d", "days": "d", "d": "d", "week": "w", "weeks": "w",
    "минуту": "m", "минуты": "m", "минут": "m", "мин": "m",
    "час": "h", "часа": "h", "часов": "h", "ч": "h",
    "день": "d", "дня": "d", "дней": "d", "неделю": "w", "недели": "w", "недель": "w",
}
_UNITS = "|".join(sorted(_UNIT, key=len, reverse=True))
_NUM = r"(?P<n{i}>\d+|an?|one|two|three|five|ten|одну|один|две|два|три|пять|десять)?"
_WORDNUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "five": 5, "ten": 10, "одну": 1,
            "один": 1, "две": 2, "два": 2, "три": 3, "пять": 5, "десять": 10}
REL_RE = re.compile(
    r"(?:\b(?P<kw>in|through)|(?<![\w])(?P<kwru>через))\s+(?:(?P<half>half an hour|полчаса)|"
    + _NUM.format(i=1) + r"\s*(?P<u1>" + _UNITS + r")\b"
    + r"(?:\s*(?:and\s+|и\s+)?" + _NUM.format(i=2) + r"\s*(?P<u2>" + _UNITS + r")\b)?)", I)

PREFIX_RE = re.compile(
    r"^\s*(?:please\s+|пожалуйста,?\s+)?(?:/remind(?:@\w+)?|remind(?:\s+me)?|reminder|"
    r"напомни(?:те)?(?:\s+мне)?|напоминание)\b[\s,:]*", I)
_LEAD_JUNK = re.compile(r"^(?:[\s,:;\-–—]+|(?:to|that|about|of|чтобы|что|про|о|об)\b\s*)+", I)
_TRAIL_JUNK = re.compile(r"[\s,:;\-–—]+$")

CYRILLIC = re.compile(r"[а-яё]", I)


def _wordnum(s: str | None) -> int:
    if not s:
        return 1
    return int(s) if s.isdigit() else _WORDNUM[s.lower()]


@dataclass
class _Time:
    hour: int
    minute: int
    span: tuple[int, int]


def _find_time(s: str, start: int = 0) -> _Time | None:
    for m in TIME_RE.finditer(s, start):
        h = m.group("h") or m.group("h2") or m.group("h3")
        mi = m.group("m") or m.group("m2") or "0"
        ampm = (m.group("ampm") or m.group("ampm2") or m.group("ampm3") or "").lower().replace(".", "")
        hour, minute = int(h), int(mi)
        if ampm in ("pm", "дня", "вечера") and hour < 12:
            hour += 12
        elif ampm in ("am", "ночи", "утра") and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            continue
        return _Time(hour, minute, m.span())
    return None


class _Text:
    """The phrase with the spans consumed by the time expression removed."""

    def __init__(self, s: str):
        self.s = s
        self.cut: list[tuple[int, int]] = []

    def take(self, span: tuple[int, int]) -> None:
        self.cut.append(span)

    def rest(self) -> str:
        out, pos = [], 0
        for a, b in sorted(self.cut):
            if a > pos:
                out.append(self.s[pos:a])
            pos = max(pos, b)
        out.append(self.s[pos:])
        body = re.sub(r"\s{2,}", " ", " ".join(x.strip() for x in out if x.strip()))
        # drop connectors left dangling by the removal ("on", "at", "в", "на")
        body = re.sub(r"(?:^|\s)(?:on|at|в|во|на)$", "", body, flags=I)
        body = _LEAD_JUNK.sub("", body)
        body = _TRAIL_JUNK.sub("", body)
        return body.strip()


# ---------------------------------------------------------------------------------------------
RECUR_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("weekdays", re.compile(r"\b(?:every\s+weekday|on\s+weekdays|weekdays|each\s+weekday)\b|"
                            r"(?<![\w])(?:по\s+будням|каждый\s+будний\s+день|в\s+будни)(?![\w])", I)),
    ("daily", re.compile(r"\b(?:every\s*day|each\s+day|daily)\b|"
                         r"(?<![\w])(?:каждый\s+день|ежедневно|каждое\s+утро|каждый\s+вечер)(?![\w])", I)),
    ("weekly", re.compile(r"\b(?:every|each)\s+" + _WD + r"\b|(?<![\w])(?:кажд(?:ый|ую|ое)\s+|по\s+)"
                          + _WD.replace("?P<wd>", "?P<wd2>") + r"(?![\w])", I)),
    ("monthly", re.compile(
        r"\b(?:every\s+month|monthly|each\s+month)(?:\s+on)?(?:\s+the)?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b|"
        r"\b(?:every\s+month|monthly)\b|"
        r"(?<![\w])(?:каждый\s+месяц|ежемесячно)(?:\s+(?P<day2>\d{1,2})(?:-?(?:го|е))?(?:\s+числа)?)?(?![\w])|"
        r"(?<![\w])кажд(?:ое|ого)\s+(?P<day3>\d{1,2})(?:-?(?:е|го))?\s+числ[оа](?![\w])", I)),
]


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
                delta += {"m": timedelta(minutes=v), "h": timedelta(hours=v), "d": timedelta(days=v),
                          "w": timedelta(weeks=v)}[k]
    if delta <= timedelta() or delta > timedelta(days=3660):
        raise ParseError("out of range")
    t.take(m.span())
    return Parsed(now + delta, None, t.rest())


_DAYWORD = re.compile(r"\b(?P<en>today|tonight|tomorrow|day\s+after\s+tomorrow)\b|"
                      r"(?<![\w])(?P<ru>сегодня|завтра|послезавтра)(?![\w])", I)
_DAYOFFSET = {"today": 0, "tonight": 0, "tomorrow": 1, "сегодня": 0, "завтра": 1, "послезавтра": 2}
_NEXT_WD = re.compile(r"\b(?:(?P<next>next|this|on)\s+)?" + _WD + r"\b|"
                      r"(?<![\w])(?:в|во)\s+(?:(?P<nextru>следующ(?:ий|ую|ее)|эт(?:от|у|о))\s+)?"
                      + _WD.replace("?P<wd>", "?P<wd2>") + r"(?![\w])", I)
_DATE_NUM = re.compile(r"(?<![\d.:/-])(?P<d>\d{1,2})[./](?P<mo>\d{1,2})(?:[./](?P<y>\d{2,4}))?(?![\d:])|"
                       r"\b(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})\b")
_DATE_WORD = re.compile(r"(?:\bon\s+)?(?:the\s+)?(?<![\d:])(?P<d>\d{1,2})(?:st|nd|rd|th|-?го|-?е)?\s+(?:of\s+)?"
                        + _MON + r"(?:\s+(?P<y>\d{4}))?(?![\w])|"
                        r"(?:\bon\s+)?" + _MON.replace("?P<mon>", "?P<mon2>")
                        + r"\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<y2>\d{4}))?\b", I)


def _at(d: date, tm: _Time | None, tz: ZoneInfo, default=(9, 0)) -> datetime:
    h, mi = (tm.hour, tm.minute) if tm else default
    return local_to_utc(d, h, mi, tz)


def _dates(t: _Text, now: datetime, tz_name: str) -> Parsed | None:
    tz = ZoneInfo(tz_name)
    today = now.astimezone(tz).date()
    s = t.s
    # 1) today / tomorrow / day after tomorrow
    m = _DAYWORD.search(s)
    if m:
        word = re.sub(r"\s+", " ", (m.group("en") or m.group("ru")).lower())
        off = 2 if word == "day after tomorrow" else _DAYOFFSET[word]
        t.take(m.span())
        tm = _find_time(s)
        if tm:
            t.take(tm.span)
        default = (20, 0) if word == "tonight" else (9, 0)
        due = _at(today + timedelta(days=off), tm, tz, default)
        if due <= now:
            if tm is None and off == 0:
                due = now + timedelta(hours=1)
            else:
                raise ParseError("past")
        return Parsed(due, None, t.rest())
    # 2) (next) monday / в понедельник
    m = _NEXT_WD.search(s)
    if m:
        wd = WEEKDAYS[(m.group("wd") or m.group("wd2")).lower()]
        nxt = (m.group("next") or "").lower() == "next" or (m.group("nextru") or "").lower().startswith("следующ")
        t.take(m.span())
        tm = _find_time(s)
        if tm:
            t.take(tm.span)
        days = (wd - today.weekday()) % 7
        d = today + timedelta(days=days)
        due = _at(d, tm, tz)
        if due <= now:
            d += timedelta(days=7)
            due = _at(d, tm, tz)
        if nxt and days == 0:
            pass  # "next monday" said on a Monday: a week ahead (already handled by <= now or not)
        return Parsed(due, None, t.rest())
    # 3) absolute dates: "1 December", "1 декабря", "Dec 1", "01.12", "2026-12-01"
    m = _DATE_WORD.search(s)
    d = None
    if m:
        d = _absolute_date_with_dateparser(m.group(0), today)
        if d is None:
            try:
                mon = MONTHS[(m.group("mon") or m.group("mon2")).lower().rstrip(".")]
                day = int(m.group("d") or m.group("d2"))
                y = m.group("y") or m.group("y2")
                d = date(int(y) if y else today.year, mon, day)
                if not y and d < today:
                    d = date(today.year + 1, mon, day)
            except (ValueError, KeyError):
                raise ParseError("bad date") from None
    else:
        m = _DATE_NUM.search(s)
        if m:
            try:
                if m.group("iy"):
                    d = date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
                else:
                    y = m.group("y")
                    yy = (int(y) + 2000 if len(y) == 2 else int(y)) if y else today.year
                    d = date(yy, int(m.group("mo")), int(m.group("d")))
                    if not y and d < today:
                        d = date(yy + 1, d.month, d.day)
            except ValueError:
                raise ParseError("bad date") from None
    if d is not None:
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
    # 4) a bare time: "at 18:30" -> today, or tomorrow when it has passed
    tm = _find_time(s)
    if tm:
        t.take(tm.span)
        due = _at(today, tm, tz)
        if due <= now:
            due = _at(today + timedelta(days=1), tm, tz)
        return Parsed(due, None, t.rest())
    return None


def _absolute_date_with_dateparser(fragment: str, today: date) -> date | None:
    """Month names in en/ru and their many spellings: dateparser knows them all."""
    try:
        import dateparser
    except ImportError:  # pragma: no cover
        return None
    frag = re.sub(r"^\s*on\s+", "", fragment, flags=I)
    frag = re.sub(r"(\d)-?(?:го|е)\b", r"\1", frag)
    res = dateparser.parse(frag, languages=["en", "ru"],
                           settings={"PREFER_DATES_FROM": "future", "PREFER_DAY_OF_MONTH": "first",
                                     "RELATIVE_BASE": datetime.combine(today, datetime.min.time()),
                                     "REQUIRE_PARTS": ["day", "month"]})
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


def parse(text: str, now: datetime, tz_name: str) -> Parsed:
    """Parse a reminder phrase (with or without a leading "remind me" / "напомни")."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    s = PREFIX_RE.sub("", text.strip(), count=1).strip()
    if not s:
        raise ParseError("empty")
    lang = "ru" if CYRILLIC.search(s) else "en"
    for step in (lambda t: _recurring(t, now, tz_name), lambda t: _relative(t, now),
                 lambda t: _dates(t, now, tz_name)):
        t = _Text(s)
        res = step(t)
        if res is not None:
            res.lang = lang
            if not res.text:
                res.text = "⏰"
            if len(res.text) > 1000:
                raise ParseError("text too long")
            return res
    res = _dateparser_prefix(s, now, tz_name)
    if res is not None and res.text:
        res.lang = lang
        return res
    raise ParseError("no time found")


def looks_like_reminder(text: str) -> bool:
    return bool(PREFIX_RE.match(text or ""))
