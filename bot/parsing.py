"""Reminder phrases in English and Russian -> (first due time, recurrence rule, text), or a question.

`parse(text, now, tz_name)` returns a `Parsed` only when it is sure. It raises `ParseError` with a
short reason when there is no reminder in the text, and `Ambiguous` (a `ParseError` carrying the
likely readings) when the bot must ask: two readings disagree ("at 5": 05:00 or 17:00; "10.11": a
date or a time; two days named), or time-like words (numbers, units, day and part-of-day words, and
typos of them) were left over in the reminder's text.

How: the phrase is cut into tokens whose words are looked up in a closed vocabulary, with edit
distance for typos (`bot/phrases.py`); a hand-written grammar then finds components anywhere in
the message (a recurrence, a relative duration, a date, a day word, a weekday, a time, a part of the
day) and combines them; whatever it did not use is the text. Calendar helpers are in
`bot/dates.py`, rules and their next occurrences in `bot/recurrence.py`.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .dates import (PART_HOURS, add_months_dt, hour_with_part, in_part, next_date, next_month_day,
                    valid_date, weekday_from)
from .limits import MAX_INPUT, REMINDER_TEXT, clean
from .phrases import (CYRILLIC, DANGLING, LEAD_JUNK, PREFIX_WORDS, TIMEISH, TRAIL_JUNK, Ambiguous,
                      ParseError, Parsed, Tok, tokenize)
from .recurrence import MIN_HOURS, local_to_utc, next_occurrence, normalize

__all__ = ["Ambiguous", "ParseError", "Parsed", "parse", "looks_like_reminder"]

FURTHEST = timedelta(days=3660)  # "in 10 years" is as far as a reminder may go
DEFAULT_HOUR = 9                 # a date, a day or a rule without a time: 09:00
CORE_PREFIX = frozenset("remind reminder remember напомни напомните напомнить напомнишь напоминай "
                        "напоминайте напоминание"
                        .split())
POLITE = frozenset("please pls plz pleas plez пожалуйста пжлст пж плиз плз".split())
DEADLINE = frozenset("until till til before до перед".split())
UNIT_RULE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}
_ISO_T = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2})[Tt](\d{1,2}:\d{2})(?::\d{2})?\b")
_SLASH_COMMAND = re.compile(r"^\s*/remind(?:@\w+)?\b", re.I)

Comp = dict[str, Any]


class _Scan:
    """Finds the components of a phrase in its tokens."""

    def __init__(self, toks: list[Tok]):
        self.t = toks
        self.n = len(toks)
        self.comps: list[Comp] = []

    # -- token helpers ----------------------------------------------------------------------------
    def cat(self, k: int) -> str | None:
        return self.t[k].cat if 0 <= k < self.n else None

    def low(self, k: int) -> str:
        return self.t[k].low if 0 <= k < self.n else ""

    def int_at(self, k: int) -> int | None:
        if 0 <= k < self.n and self.t[k].isnum() and len(self.t[k].low) <= 6:
            return int(self.t[k].low)
        return None

    def word_int(self, k: int) -> tuple[int, int] | None:
        """A whole number in digits or words ("2", "two", "twenty five", "двадцать пять")."""
        v = self.int_at(k)
        if v is not None:
            return v, k + 1
        c = self.cat(k)
        if c == "tens":
            v = self.t[k].val
            if self.cat(k + 1) == "num" and self.t[k + 1].val < 10:
                return v + self.t[k + 1].val, k + 2
            return v, k + 1
        if c == "num":
            k2 = k + 1
            if self.low(k) in ("couple", "пару", "пара") and self.low(k2) == "of":
                k2 += 1
            return self.t[k].val, k2
        return None

    def ord_day(self, k: int) -> tuple[int, int] | None:
        """An ordinal day in words: "первого", "двадцать первого", "fifteenth", "twenty-first"."""
        if self.cat(k) == "ordw":
            return self.t[k].val, k + 1
        if self.cat(k) == "tens":
            j = k + 2 if self.low(k + 1) == "-" else k + 1
            if self.cat(j) == "ordw" and self.t[j].val < 10:
                return self.t[k].val + self.t[j].val, j + 1
        return None

    def amount(self, k: int) -> tuple[float, int] | None:
        if 0 <= k < self.n and self.t[k].kind == "num":
            s = self.t[k].low
            if re.fullmatch(r"\d+", s):
                return int(s), k + 1
            if re.fullmatch(r"\d{1,6}[.,]\d{1,3}", s):
                return float(s.replace(",", ".")), k + 1
            return None
        c = self.cat(k)
        if c == "a":
            if self.cat(k + 1) == "num" and self.low(k + 1) == "couple":
                return self.word_int(k + 1)
            if self.cat(k + 1) in ("quarter", "half"):
                return self.amount(k + 1)
            return 1, k + 1
        if c in ("half", "quarter"):
            k2 = k + 1
            if self.low(k2) == "of":
                k2 += 1
            if self.cat(k2) == "a":
                k2 += 1
            return self.t[k].val, k2
        if c in ("oneandhalf", "pol"):
            return self.t[k].val, k + 1
        return self.word_int(k)

    def duration(self, k: int) -> tuple[dict[str, float], int] | None:
        """"1.5 hours", "an hour and a half", "2 с половиной часа", "2h30", "2 hours 30 minutes"."""
        parts: dict[str, float] = {}
        last: str | None = None

        def add(u: str, v: float) -> None:
            parts[u] = parts.get(u, 0) + v

        while k < self.n:
            if self.cat(k) == "polunit":
                u, v = self.t[k].val
                add(u, v)
                last, k = u, k + 1
            else:
                a = self.amount(k)
                if a is None:
                    if not parts and self.cat(k) == "unit":  # "через час", "in hour"
                        last = self.t[k].val
                        add(last, 1)
                        k += 1
                    else:
                        break
                else:
                    v, k2 = a
                    if self.cat(k2) == "unit":
                        u, k3 = self.t[k2].val, k2 + 1
                    elif (self.cat(k2) == "and" and self.cat(k2 + 1) == "a" and self.cat(k2 + 2) == "half"
                          and self.cat(k2 + 3) == "unit"):           # "1 and a half hours"
                        v, u, k3 = v + 0.5, self.t[k2 + 3].val, k2 + 4
                    elif (self.cat(k2) == "with" and self.cat(k2 + 1) == "withhalf"
                          and self.cat(k2 + 2) == "unit"):           # "2 с половиной часа"
                        v, u, k3 = v + 0.5, self.t[k2 + 2].val, k2 + 3
                    elif last == "hour" and self.t[k].glued and self.t[k].isnum():  # "2h30"
                        u, k3 = "min", k2
                    else:
                        break
                    add(u, v)
                    last, k = u, k3
            if last is None:
                break
            # "an hour and a half", "час с половиной"
            if self.cat(k) == "and" and self.cat(k + 1) == "a" and self.cat(k + 2) == "half":
                add(last, 0.5)
                k += 3
            elif self.cat(k) == "with" and self.cat(k + 1) == "withhalf":
                add(last, 0.5)
                k += 2
            if (self.cat(k) == "and" or self.low(k) == ",") and (
                    self.amount(k + 1) is not None or self.cat(k + 1) == "polunit"):
                k += 1
        return (parts, k) if parts else None

    # -- matchers: each returns (component, end) or None --------------------------------------------
    def m_rec(self, i: int) -> tuple[Comp, int] | None:
        c, low = self.cat(i), self.low(i)
        if c == "every":
            k, interval = i + 1, 1
            if self.cat(k) == "other" or self.low(k) in ("second", "второй", "вторую", "второе"):
                k, interval = k + 1, 2
            else:
                wi = self.word_int(k)
                if wi is not None and self.cat(wi[1]) in ("unit", "workdays"):
                    interval, k = wi
            c2 = self.cat(k)
            if c2 == "polunit" and self.t[k].val[0] in ("hour", "min"):
                raise ParseError("too frequent")  # "каждые полчаса"
            if c2 == "unit":
                u = self.t[k].val
                if u in ("sec", "min"):
                    raise ParseError("too frequent")
                return {"kind": "rec", "unit": u, "interval": interval}, k + 1
            rest = self._rec_body(k)
            if rest is not None:
                comp, end = rest
                if interval != 1 and comp["unit"] != "week":
                    return None
                comp["interval"] = interval
                return comp, end
            if interval == 1:  # "каждое 8 марта", "every march 8", "every 15th"
                return self._rec_dated(k)
            return None
        if c == "everyadv":
            return {"kind": "rec", "unit": self.t[i].val, "interval": 1}, i + 1
        if (low, self.low(i + 1)) in (("once", "a"), ("once", "per"), ("раз", "в")) and \
                self.cat(i + 2) == "unit" and self.t[i + 2].val in UNIT_RULE:
            return {"kind": "rec", "unit": self.t[i + 2].val, "interval": 1}, i + 3  # "раз в неделю"
        if low in ("по", "on", "в") and self.cat(i + 1) in ("wdplural", "workdays", "weekend", "partplural"):
            if low == "в" and self.cat(i + 1) != "workdays":
                return None
            if low == "on" and self.cat(i + 1) == "workdays" and self.low(i + 1) not in ("weekdays", "workdays"):
                return None
            return self._rec_body(i + 1)
        if c == "wdplural" and self.low(i).endswith("s"):  # "mondays at 9"
            return self._rec_body(i)
        if c == "workdays" and low in ("weekdays", "workdays", "будни"):
            return self._rec_body(i)
        return None

    def _rec_body(self, k: int) -> tuple[Comp, int] | None:
        c = self.cat(k)
        if c == "filler" and self.cat(k + 1) == "unit" and self.t[k + 1].val == "day":
            return {"kind": "rec", "unit": "week", "weekdays": [0, 1, 2, 3, 4]}, k + 2
        if c == "workdays":
            end = k + 1
            if self.cat(end) == "unit" and self.t[end].val == "day":
                end += 1
            return {"kind": "rec", "unit": "week", "weekdays": [0, 1, 2, 3, 4]}, end
        if c == "weekend":
            return {"kind": "rec", "unit": "week", "weekdays": [5, 6]}, k + 1
        if c in ("part", "partplural") and self.t[k].val in ("morning", "afternoon", "evening", "night"):
            return {"kind": "rec", "unit": "day", "part": self.t[k].val}, k + 1
        if c in ("wd", "wdplural", "wdabbr"):
            days, end = [self.t[k].val], k + 1
            while self.cat(end) in ("and", "wd", "wdplural", "wdabbr") or self.low(end) in (",", "/"):
                nxt = end + 1 if self.cat(end) not in ("wd", "wdplural", "wdabbr") else end
                if self.cat(nxt) == "and":  # "monday, and friday"
                    nxt += 1
                if self.cat(nxt) in ("wd", "wdplural", "wdabbr"):
                    days.append(self.t[nxt].val)
                    end = nxt + 1
                else:
                    break
            return {"kind": "rec", "unit": "week", "weekdays": sorted(set(days))}, end
        return None

    def _rec_dated(self, k: int) -> tuple[Comp, int] | None:
        d = self.m_date(k, in_rule=True)
        if d is not None and d[0]["kind"] == "date" and d[0].get("y") is None:
            comp, end = d
            return {"kind": "rec", "unit": "year", "month": comp["m"], "day": comp["d"]}, end
        md = self.m_mday(k)
        if md is not None:
            comp, end = md
            k2 = end
            while self.cat(k2) == "on":      # "every 1st of the month"
                k2 += 1
            if self.cat(k2) == "unit" and self.t[k2].val == "month":
                end = k2 + 1
            return {"kind": "rec", "unit": "month", "day": comp["d"]}, end
        return None

    def m_rel(self, i: int) -> tuple[Comp, int] | None:
        c = self.cat(i)
        k = i + 1 if c == "on" else i
        if self.cat(k) == "next" and self.cat(k + 1) == "unit" and self.t[k + 1].val in ("week", "month", "year"):
            # "next week", "на следующей неделе": which day of it? ask
            return {"kind": "rel", "parts": {self.t[k + 1].val: 1}, "next_unit": True}, k + 2
        if c == "in" or (c == "later" and self.low(i) == "after"):
            d = self.duration(i + 1)
            if d is None:
                return None
            parts, end = d
            if self.low(end) == "from" and self.low(end + 1) == "now":
                end += 2
            comp: Comp = {"kind": "rel", "parts": parts}
            if self.low(i) == "через" and parts == {"day": 1} and self.cat(i + 1) == "unit":
                comp["every_other"] = True  # "через день": in a day, or every other day
            return comp, end
        d = self.duration(i)
        if d is not None:
            parts, end = d
            if self.cat(end) == "later" and self.low(end) != "after" or self.low(end) == "спустя":
                return {"kind": "rel", "parts": parts}, end + 1
            if self.low(end) == "from" and self.low(end + 1) == "now":
                return {"kind": "rel", "parts": parts}, end + 2
            if i == 0 and not self.comps and self.t[i].kind == "num":
                return {"kind": "rel", "parts": parts}, end  # "20 min check the oven"
        return None

    def _skip_on(self, i: int) -> int:
        while self.cat(i) == "on":
            i += 1
        return i

    def _year_after(self, k: int) -> tuple[int | None, int]:
        if self.low(k) == ",":
            k2 = k + 1
        else:
            k2 = k
        y = self.int_at(k2)
        if y is not None and len(self.t[k2].low) == 4 and 1900 <= y <= 9999:
            k2 += 1
            if self.cat(k2) == "unit" and self.t[k2].val == "year" or self.low(k2) in ("г", "yr"):
                k2 += 1
            if self.low(k2) == ".":
                k2 += 1
            return y, k2
        return None, k

    def _ord(self, k: int) -> int:
        """Past an ordinal ending ("th", "-го", "-е") right after a number, if there is one."""
        if self.low(k) == "-" and self.cat(k + 1) == "ord":
            return k + 2
        if self.cat(k) == "ord" and self.t[k].glued:
            return k + 1
        return k

    def m_date(self, i: int, in_rule: bool = False) -> tuple[Comp, int] | None:
        k = self._skip_on(i)
        if k >= self.n:
            return None
        t = self.t[k]
        y: int | None
        if t.kind == "iso":
            y, m, d = (int(x) for x in t.low.split("-"))
            if valid_date(y, m, d) is None:
                raise ParseError("bad date")
            return {"kind": "date", "y": y, "m": m, "d": d}, k + 1
        if t.kind == "num" and "." in t.low and ":" not in t.low and "," not in t.low:
            if self.cat(k - 1) == "at" and k == i:
                return None
            p = t.low.split(".")
            if len(p) == 3 and len(p[0]) <= 2 and len(p[1]) <= 2 and len(p[2]) in (2, 4):
                y = int(p[2]) + (2000 if len(p[2]) == 2 else 0)
                if valid_date(y, int(p[1]), int(p[0])) is None:
                    raise ParseError("bad date")
                return {"kind": "date", "y": y, "m": int(p[1]), "d": int(p[0])}, k + 1
            if len(p) == 2 and len(p[0]) <= 2 and len(p[1]) <= 2:
                a, b = int(p[0]), int(p[1])
                date_ok = 1 <= a <= 31 and 1 <= b <= 12 and valid_date(2000, b, a) is not None
                time_ok = a <= 23 and b <= 59 and len(p[1]) == 2
                y, end = self._year_after(k + 1)
                if date_ok and (y is not None or not time_ok or in_rule):
                    return {"kind": "date", "y": y, "m": b, "d": a}, end
                if date_ok and time_ok:
                    return {"kind": "dt", "m": b, "d": a, "h": a, "mi": b}, k + 1
            return None
        if t.isnum() and self.low(k + 1) == "/":
            mo = self.int_at(k + 2)
            if mo is not None and self.t[k + 1].glued and self.t[k + 2].glued:
                d = int(t.low)
                y = None
                end = k + 3
                if self.low(end) == "/" and self.int_at(end + 1) is not None:
                    yy = int(self.t[end + 1].low)
                    y = yy + 2000 if yy < 100 else yy
                    end += 2
                if valid_date(y or 2000, mo, d) is None:
                    return None
                return {"kind": "date", "y": y, "m": mo, "d": d}, end
        od = self.ord_day(k)
        if od is not None and 1 <= od[0] <= 31:
            k2 = od[1] + (1 if self.low(od[1]) == "of" else 0)
            if self.cat(k2) == "month":
                m = self.t[k2].val
                if valid_date(2000, m, od[0]) is None:
                    raise ParseError("bad date")
                y, end = self._year_after(k2 + 1)
                return {"kind": "date", "y": y, "m": m, "d": od[0]}, end
        day = self.int_at(k)
        if day is not None and 1 <= day <= 31:
            k2 = self._ord(k + 1)
            if self.low(k2) == "of":
                k2 += 1
            if self.cat(k2) == "month":
                m = self.t[k2].val
                if valid_date(2000, m, day) is None:
                    raise ParseError("bad date")
                y, end = self._year_after(k2 + 1)
                return {"kind": "date", "y": y, "m": m, "d": day}, end
        if t.cat == "month":
            k2 = k + 1
            if self.low(k2) == "." and self.t[k2].glued:  # "Dec. 25"
                k2 += 1
            if self.cat(k2) == "on":
                k2 += 1
            day = self.int_at(k2)
            if day is not None and 1 <= day <= 31 and len(self.t[k2].low) <= 2:
                m = t.val
                if valid_date(2000, m, day) is None:
                    raise ParseError("bad date")
                y, end = self._year_after(self._ord(k2 + 1))
                return {"kind": "date", "y": y, "m": m, "d": day}, end
        return None

    def m_mday(self, i: int) -> tuple[Comp, int] | None:
        k = self._skip_on(i)
        od = self.ord_day(k)
        if od is not None and (self.cat(od[1]) == "chislo" or (k > i and self.low(k - 1) == "the")):
            end = od[1] + (1 if self.cat(od[1]) == "chislo" else 0)
            return {"kind": "mday", "d": od[0]}, end   # "первого числа", "on the fifteenth"
        day = self.int_at(k)
        if day is None or len(self.t[k].low) > 2:
            return None
        end = self._ord(k + 1)
        if self.cat(end) == "chislo":
            end += 1
        if end == k + 1:
            return None
        if not 1 <= day <= 31:
            raise ParseError("day of month must be 1..31")
        return {"kind": "mday", "d": day}, end

    def m_day(self, i: int) -> tuple[Comp, int] | None:
        k = self._skip_on(i)
        if self.low(k) == "day" and self.low(k + 1) == "after" and self.cat(k + 2) == "dayword":
            return {"kind": "day", "offset": self.t[k + 2].val + 1}, k + 3
        if self.low(k) == "after" and self.cat(k + 1) == "dayword" and self.t[k + 1].val == 1:
            return {"kind": "day", "offset": 2}, k + 2
        if self.cat(k) == "dayword":
            return {"kind": "day", "offset": self.t[k].val}, k + 1
        if self.cat(k) == "tonight":
            return {"kind": "day", "offset": 0, "part": "tonight"}, k + 1
        return None

    def m_wd(self, i: int) -> tuple[Comp, int] | None:
        k, nxt, this = i, False, False
        while self.cat(k) in ("on", "at"):
            k += 1
        if self.cat(k) == "next":
            nxt, k = True, k + 1
        elif self.cat(k) == "this":
            k, this = k + 1, True
        c = self.cat(k)
        after_comp = bool(self.comps) and self.comps[-1]["end"] == i
        if (c == "wdabbr" and k == i and i > 0 and not (k + 1 < self.n and self.t[k + 1].kind == "num")
                and self.cat(k + 1) not in ("wd", "wdabbr", "and") and not after_comp):
            return None  # "sun", "sat", "wed" are weekdays beside a preposition, a time or a weekday
        if c in ("wd", "wdabbr") or (c == "wdplural" and not self.low(k).endswith("s")
                                     and self.low(k - 1) != "по"):
            listed = self._rec_body(k)
            if listed is not None and len(listed[0]["weekdays"]) > 1:
                comp, end = listed  # "gym mon wed fri 7am": every week on those days? ask
                comp["ask"] = True
                return comp, end
            end = k + 1
            if self.low(end) == "." and c == "wdabbr":
                end += 1
            return {"kind": "wd", "wd": self.t[k].val, "next": nxt, "this": this}, end
        return None

    def m_time(self, i: int) -> tuple[Comp, int] | None:
        k, at = i, False
        if self.cat(k) == "at":
            k, at = k + 1, True
        elif self.low(k) in ("на", "for") and self.t[k + 1 if k + 1 < self.n else k].kind == "num" and \
                self.cat(k + 2) not in ("unit", "polunit") and ":" not in self.low(k + 1):
            k, at = k + 1, True   # "завтра на 9", "for 9am" (not "на 2 часа": a duration)
        if k >= self.n:
            return None
        t = self.t[k]
        if t.cat == "part" and t.val in ("noon", "midnight"):
            return {"kind": "time", "h": PART_HOURS[t.val], "mi": 0, "amb": False}, k + 1
        if t.cat in ("half", "quarter") and self.cat(k + 1) == "past":
            wi = self.word_int(k + 2)
            if wi is not None and 1 <= wi[0] <= 12:
                return self._time_tail(wi[0], 30 if t.cat == "half" else 15, wi[1], amb=True)
        if t.cat in ("num", "tens") and t.low not in ("couple", "пару", "пара", "hundred", "сто"):
            # "at seven in the evening", "в девять утра", "завтра в девять"
            wi = self.word_int(k)
            if wi is None or not 1 <= wi[0] <= 23:
                return None
            end = wi[1]
            if at and (self.cat(end) == "oclock" or self.cat(end) == "unit" and self.t[end].val == "hour"):
                end += 1  # "в два часа дня", "at seven o'clock"
            tail = self._time_tail(wi[0], 0, end, amb=wi[0] <= 12)
            after_day = bool(self.comps) and self.comps[-1]["end"] == i
            if at or tail[0].get("ampm") or (after_day and self.cat(wi[1]) in ("ampm", "oclock")):
                return tail
            return None
        if t.kind != "num":
            return None
        s = t.low
        m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", s)
        if m:
            h, mi = int(m.group(1)), int(m.group(2))
            if h > 23 or mi > 59:
                return None
            amb = 1 <= h <= 12 and not s.startswith("0")
            return self._time_tail(h, mi, k + 1, amb)
        h2 = self.int_at(k)
        if at and h2 is not None and len(s) in (3, 4) and h2 // 100 <= 23 and h2 % 100 <= 59:
            # "at 930", "at 0930", "в 1830"
            return self._time_tail(h2 // 100, h2 % 100, k + 1, amb=1 <= h2 // 100 <= 12 and len(s) == 3)
        if h2 is None or h2 > 23 or len(s) > 2:
            return None
        end = k + 1
        mi = 0
        if self.cat(end) == "unit" and self.t[end].val == "hour" and (at or self.t[end].glued):
            end += 1  # "в 5 часов", "в 10ч"
            mm = self.int_at(end)
            if mm is not None and mm <= 59 and (self.t[end].glued or self.cat(end + 1) == "unit"):
                mi, end = mm, end + 1
                if self.cat(end) == "unit" and self.t[end].val == "min":
                    end += 1
            at = True
        elif self.cat(end) == "oclock":
            end, at = end + 1, True
        tail = self._time_tail(h2, mi, end, amb=1 <= h2 <= 12 and not s.startswith("0"))
        if tail[0].get("ampm") or at or (self.comps and self.comps[-1]["end"] == i
                                         and self.comps[-1]["kind"] in ("day", "wd", "date", "mday", "rec")):
            return tail
        return None

    def _time_tail(self, h: int, mi: int, k: int, amb: bool) -> tuple[Comp, int]:
        """am/pm, "утра", "вечера", "a.m." after an hour."""
        comp: Comp = {"kind": "time", "h": h, "mi": mi, "amb": amb}
        part = None
        if self.cat(k) == "ampm" or self.low(k) == "дня":
            part, k = (self.t[k].val if self.low(k) != "дня" else "afternoon"), k + 1
            if self.low(k) == ".":
                k += 1
        elif self.low(k) in ("a", "p") and self.low(k + 1) == "." and self.low(k + 2) == "m":
            part = "am" if self.low(k) == "a" else "pm"
            k += 3
            if self.low(k) == ".":
                k += 1
        if part is not None:
            h2 = hour_with_part(h, part)
            if h2 is None:
                raise ParseError("bad time")
            comp.update(h=h2, amb=False, ampm=True)
        return comp, k

    def m_part(self, i: int) -> tuple[Comp, int] | None:
        k = i
        if self.cat(k) == "in" and self.low(k) == "in" and self.low(k + 1) == "the":
            k += 2
        elif self.cat(k) in ("this", "at", "on"):
            k += 1
        if self.cat(k) == "part" and self.t[k].val in ("morning", "afternoon", "evening", "night"):
            return {"kind": "part", "part": self.t[k].val}, k + 1
        if self.low(k) in ("после", "after") and self.low(k + 1) in ("обеда", "lunch"):
            return {"kind": "part", "part": "afternoon"}, k + 2   # "после обеда", "after lunch"
        if self.low(k) in ("обед", "обеда", "обеду", "lunchtime") and (
                self.cat(i) == "at" or self.low(k) == "lunchtime"):
            return {"kind": "part", "part": "lunch"}, k + 1   # "в обед", "к обеду", "at lunchtime"
        return None

    def run(self) -> list[Comp]:
        matchers = (self.m_rec, self.m_rel, self.m_date, self.m_mday, self.m_day, self.m_wd,
                    self.m_time, self.m_part)
        i = 0
        while i < self.n:
            for fn in matchers:
                r = fn(i)
                if r is not None:
                    comp, end = r
                    comp.update(start=i, end=end)
                    self.comps.append(comp)
                    i = end
                    break
            else:
                i += 1
        return self.comps


# ---------------------------------------------------------------------------------------------
# from components to readings
class _Reader:
    def __init__(self, now: datetime, tz_name: str):
        self.now, self.tz_name, self.tz = now, tz_name, ZoneInfo(tz_name)
        self.local_now = now.astimezone(self.tz)
        self.today = self.local_now.date()

    def at(self, d: date, h: int, mi: int) -> datetime:
        return local_to_utc(d, h, mi, self.tz)

    def variants(self, comps: list[Comp]) -> list[dict[str, Comp]]:
        out: list[dict[str, Comp]] = [{}]
        for c in comps:
            kinds = [c["kind"]] if c["kind"] != "dt" else ["date", "time"]
            nxt = []
            for v in out:
                for kind in kinds:
                    cc = dict(c, kind=kind)
                    if kind == "time" and c["kind"] == "dt":
                        cc["amb"] = 1 <= c["h"] <= 12
                    if kind == "date" and c["kind"] == "dt":
                        cc["y"] = None
                    if kind in v:
                        nxt.append(v)
                        nxt.append(dict(v, **{kind: cc}))
                    else:
                        nxt.append(dict(v, **{kind: cc}))
            out = nxt[:16]
        return out

    def read(self, v: dict[str, Comp]) -> list[Parsed]:
        """The readings of one combination of components (two when an hour may be am or pm)."""
        part = (v.get("part") or {}).get("part") or (v.get("day") or {}).get("part")
        tm = v.get("time")
        hours: list[tuple[int, int]] = []   # candidate (hour, minute), preferred first
        ask12 = False
        if tm is not None:
            h, mi = tm["h"], tm["mi"]
            if part and tm["amb"]:
                h2 = hour_with_part(h, part)
                if h2 is None:
                    raise ParseError("conflict")
                hours = [(h2, mi)]
            elif part and not in_part(h, part):
                raise ParseError("conflict")  # "в 9 утра и вечером", "at 21:00 in the morning"
            elif tm["amb"] and h != 12:
                hours = [(h, mi), (h + 12, mi)]
                ask12 = h <= 6
            else:
                hours = [(h, mi)]
        elif part:
            hours = [(PART_HOURS[part], 0)]
        if "rec" in v:
            return self._recurring(v, hours, ask12)
        if "rel" in v:
            return [self._relative(v, hours[:1])]
        return self._absolute(v, hours, ask12, part)

    def _recurring(self, v: dict[str, Comp], hours: list[tuple[int, int]], ask12: bool) -> list[Parsed]:
        rec = v["rec"]
        if "rel" in v or ("date" in v and rec["unit"] not in ("year", "day", "week", "month")):
            raise ParseError("conflict")
        notes: list[str] = []
        unit = rec["unit"]
        rule: dict[str, Any] = {"kind": UNIT_RULE[unit], "interval": int(rec.get("interval", 1))}
        if not hours and rec.get("part"):
            hours = [(PART_HOURS[rec["part"]], 0)]
        elif rec.get("part") and hours and len(hours) == 2:
            h = hour_with_part(hours[0][0], rec["part"])
            if h is None:
                raise ParseError("conflict")
            hours, ask12 = [(h, hours[0][1])], False
        start_after = self.now
        if "day" in v and unit not in ("day", "hour"):
            raise ParseError("conflict")  # "weekly report tomorrow": which day of the week?
        if "day" in v:  # "starting tomorrow": from that day on
            d0 = self.today + timedelta(days=v["day"]["offset"])
            start_after = max(self.now, self.at(d0, 0, 0) - timedelta(seconds=1))
        if unit == "hour":
            if rule["interval"] < MIN_HOURS:
                raise ParseError("too frequent")
            first = (self.at(self.today, *hours[0]) if hours
                     else self.now + timedelta(hours=rule["interval"]))
            while first <= self.now:
                first += timedelta(hours=rule["interval"])
            local = first.astimezone(self.tz)
            rule.update(hour=local.hour, minute=local.minute, start=local.date().isoformat())
            return [Parsed(first, rule, "")]
        if unit == "week":
            wds = rec.get("weekdays") or ([v["wd"]["wd"]] if "wd" in v else None)
            if wds is None:
                wds = [self.today.weekday()]
                notes.append("note_weekday_today")
            elif "wd" in v and rec.get("weekdays") and v["wd"]["wd"] not in wds:
                raise ParseError("conflict")
            rule["weekdays"] = sorted(set(wds))
        elif "wd" in v:
            raise ParseError("conflict")
        if unit == "month":
            day = rec.get("day") or (v.get("mday") or {}).get("d") or (v.get("date") or {}).get("d")
            if day is None:
                day = self.today.day
                notes.append("note_month_day_today")
            rule["day"] = day
        elif "mday" in v:
            raise ParseError("conflict")
        if unit == "year":
            src = rec if "month" in rec else v.get("date")
            if src is None:
                src = {"m": self.today.month, "d": self.today.day}
                notes.append("note_year_day_today")
            rule["month"], rule["day"] = src.get("month", src.get("m")), src.get("day", src.get("d"))
        out = []
        for h, mi in (hours or [(DEFAULT_HOUR, 0)]):
            r = dict(rule, hour=h, minute=mi)
            if r["interval"] > 1:
                first = next_occurrence(dict(r, interval=1), self.tz_name, start_after)
                r["start"] = first.astimezone(self.tz).date().isoformat()
            try:
                r = normalize(r)
            except ValueError:
                raise ParseError("bad date") from None
            out.append(Parsed(next_occurrence(r, self.tz_name, start_after), r, "", notes=list(notes)))
        return out if ask12 else out[:1]

    def _relative(self, v: dict[str, Comp], hours: list[tuple[int, int]]) -> Parsed:
        if v["rel"].get("next_unit") and "week" in v["rel"]["parts"] and "wd" in v and not any(
                k in v for k in ("day", "date", "mday")):   # "next week on monday"
            d = self.today + timedelta(days=7 - self.today.weekday() + v["wd"]["wd"])
            return Parsed(self.at(d, *(hours[0] if hours else (DEFAULT_HOUR, 0))), None, "")
        if any(k in v for k in ("day", "wd", "date", "mday")):
            raise ParseError("conflict")
        parts = v["rel"]["parts"]
        months = parts.get("month", 0) + 12 * parts.get("year", 0)
        whole_m = int(months)
        delta = timedelta(seconds=parts.get("sec", 0), minutes=parts.get("min", 0),
                          hours=parts.get("hour", 0), days=parts.get("day", 0) + 30 * (months - whole_m),
                          weeks=parts.get("week", 0))
        if delta > FURTHEST or whole_m > 121:
            raise ParseError("out of range")
        due = self.now
        if whole_m:
            due = add_months_dt(self.local_now, whole_m)
        due = due + delta
        if hours:
            whole_days = all(u in ("day", "week", "month", "year") and float(x).is_integer()
                             for u, x in parts.items())
            if not whole_days:
                raise ParseError("conflict")
            due = self.at(due.astimezone(self.tz).date(), *hours[0])
        if due <= self.now:
            raise ParseError("out of range")
        if v["rel"].get("next_unit"):
            unit = next(iter(parts))
            h, mi = hours[0] if hours else (DEFAULT_HOUR, 0)
            first = (self.today + timedelta(days=7 - self.today.weekday()) if unit == "week"
                     else add_months_dt(self.local_now, 1).date().replace(day=1) if unit == "month"
                     else self.today.replace(year=self.today.year + 1, month=1, day=1))
            raise Ambiguous([Parsed(self.at(first, h, mi), None, ""),
                             Parsed(self.at(due.astimezone(self.tz).date(), h, mi), None, "")])
        if v["rel"].get("every_other") and not hours:
            # "через день": in a day, or every other day?
            rule = normalize({"kind": "daily", "interval": 2, "hour": DEFAULT_HOUR, "minute": 0,
                              "start": (self.today + timedelta(days=1)).isoformat()})
            raise Ambiguous([Parsed(due, None, ""),
                             Parsed(next_occurrence(rule, self.tz_name, self.now), rule, "")])
        return Parsed(due, None, "")

    def _absolute(self, v: dict[str, Comp], hours: list[tuple[int, int]], ask12: bool,
                  part: str | None) -> list[Parsed]:
        days: list[date] = []
        rolls = False        # a bare time: today, or tomorrow once passed
        next_wd = False
        if "date" in v:
            c = v["date"]
            if c.get("y"):
                d = valid_date(c["y"], c["m"], c["d"])
            else:
                d = next_date(self.today, c["m"], c["d"])
            if d is None:
                raise ParseError("bad date")
            days = [d]
            if "wd" in v and v["wd"]["wd"] != d.weekday():
                raise ParseError("conflict")
            if "day" in v or "mday" in v:
                raise ParseError("conflict")
        elif "mday" in v:
            d = next_month_day(self.today, v["mday"]["d"])
            if d is None:
                raise ParseError("bad date")
            days = [d]
            if "day" in v or "wd" in v:
                raise ParseError("conflict")
        elif "day" in v:
            days = [self.today + timedelta(days=v["day"]["offset"])]
            if "wd" in v and v["wd"]["wd"] != days[0].weekday():
                raise ParseError("conflict")
        elif "wd" in v:
            wd = v["wd"]
            d = weekday_from(self.today, wd["wd"], skip_today=wd["next"])
            days = [d]
            if wd["next"] and d.weekday() > self.today.weekday() and (d - self.today).days < 7:
                days.append(d + timedelta(days=7))  # "next friday" said on a Wednesday
                next_wd = True
            elif d == self.today and not wd.get("this"):
                days.append(d + timedelta(days=7))  # "on wednesday at 3pm" said on a Wednesday
                next_wd = True
        elif hours:
            days, rolls = [self.today], True
        else:
            raise ParseError("no time found")
        if not hours:
            hours = [(DEFAULT_HOUR, 0)]
        out: list[Parsed] = []
        for d in days:
            for h, mi in hours:
                dd = d
                if part in ("night", "tonight") and h < 5 and ("day" in v or rolls):
                    dd = d + timedelta(days=1)   # "tonight at 2": after midnight
                due = self.at(dd, h, mi)
                if rolls and due <= self.now:
                    due = self.at(dd + timedelta(days=1), h, mi)
                if "mday" in v and due <= self.now:
                    d2 = next_month_day(d + timedelta(days=1), v["mday"]["d"])
                    due = self.at(d2, h, mi) if d2 else due
                if "wd" in v and due <= self.now and not v["wd"]["next"]:
                    due = self.at(dd + timedelta(days=7), h, mi)
                if due <= self.now:
                    continue
                out.append(Parsed(due, None, ""))
        if not out:
            if "day" in v and v["day"]["offset"] == 0 and not v.get("time") and not part:
                # "today call mom" after 09:00: in an hour, or this evening?
                alts = [self.now + timedelta(hours=1)]
                if self.local_now.hour < PART_HOURS["evening"]:
                    alts.append(self.at(self.today, PART_HOURS["evening"], 0))
                raise Ambiguous([Parsed(a, None, "") for a in alts])
            raise ParseError("past")
        if next_wd:
            return out[:2]
        if len(hours) == 2 and not ask12:
            am, pm = out[0], out[-1] if len(out) > 1 else out[0]
            # "at 9" (7..11 without am/pm): the morning, unless that has passed today and the
            # evening has not (then ask)
            if rolls and am.due_at.astimezone(self.tz).date() != self.today and \
                    pm.due_at.astimezone(self.tz).date() == self.today:
                return [am, pm]
            return [am]
        return out if ask12 else out[:1]


# ---------------------------------------------------------------------------------------------
def _strip_prefix(toks: list[Tok]) -> int:
    """How many leading tokens are "remind me", "pls", "напомни мне пожалуйста"…"""
    k = 0
    while k < len(toks) and (toks[k].low in PREFIX_WORDS or toks[k].low in ("a", "an", ",", ":")):
        k += 1
    if any(t.low in CORE_PREFIX for t in toks[:k]):
        while k > 0 and toks[k - 1].low in ("a", "an"):
            k -= 1
        return k
    k = 0
    while k < len(toks) and toks[k].low in POLITE:
        k += 1
    return k


def _suspicious(toks: list[Tok], used: list[bool], k: int) -> bool:
    """A token left in the text that looks like time: the parser may have misread the phrase."""
    t = toks[k]

    def near_num(j: int) -> bool:
        return 0 <= j < len(toks) and toks[j].kind in ("num", "iso")

    def free_num(j: int) -> bool:  # a number the parser did not use ("at 9 second" is a noun)
        return near_num(j) and not used[j]

    def beside_used(j: int) -> bool:
        return (j > 0 and used[j - 1]) or (j + 1 < len(toks) and used[j + 1])

    prv0 = toks[k - 1] if k > 0 else None
    if (t.kind == "num" or t.cat in ("num", "tens")) and prv0 is not None and \
            prv0.low in ("or", "или", "-", "–", "to", "до"):
        return True                      # "at 9 or 10", "in a day or two", "час-полтора"
    if t.kind == "word":
        if t.cat == "ampm" and t.low != "am":
            return True                  # "friday pm", "в пятницу вечера"
        if t.cat in ("num", "tens") and k > 0 and (toks[k - 1].cat in ("at", "in") or used[k - 1]):
            return True                  # "at seven" not read as a time
        if t.cat == "unit" and not t.fuzzy:
            # a unit beside a number or after "in", "every", "next" is a time word ("30 min
            # before"); alone it is a noun ("plan the week", "office hours")
            prev = toks[k - 1] if k > 0 else None
            return free_num(k - 1) or free_num(k + 1) or (prev is not None and prev.cat in (
                "in", "every", "next", "this", "a", "half", "num", "tens", "oneandhalf", "pol"))
        if t.cat in TIMEISH:
            if len(t.low) <= 3 and not t.fuzzy:
                return near_num(k - 1) or near_num(k + 1)
            return True
        if t.cat in ("month", "wdabbr", "ampm", "oclock"):
            return near_num(k - 1) or near_num(k + 1) or (t.cat in ("month", "wdabbr") and beside_used(k)
                                                          and (len(t.low) > 4 or t.cat == "wdabbr"))
        return False
    if t.kind == "iso":
        return True
    if t.kind == "num":
        if not t.isnum():
            return True                  # 1.5, 10:30, 25.12 left over
        if int(t.low) > 59 and not (len(t.low) == 4 and 2000 <= int(t.low) <= 2099):
            return False                 # "call 911", "room 305", "flight 1234" (a year is not)
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        prv = toks[k - 1] if k > 0 else None
        if nxt is None or nxt.kind != "word" or nxt.cat in TIMEISH or nxt.cat in ("ampm", "month"):
            return True
        if prv is not None and (prv.cat in ("at", "in") or prv.low in ("на", "for") or used[k - 1]):
            return True
        return beside_used(k) and len(t.low) <= 2 and nxt.kind != "word"
    return False


def _punct(t: Tok) -> bool:
    return t.kind == "other" and unicodedata.category(t.raw[0]).startswith("P")


def _text(s: str, toks: list[Tok], keep: list[bool], start: int) -> str:
    kept = [k for k in range(len(toks)) if keep[k]]
    # leading "to", "that", "чтобы" after a prefix or a time; trailing dangling prepositions
    while kept and (kept[0] > start or start > 0) and toks[kept[0]].low in LEAD_JUNK | {"and", "и"}:
        kept.pop(0)
    while kept and _punct(toks[kept[0]]):
        kept.pop(0)
    while kept and (toks[kept[-1]].low in DANGLING | TRAIL_JUNK or _punct(toks[kept[-1]])
                    and toks[kept[-1]].low not in ("!", "?", ".", ")")):
        if toks[kept[-1]].low in DANGLING and len(kept) < 2:
            break
        kept.pop()
    out = []
    for n, k in enumerate(kept):
        if n:
            prev = kept[n - 1]
            out.append(s[toks[prev].end:toks[k].start] if prev == k - 1 else " ")
        out.append(toks[k].raw)
    return re.sub(r"\s{2,}", " ", "".join(out)).strip()


def parse(text: str, now: datetime, tz_name: str) -> Parsed:
    """Parse a reminder phrase (with or without "remind me" / "напомни"): the reminder when the
    parser is sure; `Ambiguous` with the likely readings when it is not; `ParseError` otherwise."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    text = clean(text)
    if len(text) > MAX_INPUT:
        raise ParseError("text too long")
    s = _SLASH_COMMAND.sub("", text, count=1)
    s = _ISO_T.sub(r"\1 \2", s)  # "2026-12-24T18:00": a date and a time
    if not s.strip():
        raise ParseError("empty")
    toks = tokenize(s)
    start = _strip_prefix(toks)
    if start >= len(toks):
        raise ParseError("empty")
    scan = _Scan(toks[start:])
    try:
        comps = scan.run()
    except (OverflowError, ValueError) as e:
        raise e if isinstance(e, ParseError) else ParseError("out of range") from None
    forced_ask = any(c.get("ask") for c in comps)
    if not comps:
        comps = _lone_hour(toks, start)  # "call mom 5": 05:00 or 17:00? ask, never guess
        forced_ask = bool(comps)
    if not comps:
        raise ParseError("no time found")
    used = [False] * len(toks)
    for c in comps:
        for k in range(start + c["start"], start + c["end"]):
            used[k] = True
    keep = [k >= start and not used[k] for k in range(len(toks))]
    # a preposition right before a component is part of it ("call mom at" + "at 5")
    for k in range(len(toks)):
        if keep[k] and toks[k].low in DANGLING and k + 1 < len(toks) and used[k + 1]:
            keep[k] = False
    body = _text(s, toks, keep, start)
    kinds = {c["kind"] for c in comps}
    for c in comps:
        if c["kind"] == "dt":
            rec_dated = any(x["kind"] == "rec" and x["unit"] in ("year", "month") for x in comps)
            if "time" in kinds or rec_dated:
                c["kind"], c["y"] = "date", None    # "25.12 at 18:00", "every year 14.02"
            elif kinds & {"day", "wd", "date", "mday"}:
                c["kind"], c["amb"] = "time", 1 <= c["h"] <= 12   # "tomorrow 10.30"
    reader = _Reader(now, tz_name)
    readings: list[Parsed] = []
    errors: list[ParseError] = []
    asked: list[Parsed] = []
    for v in reader.variants(comps):
        try:
            readings.extend(reader.read(v))
        except Ambiguous as e:
            asked.extend(e.candidates)
        except ParseError as e:
            errors.append(e)
        except (OverflowError, ValueError):
            errors.append(ParseError("out of range"))
    if not readings and not asked and any(str(e) == "conflict" for e in errors):
        readings = _each_alone(reader, comps)  # "tomorrow on friday": which one?
        asked = list(readings)
    readings = _distinct(readings + asked)
    lang = "ru" if CYRILLIC.search(s) else "en"
    for p in readings:
        p.text, p.lang = body or "⏰", lang
        _check(p, now)
    if not readings:
        order = ("too frequent", "out of range", "bad date", "day of month must be 1..31", "past",
                 "bad time", "conflict")
        errors.sort(key=lambda e: order.index(str(e)) if str(e) in order else len(order))
        raise errors[0] if errors else ParseError("no time found")
    if len(readings) > 1 or asked or forced_ask:
        raise Ambiguous(readings[:3])
    words = [toks[k].raw for k in range(len(toks)) if keep[k] and _suspicious(toks, used, k)]
    words += [toks[k].raw for k in range(len(toks) - 1)  # "until 5pm", "до 17:00": a deadline?
              if keep[k] and used[k + 1] and toks[k].low in DEADLINE]
    if words:
        raise Ambiguous(readings, words)
    return readings[0]


