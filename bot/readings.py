"""From the components of a phrase to its readings: the due time (and rule) each combination of
components means at a given moment, in the user's zone. More than one reading means the bot asks."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .dates import (PART_HOURS, add_months_dt, hour_with_part, in_part, next_date, next_month_day,
                    valid_date, weekday_from)
from .grammar import UNIT_RULE, Comp
from .phrases import Ambiguous, ParseError, Parsed
from .recurrence import MIN_HOURS, local_to_utc, next_occurrence, normalize

FURTHEST = timedelta(days=3660)  # "in 10 years" is as far as a reminder may go
DEFAULT_HOUR = 9                 # a date, a day or a rule without a time: 09:00


class Reader:
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
