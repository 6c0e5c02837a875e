"""Chat scenarios against the real Application (in-process), the Bot API double and PostgreSQL:
one behaviour per test."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.bot.conftest import (ADMIN, OTHER, STRANGER, USER, FakeClock, buttons, q, reminder_messages,
                                wait_reminders)


async def test_start_shows_examples_in_both_languages(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/start")
    assert "every weekday 8:30" in m["text"] and "каждый день в 9" in m["text"]


async def test_start_shows_the_default_time_zone_until_one_is_set(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/start")
    assert "Europe/Berlin" in m["text"]


async def test_help_lists_the_commands(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/help")
    assert "/remind" in m["text"] and "/tz" in m["text"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd"])
async def test_tz_refuses_an_unknown_zone(make_bot, zone):
    b = await make_bot()
    (m,) = await b.say(USER, f"/tz {zone}")
    assert "Unknown time zone" in m["text"]


async def test_tz_stores_the_zone(make_bot, database_url):
    b = await make_bot()
    (m,) = await b.say(USER, "/tz America/New_York")
    assert "America/New_York" in m["text"]
    assert q(database_url, "SELECT tz FROM users WHERE user_id=%s", USER) == [("America/New_York",)]


async def test_reminders_use_the_zone_set_by_tz(make_bot):
    b = await make_bot()
    await b.say(USER, "/tz America/New_York")
    (m,) = await b.say(USER, "/remind tomorrow at 9 call mom")
    assert "America/New_York" in m["text"] and "09:00" in m["text"]


async def test_an_unknown_command_gets_the_help(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/nosuchcommand")
    assert "/remind" in m["text"]  # unknown commands get the help, never silence


async def test_the_command_menu_is_set_in_both_languages(make_bot, api):
    await make_bot()
    calls = api.calls_of("setMyCommands")
    assert {c["command"] for c in calls[0].params["commands"]} >= {
        "start", "help", "remind", "list", "cancel", "tz", "export", "edit", "pause", "quiet", "lang"}
    assert [c.params.get("language_code") for c in calls] == [None, "ru"]


@pytest.mark.parametrize("phrase,lang,expect", [
    ("/remind in 10 minutes tea", "en", "Wed 2026-11-25 11:10"),
    ("remind me tomorrow at 9 to call mom", "en", "Thu 2026-11-26 09:00"),
    ("every weekday 8:30 standup", "en", "every weekday at 08:30"),
    ("every month on the 1st rent", "en", "every month on day 1 at 09:00"),
    ("напомни завтра в 9 позвонить маме", "ru", "чт 2026-11-26 09:00"),
    ("каждый день в 9 таблетки", "ru", "каждый день в 09:00"),
    ("/remind через 10 минут чай", "ru", "ср 2026-11-25 11:10"),
])
async def test_phrases_create_reminders(make_bot, database_url, phrase, lang, expect):
    b = await make_bot(clock=FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)))
    (m,) = await b.say(USER, phrase, lang=lang)
    assert m["text"].startswith("✅"), m["text"]
    assert expect in m["text"]
    assert len(q(database_url, "SELECT id FROM reminders WHERE user_id=%s AND status='pending'", USER)) == 1


@pytest.mark.parametrize("phrase,lang", [
    ("every month pay the rent", "en"),
    ("ежемесячно платить за интернет", "ru"),
    ("каждый месяц оплатить интернет", "ru"),
])
async def test_a_monthly_phrase_without_a_day_gets_a_reply_not_a_crash(make_bot, phrase, lang):
    # bot/parsing.py once lost its `import re`: these phrases raised NameError, the user got no reply
    # and the admins an error alert (found by ruff's F821)
    b = await make_bot(clock=FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)))
    (m,) = await b.say(USER, phrase, lang=lang)
    assert m["text"] and "⚠" not in m["text"], m


@pytest.mark.parametrize("text", ["hello bot", "/remind"])
async def test_a_phrase_without_a_time_gets_examples(make_bot, database_url, text):
    b = await make_bot()
    (m,) = await b.say(USER, text)
    assert "could not find a time" in m["text"] and "/remind in 10 minutes" in m["text"]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]


async def test_a_russian_speaker_without_a_time_gets_russian_examples(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "напомни купить хлеба", lang="ru")
    assert "Не понял" in m["text"]


async def _three_reminders(b, database_url):
    await b.say(USER, "/remind in 1 hour first")
    await b.say(USER, "/remind every day at 9 second")
    await b.say(OTHER, "/remind in 2 hours others")
    ids = [r[0] for r in q(database_url, "SELECT id FROM reminders WHERE user_id=%s ORDER BY id", USER)]
    other = q(database_url, "SELECT id FROM reminders WHERE user_id=%s", OTHER)[0][0]
    return ids, other


async def test_list_shows_only_the_users_own_reminders(make_bot, database_url):
    b = await make_bot()
    await _three_reminders(b, database_url)
    (m,) = await b.say(USER, "/list")
    assert "first" in m["text"] and "second" in m["text"] and "others" not in m["text"]


async def test_list_has_a_cancel_button_per_reminder(make_bot, database_url):
    b = await make_bot()
    ids, _ = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, "/list")
    assert sorted(d for d in buttons(m) if d.startswith("c:")) == sorted([f"c:{ids[0]}", f"c:{ids[1]}"])


async def test_the_cancel_button_of_another_users_reminder_does_nothing(make_bot, database_url, api):
    b = await make_bot()
    _, other = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, "/list")
    api.push_callback(USER, f"c:{other}", m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", other) == [("pending",)]


async def test_the_cancel_button_cancels_and_edits_the_list(make_bot, database_url, api):
    b = await make_bot()
    ids, _ = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, "/list")
    api.push_callback(USER, f"c:{ids[0]}", m["message_id"])
    await api.async_wait_for(lambda: "first" not in api.message(USER, m["message_id"])["text"])
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", ids[0]) == [("cancelled",)]


async def test_a_second_cancel_press_is_harmless(make_bot, database_url, api):
    b = await make_bot()
    ids, _ = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, "/list")
    for n in (1, 2):
        api.push_callback(USER, f"c:{ids[0]}", m["message_id"])
        await api.async_wait_for(lambda n=n: len(api.answered_callbacks) >= n)
    assert "Already" in api.answered_callbacks[-1]["text"]


async def test_cancel_command_cancels_once(make_bot, database_url):
    b = await make_bot()
    ids, _ = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, f"/cancel {ids[1]}")
    assert "Cancelled" in m["text"]
    (m,) = await b.say(USER, f"/cancel {ids[1]}")
    assert "No upcoming reminder" in m["text"]


async def test_cancel_refuses_another_users_reminder(make_bot, database_url):
    b = await make_bot()
    _, other = await _three_reminders(b, database_url)
    (m,) = await b.say(USER, f"/cancel {other}")
    assert "No upcoming reminder" in m["text"]
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", other) == [("pending",)]


@pytest.mark.parametrize("arg", ["abc", "²", "１２", "99999999999999999999999"])
async def test_cancel_without_a_number_shows_usage(make_bot, arg):
    b = await make_bot()
    (m,) = await b.say(USER, f"/cancel {arg}")
    assert "Usage" in m["text"]


async def test_list_is_empty_after_everything_is_cancelled(make_bot, database_url):
    b = await make_bot()
    ids, _ = await _three_reminders(b, database_url)
    for rid in ids:
        await b.say(USER, f"/cancel {rid}")
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


async def test_status_is_for_admins_only(make_bot):
    b = await make_bot()
    (m,) = await b.say(USER, "/status")
    assert "admins" in m["text"]


async def test_status_without_backups_says_none_recorded(make_bot):
    b = await make_bot()
    (m,) = await b.say(ADMIN, "/status")
    assert "Last backup: none recorded" in m["text"] and "test-release" in m["text"]


async def test_status_reports_the_last_backup_and_the_system(make_bot, database_url):
    b = await make_bot()
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


async def _strangers_visit(b, api):
    await b.say(USER, "/remind in 1 hour mine")
    for text in ["/start", "remind me in 5 minutes x", "/list", "/status", "/export", "hi"]:
        api.push_message(STRANGER, text)
    api.push_callback(STRANGER, "d:1", 1)
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    await b.say(USER, "/list")  # processed after the stranger's updates


async def test_a_stranger_is_refused_once(make_bot, api):
    b = await make_bot()
    await _strangers_visit(b, api)
    assert [m["text"] for m in api.sent_messages(STRANGER)] == ["Sorry, this is a private bot."]


async def test_nothing_about_a_stranger_is_stored(make_bot, database_url, api):
    b = await make_bot()
    await _strangers_visit(b, api)
    with psycopg.connect(database_url, autocommit=True) as c:
        tables = [r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()]
        for t in tables:
            rows = c.execute(f'SELECT * FROM "{t}"').fetchall()
            assert str(STRANGER) not in repr(rows), t
    assert q(database_url, "SELECT count(*) FROM users") == [(1,)]


async def _delivered(b, clock, api, text="stretch"):
    await b.say(USER, f"/remind in 10 minutes {text}")
    clock.advance(minutes=10, seconds=1)
    (m,) = await wait_reminders(api, USER, 1)
    return m, int(buttons(m)[0].split(":")[1])


async def test_a_reminder_on_time_has_no_lateness_note(make_bot, api):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, _ = await _delivered(b, clock, api)
    assert m["text"] == "⏰ stretch"


async def test_a_delivered_reminder_has_four_buttons(make_bot, api, database_url):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, did = await _delivered(b, clock, api)
    assert buttons(m) == [f"d:{did}", f"s10:{did}", f"s60:{did}", f"t9:{did}"]
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "done")


async def test_another_users_press_on_a_delivery_changes_nothing(make_bot, api, database_url):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, did = await _delivered(b, clock, api)
    api.push_callback(OTHER, f"d:{did}", m["message_id"], chat_id=USER)
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    assert "not yours" in api.answered_callbacks[-1]["text"]
    assert q(database_url, "SELECT action FROM deliveries")[0][0] is None


async def test_snooze_moves_the_reminder_ten_minutes(make_bot, api, database_url):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, did = await _delivered(b, clock, api)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "done")
    api.push_callback(USER, f"s10:{did}", m["message_id"])
    await api.async_wait_for(lambda: "Snoozed" in (api.message(USER, m["message_id"])["text"]))
    assert "reply_markup" not in api.message(USER, m["message_id"])
    (status, due), = q(database_url, "SELECT status, due_at FROM reminders")
    assert status == "pending" and abs((due - clock()).total_seconds() - 600) < 5


async def test_only_the_first_button_press_on_a_delivery_counts(make_bot, api, database_url):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, did = await _delivered(b, clock, api)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "done")
    api.push_callback(USER, f"s10:{did}", m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    due = q(database_url, "SELECT due_at FROM reminders")[0][0]
    for btn in (f"s10:{did}", f"d:{did}", f"t9:{did}"):
        api.push_callback(USER, btn, m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 4)
    assert all("Already handled" in a["text"] for a in api.answered_callbacks[-3:])
    assert q(database_url, "SELECT due_at FROM reminders")[0][0] == due


async def test_a_snoozed_reminder_comes_back_and_moves_to_tomorrow_9(make_bot, api, database_url):
    clock = FakeClock()
    b = await make_bot(clock=clock)
    m, did = await _delivered(b, clock, api)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders")[0][0] == "done")
    api.push_callback(USER, f"s10:{did}", m["message_id"])
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= 1)
    clock.advance(minutes=10, seconds=2)
    ms = await wait_reminders(api, USER, 2)
    assert ms[1]["text"] == "⏰ stretch"
    api.push_callback(USER, f"t9:{buttons(ms[1])[0].split(':')[1]}", ms[1]["message_id"])
    await api.async_wait_for(lambda: "Moved to" in api.message(USER, ms[1]["message_id"])["text"])
    loc = q(database_url, "SELECT due_at FROM reminders")[0][0].astimezone(ZoneInfo("Europe/Berlin"))
    tomorrow = clock().astimezone(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1)
    assert (loc.hour, loc.minute, loc.date()) == (9, 0, tomorrow)
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


async def test_a_429_storm_and_5xx_are_retried_and_each_reminder_delivered_once(make_bot, database_url, api):
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