def _lone_hour(toks: list[Tok], start: int) -> list[Comp]:
    """A phrase with no time but one bare hour in it ("call mom 5", "in 5 call"): a time to offer."""
    used = [False] * len(toks)
    found = [k for k in range(start, len(toks)) if toks[k].isnum() and len(toks[k].low) <= 2
             and int(toks[k].low) <= 23 and _suspicious(toks, used, k)]
    words = [t for t in toks[start:] if t.kind == "word" and t.cat is None]
    if len(found) != 1 or not words:
        return []
    h = int(toks[found[0]].low)
    k = found[0] - start
    return [{"kind": "time", "h": h, "mi": 0, "amb": 1 <= h <= 12, "start": k, "end": k + 1}]


def _each_alone(reader: _Reader, comps: list[Comp]) -> list[Parsed]:
    """The readings of the phrase without one of its day or time components at a time."""
    out: list[Parsed] = []
    for k in range(len(comps)):
        for v in reader.variants(comps[:k] + comps[k + 1:]):
            try:
                out.extend(reader.read(v))
            except Ambiguous as e:
                out.extend(e.candidates)
            except (ParseError, OverflowError, ValueError):
                continue
    return out


def _distinct(ps: list[Parsed]) -> list[Parsed]:
    seen, out = set(), []
    for p in ps:
        key = (p.due_at, repr(sorted((p.recurrence or {}).items())))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _check(p: Parsed, now: datetime) -> None:
    if len(p.text) > REMINDER_TEXT:
        raise ParseError("text too long")
    if p.due_at - now > FURTHEST:
        raise ParseError("out of range")
    if p.due_at <= now:
        raise ParseError("past")


def looks_like_reminder(text: str) -> bool:
    toks = tokenize((text or "")[:200])
    return any(t.low in CORE_PREFIX for t in toks[:3])
