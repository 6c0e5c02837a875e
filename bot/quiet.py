"""Quiet hours: a daily local-time window (may cross midnight) in which nothing is delivered."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .recurrence import local_to_utc

_WINDOW = re.compile(r"^\s*([0-9]{1,2})(?::([0-9]{2}))?\s*[-–—]\s*([0-9]{1,2})(?::([0-9]{2}))?\s*$")


def parse_window(text: str) -> tuple[int, int] | None:
    """"22:00-08:00" -> (1320, 480) minutes after local midnight; None if malformed or empty."""
    m = _WINDOW.match(text or "")
    if not m:
        return None
    h1, m1, h2, m2 = int(m.group(1)), int(m.group(2) or 0), int(m.group(3)), int(m.group(4) or 0)
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    return None if start == end else (start, end)


def fmt_minutes(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def quiet_until(now: datetime, tz_name: str, start: int | None, end: int | None) -> datetime | None:
    """When the quiet window around `now` ends (aware UTC), or None if `now` is not in one."""
    if start is None or end is None or start == end:
        return None
    try:
        tz = ZoneInfo(tz_name)
    except (ValueError, KeyError, OSError):
        return None
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if start < end:
        inside, end_day = start <= minute < end, local.date()
    else:  # across midnight
        inside = minute >= start or minute < end
        end_day = local.date() + timedelta(days=1) if minute >= start else local.date()
    if not inside:
        return None
    return local_to_utc(end_day, end // 60, end % 60, tz)
