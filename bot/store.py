"""Queries. Every function takes the async pool; database errors propagate (callers decide)."""
from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from . import metrics
from .limits import MAX_REMINDERS_PER_USER
from .recurrence import next_occurrence, normalize

# A reminder "still to come" counts towards the per-user cap; done, cancelled and failed ones do not.
_TO_COME = "('pending', 'sending', 'paused')"


class ReminderLimitReached(Exception):
    """The user already has `limit` reminders still to come; nothing was saved."""

    def __init__(self, limit: int):
        super().__init__(f"at most {limit} reminders still to come per user")
        self.limit = limit


async def _lock_user(conn, user_id: int) -> None:
    """Serialise the cap check of one user's new reminders (the lock migration 0006's
    reminders_to_come_locked takes for add_reminder):
    two at the same moment both wait here, and the second counts after the first's insert has
    committed (READ COMMITTED takes a fresh snapshot per statement)."""
    await conn.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (user_id,))


async def ensure_user(pool: AsyncConnectionPool, user_id: int, chat_id: int,
                      telegram_lang: str | None = None) -> dict:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """INSERT INTO users (user_id, chat_id, telegram_lang) VALUES (%s, %s, %s)
               ON CONFLICT (user_id) DO UPDATE SET chat_id = EXCLUDED.chat_id,
                   telegram_lang = EXCLUDED.telegram_lang
               RETURNING user_id, chat_id, tz, lang, quiet_start, quiet_end, snooze_minutes,
                         editing_id""", (user_id, chat_id, (telegram_lang or "")[:10] or None))
        row = await cur.fetchone()
        if row is None:  # an upsert with RETURNING always returns its row
            raise RuntimeError(f"upsert of user {user_id} returned no row")
        return row


_USER_SETTINGS = frozenset({"tz", "lang", "quiet_start", "quiet_end", "snooze_minutes", "editing_id"})


async def set_user(pool, user_id: int, **values) -> None:
    """Update some of the user's settings (names checked against a fixed set)."""
    cols = sorted(values)
    if not cols or not set(cols) <= _USER_SETTINGS:
        raise ValueError(f"unknown user settings {cols}")
    sql = "UPDATE users SET " + ", ".join(f"{c} = %s" for c in cols) + " WHERE user_id = %s"
    async with pool.connection() as conn:
        await conn.execute(sql, [values[c] for c in cols] + [user_id])


async def set_tz(pool, user_id: int, tz: str) -> None:
    await set_user(pool, user_id, tz=tz)


async def add_reminder(pool, user_id: int, chat_id: int, text: str, tz: str, due_at: datetime,
                       recurrence: dict | None, source: str, limit: int = MAX_REMINDERS_PER_USER) -> int:
    """Store a new reminder; its id. Raises ReminderLimitReached (and stores nothing) when the user
    already has `limit` still to come.

    One statement, one round trip, prepared by psycopg after a few uses: the insert happens only if
    `reminders_to_come_locked` (migration 0006) — the user's row lock, then a count with a fresh
    snapshot — is under the cap, so two messages at the same moment cannot both pass it. Measured
    against the alternatives (docs/bot.md, Benchmarks): the lock and the insert as two statements
    of one simple query cost ~0.3–0.5 ms more per new reminder (parsed and planned every time),
    a pipelined BEGIN … COMMIT more still."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """INSERT INTO reminders (user_id, chat_id, text, tz, recurrence, due_at, source)
               SELECT %s, %s, %s, %s, %s, %s, %s WHERE reminders_to_come_locked(%s) < %s
               RETURNING id""",
            (user_id, chat_id, text, tz, Jsonb(recurrence) if recurrence else None, due_at, source,
             user_id, limit))
        row = await cur.fetchone()
    if row is None:
        raise ReminderLimitReached(limit)
    metrics.REMINDERS_CREATED.inc()
    return row[0]


async def list_upcoming(pool, user_id: int, limit: int = 20) -> tuple[list[dict], int]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT id, text, due_at, tz, recurrence, status FROM reminders
               WHERE user_id = %s AND status IN ('pending', 'sending', 'paused')
               ORDER BY status = 'paused', due_at, id LIMIT %s""", (user_id, limit))
        rows = await cur.fetchall()
        cur2 = await conn.execute(
            "SELECT count(*) FROM reminders WHERE user_id = %s AND status IN ('pending', 'sending', 'paused')",
            (user_id,))
        return rows, (await cur2.fetchone())[0]


