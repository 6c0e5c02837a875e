"""Queries. Every function takes the async pool; database errors propagate (callers decide)."""
from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool


async def ensure_user(pool: AsyncConnectionPool, user_id: int, chat_id: int) -> dict:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """INSERT INTO users (user_id, chat_id) VALUES (%s, %s)
               ON CONFLICT (user_id) DO UPDATE SET chat_id = EXCLUDED.chat_id
               RETURNING user_id, chat_id, tz""", (user_id, chat_id))
        return await cur.fetchone()


async def set_tz(pool, user_id: int, tz: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("UPDATE users SET tz = %s WHERE user_id = %s", (tz, user_id))


async def add_reminder(pool, user_id: int, chat_id: int, text: str, tz: str, due_at: datetime,
                       recurrence: dict | None, source: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """INSERT INTO reminders (user_id, chat_id, text, tz, recurrence, due_at, source)
               VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (user_id, chat_id, text, tz, Jsonb(recurrence) if recurrence else None, due_at, source))
        return (await cur.fetchone())[0]


async def list_upcoming(pool, user_id: int, limit: int = 20) -> tuple[list[dict], int]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT id, text, due_at, tz, recurrence, status FROM reminders
               WHERE user_id = %s AND status IN ('pending', 'sending')
               ORDER BY due_at, id LIMIT %s""", (user_id, limit))
        rows = await cur.fetchall()
        cur2 = await conn.execute(
            "SELECT count(*) FROM reminders WHERE user_id = %s AND status IN ('pending', 'sending')",
            (user_id,))
        return rows, (await cur2.fetchone())[0]


async def cancel(pool, user_id: int, reminder_id: int) -> dict | None:
    """Cancel a pending reminder of this user; None if there is none (idempotent)."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """UPDATE reminders SET status = 'cancelled', updated_at = now()
               WHERE id = %s AND user_id = %s AND status IN ('pending', 'sending', 'failed')
               RETURNING id, text""", (reminder_id, user_id))
        return await cur.fetchone()


async def export(pool, user_id: int) -> dict:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT user_id, chat_id, tz, created_at FROM users WHERE user_id = %s",
                          (user_id,))
        user = await cur.fetchone()
        await cur.execute(
            """SELECT id, text, tz, recurrence, due_at, status, source, created_at, updated_at
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


async def apply_action(pool, delivery_id: int, user_id: int, action: str,
                       new_due: datetime | None) -> str:
    """Record the first button press on a delivery and carry it out, atomically.

    Returns "ok", "already" (a button of this delivery was pressed before), or "missing"."""
    async with pool.connection() as conn:
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
        return out


# -- scheduler ------------------------------------------------------------------------------------
async def recover_in_flight(pool) -> int:
    """At start-up (one bot instance per database): every delivery still 'sending' belonged to a
    process that died mid-send. Flag it in doubt and make its reminder due again."""
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE deliveries SET in_doubt = true WHERE state = 'sending'")
            cur = await conn.execute(
                "UPDATE reminders SET status = 'pending', updated_at = now() WHERE status = 'sending'")
            return cur.rowcount


async def due_candidates(pool, now: datetime, limit: int, exclude: set[int] | None = None) -> list[dict]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT id, chat_id, due_at FROM reminders
               WHERE status = 'pending' AND due_at <= %s AND (hold_until IS NULL OR hold_until <= %s)
                 AND NOT (id = ANY(%s))
               ORDER BY due_at, id LIMIT %s""", (now, now, list(exclude or ()), limit))
        return await cur.fetchall()


async def claim(pool, reminder_id: int, now: datetime) -> dict | None:
    """Atomically claim one due reminder: lock it (SKIP LOCKED), mark it 'sending' and create (or
    reuse, when recovering) its delivery record for this occurrence — one statement, one round
    trip. None if someone else holds it or it is no longer due."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """WITH r AS (
                   SELECT id, user_id, chat_id, text, tz, recurrence, due_at FROM reminders
                   WHERE id = %s AND status = 'pending' AND due_at <= %s
                   FOR UPDATE SKIP LOCKED),
               u AS (
                   UPDATE reminders SET status = 'sending', attempts = attempts + 1, updated_at = now()
                   FROM r WHERE reminders.id = r.id RETURNING reminders.id),
               d AS (
                   INSERT INTO deliveries (reminder_id, user_id, chat_id, occurrence, state)
                   SELECT id, user_id, chat_id, due_at, 'sending' FROM r
                   ON CONFLICT (reminder_id, occurrence) DO UPDATE
                       SET state = 'sending', claimed_at = now()
                   RETURNING id, in_doubt, reminder_id)
               SELECT r.*, d.id AS delivery_id, d.in_doubt
               FROM r JOIN d ON d.reminder_id = r.id JOIN u ON u.id = r.id""",
            (reminder_id, now))
        return await cur.fetchone()


async def already_sent(pool, delivery_id: int) -> bool:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT state = 'sent' FROM deliveries WHERE id = %s", (delivery_id,))
        row = await cur.fetchone()
        return bool(row and row[0])


async def mark_sent(pool, reminder_id: int, delivery_id: int, message_id: int | None,
                    late_seconds: int, next_due: datetime | None) -> None:
    """Record a delivery as sent and finish (one-shot) or advance (recurring) its reminder — one
    statement, one round trip: the at-least-once window after a send is as short as we can make it.
    A reminder cancelled while on the wire stays cancelled."""
    async with pool.connection() as conn:
        await conn.execute(
            """WITH d AS (
                   UPDATE deliveries SET state = 'sent', message_id = %s, late_seconds = %s,
                          sent_at = now() WHERE id = %s RETURNING reminder_id)
               UPDATE reminders SET
                   status = CASE WHEN %s::timestamptz IS NULL THEN 'done' ELSE 'pending' END,
                   due_at = COALESCE(%s::timestamptz, due_at), attempts = 0, hold_until = NULL,
                   updated_at = now()
               WHERE id = (SELECT reminder_id FROM d) AND status = 'sending'""",
            (message_id, late_seconds, delivery_id, next_due, next_due))


async def mark_failed(pool, reminder_id: int, delivery_id: int, error: str, permanent: bool,
                      retry_at: datetime | None, next_due: datetime | None) -> None:
    async with pool.connection() as conn:
        async with conn.transaction():
            if permanent:
                await conn.execute("UPDATE deliveries SET state = 'failed', error = %s WHERE id = %s",
                                   (error[:500], delivery_id))
                if next_due is None:
                    await conn.execute("UPDATE reminders SET status = 'failed', updated_at = now() "
                                       "WHERE id = %s AND status = 'sending'", (reminder_id,))
                else:
                    await conn.execute(
                        "UPDATE reminders SET status = 'pending', due_at = %s, attempts = 0, "
                        "updated_at = now() WHERE id = %s AND status = 'sending'", (next_due, reminder_id))
            else:
                # nothing reached the user (Telegram answered an error): try the same occurrence later
                await conn.execute("UPDATE deliveries SET error = %s WHERE id = %s", (error[:500], delivery_id))
                await conn.execute(
                    "UPDATE reminders SET status = 'pending', hold_until = %s, updated_at = now() "
                    "WHERE id = %s AND status = 'sending'", (retry_at, reminder_id))
