"""The vocabulary of reminder phrases (English and Russian): weekday, month and unit words, the
regular expressions of each phrase family, and the small lexical helpers the families share."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

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
    return int(s) if s.isdecimal() else _WORDNUM[s.lower()]


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

