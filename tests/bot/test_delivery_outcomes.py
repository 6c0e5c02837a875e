"""Every outcome of a send is classified and recorded: delivered; retry later with back-off
(flagged "possibly a repeat" when the answer left it unknown); failed, with the admins told.
Nothing stays in 'sending'."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, TimedOut

from bot.delivery import MAX_ATTEMPTS, Failed, RetryLater, backoff, classify_error, render
from bot.limits import utf16_len
from tests.bot.conftest import ADMIN, USER, FakeClock, q, reminder_messages, wait_reminders

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
ROW = {"id": 7, "delivery_id": 9, "attempts": 0}


@pytest.mark.parametrize("error", [Forbidden("bot was blocked by the user"), BadRequest("chat not found")])
def test_a_refusal_for_good_is_failed(error):
    assert isinstance(classify_error(ROW, error, NOW, None), Failed)


def test_a_5xx_is_retried_later_and_not_in_doubt():
    o = classify_error(ROW, NetworkError("Bad Gateway"), NOW, None)
    assert isinstance(o, RetryLater) and not o.in_doubt and o.retry_at == NOW + timedelta(seconds=30)


@pytest.mark.parametrize("error", [TimedOut(), asyncio.TimeoutError(), TypeError("bad result"),
                                   KeyError("message_id")])
def test_an_unknown_fate_is_retried_later_as_a_possible_repeat(error):
    o = classify_error(ROW, error, NOW, None)
    assert isinstance(o, RetryLater) and o.in_doubt


def test_the_back_off_doubles_up_to_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 8, 30)] == [30, 60, 120, 3600, 3600]


def test_retries_end_in_failure_after_the_last_attempt():
    o = classify_error(dict(ROW, attempts=MAX_ATTEMPTS - 1), NetworkError("Bad Gateway"), NOW, None)
    assert isinstance(o, Failed) and "gave up" in o.error


def test_a_long_reminder_with_every_note_fits_telegrams_limit():
    r = {"text": "x" * 5000, "due_at": NOW - timedelta(days=3), "tz": "Europe/Berlin", "in_doubt": True}
    text, _ = render(r, NOW)
    assert utf16_len(text) <= 4096 and "late by" in text and "possibly a repeat" in text


def test_astral_characters_count_twice_towards_the_limit():
    r = {"text": "😀" * 3000, "due_at": NOW, "tz": "UTC"}
    text, _ = render(r, NOW)
    assert utf16_len(text) <= 4096 < len(text.encode("utf-16-le"))


async def _due_now(database_url, text="ping", **cols):
    q(database_url, "INSERT INTO users (user_id, chat_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", USER, USER)
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at, attempts) VALUES "
      "(%s, %s, %s, 'UTC', now() - interval '1 second', %s)", USER, USER, text, cols.get("attempts", 0))


async def _settled(api, database_url, status):
    await api.async_wait_for(lambda: q(database_url, "SELECT status FROM reminders") == [(status,)], 20)


@pytest.mark.parametrize("how", ["malformed", "hang"])
async def test_an_unknown_send_is_retried_later_never_left_sending(make_bot, api, database_url, how):
    clock = FakeClock()
    await make_bot(clock=clock, BOT_SEND_DEADLINE_SECONDS="1.5")
    if how == "malformed":
        api.malformed_next("sendMessage", kind="result", chat_id=USER)
    else:
        api.hang_next("sendMessage", seconds=30, chat_id=USER)
    await _due_now(database_url)
    await api.async_wait_for(
        lambda: q(database_url, "SELECT status, hold_until IS NOT NULL FROM reminders") == [("pending", True)], 20)
    assert q(database_url, "SELECT state, in_doubt FROM deliveries") == [("sending", True)]


async def test_a_retried_send_arrives_flagged_as_a_possible_repeat(make_bot, api, database_url):
    clock = FakeClock()
    await make_bot(clock=clock)
    api.malformed_next("sendMessage", kind="result", chat_id=USER)
    await _due_now(database_url)
    await api.async_wait_for(lambda: q(database_url, "SELECT hold_until IS NOT NULL FROM reminders") == [(True,)])
    clock.advance(seconds=31)
    ms = await wait_reminders(api, USER, 2)
    assert ms[0]["text"] == "⏰ ping" and "possibly a repeat" in ms[1]["text"]
    await _settled(api, database_url, "done")
    assert q(database_url, "SELECT state FROM deliveries") == [("sent",)]


async def test_a_5xx_until_the_deadline_is_retried_later(make_bot, api, database_url):
    await make_bot(BOT_SEND_DEADLINE_SECONDS="1.5")
    api.fail_next("sendMessage", status=500, count=3, chat_id=USER)
    await _due_now(database_url)
    await api.async_wait_for(
        lambda: q(database_url, "SELECT status, hold_until IS NOT NULL FROM reminders") == [("pending", True)], 20)
    assert not reminder_messages(api, USER)


async def test_a_reminder_given_up_is_failed_and_the_admins_told(make_bot, api, database_url):
    await make_bot()
    api.malformed_next("sendMessage", kind="body", chat_id=USER)
    await _due_now(database_url, attempts=MAX_ATTEMPTS - 1)
    await _settled(api, database_url, "failed")
    await api.async_wait_for(lambda: any("could not be delivered" in m["text"]
                                         for m in api.sent_messages(ADMIN)), 10)


async def test_a_blocked_user_is_failed_and_the_admins_told(make_bot, api, database_url):
    await make_bot()
    api.fail_next("sendMessage", status=403, chat_id=USER)
    await _due_now(database_url)
    await _settled(api, database_url, "failed")
    await api.async_wait_for(lambda: any("could not be delivered" in m["text"]
                                         for m in api.sent_messages(ADMIN)), 10)


async def test_a_recurring_reminder_moves_on_after_a_failure(make_bot, api, database_url):
    await make_bot()
    api.fail_next("sendMessage", status=403, chat_id=USER)
    q(database_url, "INSERT INTO users (user_id, chat_id) VALUES (%s, %s)", USER, USER)
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at, recurrence) VALUES "
      "(%s, %s, 'daily', 'UTC', now() - interval '1 second', %s)", USER, USER,
      '{"kind": "daily", "hour": 9, "minute": 0}')
    await api.async_wait_for(lambda: q(database_url, "SELECT state FROM deliveries") == [("failed",)], 20)
    (status, due), = q(database_url, "SELECT status, due_at FROM reminders")
    assert status == "pending" and due > datetime.now(timezone.utc)


async def test_a_reminder_longer_than_a_message_is_delivered_cut(make_bot, api, database_url):
    await make_bot()
    await _due_now(database_url, text="y" * 5000)
    (m,) = await wait_reminders(api, USER, 1)
    assert m["text"].endswith("…") and utf16_len(m["text"]) <= 4096
