"""The cap on reminders still to come per user (bot/limits.py MAX_REMINDERS_PER_USER): enforced in
the database, atomically (two messages at the same moment cannot both pass it), nothing saved
beyond it; the refusal names the limit in the user's language (the running bot, the Bot API
double and a real PostgreSQL)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from bot import db, store
from bot.limits import MAX_REMINDERS_PER_USER
from tests.bot.conftest import USER, buttons, q, wait_reminders

UID = 1001
DUE = datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc)


def _to_come(url, uid=UID) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT count(*) FROM reminders WHERE user_id = %s "
                         "AND status IN ('pending', 'sending', 'paused')", (uid,)).fetchone()[0]


def _seed(url, n, uid=UID, status="pending"):
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("INSERT INTO users (user_id, chat_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (uid, uid))
        with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at, status) FROM STDIN") as cp:
            for i in range(n):
                cp.write_row((uid, uid, f"r{i}", "UTC", DUE + timedelta(minutes=i), status))


@pytest.fixture
async def pool(database_url):
    db.migrate(database_url)
    p = db.make_pool(database_url)
    await p.open()
    yield p
    await p.close()


async def _add(pool, text="x", limit=3):
    return await store.add_reminder(pool, UID, UID, text, "UTC", DUE, None, text, limit=limit)


async def test_the_cap_refuses_the_next_reminder_and_saves_nothing(pool, database_url):
    _seed(database_url, 2)
    _seed(database_url, 5, status="done")          # history does not count
    _seed(database_url, 1, uid=1002)               # nor another user's
    assert await _add(pool, "third") > 0
    with pytest.raises(store.ReminderLimitReached) as e:
        await _add(pool, "fourth")
    assert e.value.limit == 3
    assert _to_come(database_url) == 3
    with psycopg.connect(database_url) as c:
        assert c.execute("SELECT count(*) FROM reminders WHERE text = 'fourth'").fetchone()[0] == 0


async def test_paused_reminders_count_and_cancelled_ones_free_a_place(pool, database_url):
    _seed(database_url, 2, status="paused")
    await _add(pool)
    with pytest.raises(store.ReminderLimitReached):
        await _add(pool)
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute("UPDATE reminders SET status = 'cancelled' WHERE id = (SELECT min(id) FROM reminders)")
    await _add(pool)
    assert _to_come(database_url) == 3


async def test_two_messages_at_the_same_moment_cannot_both_pass_the_cap(pool, database_url):
    """Another message's reminder is being stored (its transaction holds the user's lock and has
    inserted the last place, not yet committed) when this one arrives: this one must wait and then
    count it, not count the old snapshot and insert a fourth."""
    _seed(database_url, 2)
    with psycopg.connect(database_url) as other:             # the other message, mid-transaction
        other.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (UID,))
        other.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) "
                      "VALUES (%s, %s, 'other', 'UTC', %s)", (UID, UID, DUE))
        mine = asyncio.create_task(_add(pool, "mine"))
        with psycopg.connect(database_url, autocommit=True) as watch:
            for _ in range(500):                              # until it waits for the lock, or is done
                waiting = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()").fetchone()[0]
                if waiting or mine.done():
                    break
                await asyncio.sleep(0.01)
        other.commit()
    with pytest.raises(store.ReminderLimitReached):
        await mine
    assert _to_come(database_url) == 3


async def test_a_snooze_at_the_cap_is_refused_and_not_recorded(pool, database_url):
    _seed(database_url, 3)
    with psycopg.connect(database_url, autocommit=True) as c:
        rid = c.execute("SELECT min(id) FROM reminders").fetchone()[0]
        c.execute("UPDATE reminders SET status = 'done' WHERE id = %s", (rid,))
        c.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES (%s, %s, 'y', 'UTC', %s)",
                  (UID, UID, DUE))
        did = c.execute("INSERT INTO deliveries (reminder_id, user_id, chat_id, occurrence, state) "
                        "VALUES (%s, %s, %s, %s, 'sent') RETURNING id", (rid, UID, UID, DUE)).fetchone()[0]
    assert await store.apply_action(pool, did, UID, "snooze10", DUE + timedelta(minutes=10), limit=3) == "full"
    with psycopg.connect(database_url) as c:
        assert c.execute("SELECT action FROM deliveries WHERE id = %s", (did,)).fetchone() == (None,)
        assert c.execute("SELECT status FROM reminders WHERE id = %s", (rid,)).fetchone() == ("done",)
    assert await store.apply_action(pool, did, UID, "done", None, limit=3) == "ok"  # no new reminder: allowed



# -- through the running bot -------------------------------------------------------------------------

async def test_the_bot_refuses_a_reminder_past_the_cap_naming_it_in_both_languages(make_bot, database_url):
    b = await make_bot()
    await b.say(USER, "/start")
    _seed(database_url, MAX_REMINDERS_PER_USER, uid=USER)
    (m,) = await b.say(USER, "in 10 minutes one too many")
    assert str(MAX_REMINDERS_PER_USER) in m["text"] and "Nothing was saved" in m["text"]
    (m,) = await b.say(USER, "/remind через 10 минут ещё одно", lang="ru")
    assert str(MAX_REMINDERS_PER_USER) in m["text"] and "Ничего не сохранено" in m["text"]
    assert _to_come(database_url, USER) == MAX_REMINDERS_PER_USER
    with psycopg.connect(database_url) as c:
        assert c.execute("SELECT count(*) FROM reminders WHERE text LIKE '%%too many%%' "
                         "OR text LIKE '%%ещё одно%%'").fetchone()[0] == 0
    await b.say(USER, "/cancel 1")                 # a place freed: the next one is saved
    (m,) = await b.say(USER, "in 10 minutes now it fits")
    assert "Reminder #" in m["text"]


async def test_the_snooze_button_at_the_cap_answers_so_and_changes_nothing(make_bot, api, database_url):
    b = await make_bot()
    await b.say(USER, "/start")
    _seed(database_url, MAX_REMINDERS_PER_USER - 1, uid=USER)
    await b.say(USER, "in 1 minute tea")
    b.clock.advance(minutes=2)
    b.scheduler.wake()
    (m,) = await wait_reminders(api, USER, 1)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders WHERE text = 'tea'") == [("done",)])
    _seed(database_url, 1, uid=USER)              # the cap reached again
    snooze = buttons(m)[1]
    api.push_callback(USER, snooze, m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    assert str(MAX_REMINDERS_PER_USER) in api.answered_callbacks[-1]["text"]
    assert q(database_url, "SELECT status FROM reminders WHERE text = 'tea'") == [("done",)]
    assert q(database_url, "SELECT action FROM deliveries") == [(None,)]
    assert _to_come(database_url, USER) == MAX_REMINDERS_PER_USER
