"""The ✏️ (edit) button of a /list sent before a restart, pressed before the user has sent the new
process anything: the button's handler has no cached user row then (it used to pass None on to the
edit prompt and crash; issue 18). Beyond the prompt (tests/bot/test_features.py): the follow-up
message edits, no handler error reaches the admins, and another user's press arms nothing."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.bot.conftest import ADMIN, OTHER, USER, FakeClock, buttons, q

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)


async def _list_then_restart(make_bot, database_url):
    b = await make_bot(clock=FakeClock(T0))
    await b.say(USER, "in 1 hour water plants")
    rid = q(database_url, "SELECT id FROM reminders ORDER BY id DESC LIMIT 1")[0][0]
    (lst,) = await b.say(USER, "/list")
    assert f"e:{rid}" in buttons(lst)
    await b.stop()
    return rid, lst, await make_bot(clock=FakeClock(T0))


async def test_the_edit_buttons_follow_up_edits_after_a_restart(make_bot, api, database_url):
    rid, lst, b = await _list_then_restart(make_bot, database_url)
    before = len(api.sent_messages(USER))
    api.push_callback(USER, f"e:{rid}", lst["message_id"])
    (prompt,) = await api.async_wait_for(lambda: api.sent_messages(USER)[before:] or None)
    assert "Send the new time" in prompt["text"] and f"#{rid}" in prompt["text"]
    (m,) = await b.say(USER, "at 18:30 call the plumber")
    assert "changed" in m["text"]
    assert q(database_url, "SELECT text FROM reminders WHERE id=%s", rid) == [("call the plumber",)]
    assert not any("error" in m["text"].lower() for m in api.sent_messages(ADMIN))


async def test_the_edit_button_of_someone_elses_reminder_after_a_restart(make_bot, api, database_url):
    rid, lst, b = await _list_then_restart(make_bot, database_url)
    before = len(api.sent_messages(OTHER))
    api.push_callback(OTHER, f"e:{rid}", lst["message_id"], chat_id=OTHER)
    (m,) = await api.async_wait_for(lambda: api.sent_messages(OTHER)[before:] or None)
    assert "No upcoming reminder" in m["text"]
    assert q(database_url, "SELECT editing_id FROM users WHERE user_id=%s", OTHER) in ([], [(None,)])
    assert not any("error" in m["text"].lower() for m in api.sent_messages(ADMIN))
