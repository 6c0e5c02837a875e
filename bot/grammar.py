"""The grammar of reminder phrases: components found anywhere in a token list.

A component is a recurrence ("every 2 weeks", "по вторникам"), a duration ("in 1.5 hours",
"через полтора часа"), a date ("25.12", "8 марта"), a day of the month ("the 15th"), a day word
("tomorrow"), a weekday ("next friday"), a time ("at 7pm", "в 18.30") or a part of the day
("вечером"). Each matcher looks at one position and returns the component and where it ends; the
tokens no matcher takes are the reminder's text. `bot/readings.py` turns components into times.
"""
from __future__ import annotations

import re
from typing import Any

from .dates import PART_HOURS, hour_with_part, valid_date
from .phrases import ParseError, Tok

UNIT_RULE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}

Comp = dict[str, Any]


class Scan:
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

    def adjective(self, k: int) -> bool:
        """An English time word used as an adjective: followed by an ordinary word ("weekly report")."""
        nxt = self.t[k + 1] if k + 1 < self.n else None
        return (self.t[k].low.isascii() and nxt is not None and nxt.kind == "word" and nxt.cat is None
                and not nxt.glued)

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
        if c == "everyadv2" or (c == "every" and self.cat(i + 1) == "unit2"):  # biweekly, every fortnight
            return {"kind": "rec", "unit": "week", "interval": 2}, i + (1 if c == "everyadv2" else 2)
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
            # before an ordinary word it may be an adjective ("the weekly report"): parse() decides
            return {"kind": "rec", "unit": self.t[i].val, "interval": 1, "adj": self.adjective(i)}, i + 1
        if low == "раз" and self.low(i + 1) == "в":   # "раз в неделю", "раз в 3 дня", "раз в две недели"
            wi = self.word_int(i + 2)
            n, k = wi if wi is not None else (1, i + 2)
            if self.cat(k) == "unit" and self.t[k].val in UNIT_RULE:
                return {"kind": "rec", "unit": self.t[k].val, "interval": n}, k + 1
        if (low, self.low(i + 1)) in (("once", "a"), ("once", "per"), ("раз", "в")) and \
                self.cat(i + 2) == "unit" and self.t[i + 2].val in UNIT_RULE:
            return {"kind": "rec", "unit": self.t[i + 2].val, "interval": 1}, i + 3  # "раз в неделю"
        if low == "по" and self.cat(i + 1) == "wdabbr":   # "по пн и чт", "по пн, ср, пт"
            return self._rec_body(i + 1)
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
            if k == i and self.adjective(k) and not (self.comps and self.comps[-1]["end"] == i):
                return None   # "evening class", "morning briefing": a word of the text
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
