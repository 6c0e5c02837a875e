"""The gate fails closed: a stranger's update never reaches a handler, whatever happens while the
bot refuses it (the double answers the refusal with malformed data, a 500, or not at all)."""
from __future__ import annotations

import time

import pytest

from tests.bot.conftest import STRANGER, USER, q


def _stranger_left_no_trace(api, database_url):
    assert q(database_url, "SELECT count(*) FROM users WHERE user_id = %s", STRANGER) == [(0,)]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]
    # the only call for the stranger's chat is the refusal itself (not yet recorded while it
    # hangs): no handler answered
    calls = [c for c in api.calls if c.params.get("chat_id") == STRANGER]
    assert [c.method for c in calls] in (["sendMessage"], []), calls


def _break_the_refusal(api, how):
    if how == "malformed result":
        api.malformed_next("sendMessage", kind="result", chat_id=STRANGER)
    elif how == "not JSON":
        api.malformed_next("sendMessage", kind="body", chat_id=STRANGER)
    elif how == "500":
        api.fail_next("sendMessage", status=500, chat_id=STRANGER)
    else:
        api.hang_next("sendMessage", seconds=30, chat_id=STRANGER)


@pytest.mark.parametrize("how", ["malformed result", "not JSON", "500", "hang"])
async def test_a_stranger_is_refused_when_the_refusal_fails(make_bot, api, database_url, how):
    b = await make_bot()
    _break_the_refusal(api, how)
    api.push_message(STRANGER, "remind me in 5 minutes to open the door")
    await api.async_wait_for(lambda: any(c.params.get("chat_id") == STRANGER for c in api.calls)
                             or api.injected["timeout"], 10)
    (m,) = await b.say(USER, "/help")  # the allowed user is served meanwhile
    assert "/remind" in m["text"]
    _stranger_left_no_trace(api, database_url)


async def test_a_hung_refusal_does_not_hold_up_the_strangers_next_update(make_bot, api, database_url):
    b = await make_bot()
    api.hang_next("sendMessage", seconds=30, chat_id=STRANGER)
    t0 = time.monotonic()
    api.push_message(STRANGER, "/start")
    await api.async_wait_for(lambda: api.injected["timeout"] == 1, 10)
    await b.say(USER, "/help")
    assert time.monotonic() - t0 < 10
    _stranger_left_no_trace(api, database_url)


async def test_a_strangers_button_press_never_reaches_a_handler(make_bot, api, database_url):
    await make_bot()
    api.malformed_next("answerCallbackQuery", kind="result")
    api.push_callback(STRANGER, "c:1", 1)
    await api.async_wait_for(lambda: api.calls_of("answerCallbackQuery"), 10)
    assert not api.calls_of("editMessageText")
    assert q(database_url, "SELECT count(*) FROM users") == [(0,)]


async def test_the_refusal_speaks_the_strangers_language(make_bot, api):
    b = await make_bot()
    api.push_message(STRANGER, "привет", language_code="ru")
    await b.say(USER, "/help")
    await api.async_wait_for(lambda: api.sent_messages(STRANGER), 10)
    assert api.sent_messages(STRANGER)[0]["text"] == "Извините, это частный бот."
