"""↩ Undo on an edit's confirmation, through the running bot (Bot API double, real PostgreSQL): it
puts the reminder's text, time and rule back; a second press, another user's press, a press after
a newer edit, after a delivery or a pause, or once the earlier time has passed changes nothing and
says why; it works after a restart (the edit is kept in `reminder_edits`, the button carries its
id)."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.bot.conftest import OTHER, USER, FakeClock, buttons, q, wait_reminders

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # Wednesday 11:00 in Berlin
STATE = "SELECT text, due_at, recurrence, status FROM reminders WHERE id = %s"


async def answered(api, n):
    await api.async_wait_for(lambda: len(api.answered_callbacks) >= n)
    return api.answered_callbacks[n - 1]


async def _create(b, phrase, lang="en"):
    (m,) = await b.say(USER, phrase, lang=lang)
    return int(buttons(m)[0].split(":")[1])


async def _edit(b, rid, phrase, lang="en"):
    """/edit; the confirmation and its Undo button's data."""
    (m,) = await b.say(USER, f"/edit {rid} {phrase}", lang=lang)
    (undo,) = buttons(m)
    return m, undo


async def test_undo_after_an_edit_puts_back_the_text_and_time_and_a_second_press_changes_nothing(
        make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    rid = await _create(b, "in 1 hour water plants")
    before = q(database_url, STATE, rid)
    m, undo = await _edit(b, rid, "tomorrow at 10 feed the cat")
    assert "changed" in m["text"] and m["text"].endswith("in 23 h")
    assert undo.startswith("ue:") and len(undo.encode()) <= 64
    assert [btn["text"] for row in m["reply_markup"]["inline_keyboard"] for btn in row] == ["↩ Undo"]
    edited = q(database_url, STATE, rid)
    assert edited[0][0] == "feed the cat"

    api.push_callback(OTHER, undo, m["message_id"])             # not theirs: nothing happens
    assert "Nothing to undo" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == edited

    api.push_callback(USER, undo, m["message_id"])
    assert "Edit undone" in (await answered(api, 2))["text"]
    assert q(database_url, STATE, rid) == before
    label = await api.async_wait_for(lambda: (lambda t: t if "↩" in t else None)(
        api.message(USER, m["message_id"])["text"]))
    assert "water plants" in label and "Wed 2026-11-25 12:00" in label

    api.push_callback(USER, undo, m["message_id"])               # again: already undone
    assert "Already undone" in (await answered(api, 3))["text"]
    assert q(database_url, STATE, rid) == before


async def test_undo_puts_back_a_rule_and_a_paused_status(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    rid = await _create(b, "every day at 8 stretch")
    await b.say(USER, f"/pause {rid}")
    before = q(database_url, STATE, rid)
    assert before[0][3] == "paused"
    m, undo = await _edit(b, rid, "every monday at 9 yoga")
    assert q(database_url, STATE, rid)[0][2]["kind"] == "weekly"
    api.push_callback(USER, undo, m["message_id"])
    assert "Edit undone" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == before


async def test_undo_of_an_edit_that_was_edited_again_is_refused(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    rid = await _create(b, "in 1 hour water plants")
    m1, undo1 = await _edit(b, rid, "tomorrow at 10 feed the cat")
    after1 = q(database_url, STATE, rid)
    m2, undo2 = await _edit(b, rid, "call mom")
    after2 = q(database_url, STATE, rid)
    api.push_callback(USER, undo1, m1["message_id"])
    assert "edited again" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == after2                 # the newer edit is not overwritten
    api.push_callback(USER, undo2, m2["message_id"])             # the newest one can be undone
    assert "Edit undone" in (await answered(api, 2))["text"]
    assert q(database_url, STATE, rid) == after1
    api.push_callback(USER, undo1, m1["message_id"])             # and the first one still cannot
    assert "edited again" in (await answered(api, 3))["text"]
    assert q(database_url, STATE, rid) == after1


async def test_undo_after_the_reminder_was_delivered_or_paused_is_refused(make_bot, api, database_url):
    clock = FakeClock(NOW)
    b = await make_bot(clock=clock)
    rid = await _create(b, "in 2 hours water plants")
    m, undo = await _edit(b, rid, "in 1 minute tea")
    clock.advance(minutes=2)
    b.scheduler.wake()
    await wait_reminders(api, USER, 1)
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders WHERE id = %s", rid)
                             == [("done",)])
    api.push_callback(USER, undo, m["message_id"])
    assert "delivered or cancelled" in (await answered(api, 1))["text"]
    assert q(database_url, "SELECT text, status FROM reminders WHERE id = %s", rid) == [("tea", "done")]

    rid = await _create(b, "every day at 8 stretch")
    m, undo = await _edit(b, rid, "every day at 9 yoga")
    await b.say(USER, f"/pause {rid}")
    api.push_callback(USER, undo, m["message_id"])
    assert "changed since" in (await answered(api, 2))["text"]
    assert q(database_url, "SELECT text, status FROM reminders WHERE id = %s", rid) == [("yoga", "paused")]


async def test_undo_is_refused_once_the_earlier_time_has_passed(make_bot, api, database_url):
    clock = FakeClock(NOW)
    b = await make_bot(clock=clock)
    rid = await _create(b, "in 10 minutes water plants")
    m, undo = await _edit(b, rid, "tomorrow at 10")
    edited = q(database_url, STATE, rid)
    clock.advance(minutes=20)
    api.push_callback(USER, undo, m["message_id"])
    assert "has passed" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == edited


async def test_undo_works_after_a_restart(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    rid = await _create(b, "in 1 hour water plants")
    before = q(database_url, STATE, rid)
    m, undo = await _edit(b, rid, "every friday at 18 call grandma")
    await b.stop()
    await make_bot(clock=FakeClock(NOW))                         # a new process: nothing cached
    api.push_callback(USER, undo, m["message_id"])
    assert "Edit undone" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == before


async def test_undo_of_an_edit_in_russian(make_bot, api, database_url):
    b = await make_bot(clock=FakeClock(NOW))
    await b.say(USER, "/lang ru", lang="ru")
    rid = await _create(b, "через час полить цветы", lang="ru")
    before = q(database_url, STATE, rid)
    m, undo = await _edit(b, rid, "завтра в 10 покормить кота", lang="ru")
    assert "изменено" in m["text"] and "через 23 ч" in m["text"]
    assert [btn["text"] for row in m["reply_markup"]["inline_keyboard"] for btn in row] == ["↩ Отменить"]
    api.push_callback(USER, undo, m["message_id"])
    assert "Изменение отменено" in (await answered(api, 1))["text"]
    assert q(database_url, STATE, rid) == before
    api.push_callback(USER, undo, m["message_id"])
    assert "Уже отменено" in (await answered(api, 2))["text"]
