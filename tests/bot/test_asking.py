"""Asking instead of guessing, through the running bot (Bot API double, real PostgreSQL): the
question's buttons, one reminder per question whoever presses what, the confirmation's absolute
and relative time, and ↩ Undo."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.bot.conftest import OTHER, USER, FakeClock, buttons, q

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # Wednesday 11:00 in Berlin


async def answered(api, n):
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= n)
    return api.answered_callbacks[n - 1]


async def test_an_ambiguous_hour_is_asked_and_the_pressed_reading_is_saved_once(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "at 5 call the plumber")
    assert "not sure" in m["text"] and "at 5 call the plumber" in m["text"]
    labels = [btn["text"] for row in m["reply_markup"]["inline_keyboard"] for btn in row]
    assert labels == ["Tomorrow 05:00", "Today 17:00", "✖ Cancel"]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]  # nothing guessed
    data = buttons(m)
    assert data[0].startswith("k0:") and data[1].startswith("k1:") and data[2].startswith("n:")
    api.push_callback(USER, data[1], m["message_id"])
    assert "Saved #" in (await answered(api, 1))["text"]
    rows = q(database_url, "SELECT id, text, due_at FROM reminders")
    assert [(r[1], r[2]) for r in rows] == [("call the plumber", datetime(2026, 11, 25, 16, 0, tzinfo=timezone.utc))]
    edited = await api.async_wait_for(lambda: (lambda t: t if "#" in t else None)(
        api.message(USER, m["message_id"])["text"]))
    assert "Wed 2026-11-25 17:00" in edited and "in 6 h" in edited
    for data_ in (data[1], data[0], data[2]):  # the question is answered: every later press is void
        api.push_callback(USER, data_, m["message_id"])
    for n in (2, 3, 4):
        assert "expired" in (await answered(api, n))["text"]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(1,)]


async def test_another_users_press_or_forged_data_saves_nothing(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "в 5 позвонить", lang="ru")
    assert "Не уверен" in m["text"]
    qid = buttons(m)[0].split(":")[1]
    api.push_callback(OTHER, f"k0:{qid}", m["message_id"])
    await answered(api, 1)
    api.push_callback(USER, f"k2:{qid}", m["message_id"])     # there are only two readings
    await answered(api, 2)
    api.push_callback(USER, f"k9:{qid}", m["message_id"])     # not a reading index at all
    assert (await answered(api, 3))["text"] in ("Unknown button", "Неизвестная кнопка")
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]
    # the forged index consumed the question (fail closed), the other user's press did not count
    assert q(database_url, "SELECT count(*) FROM questions") == [(0,)]


async def test_cancel_on_a_question_saves_nothing(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "next friday dinner with ann")
    labels = [btn["text"] for row in m["reply_markup"]["inline_keyboard"] for btn in row]
    assert labels == ["Fri 27.11 09:00", "Fri 04.12 09:00", "✖ Cancel"]
    api.push_callback(USER, buttons(m)[-1], m["message_id"])
    await answered(api, 1)
    await api.async_wait_for(lambda: "Not saved" in api.message(USER, m["message_id"])["text"])
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]


async def test_time_words_left_in_the_text_are_asked_about(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "tomorrow call 30 min before leaving")
    assert "30, min" in m["text"] and len(buttons(m)) == 2
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]


async def test_the_confirmation_shows_absolute_and_relative_time_and_undo_works(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "in an hour and a half call Bob")
    assert "Wed 2026-11-25 12:30 (Europe/Berlin)" in m["text"] and "⏳ in 1 h 30 min" in m["text"]
    (undo,) = buttons(m)
    rid = int(undo.split(":")[1])
    api.push_callback(OTHER, undo, m["message_id"])  # not theirs: nothing happens
    await answered(api, 1)
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", rid) == [("pending",)]
    api.push_callback(USER, undo, m["message_id"])
    assert "Undone" in (await answered(api, 2))["text"]
    assert q(database_url, "SELECT status FROM reminders WHERE id=%s", rid) == [("cancelled",)]
    (m2,) = await b.say(USER, "через 2 с половиной часа выйти", lang="ru")
    assert "ср 2026-11-25 13:30" in m2["text"] and "через 2 ч 30 мин" in m2["text"]


async def test_a_rule_is_confirmed_in_words_with_its_note(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "every month pay the cleaner")
    assert "every month on day 25 at 09:00" in m["text"] and "today's, the 25" in m["text"]
    (m,) = await b.say(USER, "каждые 2 недели в пятницу отчёт", lang="ru")
    assert "каждые 2 недели: пт в 09:00" in m["text"]
    rule = q(database_url, "SELECT recurrence FROM reminders WHERE text='отчёт'")[0][0]
    assert rule == {"kind": "weekly", "interval": 2, "weekdays": [4], "hour": 9, "minute": 0,
                    "start": "2026-11-27"}
    (m,) = await b.say(USER, "/list")
    assert "every 2 weeks on Fri at 09:00" in m["text"]


async def test_a_question_survives_a_restart(make_bot, api, database_url):
    clock = FakeClock(NOW)
    b = await make_bot(clock=clock)
    (m,) = await b.say(USER, "at 5 call the plumber")
    await b.stop()
    await make_bot(clock=clock)
    api.push_callback(USER, buttons(m)[1], m["message_id"])
    await api.async_wait_for(lambda: q(database_url, "SELECT count(*) FROM reminders") == [(1,)])


async def test_an_ambiguous_edit_changes_nothing_and_says_the_readings(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    await b.say(USER, "tomorrow at 9 call the plumber")
    (rid, due), = q(database_url, "SELECT id, due_at FROM reminders")
    (m,) = await b.say(USER, f"/edit {rid} at 5")
    assert "not sure" in m["text"] and "05:00" in m["text"] and "17:00" in m["text"]
    assert q(database_url, "SELECT due_at FROM reminders WHERE id=%s", rid) == [(due,)]


async def test_a_reading_picked_at_the_reminder_cap_is_refused_naming_it(make_bot, api, database_url):
    from bot.limits import MAX_REMINDERS_PER_USER
    from tests.bot.test_reminder_cap import _seed, _to_come
    b = await make_bot(clock=FakeClock(NOW))
    (m,) = await b.say(USER, "at 5 call the plumber")
    _seed(database_url, MAX_REMINDERS_PER_USER, uid=USER)
    api.push_callback(USER, buttons(m)[1], m["message_id"])
    assert str(MAX_REMINDERS_PER_USER) in (await answered(api, 1))["text"]
    assert _to_come(database_url, USER) == MAX_REMINDERS_PER_USER
    assert q(database_url, "SELECT count(*) FROM reminders WHERE text = 'call the plumber'") == [(0,)]


def test_the_relative_time_reads_to_the_nearest_minute_in_both_languages():
    from datetime import timedelta

    from bot.views import relative
    for delta, en, ru in ((timedelta(hours=6, seconds=-2), "⏳ in 6 h", "⏳ через 6 ч"),
                          (timedelta(minutes=90), "⏳ in 1 h 30 min", "⏳ через 1 ч 30 мин"),
                          (timedelta(seconds=30), "⏳ in 30 s", "⏳ через 30 с"),
                          (timedelta(days=1, hours=2), "⏳ in 1 d 2 h", "⏳ через 1 д 2 ч")):
        assert (relative(NOW + delta, NOW, "en"), relative(NOW + delta, NOW, "ru")) == (en, ru)