async def cancel(pool, user_id: int, reminder_id: int) -> dict | None:
    """Cancel a pending reminder of this user; None if there is none (idempotent)."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """UPDATE reminders SET status = 'cancelled', updated_at = now()
               WHERE id = %s AND user_id = %s AND status IN ('pending', 'sending', 'failed', 'paused')
               RETURNING id, text""", (reminder_id, user_id))
        return await cur.fetchone()


async def export(pool, user_id: int) -> dict:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT user_id, chat_id, tz, lang, telegram_lang, quiet_start, quiet_end, snooze_minutes, created_at "
                          "FROM users WHERE user_id = %s",
                          (user_id,))
        user = await cur.fetchone()
        await cur.execute(
            """SELECT id, text, tz, recurrence, due_at, status, quiet_held, source, created_at, updated_at
               FROM reminders WHERE user_id = %s ORDER BY id""", (user_id,))
        reminders = await cur.fetchall()
        await cur.execute(
            """SELECT id, reminder_id, occurrence, state, in_doubt, message_id, late_seconds, action,
                      action_at, claimed_at, sent_at
               FROM deliveries WHERE user_id = %s ORDER BY id""", (user_id,))
        deliveries = await cur.fetchall()
    return {"user": user, "reminders": reminders, "deliveries": deliveries}


async def delivery_for_action(pool, delivery_id: int) -> dict | None:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT d.id, d.reminder_id, d.user_id, d.chat_id, d.message_id, d.action,
                      r.text, r.tz, r.recurrence, r.status
               FROM deliveries d JOIN reminders r ON r.id = d.reminder_id WHERE d.id = %s""",
            (delivery_id,))
        return await cur.fetchone()


class _Full(Exception):
    """Rolls back a button press that would go over the cap."""


async def apply_action(pool, delivery_id: int, user_id: int, action: str,
                       new_due: datetime | None, limit: int = MAX_REMINDERS_PER_USER) -> str:
    """Record the first button press on a delivery and carry it out, atomically.

    Returns "ok", "already" (a button of this delivery was pressed before), "missing", or "full":
    a snooze would make one more reminder to come than the user's `limit`; then nothing changes
    (the press is not recorded either, so it may be pressed again after a /cancel)."""
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(
                    """UPDATE deliveries SET action = %s, action_at = now()
                       WHERE id = %s AND user_id = %s AND action IS NULL
                       RETURNING reminder_id""", (action, delivery_id, user_id))
                row = await cur.fetchone()
                if row is None:
                    await cur.execute("SELECT 1 FROM deliveries WHERE id = %s AND user_id = %s",
                                      (delivery_id, user_id))
                    return "already" if await cur.fetchone() else "missing"
                if new_due is None:
                    return "ok"
                await _lock_user(conn, user_id)
                await cur.execute(f"SELECT count(*) AS n FROM reminders WHERE user_id = %s AND status IN {_TO_COME}",
                                  (user_id,))
                if (await cur.fetchone())["n"] >= limit:
                    raise _Full()
                await cur.execute("SELECT id, user_id, chat_id, text, tz, recurrence, status FROM reminders "
                                  "WHERE id = %s FOR UPDATE", (row["reminder_id"],))
                r = await cur.fetchone()
                if r["recurrence"] is None and r["status"] in ("done", "failed"):
                    # a one-shot reminder: move it
                    await cur.execute(
                        """UPDATE reminders SET due_at = %s, status = 'pending', hold_until = NULL,
                                  attempts = 0, updated_at = now() WHERE id = %s""", (new_due, r["id"]))
                else:
                    # a recurring (or still pending) reminder keeps its schedule: snooze makes a copy
                    await cur.execute(
                        """INSERT INTO reminders (user_id, chat_id, text, tz, due_at, source)
                           VALUES (%s, %s, %s, %s, %s, 'snooze')""",
                        (r["user_id"], r["chat_id"], r["text"], r["tz"], new_due))
                return "ok"
        except _Full:
            return "full"


