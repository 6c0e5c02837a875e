"""Prometheus' alerts, told to the admins in Telegram by the backup job (the `observability` profile).

Prometheus posts its alerts to an Alertmanager (`POST /api/v2/alerts`, a JSON list); the backup
job's metrics server answers that one call instead of running an Alertmanager container (about
25 MiB more on a 1 GB droplet, and a second way to reach Telegram). The backup job, not the bot,
because "the bot is down" must still reach someone.

Prometheus re-sends a firing alert every minute and a resolved one for a while: each alert (its
label set) is told once when it starts firing and once when it is resolved. A restart of the job
may tell a still-firing alert once more. The body is untrusted (anyone on the stack's network can
post): it is size-capped and parsed with every type checked, and anything malformed is refused as
a whole with a 400 that says why; the alert's text reaches Telegram as plain text, cut to length.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger("botstack_backup")

MAX_BODY = 256 * 1024
MAX_ALERTS = 200
MAX_FIELD = 300
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class BadAlerts(ValueError):
    """A body that is not a list of Prometheus alerts: refused as a whole."""


def parse_time(raw: object, field: str) -> dt.datetime:
    """RFC 3339 as Go writes it (nanoseconds, `Z`), to an aware datetime."""
    if not isinstance(raw, str):
        raise BadAlerts(f"{field} is not a string")
    m = _TIME.match(raw)
    if not m:
        raise BadAlerts(f"{field} is not an RFC 3339 time")
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return dt.datetime.fromisoformat(m.group(1) + frac + zone)
    except ValueError:
        raise BadAlerts(f"{field} is not a valid time") from None


def _strings(raw: object, field: str) -> Dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise BadAlerts(f"{field} is not an object of strings")
    return raw


Alert = Tuple[str, Dict[str, str], str, bool]  # (key, labels, summary, resolved)


def parse(body: bytes, now: dt.datetime) -> List[Alert]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadAlerts("the body is not JSON") from None
    if not isinstance(doc, list) or len(doc) > MAX_ALERTS:
        raise BadAlerts(f"the body is not a list of at most {MAX_ALERTS} alerts")
    out = []
    for i, a in enumerate(doc):
        if not isinstance(a, dict):
            raise BadAlerts(f"alert {i} is not an object")
        labels = _strings(a.get("labels"), f"alert {i}: labels")
        annotations = _strings(a.get("annotations", {}), f"alert {i}: annotations")
        name = labels.get("alertname", "")
        if not name:
            raise BadAlerts(f"alert {i} has no alertname")
        ends = parse_time(a["endsAt"], f"alert {i}: endsAt") if a.get("endsAt") else None
        key = json.dumps(sorted(labels.items()))
        summary = annotations.get("summary") or annotations.get("description") or ""
        out.append((key, labels, summary[:MAX_FIELD], ends is not None and ends <= now))
    return out


class AlertReceiver:
    def __init__(self, send: Callable[[str], int], now: Callable[[], dt.datetime]):
        self.send, self.now = send, now
        self._firing: Dict[str, str] = {}
        self._lock = threading.Lock()

    def receive(self, body: bytes) -> int:
        """Tell the admins about what changed; returns how many messages that made."""
        alerts = parse(body, self.now())
        told = []
        with self._lock:
            for key, labels, summary, resolved in alerts:
                name = labels["alertname"][:MAX_FIELD]
                if resolved and key in self._firing:
                    del self._firing[key]
                    told.append(f"\u2705 botstack alert resolved: {name}\n{summary}".rstrip())
                elif not resolved and key not in self._firing:
                    self._firing[key] = name
                    severity = labels.get("severity", "")[:40]
                    told.append(f"\U0001f525 botstack alert: {name}{f' ({severity})' if severity else ''}\n{summary}"
                                .rstrip())
        for text in told:
            log.warning("alert: %s", text.replace("\n", ": "))
            self.send(text)
        return len(told)


def read_body(headers, rfile) -> Optional[bytes]:
    """The request body, or None when its length is missing or over MAX_BODY."""
    try:
        length = int(headers.get("Content-Length") or "")
    except ValueError:
        return None
    if length < 0 or length > MAX_BODY:
        return None
    return rfile.read(length)
