"""Recurrence rules and next-occurrence arithmetic in the user's wall-clock time (DST-safe).

A rule is a small JSON-able dict: {"kind": "daily"|"weekdays"|"weekly"|"monthly", "hour": h,
"minute": m, "weekday": 0-6 (weekly, Monday=0), "day": 1-31 (monthly; clamped to the month's end)}.
Occurrences are computed as local wall-clock datetimes in the reminder's zone and converted to UTC,
so "every day at 9" stays at 09:00 local across DST changes."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

def local_to_utc(d: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock d hour:minute in tz. A time that does not exist (spring-forward
    gap) resolves forward by the gap (02:30 -> 03:30), an ambiguous one to its first occurrence."""
    local = datetime.combine(d, time(hour, minute), tzinfo=tz)
    # fold=0 (PEP 495): in a gap the pre-transition offset applies, i.e. 02:30 becomes 03:30;
    # in an overlap the first (summer-time) instant is taken.
    return local.astimezone(timezone.utc)


def _matches(rule: dict, d: date) -> bool:
    kind = rule["kind"]
    if kind == "daily":
        return True
    if kind == "weekdays":
        return d.weekday() < 5
    if kind == "weekly":
        return d.weekday() == rule["weekday"]
    if kind == "monthly":
        last = calendar.monthrange(d.year, d.month)[1]
        return d.day == min(rule["day"], last)
    raise ValueError(f"unknown recurrence kind {kind!r}")


def next_occurrence(rule: dict, tz_name: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (aware), as an aware UTC datetime."""
    tz = ZoneInfo(tz_name)
    d = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(400):
        if _matches(rule, d):
            at = local_to_utc(d, rule["hour"], rule["minute"], tz)
            if at > after:
                return at
        d += timedelta(days=1)
    raise ValueError("no occurrence within 400 days")