async def reminder(pool, user_id: int, reminder_id: int) -> dict | None:
    """One of the user's reminders that is still to come (pending, sending or paused)."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT id, text, tz, recurrence, due_at, status FROM reminders
               WHERE id = %s AND user_id = %s AND status IN ('pending', 'sending', 'paused')""",
            (reminder_id, user_id))
        return await cur.fetchone()


MAX_UNDOABLE_EDITS = 20   # per user: the newest edits keep their ↩ Undo (older ones answer "nothing to undo")
_REMINDER_STATE = ("text", "tz", "recurrence", "due_at", "status")


async def edit_reminder(pool, user_id: int, reminder_id: int, text: str | None,
                        due_at: datetime | None, recurrence: dict | None, tz: str | None) -> dict | None:
    """Change a reminder's text and/or time (a new rule replaces the old one); None if it is not
    the user's or no longer to come. A reminder being sent right now is not changed.

    The state before and after is recorded in `reminder_edits` (migration 0007) in the same
    transaction; the row returned carries its id as `edit_id`, for the confirmation's ↩ Undo."""
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT text, tz, recurrence, due_at, status FROM reminders
               WHERE id = %s AND user_id = %s AND status IN ('pending', 'paused') FOR UPDATE""",
            (reminder_id, user_id))
        old = await cur.fetchone()
        if old is None:
            return None
        await cur.execute(
            """UPDATE reminders SET text = COALESCE(%s, text),
                      due_at = COALESCE(%s, due_at),
                      recurrence = CASE WHEN %s::timestamptz IS NULL THEN recurrence ELSE %s END,
                      status = CASE WHEN %s::timestamptz IS NULL THEN status ELSE 'pending' END,
                      tz = COALESCE(%s, tz), hold_until = NULL, quiet_held = false, attempts = 0,
                      updated_at = now()
               WHERE id = %s AND user_id = %s AND status IN ('pending', 'paused')
               RETURNING id, text, tz, recurrence, due_at, status, updated_at""",
            (text, due_at, due_at, Jsonb(recurrence) if recurrence else None, due_at, tz, reminder_id,
             user_id))
        new = await cur.fetchone()
        if new is None:  # locked above: cannot happen, but never record an edit that was not made
            return None
        await cur.execute(
            """INSERT INTO reminder_edits (reminder_id, user_id, old_text, old_tz, old_recurrence,
                      old_due_at, old_status, new_text, new_tz, new_recurrence, new_due_at,
                      new_status, new_updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (reminder_id, user_id, *(_json(old[k]) for k in _REMINDER_STATE),
             *(_json(new[k]) for k in _REMINDER_STATE), new["updated_at"]))
        new["edit_id"] = (await cur.fetchone())["id"]
        await cur.execute(
            """DELETE FROM reminder_edits WHERE user_id = %s AND id NOT IN (
                   SELECT id FROM reminder_edits WHERE user_id = %s ORDER BY id DESC LIMIT %s)""",
            (user_id, user_id, MAX_UNDOABLE_EDITS))
        return new


def _json(value):
    return Jsonb(value) if isinstance(value, (dict, list)) else value


