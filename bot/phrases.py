"""The vocabulary of reminder phrases (English and Russian) and the tokenizer.

A phrase is cut into tokens (numbers, words, anything else); each word is looked up in a closed
vocabulary of time words (units, day words, parts of the day, weekdays, months, "every", …), first
exactly and then by edit distance, so "tommorow", "tomorow", "завтро" and "минуд" are read as the
words they mean while ordinary words are left alone. The grammar (`bot/parsing.py`) works on these
tokens; the words it does not use are the reminder's text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any


class ParseError(ValueError):
    """A phrase the bot cannot turn into a reminder; str(e) is a short machine-readable reason."""


@dataclass
class Parsed:
    due_at: datetime            # aware UTC
    recurrence: dict | None
    text: str
    lang: str = "en"
    notes: list[str] = field(default_factory=list)  # catalogue keys the confirmation adds


class Ambiguous(ParseError):
    """The bot must ask: `candidates` are the likely readings (maybe only one, when time-like words
    were left in the text), `words` the words that made it unsure."""

    def __init__(self, candidates: list[Parsed], words: list[str] | None = None):
        super().__init__("ambiguous")
        self.candidates = candidates
        self.words = words or []


# ---------------------------------------------------------------------------------------------
# the closed vocabulary: word -> (category, value)
V: dict[str, tuple[str, Any]] = {}


def _add(cat: str, value: Any, *words: str) -> None:
    for w in words:
        V[w.replace("ё", "е")] = (cat, value)


_add("in", None, "in", "within", "через", "спустя")
_add("later", None, "later", "after")  # "10 minutes later", "after 10 minutes"
_add("fromnow", None, "from")          # "from now"
_add("unit", "sec", "second", "seconds", "sec", "secs", "секунду", "секунды", "секунд", "сек")
_add("unit", "min", "minute", "minutes", "min", "mins", "minuts", "m", "мин", "минуту", "минута",
     "минуты", "минут", "минутку", "минуток", "минутки", "м")
_add("unit", "hour", "hour", "hours", "hr", "hrs", "h", "час", "часа", "часов", "часик", "часика",
     "ч")
_add("unit", "day", "day", "days", "d", "день", "дня", "дней", "сутки", "суток", "денёк", "денек")
_add("unit", "week", "week", "weeks", "wk", "wks", "неделю", "недели", "недель", "неделька",
     "недельку", "неделя", "неделе", "нед")
_add("unit", "month", "month", "months", "mo", "месяц", "месяца", "месяцев", "месяце", "мес")
_add("unit", "year", "year", "years", "yr", "yrs", "год", "года", "лет", "году")
_add("a", 1, "a", "an")
_add("half", 0.5, "half", "половину", "половина")
_add("withhalf", 0.5, "половиной")          # "2 с половиной часа"
_add("quarter", 0.25, "quarter", "четверть")
_add("oneandhalf", 1.5, "полтора", "полторы")
_add("pol", 0.5, "пол")                      # "пол часа"
_add("polunit", ("hour", 0.5), "полчаса", "получаса", "полчасика")
_add("polunit", ("min", 0.5), "полминуты")
_add("polunit", ("day", 0.5), "полдня")
_add("polunit", ("year", 0.5), "полгода")
_add("num", 1, "one", "один", "одну", "одна", "одно")
for _i, (_en, _ru) in enumerate(
        [("two", "два две"), ("three", "три"), ("four", "четыре"), ("five", "пять"), ("six", "шесть"),
         ("seven", "семь"), ("eight", "восемь"), ("nine", "девять"), ("ten", "десять"),
         ("eleven", "одиннадцать"), ("twelve", "двенадцать"), ("thirteen", "тринадцать"),
         ("fourteen", "четырнадцать"), ("fifteen", "пятнадцать"), ("sixteen", "шестнадцать"),
         ("seventeen", "семнадцать"), ("eighteen", "восемнадцать"), ("nineteen", "девятнадцать"),
         ("twenty", "двадцать")], start=2):
    _add("num", _i, _en, *_ru.split())
# ordinal days ("первого декабря", "the fifteenth", "каждое первое число")
_ORD_RU = ("перв втор трет четверт пят шест седьм восьм девят десят одиннадцат двенадцат тринадцат "
           "четырнадцат пятнадцат шестнадцат семнадцат восемнадцат девятнадцат двадцат").split()
for _i, _stem in enumerate(_ORD_RU, start=1):
    _endings = ("ье", "ьего", "ьему", "ий") if _stem == "трет" else ("ое", "ого", "ому", "ый")
    _add("ordw", _i, *(_stem + e for e in _endings))
_add("ordw", 30, "тридцатое", "тридцатого")
_add("ordw", 1, "first", "1st")
for _i, _w in enumerate("third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                        "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(),
                        start=3):
    _add("ordw", _i, _w)
_add("ordw", 30, "thirtieth")
_add("tens", 30, "thirty", "тридцать")
_add("tens", 40, "forty", "сорок")
_add("tens", 50, "fifty", "пятьдесят")
_add("tens", 20, "twenty", "двадцать")
_add("num", 2, "couple", "пару", "пара")  # "in a couple of hours", "через пару часов"
_add("num", 100, "hundred", "сто")

_add("dayword", 0, "today", "сегодня", "седня", "сёдня")
_add("dayword", 1, "tomorrow", "tmrw", "tmr", "tmrow", "tomoz", "2morrow", "2morow", "2moro", "2mrw",
     "tomoro",
     "завтра", "завтрa")
_add("dayword", 2, "послезавтра")
_add("tonight", None, "tonight", "tonite", "2nite")
_add("dayword", 0, "2day")
_add("part", "morning", "morning", "утром", "утро", "утречком", "поутру", "утру")
_add("part", "afternoon", "afternoon", "днём", "днем")
_add("part", "evening", "evening", "вечером", "вечер", "вечерком", "вечеру")
_add("part", "night", "night", "ночью", "ночь")
_add("part", "noon", "noon", "midday", "полдень")
_add("part", "midnight", "midnight", "полночь")
# "в 7 утра / дня / вечера / ночи": a part of the day after an hour, like am/pm
_add("ampm", "morning", "утра")
_add("ampm", "am", "am")
_add("ampm", "pm", "pm")
_add("ampm", "evening", "вечера")
_add("ampm", "night", "ночи")
_add("oclock", None, "o'clock", "oclock")

WEEKDAY_WORDS = {
    0: "monday mondays понедельник понедельника понедельникам понедельники",
    1: "tuesday tuesdays вторник вторника вторникам вторники",
    2: "wednesday wednesdays среда среду среды средам",
    3: "thursday thursdays четверг четверга четвергам четверги",
    4: "friday fridays пятница пятницу пятницы пятницам",
    5: "saturday saturdays суббота субботу субботы субботам",
    6: "sunday sundays воскресенье воскресенья воскресеньям",
}
WEEKDAY_ABBR = {
    0: "mon пн", 1: "tue tues вт", 2: "wed ср", 3: "thu thur thurs чт", 4: "fri пт",
    5: "sat сб", 6: "sun вс",
}
for _d, _ws in WEEKDAY_WORDS.items():
    for _w in _ws.split():
        V[_w] = ("wd", _d)
        if _w.endswith(("days", "ам", "ки", "ги")):
            V[_w] = ("wdplural", _d)  # "mondays", "по понедельникам": a weekly habit
for _d, _ws in WEEKDAY_ABBR.items():
    _add("wdabbr", _d, *_ws.split())
WEEKDAYS = {w: d for w, (c, d) in V.items() if c in ("wd", "wdplural", "wdabbr")}

MONTH_WORDS = {
    1: "january jan январь января янв", 2: "february feb февраль февраля фев",
    3: "march mar март марта мар", 4: "april apr апрель апреля апр", 5: "may май мая",
    6: "june jun июнь июня июн", 7: "july jul июль июля июл", 8: "august aug август августа авг",
    9: "september sep sept сентябрь сентября сен сент", 10: "october oct октябрь октября окт",
    11: "november nov ноябрь ноября ноя", 12: "december dec декабрь декабря дек",
}
for _m, _ws in MONTH_WORDS.items():
    _add("month", _m, *_ws.split())
MONTHS = {w: m for w, (c, m) in V.items() if c == "month"}

_add("every", None, "every", "each", "evry", "каждый", "каждую", "каждое", "каждые", "каждого",
     "каждой", "ежедневно")
V["ежедневно"] = ("everyadv", "day")
_add("everyadv", "day", "daily", "everyday")
_add("everyadv", "week", "weekly", "еженедельно")
_add("everyadv", "month", "monthly", "ежемесячно")
_add("everyadv", "year", "yearly", "annually", "ежегодно")
_add("everyadv", "hour", "hourly", "ежечасно")
_add("everyadv2", "week", "biweekly", "fortnightly", "bi-weekly")   # every 2 weeks
_add("unit2", "week", "fortnight", "fortnights")
_add("other", None, "other")  # "every other day"
_add("workdays", None, "weekday", "weekdays", "workday", "workdays", "будни", "будням", "будний",
     "будние", "буднях")
_add("weekend", None, "weekend", "weekends", "выходные", "выходным", "выходной")
_add("partplural", "morning", "утрам", "mornings")
_add("partplural", "evening", "вечерам", "evenings")
_add("partplural", "night", "ночам", "nights")
_add("partplural", "afternoon", "afternoons")
_add("next", None, "next", "coming", "следующий", "следующую", "следующее", "следующей",
     "следующем", "следующего", "след")
_add("this", None, "this", "этот", "эту", "это", "этой", "этом", "ближайший", "ближайшую",
     "ближайшее")
_add("at", None, "at", "@", "в", "во", "к", "by", "around", "около", "ровно")
_add("on", None, "on", "the", "на", "of")
_add("and", None, "and", "и", "&", "+")
_add("ord", None, "st", "nd", "rd", "th", "го", "е", "ое", "ого", "ое")
_add("chislo", None, "числа", "число")
_add("past", None, "past")
_add("with", None, "с", "with")
_add("tonightish", None, "сегодняшний")
_add("filler", None, "рабочий", "рабочие", "рабочим", "working")

# words that are never read as time words by edit distance (ordinary words near time words)
NOT_TYPOS = frozenset("""
money monkey mourning hoursе yours tours sundae sunday's friend fries frida mayor mayday
weeks' dayly secs second seconds minus minor mining monday's manday monde nigh knight light
fight right might sight tight eight-ball morn even event events evenly every1 march marsh match
mach months' yearn yeast tears years' hears heard dear near wear bear
часто часть части частью чашка чашку минус минск миную дней денег деньги день недели
недолго неделе вечно вечный вечная вечное утро утка утку сутки сутками
""".split())

CYRILLIC = re.compile(r"[а-яё]", re.I)

# ---------------------------------------------------------------------------------------------
# tokens
TOKEN_RE = re.compile(
    r"(?P<iso>\d{4}-\d{1,2}-\d{1,2})"
    r"|(?P<w2>\b2(?:mor+o?w?|nite|day)\b)"   # "2morrow", "2nite": words, not a 2
    r"|(?P<num>\d+(?:[.:,]\d+)*)"
    r"|(?P<word>o'clock|[^\W\d_]+(?:'[^\W\d_]+)?)"
    r"|(?P<at>@)"
    r"|(?P<other>\S)", re.U)


@dataclass
class Tok:
    kind: str        # iso | num | word | other
    raw: str
    low: str
    start: int
    end: int
    cat: str | None = None   # vocabulary category (None: an ordinary word)
    val: Any = None
    fuzzy: bool = False      # read by edit distance
    glued: bool = False      # no space before it ("9am", "2h30", "15th")

    def isnum(self) -> bool:
        return self.kind == "num" and self.low.isascii() and self.low.isdigit()


# fixed phrases whose time words are not time: "день рождения" (birthday), "new year"
_NOT_TIME = re.compile(r"\b(?:(?:день|дня|днём|днем|дню|днями)\s+рождени[яе]|нов(?:ый|ого|ому|ым|ом)\s+"
                       r"год(?:а|у|ом|е)?|new\s+year(?:'s)?)\b", re.I)


def tokenize(s: str) -> list[Tok]:
    out: list[Tok] = []
    prev_end = -1
    for m in TOKEN_RE.finditer(s):
        kind = m.lastgroup or "other"
        raw = m.group(0)
        low = raw.lower().replace("ё", "е") if kind != "num" else raw
        if kind in ("at", "w2"):
            kind = "word"
        tok = Tok(kind, raw, low, m.start(), m.end(), glued=m.start() == prev_end)
        if kind == "num" and not all(c.isascii() for c in raw):
            tok.kind = "other"  # digits of other scripts are text, not numbers
        if kind == "word":
            tok.cat, tok.val, tok.fuzzy = lookup(low)
        out.append(tok)
        prev_end = m.end()
    for m in _NOT_TIME.finditer(s):
        for tok in out:
            if m.start() <= tok.start < m.end():
                tok.cat, tok.val, tok.fuzzy = None, None, False
    return out


# ---------------------------------------------------------------------------------------------
# edit distance against the closed vocabulary
# "дня" is a unit ("2 дня") and, after an hour, a part of the day ("в 3 дня"): see parsing
V["дня"] = ("unit", "day")


def _typo_targets() -> dict[str, str]:
    """The words a typo may stand for: the unambiguous, longer words of the vocabulary."""
    skip = {"ord", "on", "at", "and", "with", "filler", "a", "other", "past", "later", "fromnow", "in",
            "this", "chislo", "oclock", "ampm", "wdabbr"}
    targets = {w: w for w, (c, _) in V.items() if c not in skip and len(w) >= 5 and w.isalpha()}
    targets.update({w: w for w in ("через", "утра", "вечера", "ночи", "вечером", "утром", "днём")})
    return targets


_TARGETS = _typo_targets()


def _deletes(w: str, depth: int) -> set[str]:
    out, frontier = {w}, {w}
    for _ in range(depth):
        frontier = {x[:i] + x[i + 1:] for x in frontier for i in range(len(x))}
        out |= frontier
    return out


_INDEX: dict[str, set[str]] = {}
for _t in _TARGETS:
    for _k in _deletes(_t, 2 if len(_t) >= 7 else 1):
        _INDEX.setdefault(_k, set()).add(_t)


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


_FAMILY = {"wdplural": "wd", "wdabbr": "wd"}  # forms of one weekday are one reading


def allowed_distance(word: str) -> int:
    return 0 if len(word) < 4 else 1 if len(word) < 7 else 2


@lru_cache(maxsize=4096)
def lookup(low: str) -> tuple[str | None, Any, bool]:
    """(category, value, read-by-typo) of a lower-case word; (None, None, False) for text."""
    if low in V:
        cat, val = V[low]
        return cat, val, False
    if low in NOT_TYPOS or not low.isalpha():
        return None, None, False
    limit = allowed_distance(low)
    if not limit:
        return None, None, False
    found: dict[str, int] = {}
    for k in _deletes(low, limit):
        for cand in _INDEX.get(k, ()):
            if abs(len(cand) - len(low)) <= limit and cand[0] == low[0] or len(low) >= 7:
                d = osa(low, cand)
                if d <= min(limit, allowed_distance(cand) or 1):
                    found[cand] = d
    if not found:
        return None, None, False
    best = min(found.values())
    nearest = sorted((abs(len(c) - len(low)), c) for c, d in found.items() if d == best)
    cands = {V[c] for _, c in nearest}
    if len({(_FAMILY.get(c, c), v) for c, v in cands}) != 1:
        return None, None, False  # two different time words are as near: not a typo we can read
    cat, val = V[nearest[0][1]]   # "wensday": Wednesday (the singular, nearer in length)
    return cat, val, True


# the categories that, left in a reminder's text, mean the parser did not use a time word
TIMEISH = frozenset({"unit", "unit2", "everyadv2", "dayword", "tonight", "part", "ampm", "wd", "wdplural", "every",
                     "everyadv", "workdays", "weekend", "partplural", "oneandhalf", "polunit",
                     "withhalf"})

PREFIX_WORDS = frozenset("""
please pls plz pleas plez hey hi bot ok okay can could would you u remind remember reminder
set create make add new me us a an пожалуйста пжлст пж плиз плз бот напомни напомните напомнить
напомнишь напоминай напоминайте напоминание поставь поставить создай сделай добавь мне нам ка можешь можешь-ка
""".split())
LEAD_JUNK = frozenset("to that about of for чтобы что про о об насчет насчёт: - — – , :".split())
TRAIL_JUNK = frozenset("please pls plz пожалуйста пжлст пж плиз плз".split())
DANGLING = frozenset("at on in by the of and to в во на к и с около from ближе".split())
