"""Recurrence rules and next-occurrence arithmetic in the user's wall-clock time (DST-safe).

A rule is one small JSON object (stored in `reminders.recurrence`):

    {"kind": "hourly" | "daily" | "weekly" | "monthly" | "yearly",
     "interval": N,              # every N hours / days / weeks / months / years (default 1)
     "hour": 0-23, "minute": 0-59,
     "weekdays": [0-6, ...],     # weekly: the days (Monday = 0), sorted, at least one
     "day": 1-31,                # monthly, yearly: the day of the month (clamped to the month's end)
     "month": 1-12,              # yearly
     "start": "YYYY-MM-DD"}      # interval > 1 and hourly: the local date of the first occurrence;
                                 # periods are counted from it (weeks from its Monday)

Examples: every day at 9 `{"kind": "daily", "interval": 1, "hour": 9, "minute": 0}`; every weekday
8:30 `{"kind": "weekly", "interval": 1, "weekdays": [0, 1, 2, 3, 4], ...}`; every 2 weeks on Friday
`{"kind": "weekly", "interval": 2, "weekdays": [4], "start": "2026-11-27", ...}`; every year on 8
March `{"kind": "yearly", "interval": 1, "month": 3, "day": 8, ...}`.

Occurrences are local wall-clock datetimes in the reminder's zone converted to UTC, so "every day at
9" stays at 09:00 local across DST changes; "every N hours" steps in real hours from its first
occurrence. Rules written by earlier releases (`"kind": "weekdays"`, weekly `"weekday": n`, no
`interval`) are read as the same rules (`normalize`); migration 0004 rewrites stored ones.
"""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

KINDS = ("hourly", "daily", "weekly", "monthly", "yearly")
MAX_INTERVAL = {"hourly": 168, "daily": 366, "weekly": 52, "monthly": 24, "yearly": 10}
MIN_HOURS = 1  # "every N hours": at least every hour (more often is a timer, not a reminder)


def local_to_utc(d: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock d hour:minute in tz. A time that does not exist (spring-forward
    gap) resolves forward by the gap (02:30 -> 03:30), an ambiguous one to its first occurrence."""
    local = datetime.combine(d, time(hour, minute), tzinfo=tz)
    # fold=0 (PEP 495): in a gap the pre-transition offset applies, i.e. 02:30 becomes 03:30;
    # in an overlap the first (summer-time) instant is taken.
    return local.astimezone(timezone.utc)


def normalize(rule: dict) -> dict:
    """The rule in the current shape, checked (ValueError names what is wrong)."""
    if not isinstance(rule, dict):
        raise ValueError("a rule must be an object")
    r = dict(rule)
    if r.get("kind") == "weekdays":
        r["kind"], r["weekdays"] = "weekly", [0, 1, 2, 3, 4]
    if r.get("kind") == "weekly" and "weekdays" not in r and "weekday" in r:
        r["weekdays"] = [r.pop("weekday")]
    r.setdefault("interval", 1)
    kind = r.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown recurrence kind {kind!r}")

    def intin(name: str, lo: int, hi: int) -> None:
        v = r.get(name)
        if type(v) is not int or not lo <= v <= hi:
            raise ValueError(f"rule field {name} must be an integer {lo}..{hi}")

    intin("hour", 0, 23)
    intin("minute", 0, 59)
    intin("interval", 1, MAX_INTERVAL[kind])
    if kind == "weekly":
        wds = r.get("weekdays")
        if (not isinstance(wds, list) or not wds
                or not all(type(x) is int and 0 <= x <= 6 for x in wds)):
            raise ValueError("rule field weekdays must be a list of 0..6")
        r["weekdays"] = sorted(set(wds))
    if kind in ("monthly", "yearly"):
        intin("day", 1, 31)
    if kind == "yearly":
        intin("month", 1, 12)
        if r["day"] > (29 if r["month"] == 2 else calendar.monthrange(2001, r["month"])[1]):
            raise ValueError("no such day in that month")
    if "start" in r:
        try:
            date.fromisoformat(r["start"])
        except (TypeError, ValueError):
            raise ValueError("rule field start must be YYYY-MM-DD") from None
    elif r["interval"] > 1 or kind == "hourly":
        raise ValueError("a rule with an interval needs a start date")
    return r


def _clamped(y: int, m: int, day: int) -> date:
    return date(y, m, min(day, calendar.monthrange(y, m)[1]))


def next_occurrence(rule: dict, tz_name: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (aware), as an aware UTC datetime."""
    r = normalize(rule)
    tz = ZoneInfo(tz_name)
    n, kind = r["interval"], r["kind"]
    start = date.fromisoformat(r["start"]) if "start" in r else date(1970, 1, 5)  # a Monday
    at = lambda d: local_to_utc(d, r["hour"], r["minute"], tz)  # noqa: E731
    first = max(start, after.astimezone(tz).date() - timedelta(days=1))
    if kind == "hourly":
        anchor = at(start)
        if anchor > after:
            return anchor
        k = (after - anchor) // timedelta(hours=n) + 1
        return anchor + k * timedelta(hours=n)
    if kind == "daily":
        d = first + timedelta(days=-(first - start).days % n)
        for _ in range(4):
            if at(d) > after:
                return at(d)
            d += timedelta(days=n)
    elif kind == "weekly":
        monday0 = start - timedelta(days=start.weekday())
        d = first
        for _ in range(7 * n + 8):
            week = (d - timedelta(days=d.weekday()) - monday0).days // 7
            if week % n == 0 and d.weekday() in r["weekdays"] and d >= start and at(d) > after:
                return at(d)
            d += timedelta(days=1)
    elif kind == "monthly":
        y, m = first.year, first.month
        for _ in range(n + 3):
            idx = (y - start.year) * 12 + m - start.month
            d = _clamped(y, m, r["day"])
            if idx % n == 0 and d >= start and at(d) > after:
                return at(d)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:  # yearly
        for y in range(first.year, first.year + n + 2):
            d = _clamped(y, r["month"], r["day"])
            if (y - start.year) % n == 0 and d >= start and at(d) > after:
                return at(d)
    raise ValueError("no next occurrence")  # pragma: no cover - every branch finds one