async def undo_edit(pool, user_id: int, edit_id: int, now: datetime) -> tuple[str, dict | None]:
    """Put the reminder of edit `edit_id` back as it was before that edit, if nothing has changed
    it since. Returns (outcome, reminder or edit row):

    "ok" (the reminder as restored), "missing" (no such edit of this user's, or pruned),
    "already" (undone before), "gone" (delivered, cancelled or failed since), "newer" (edited
    again since), "changed" (changed otherwise since: a recurring one delivered, paused, resumed,
    held by quiet hours), "past" (a one-off whose earlier time has passed meanwhile).
    Anything but "ok" changes nothing. The edit's row lock makes a double press answer "already".
    A rule whose earlier time has passed moves on to its next occurrence."""
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM reminder_edits WHERE id = %s AND user_id = %s FOR UPDATE",
                          (edit_id, user_id))
        e = await cur.fetchone()
        if e is None:
            return "missing", None
        if e["undone_at"] is not None:
            return "already", e
        await cur.execute(
            """SELECT id, text, tz, recurrence, due_at, status, updated_at FROM reminders
               WHERE id = %s AND user_id = %s FOR UPDATE""", (e["reminder_id"], user_id))
        r = await cur.fetchone()
        if r is None or r["status"] not in ("pending", "paused"):
            return "gone", e
        await cur.execute("SELECT 1 FROM reminder_edits WHERE reminder_id = %s AND id > %s LIMIT 1",
                          (e["reminder_id"], edit_id))
        if await cur.fetchone() is not None:
            return "newer", e
        if r["updated_at"] != e["new_updated_at"] or any(r[k] != e["new_" + k] for k in _REMINDER_STATE):
            return "changed", e
        due, rule = e["old_due_at"], e["old_recurrence"]
        if due <= now and due != r["due_at"]:
            if rule is None:
                return "past", e
            rule = normalize(rule)
            due = next_occurrence(rule, e["old_tz"], now)
        await cur.execute(
            """UPDATE reminders SET text = %s, tz = %s, recurrence = %s, due_at = %s, status = %s,
                      hold_until = NULL, quiet_held = false, attempts = 0, updated_at = now()
               WHERE id = %s
               RETURNING id, text, tz, recurrence, due_at, status""",
            (e["old_text"], e["old_tz"], _json(rule), due, e["old_status"], r["id"]))
        restored = await cur.fetchone()
        await cur.execute("UPDATE reminder_edits SET undone_at = now() WHERE id = %s", (edit_id,))
        return "ok", restored


async def pause(pool, user_id: int, reminder_id: int) -> dict | None:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """UPDATE reminders SET status = 'paused', updated_at = now()
               WHERE id = %s AND user_id = %s AND status = 'pending' AND recurrence IS NOT NULL
               RETURNING id, text""", (reminder_id, user_id))
        return await cur.fetchone()


async def resume(pool, user_id: int, reminder_id: int, due_at: datetime) -> dict | None:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """UPDATE reminders SET status = 'pending', due_at = %s, hold_until = NULL,
                      quiet_held = false, attempts = 0, updated_at = now()
               WHERE id = %s AND user_id = %s AND status = 'paused'
               RETURNING id, text, tz, recurrence, due_at""", (due_at, reminder_id, user_id))
        return await cur.fetchone()


async def status(pool) -> dict:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT (SELECT count(*) FROM reminders WHERE status IN ('pending', 'sending')) AS pending,
                      (SELECT count(*) FROM reminders WHERE status = 'pending' AND due_at <= now()) AS overdue,
                      pg_database_size(current_database()) AS db_size""")
        out = dict(await cur.fetchone())
        await cur.execute(
            """SELECT finished_at, size_bytes, ok, uploaded, object_key, detail FROM backup_runs
               WHERE kind = 'backup' ORDER BY finished_at DESC LIMIT 1""")
        out["last_backup"] = await cur.fetchone()
        await cur.execute(
            """SELECT finished_at FROM backup_runs WHERE kind = 'backup' AND ok
               ORDER BY finished_at DESC LIMIT 1""")
        ok = await cur.fetchone()
        out["last_ok_backup_at"] = ok["finished_at"] if ok else None
        await cur.execute(
            """SELECT (SELECT max(finished_at) FROM backup_runs WHERE kind = 'drill' AND ok) AS last_ok_drill_at,
                      (SELECT min(finished_at) FROM backup_runs WHERE kind = 'backup') AS first_backup_at""")
        out.update(await cur.fetchone() or {})
        return out
