"""Delivery is fair across users: one user's backlog of thousands of due reminders (each chat gets
one message a second) does not hold up another user's due reminder. The due query, with an
injected "now", against a real PostgreSQL; then the running bot against the Bot API double."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg

from bot import db
from bot import delivery_store as ds
from bot.scheduler import PER_CHAT_QUEUE
from tests.bot.conftest import OTHER, USER, FakeClock, q, reminder_messages

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
BACKLOG = 3000


def _backlog(database_url, now, n=BACKLOG):
    """USER has `n` reminders due (the oldest an hour ago), OTHER one, due at `now`: the newest."""
    with psycopg.connect(database_url, autocommit=True) as c:
        for u in (USER, OTHER):
            c.execute("INSERT INTO users (user_id, chat_id) VALUES (%s, %s)", (u, u))
        with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at) FROM STDIN") as cp:
            for i in range(n):
                cp.write_row((USER, USER, f"backlog {i}", "UTC", now - timedelta(hours=1) + timedelta(milliseconds=i)))
        c.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES (%s, %s, 'on time', 'UTC', %s)",
                  (OTHER, OTHER, now))


async def test_the_due_query_takes_a_few_per_chat_so_another_users_reminder_is_read(database_url):
    db.migrate(database_url)
    _backlog(database_url, NOW)
    pool = db.make_pool(database_url)
    await pool.open()
    try:
        rows = await ds.due_candidates(pool, NOW, 2000)
    finally:
        await pool.close()
    chats = [r["chat_id"] for r in rows]
    assert OTHER in chats                                  # read in the same batch as the backlog
    assert chats.count(USER) == PER_CHAT_QUEUE             # the backlog's oldest few, not 2,000
    mine = [r for r in rows if r["chat_id"] == USER]
    assert [r["due_at"] for r in mine] == sorted(r["due_at"] for r in mine)
    assert mine[0]["due_at"] == NOW - timedelta(hours=1)   # a chat's own reminders stay in order


async def test_the_due_query_serves_the_chats_with_the_fewest_queued_first(database_url):
    db.migrate(database_url)
    _backlog(database_url, NOW)
    pool = db.make_pool(database_url)
    await pool.open()
    try:
        rows = await ds.due_candidates(pool, NOW, 2)     # room for two: one each, not two of USER's
        one_queued = await ds.due_candidates(pool, NOW, 1, queued={USER: 1}, exclude={1})
        full = await ds.due_candidates(pool, NOW, 2000, queued={USER: PER_CHAT_QUEUE}, exclude={1, 2, 3})
    finally:
        await pool.close()
    assert sorted(r["chat_id"] for r in rows) == [USER, OTHER]
    assert [r["chat_id"] for r in one_queued] == [OTHER]  # an empty queue before one with one queued
    assert [r["chat_id"] for r in full] == [OTHER]        # a chat whose queue is full gets no more


async def test_another_users_reminder_is_on_time_during_a_backlog(make_bot, api, database_url):
    clock = FakeClock(NOW)
    db.migrate(database_url)
    _backlog(database_url, clock())
    await make_bot(clock=clock)
    (m,) = await api.async_wait_for(lambda: reminder_messages(api, OTHER) or None, 15)
    assert m["text"] == "⏰ on time"
    # the backlog's chat is limited to 1 msg/s: only a few of its reminders went out first
    assert len(reminder_messages(api, USER)) <= PER_CHAT_QUEUE + 2
    (late,), = await api.async_wait_for(
        lambda: q(database_url, "SELECT late_seconds FROM deliveries WHERE user_id = %s AND state = 'sent'",
                  OTHER) or None, 10)
    assert late <= 2                                       # by the injected clock
