"""The scheduler's queries: due reminders, the claim, and the recording of each outcome."""
from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row


async def recover_in_flight(pool) -> int:
    """At start-up (one bot instance per database): every delivery still 'sending' belonged to a
    process that died mid-send. Flag it in doubt and make its reminder due again."""
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE deliveries SET in_doubt = true WHERE state = 'sending'")
            cur = await conn.execute(
                "UPDATE reminders SET status = 'pending', updated_at = now() WHERE status = 'sending'")
            return cur.rowcount


async def due_candidates(pool, now: datetime, limit: int, exclude: set[int] | None = None,
                         per_chat: int = 3, queued: dict[int, int] | None = None) -> list[dict]:
    """Due reminders, fair across chats, with what the quiet-hours check needs: each chat's oldest,
    topping its queue up to `per_chat` (`queued`: how many each chat has queued already; `exclude`:
    their ids), the chats with the fewest queued first, then oldest first.

    Each chat gets one message a second, so a chat's backlog beyond a few cannot be sent sooner by
    being read sooner; taking them all, oldest first, let one user's thousands of due reminders
    fill every batch while everyone else's waited behind them."""
    chats = list(queued or {})
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """WITH due AS (
                   SELECT id, user_id, chat_id, due_at, tz,
                          row_number() OVER (PARTITION BY chat_id ORDER BY due_at, id) AS turn
                   FROM reminders
                   WHERE status = 'pending' AND due_at <= %(now)s
                     AND (hold_until IS NULL OR hold_until <= %(now)s)
                     AND NOT (id = ANY(%(exclude)s))),
               ranked AS (
                   SELECT due.*, due.turn + COALESCE(q.n, 0) AS place
                   FROM due LEFT JOIN unnest(%(chats)s::bigint[], %(counts)s::int[]) AS q (chat_id, n)
                        ON q.chat_id = due.chat_id)
               SELECT d.id, d.chat_id, d.due_at, d.place, COALESCE(u.tz, d.tz) AS user_tz,
                      u.quiet_start, u.quiet_end
               FROM ranked d LEFT JOIN users u ON u.user_id = d.user_id
               WHERE d.place <= %(per_chat)s
               ORDER BY d.place, d.due_at, d.id LIMIT %(limit)s""",
            {"now": now, "exclude": list(exclude or ()), "chats": chats,
             "counts": [queued[c] for c in chats] if queued else [], "per_chat": per_chat, "limit": limit})
        return await cur.fetchall()


async def hold_for_quiet_hours(pool, reminder_id: int, until: datetime) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            """UPDATE reminders SET hold_until = %s, quiet_held = true, updated_at = now()
               WHERE id = %s AND status = 'pending'""", (until, reminder_id))


async def claim(pool, reminder_id: int, now: datetime) -> dict | None:
    """Atomically claim one due reminder: lock it (SKIP LOCKED), mark it 'sending' and create (or
    reuse, when recovering) its delivery record for this occurrence — one statement, one round
    trip. None if someone else holds it or it is no longer due."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """WITH r AS (
                   SELECT id, user_id, chat_id, text, tz, recurrence, due_at, attempts, quiet_held
                   FROM reminders
                   WHERE id = %s AND status = 'pending' AND due_at <= %s
                   FOR UPDATE SKIP LOCKED),
               u AS (
                   UPDATE reminders SET status = 'sending', attempts = reminders.attempts + 1, updated_at = now()
                   FROM r WHERE reminders.id = r.id RETURNING reminders.id),
               d AS (
                   INSERT INTO deliveries (reminder_id, user_id, chat_id, occurrence, state)
                   SELECT id, user_id, chat_id, due_at, 'sending' FROM r
                   ON CONFLICT (reminder_id, occurrence) DO UPDATE
                       SET state = 'sending', claimed_at = now()
                   RETURNING id, in_doubt, reminder_id)
               SELECT r.*, d.id AS delivery_id, d.in_doubt, us.lang, us.telegram_lang,
                      COALESCE(us.snooze_minutes, 10) AS snooze_minutes
               FROM r JOIN d ON d.reminder_id = r.id JOIN u ON u.id = r.id
               LEFT JOIN users us ON us.user_id = r.user_id""",
            (reminder_id, now))
        return await cur.fetchone()


async def mark_sent(pool, reminder_id: int, delivery_id: int, message_id: int | None,
                    late_seconds: int, next_due: datetime | None) -> None:
    """Record a delivery as sent and finish (one-shot) or advance (recurring) its reminder — one
    statement, one round trip: the at-least-once window after a send is as short as we can make it.
    A reminder cancelled or paused while on the wire stays so."""
    async with pool.connection() as conn:
        await conn.execute(
            """WITH d AS (
                   UPDATE deliveries SET state = 'sent', message_id = %s, late_seconds = %s,
                          sent_at = now() WHERE id = %s RETURNING reminder_id)
               UPDATE reminders SET
                   status = CASE WHEN %s::timestamptz IS NULL THEN 'done' ELSE 'pending' END,
                   due_at = COALESCE(%s::timestamptz, due_at), attempts = 0, hold_until = NULL,
                   quiet_held = false, updated_at = now()
               WHERE id = (SELECT reminder_id FROM d) AND status = 'sending'""",
            (message_id, late_seconds, delivery_id, next_due, next_due))


async def mark_failed(pool, reminder_id: int, delivery_id: int, error: str,
                      next_due: datetime | None) -> None:
    """Telegram refused for good: the delivery failed; a one-shot reminder too, a recurring one
    moves on to its next occurrence."""
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE deliveries SET state = 'failed', error = %s WHERE id = %s",
                               (error[:500], delivery_id))
            await conn.execute(
                """UPDATE reminders SET
                       status = CASE WHEN %s::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
                       due_at = COALESCE(%s::timestamptz, due_at), attempts = 0, hold_until = NULL,
                       quiet_held = false, updated_at = now()
                   WHERE id = %s AND status = 'sending'""", (next_due, next_due, reminder_id))


async def mark_retry(pool, reminder_id: int, delivery_id: int, error: str, retry_at: datetime,
                     in_doubt: bool) -> None:
    """Try the same occurrence again at `retry_at`; `in_doubt`: it may have reached the user, so
    the next copy says it is possibly a repeat."""
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute(
                "UPDATE deliveries SET error = %s, in_doubt = in_doubt OR %s WHERE id = %s",
                (error[:500], in_doubt, delivery_id))
            await conn.execute(
                "UPDATE reminders SET status = 'pending', hold_until = %s, updated_at = now() "
                "WHERE id = %s AND status = 'sending'", (retry_at, reminder_id))
