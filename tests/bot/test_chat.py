"""Chat scenarios against the real Application (in-process), the Bot API double and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.bot.conftest import ADMIN, OTHER, STRANGER, USER, FakeClock


def q(url, sql, *args):
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(sql, args)
        return cur.fetchall() if cur.description else None


def reminder_messages(api, chat):
    return [m for m in api.sent_messages(chat) if m.get("text", "").startswith("⏰")]


async def wait_reminders(api, chat, n, timeout=15):
    return await api.async_wait_for(
        lambda: (lambda ms: ms if len(ms) >= n else None)(reminder_messages(api, chat)), timeout)


async def test_start_help_tz(make_bot, database_url):
    b = await make_bot()
    (m,) = await b.say(USER, "/start")
    assert "every weekday 8:30" in m["text"] and "каждый день в 9" in m["text"]
    assert "Europe/Berlin" in m["text"]  # the default zone applies until set
    (m,) = await b.say(USER, "/help")
    assert "/remind" in m["text"] and "/tz" in m["text"]
    (m,) = await b.say(USER, "/tz Mars/Olympus")
    assert "Unknown time zone" in m["text"]
    (m,) = await b.say(USER, "/tz ../../etc/passwd")
    assert "Unknown time zone" in m["text"]
    (m,) = await b.say(USER, "/tz America/New_York")
    assert "America/New_York" in m["text"]
    assert q(database_url, "SELECT tz FROM users WHERE user_id=%s", USER) == [("America/New_York",)]
    (m,) = await b.say(USER, "/remind tomorrow at 9 call mom")
    assert "America/New_York" in m["text"] and "09:00" in m["text"]
    (m,) = await b.say(USER, "/nosuchcommand")
    assert "/remind" in m["text"]  # unknown commands get the help, never silence
    assert {c["command"] for c in b.api.commands} >= {"start", "help", "remind", "list", "cancel", "tz", "export"}


@pytest.mark.parametrize("phrase,expect", [
    ("/remind in 10 minutes tea", "Wed 2026-11-25 11:10"),
    ("remind me tomorrow at 9 to call mom", "Thu 2026-11-26 09:00"),
    ("every weekday 8:30 standup", "every weekday at 08:30"),
    ("every month on the 1st rent", "every month on day 1 at 09:00"),
    ("напомни завтра в 9 позвонить маме", "Thu 2026-11-26 09:00"),
    ("каждый день в 9 таблетки", "каждый день в 09:00"),
    ("/remind через 10 минут чай", "Wed 2026-11-25 11:10"),
])
async def test_phrases_create_reminders(make_bot, database_url, phrase, expect):
    b = await make_bot(clock=FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)))
    (m,) = await b.say(USER, phrase)
    assert m["text"].startswith("✅"), m["text"]
    assert expect in m["text"]
    assert len(q(database_url, "SELECT id FROM reminders WHERE user_id=%s AND status='pending'", USER)) == 1


async def test_unparseable_gets_examples(make_bot, database_url):
    b = await make_bot()
    (m,) = await b.say(USER, "hello bot")
    assert "could not find a time" in m["text"] and "/remind in 10 minutes" in m["text"]
    (m,) = await b.say(USER, "/remind")
    assert "could not find a time" in m["text"]
    (m,) = await b.say(USER, "напомни купить хлеба")
    assert "Не понял" in m["text"]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]


async def test_list_cancel_and_cancel_button(make_bot, database_url):
    b = await make_bot()
    await b.say(USER, "/remind in 1 hour first")
    await b.say(USER, "/remind every day at 9 second")
    await b.say(OTHER, "/remind in 2 hours others")
    (m,) = await b.say(USER, "/list")
    assert "first" in m["text"] and "second" in m["text"] and "others" not in m["text"]
    ids = [r[0] for r in q(database_url, "SELECT id FROM reminders WHERE user_id=%s ORDER BY id", USER)]
    buttons = [btn["callback_data"] for row in m["reply_markup"]["inline_keyboard"] for btn in row]
    assert sorted(buttons) == sorted([f"c:{ids[0]}", f"c:{ids[1]}"])
    # the cancel button of another user's reminder does nothing
    other_id = q(database_url, "SELECT id FROM reminders WHERE user_id=%s", OTHER)[0][0]
    b.api.push_callback(USER, f"c:{other_id}", m["message_id"])
    await b.api.async_wait_for(lambda: len(b.api.answered_callbacks) >= 1)
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", other_id) == [("pending",)]
    # press cancel on the first: cancelled, list edited
    b.api.push_callback(USER, f"c:{ids[0]}", m["message_id"])
    await b.api.async_wait_for(lambda: "first" not in b.api.message(USER, m["message_id"])["text"])
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", ids[0]) == [("cancelled",)]
    # a second press is harmless
    b.api.push_callback(USER, f"c:{ids[0]}", m["message_id"])
    await b.api.async_wait_for(lambda: len(b.api.answered_callbacks) >= 3)
    assert "Already" in b.api.answered_callbacks[-1]["text"]
    (m,) = await b.say(USER, f"/cancel {ids[1]}")
    assert "Cancelled" in m["text"]
    (m,) = await b.say(USER, f"/cancel {ids[1]}")
    assert "No upcoming reminder" in m["text"]
    (m,) = await b.say(USER, f"/cancel {other_id}")  # not yours
    assert "No upcoming reminder" in m["text"]
    (m,) = await b.say(USER, "/cancel abc")
    assert "Usage" in m["text"]
    (m,) = await b.say(USER, "/list")
    assert "No upcoming reminders" in m["text"]


async def test_export_sends_json_document(make_bot, api):
    b = await make_bot()
    await b.say(USER, "/remind in 1 hour export me")
    await b.say(USER, "/export")
    (call,) = [c for c in api.calls if c.method == "sendDocument"]
    doc = call.params["document"]
    assert doc["filename"] == f"reminders-{USER}.json"
    data = json.loads(doc["content"])
    assert data["user"]["user_id"] == USER
    assert [r["text"] for r in data["reminders"]] == ["export me"]


async def test_status_admin_only_with_last_backup(make_bot, database_url):
    b = await make_bot()
    (m,) = await b.say(USER, "/status")
    assert "admins" in m["text"]
    (m,) = await b.say(ADMIN, "/status")
    assert "Last backup: none recorded" in m["text"] and "test-release" in m["text"]
    now = datetime.now(timezone.utc)
    q(database_url, "INSERT INTO backup_runs (kind, started_at, finished_at, ok, size_bytes, uploaded) "
      "VALUES ('backup', %s, %s, true, 5242880, true)", now - timedelta(hours=3, minutes=1),
      now - timedelta(hours=3))
    q(database_url, "INSERT INTO backup_runs (kind, started_at, finished_at, ok) VALUES ('drill', %s, %s, true)",
      now, now)
    await b.say(USER, "/remind in 1 hour x")
    (m,) = await b.say(ADMIN, "/status")
    t = m["text"]
    assert "Version: test-release" in t and "Uptime:" in t and "Pending reminders: 1" in t
    assert "Database size:" in t and "Disk:" in t and "free" in t
    assert "5.0 MB" in t and "3 h 0 min ago" in t and "ok" in t


async def test_strangers_refused_once_and_nothing_stored(make_bot, database_url, api):
    b = await make_bot()
    await b.say(USER, "/remind in 1 hour mine")
    for text in ["/start", "remind me in 5 minutes x", "/list", "/status", "/export", "hi"]:
        api.push_message(STRANGER, text)
    api.push_callback(STRANGER, "d:1", 1)
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    await b.say(USER, "/list")  # processed after the stranger's updates
    msgs = api.sent_messages(STRANGER)
    assert [m["text"] for m in msgs] == ["Sorry, this is a private bot."]
    # nothing about the stranger in any table
    with psycopg.connect(database_url, autocommit=True) as c:
        tables = [r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()]
        for t in tables:
            rows = c.execute(f'SELECT * FROM "{t}"').fetchall()
            assert str(STRANGER) not in repr(rows), t
    assert q(database_url, "SELECT count(*) FROM users") == [(1,)]


async def test_delivery_buttons_idempotent_and_checked(make_bot, database_url, api):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    await b.say(USER, "/remind in 10 minutes stretch")
    clock.advance(minutes=10, seconds=1)
    (m,) = await wait_reminders(api, USER, 1)
    assert m["text"] == "⏰ stretch"  # on time: no lateness note
    data = [btn["callback_data"] for row in m["reply_markup"]["inline_keyboard"] for btn in row]
    did = int(data[0].split(":")[1])
    assert data == [f"d:{did}", f"s10:{did}", f"s60:{did}", f"t9:{did}"]
    rid = q(database_url, "SELECT id FROM reminders")[0][0]
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "done")
    # another (allowed) user presses: refused, nothing changes
    api.push_callback(OTHER, f"d:{did}", m["message_id"], chat_id=USER)
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    assert "not yours" in api.answered_callbacks[-1]["text"]
    assert q(database_url, "SELECT action FROM deliveries")[0][0] is None
    # snooze 10 min
    api.push_callback(USER, f"s10:{did}", m["message_id"])
    await api.async_wait_for(lambda: "Snoozed" in (api.message(USER, m["message_id"])["text"]))
    assert "reply_markup" not in api.message(USER, m["message_id"])
    (status, due), = q(database_url, "SELECT status, due_at FROM reminders WHERE id=%s", rid)
    assert status == "pending" and abs((due - clock()).total_seconds() - 600) < 5
    # pressing again (any button) changes nothing
    for btn in (f"s10:{did}", f"d:{did}", f"t9:{did}"):
        api.push_callback(USER, btn, m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 5)
    assert all("Already handled" in a["text"] for a in api.answered_callbacks[-3:])
    assert q(database_url, "SELECT due_at FROM reminders WHERE id=%s", rid)[0][0] == due
    # the snoozed reminder comes back
    clock.advance(minutes=10, seconds=2)
    ms = await wait_reminders(api, USER, 2)
    assert ms[1]["text"] == "⏰ stretch"
    did2 = int(ms[1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[1])
    api.push_callback(USER, f"t9:{did2}", ms[1]["message_id"])
    await api.async_wait_for(lambda: "Moved to" in api.message(USER, ms[1]["message_id"])["text"])
    due = q(database_url, "SELECT due_at FROM reminders WHERE id=%s", rid)[0][0]
    from zoneinfo import ZoneInfo
    loc = due.astimezone(ZoneInfo("Europe/Berlin"))
    assert (loc.hour, loc.minute) == (9, 0) and loc.date() == (clock().astimezone(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1))
    await api.async_wait_for(
        lambda: q(database_url, "SELECT count(*) FROM deliveries WHERE state='sent'") == [(2,)])


async def test_recurring_reminder_keeps_local_time_across_dst(make_bot, database_url, api):
    # Saturday 28 March 2026, 12:00 UTC; Berlin switches to summer time the next night.
    clock = FakeClock(datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc))
    b = await make_bot(clock=clock)
    await b.say(USER, "every day at 9 pills")
    due = q(database_url, "SELECT due_at FROM reminders")[0][0]
    assert due == datetime(2026, 3, 29, 7, 0, tzinfo=timezone.utc)  # 09:00 CEST, not 08:00
    clock.set(datetime(2026, 3, 29, 7, 0, 1, tzinfo=timezone.utc))
    await wait_reminders(api, USER, 1)
    await api.async_wait_for(lambda: q(database_url, "SELECT due_at FROM reminders")[0][0]
                             == datetime(2026, 3, 30, 7, 0, tzinfo=timezone.utc))
    # autumn: Sunday 25 October 2026 back to CET
    clock.set(datetime(2026, 10, 24, 7, 0, 1, tzinfo=timezone.utc))
    await wait_reminders(api, USER, 2)  # overdue since March 30: delivered once, with a note
    assert "late by" in reminder_messages(api, USER)[1]["text"]
    await api.async_wait_for(lambda: q(database_url, "SELECT due_at FROM reminders")[0][0]
                             == datetime(2026, 10, 25, 8, 0, tzinfo=timezone.utc))  # 09:00 CET
    clock.set(datetime(2026, 10, 25, 8, 0, 1, tzinfo=timezone.utc))
    await wait_reminders(api, USER, 3)
    assert reminder_messages(api, USER)[2]["text"] == "⏰ pills"


async def test_overdue_reminder_delivered_with_lateness_note(make_bot, database_url, api):
    b = await make_bot()
    await b.say(USER, "/start")
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'missed', 'Europe/Berlin', now() - interval '3 hours 5 minutes')", USER, USER)
    (m,) = await wait_reminders(api, USER, 1)
    assert m["text"].startswith("⏰ missed\n\n(late by 3 h 5 min")


async def test_429_storm_and_5xx_retries(make_bot, database_url, api):
    b = await make_bot()
    await b.say(USER, "/start")
    await b.say(OTHER, "/start")
    api.fail_next("sendMessage", status=429, retry_after=1, count=4)
    api.fail_next("sendMessage", status=502, count=1)
    api.fail_next("sendMessage", status=500, count=1)
    api.timeout_next("sendMessage", seconds=0.2, count=1)  # connection dropped with no answer
    # note the double injects in order: 429s first, then 502, 500, the dropped connection
    for i in range(4):
        for u in (USER, OTHER):
            q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
              "(%s, %s, %s, 'UTC', now() - interval '1 second')", u, u, f"r{i}")
    await wait_reminders(api, USER, 4, timeout=40)
    await wait_reminders(api, OTHER, 4, timeout=40)
    for u in (USER, OTHER):
        assert sorted(m["text"] for m in reminder_messages(api, u)) == [f"⏰ r{i}" for i in range(4)]
    assert api.injected["429"] == 4 and api.injected["502"] == 1 and api.injected["500"] == 1
    st = api.rate_stats()
    assert st["min_gap_per_chat"] >= 0.9 and st["max_overall_in_window"] <= 30
    await api.async_wait_for(
        lambda: q(database_url, "SELECT count(*) FROM reminders WHERE status='done'") == [(8,)])
    assert q(database_url, "SELECT count(*) FROM deliveries WHERE state='sent'") == [(8,)]


async def test_blocked_user_fails_permanently(make_bot, database_url, api):
    b = await make_bot()
    await b.say(USER, "/start")
    api.fail_next("sendMessage", status=403, count=1)
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'x', 'UTC', now())", USER, USER)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "failed")
    assert q(database_url, "SELECT state FROM deliveries") == [("failed",)]
