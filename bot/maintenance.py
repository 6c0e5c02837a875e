"""Maintenance mode: a switch in PostgreSQL that the running bot follows within a tick.

    python -m bot.maintenance on [--message TEXT] | off | status [--json]

While on, every allowed user's message is answered with the maintenance message (the catalogue's,
in the user's language, or the custom --message as given), nothing is delivered and nothing is
lost: reminders that fall due meanwhile are delivered after `off`, flagged late. Reads
DATABASE_URL; applies the bot's migrations first (idempotent), so it works before the first start.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime

from .limits import REMINDER_TEXT, clean


@dataclass
class MaintenanceState:
    """The running bot's copy of the switch, refreshed by the scheduler every tick."""
    enabled: bool = False
    message: str | None = None

    async def refresh(self, pool) -> None:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT enabled, message FROM maintenance WHERE id = 1")
            row = await cur.fetchone()
        self.enabled, self.message = (bool(row[0]), row[1]) if row else (False, None)


def set_state(conn, enabled: bool, message: str | None) -> dict:
    conn.execute(
        """INSERT INTO maintenance (id, enabled, message, since, updated_at)
           VALUES (1, %s, %s, CASE WHEN %s THEN now() END, now())
           ON CONFLICT (id) DO UPDATE SET enabled = EXCLUDED.enabled, message = EXCLUDED.message,
               since = CASE WHEN EXCLUDED.enabled THEN COALESCE(
                   CASE WHEN maintenance.enabled THEN maintenance.since END, now()) END,
               updated_at = now()""", (enabled, message, enabled))
    return get_state(conn)


def get_state(conn) -> dict:
    row = conn.execute("SELECT enabled, message, since FROM maintenance WHERE id = 1").fetchone()
    enabled, message, since = row if row else (False, None, None)
    due = conn.execute("SELECT count(*) FROM reminders WHERE status = 'pending' AND due_at <= now()"
                       ).fetchone()[0]
    return {"maintenance": "on" if enabled else "off", "message": message,
            "since": since.isoformat() if isinstance(since, datetime) else None, "due_waiting": due}


def line(state: dict) -> str:
    if state["maintenance"] == "off":
        return f"maintenance: off ({state['due_waiting']} reminders due now)"
    msg = "default message" if state["message"] is None else f"message: {state['message'][:80]!r}"
    return (f"maintenance: on since {state['since']} ({msg}; {state['due_waiting']} reminders "
            "waiting)")


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bot.maintenance",
                                 description="Switch the bot's maintenance mode (reads DATABASE_URL).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    on = sub.add_parser("on", help="answer every user with the maintenance message; deliver nothing")
    on.add_argument("--message", help=f"a custom message, shown as given (at most {REMINDER_TEXT} characters)")
    sub.add_parser("off", help="back to normal; reminders due meanwhile are delivered")
    st = sub.add_parser("status", help="print the state")
    st.add_argument("--json", action="store_true", help="one JSON object")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _args(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("maintenance: DATABASE_URL is missing", file=sys.stderr)
        return 2
    message = None
    if a.cmd == "on" and a.message is not None:
        message = clean(a.message).strip()
        if not message or len(message) > REMINDER_TEXT:
            print(f"maintenance: --message must have 1 to {REMINDER_TEXT} characters", file=sys.stderr)
            return 2
    import psycopg
    from . import db
    try:
        db.migrate(url)
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            state = (get_state(conn) if a.cmd == "status"
                     else set_state(conn, a.cmd == "on", message))
    except psycopg.Error as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        from .logs import redact
        print(f"maintenance: database unreachable: {redact(first)[:200]}", file=sys.stderr)
        return 1
    print(json.dumps(state) if getattr(a, "json", False) else line(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
