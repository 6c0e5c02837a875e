"""Reminders delivered after a backup was made stay delivered when it is restored.

The backup knows nothing of what went out after its time: restored, those reminders are pending
again (a one-off one due in the past, a recurring one at the occurrence already sent), and the bot
would send each a second time, marked as late. Before the restore replaces the database, what it
says was delivered since is read; after the restore those reminders take back the state their
deliveries left them in (done, or moved on to the next occurrence) and the deliveries are recorded,
so nothing is sent twice. A reminder the backup does not have (created later) is gone with the
restore either way, and said so by the restore's report.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional, Tuple

import psycopg

from . import pg
from .errors import BackupError

# (id, status, due_at) of a reminder as its deliveries after the backup left it
ReminderState = Tuple[int, str, datetime]
# the delivery rows after the backup, in _DELIVERY_COLUMNS order
DeliveryRow = Tuple[object, ...]

_DELIVERY_COLUMNS = ("reminder_id", "user_id", "chat_id", "occurrence", "state", "message_id",
                     "late_seconds", "action", "action_at", "sent_at")
# a reminder on the wire when the database was read is pending again at that occurrence
_KEPT_STATUS = {"pending": "pending", "sending": "pending", "done": "done", "cancelled": "cancelled",
                "failed": "failed"}


@dataclass(frozen=True)
class Delivered:
    reminders: List[ReminderState]
    deliveries: List[DeliveryRow]


def read_since(url: str, since: datetime) -> Optional[Delivered]:
    """What the bot's database at `url` says was delivered after `since`; None when it has no bot
    tables (another database) or cannot be read (then nothing can be kept, and the caller says so)."""
    try:
        with pg.connect(url) as conn:
            if pg.one(conn, "SELECT to_regclass('public.reminders') IS NOT NULL AND "
                            "to_regclass('public.deliveries') IS NOT NULL") is not True:
                return None
            deliveries = conn.execute(
                f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM public.deliveries "
                "WHERE state = 'sent' AND sent_at > %s ORDER BY id", (since,)).fetchall()
            reminders = conn.execute(
                "SELECT id, status, due_at FROM public.reminders WHERE id IN "
                "(SELECT reminder_id FROM public.deliveries WHERE state = 'sent' AND sent_at > %s)",
                (since,)).fetchall()
    except (psycopg.Error, BackupError):
        return None
    states: List[ReminderState] = []
    for rid, status, due in reminders:
        if not (isinstance(rid, int) and isinstance(status, str) and isinstance(due, datetime)):
            return None  # not the shape the bot writes: keep nothing rather than guess
        states.append((rid, _KEPT_STATUS.get(status, "pending"), due))
    return Delivered(states, [tuple(row) for row in deliveries])


def keep(url: str, delivered: Delivered) -> int:
    """Put the delivered state back into the restored database at `url`: the reminders the backup
    has, only forwards (a reminder the restore brought back pending at or before the occurrence
    already sent). Returns how many reminders were kept delivered; one transaction, all or nothing."""
    kept = 0
    with pg.connect(url) as conn:
        with conn.transaction():
            for rid, status, due in delivered.reminders:
                cur = conn.execute(
                    "UPDATE public.reminders SET status = %s, due_at = %s, attempts = 0, hold_until = NULL, "
                    "updated_at = now() "
                    "WHERE id = %s AND status = 'pending' AND due_at <= %s", (status, due, rid, due))
                kept += cur.rowcount
            columns = ", ".join(_DELIVERY_COLUMNS)
            for row in delivered.deliveries:
                conn.execute(
                    f"INSERT INTO public.deliveries ({columns}) "
                    f"SELECT {', '.join(['%s'] * len(_DELIVERY_COLUMNS))} "
                    "WHERE EXISTS (SELECT 1 FROM public.reminders WHERE id = %s) "
                    "ON CONFLICT (reminder_id, occurrence) DO NOTHING", (*row, row[0]))
    return kept
