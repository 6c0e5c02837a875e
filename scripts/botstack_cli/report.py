"""Human-readable text of the agent's results (status, restore, rollback)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

MIB = 1024 * 1024
GIB = 1024 * MIB


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    s = int(max(0, seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def size(n: Optional[int]) -> str:
    if n is None:
        return "?"
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def parse_time(text: Optional[str]) -> Optional[dt.datetime]:
    if not text or text.startswith("0001-"):
        return None
    text = text.replace("Z", "+00:00")
    # docker prints nanoseconds; fromisoformat takes at most microseconds
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def ago(text: Optional[str], at: Optional[dt.datetime] = None) -> str:
    t = parse_time(text)
    if t is None:
        return "?"
    return f"{t.strftime('%Y-%m-%d %H:%M UTC')} ({duration(((at or now()) - t).total_seconds())} ago)"


def backup_to_restore(listing: object, which: str, at: Optional[dt.datetime] = None) -> str:
    """The line the restore prompt shows for `which` ("latest" or a name), from the droplet's
    `botstack-backup list --json` answer (untrusted: checked field by field): its name, time, age
    and where it is kept, and a warning when a newer backup exists only on the droplet's volume.
    What cannot be read is said, never guessed."""
    rows = listing.get("backups") if isinstance(listing, dict) else None
    if not isinstance(rows, list):
        return "which backup: cannot tell (the droplet's list of backups could not be read)"
    good: list[tuple[dt.datetime, dict]] = []
    for r in rows:
        made = parse_time(r.get("created_at")) if isinstance(r, dict) and isinstance(r.get("created_at"), str) else None
        if made is not None and isinstance(r.get("name"), str) and (r.get("local") is True
                                                                   or r.get("offsite_complete") is True):
            good.append((made, r))
    good.sort(key=lambda pair: pair[0])
    if which == "latest":
        # the backup tool restores the newest backup in the bucket ("latest"), not a local-only copy
        chosen = next((pair for pair in reversed(good) if pair[1].get("offsite_complete") is True), None)
    else:
        chosen = next((pair for pair in good if pair[1]["name"] == which), None)
    if chosen is None:
        return f"which backup: none named {which!r} is complete on the droplet or in the bucket"
    made, row = chosen
    where = " and ".join(w for w, on in (("in the bucket", row.get("offsite_complete") is True),
                                          ("on the droplet's volume", row.get("local") is True)) if on)
    line = f"backup {row['name']}, made {ago(row['created_at'], at)}, {where}"
    newer = [r for t, r in good if t > made]
    if newer:
        line += (f"; NEWER: {newer[-1]['name']}, made {ago(newer[-1]['created_at'], at)}"
                 + ("" if newer[-1].get("offsite_complete") is True else ", only on the droplet's volume")
                 + " (the backup tool refuses an older backup while it knows a newer one)")
    return line


# services that run once per `up` and exit (compose `restart: "no"`): done is healthy for them
ONE_SHOT_SERVICES = ("db-setup",)


def service_ok(s: dict) -> bool:
    if s.get("service") in ONE_SHOT_SERVICES:
        return s.get("state") == "exited" and s.get("exit_code") == 0
    return s.get("state") == "running" and s.get("health") in ("", "healthy")


def healthy(data: dict) -> bool:
    return bool(data.get("services")) and all(service_ok(s) for s in data["services"])


def _run_line(label: str, run: Optional[dict], at: Optional[dt.datetime]) -> str:
    if not run:
        return f"{label:<13}none recorded"
    verdict = "ok" if run.get("ok") else "FAILED"
    detail = run.get("object") or run.get("detail") or ""
    if not run.get("ok") and run.get("detail"):
        detail = run["detail"]
    return f"{label:<13}{ago(run.get('finished_at'), at)} {verdict}" + (f": {detail}" if detail else "")


def drill_stale(db: dict, interval_days: int, at: dt.datetime) -> Optional[str]:
    """A warning when no restore drill passed in twice its interval (a drill nobody runs proves nothing)."""
    limit = dt.timedelta(days=2 * interval_days)
    drill, first = parse_time(db.get("last_ok_drill_at")), parse_time(db.get("first_backup_at"))
    if drill is not None and at - drill > limit:
        return (f"DRILL STALE: the last good restore drill was {duration((at - drill).total_seconds())} ago "
                f"(one is due every {interval_days} days)")
    if drill is None and first is not None and at - first > limit:
        return f"DRILL STALE: no good restore drill recorded (one is due every {interval_days} days)"
    return None


def status_text(data: dict[str, Any], at: Optional[dt.datetime] = None) -> str:
    at = at or now()
    st, rel, host = data.get("stack", {}), data["release"], data["host"]
    lines = [f"stack        {st.get('name')} ({st.get('host')})",
             f"release      {rel['current']}" + (f" (previous {rel['previous']})" if rel.get("previous") else "")]
    if st.get("releaseId") and st["releaseId"] != rel["current"]:
        lines.append(f"             the stack's releaseId is {st['releaseId']}: the droplet runs another "
                     "release (rolled back?)")
    m = data.get("maintenance")
    if m is not None:
        on = m.get("maintenance") == "on"
        text = "ON" if on else "off"
        if on:
            text += f": {m['message']}" if m.get("message") else " (the default message)"
            if m.get("since"):
                text += f", since {m['since']}"
        lines.append(f"maintenance  {text}")
    mem = host["memory"]
    used = (mem["total"] or 0) - (mem["available"] or 0)
    lines.append(f"host         up {duration(host.get('uptime_s'))}; memory {size(used)} used of "
                 f"{size(mem['total'])}; swap {size((mem['swap_total'] or 0) - (mem['swap_free'] or 0))} "
                 f"used of {size(mem['swap_total'])}")
    for d in host.get("disks", []):
        lines.append(f"disk         {d['path']}: {size(d['free'])} free of {size(d['total'])}")
    lines.append("")
    lines.append(f"{'service':<10} {'state':<10} {'health':<10} {'up':<9} {'restarts':<9} memory")
    for s in data.get("services", []):
        started = parse_time(s.get("started_at"))
        up = duration((at - started).total_seconds()) if started and s.get("state") == "running" else "-"
        state = s.get("state") or "?"
        if state == "exited" and s.get("exit_code") is not None:
            state = "done" if s["service"] in ONE_SHOT_SERVICES and s["exit_code"] == 0 else f"exited {s['exit_code']}"
        lines.append(f"{s['service']:<10} {state:<10} {s.get('health') or '-':<10} "
                     f"{up:<9} {s.get('restarts', '-')!s:<9} {s.get('memory') or '-'}")
    lines.append("")
    db = data.get("database")
    if db is None:
        lines.append("database     not reachable through the bot (is it running?)")
    else:
        lines.append(_run_line("last backup", db.get("last_backup"), at))
        lines.append(_run_line("last drill", db.get("last_drill"), at))
        stale = drill_stale(db, data.get("drill_interval_days") or 7, at)
        if stale:
            lines.append(f"{'':<13}{stale}")
        r = db.get("reminders")
        if r is not None:
            lines.append(f"reminders    {r['pending']} pending ({r['overdue']} overdue); database "
                         f"{size(db.get('database_bytes'))}")
    bad = [s["service"] for s in data.get("services", []) if not service_ok(s)]
    if bad:
        lines.append(f"NOT HEALTHY: {', '.join(bad)} (see `botstack {st.get('name')} logs SERVICE`)")
    return "\n".join(lines)


def restore_text(data: dict) -> str:
    lines = [data.get("restored") or "restored"]
    tables = data.get("tables")
    if tables:
        lines.append("rows now in the database:")
        width = max(len(t) for t in tables)
        lines += [f"  {t:<{width}}  {n}" for t, n in tables.items()]
    elif tables is None:
        lines.append("(row counts unavailable: the bot is not running)")
    return "\n".join(lines)


def rollback_text(stack, data: dict) -> str:
    recorded = stack.release_id or data["from"]
    return (f"rolled back: release {data['to']} is running again (was {data['from']}).\n"
            f"The stack's state still records release {recorded}: the next `pulumi up` "
            f"(scripts/deploy {stack.name}) deploys the code you have again once bot/, compose/ or "
            f"deploy/ differ from {recorded}; with no change, pulumi sees nothing to do, and "
            f"`botstack {stack.name} rollback` again returns to {data['from']}.")
