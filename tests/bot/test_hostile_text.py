"""Hostile text: numbers too big for a date, digits that are not ASCII, over-long input on every
path, and property-based tests (hypothesis): any Unicode text up to 10,000 characters gets a reply
or a clear refusal, never an unhandled exception, and every outgoing text fits Telegram's limits
(the Bot API double refuses anything Telegram would)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.limits import MAX_INPUT, REMINDER_TEXT
from bot.parsing import ParseError, parse
from tests.bot.conftest import ADMIN, USER, q

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
WORDS = ["in", "at", "every", "day", "days", "tomorrow", "через", "минут", "в", "завтра", "каждый",
         "9999999999", "31.12.9999", "23:59", "²", "٣", "1st", "December", "декабря", "remind me",
         "напомни", "/remind", "\x00", "😀", "pm", "monday", "2026-12-24", "month", "on the"]
phrases = st.one_of(
    st.text(max_size=10_000),
    st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=40).map(" ".join),
)


@pytest.mark.parametrize("phrase", [
    "in 9999999999 days ping", "через 9999999999 дней пинг", "in 99999999999999999999 minutes x",
    "31.12.9999 23:59 ping", "9999-12-31 23:59 ping", "on 31 December 9999 ping",
    "in 1000000 weeks x",
])
def test_numbers_too_big_for_a_date_are_refused_clearly(phrase):
    with pytest.raises(ParseError, match="out of range|past|bad date"):
        parse(phrase, NOW, "Europe/Berlin")


@pytest.mark.parametrize("phrase", ["in ² minutes x", "at ²:30 x", "in ٣ minutes x"])
def test_unusual_digits_never_crash_the_parser(phrase):
    try:
        p = parse(phrase, NOW, "Europe/Berlin")
    except ParseError:
        return
    assert p.due_at > NOW


@pytest.mark.parametrize("phrase", [
    "in 10 minutes " + "x" * (REMINDER_TEXT + 1),                # the grammar's path
    "tomorrow at 9 " + "y" * (REMINDER_TEXT + 1),
    "Sunday 10pm " + "z " * 600,                                   # a long tail after a day and a time
    "x" * (MAX_INPUT + 1),
])
def test_the_1000_character_limit_holds_on_every_path(phrase):
    with pytest.raises(ParseError, match="too long"):
        parse(phrase, NOW, "Europe/Berlin")


def test_a_text_of_exactly_1000_characters_is_accepted():
    assert len(parse("in 10 minutes " + "x" * REMINDER_TEXT, NOW, "UTC").text) == REMINDER_TEXT


def test_nul_characters_are_removed_from_the_text():
    assert parse("in 10 minutes a\x00b", NOW, "UTC").text == "ab"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phrases)
def test_the_parser_answers_any_text_with_a_reminder_or_a_clear_refusal(text):
    try:
        p = parse(text, NOW, "Europe/Berlin")
    except ParseError as e:
        assert str(e) in ("empty", "no time found", "past", "text too long", "out of range",
                          "bad date", "day of month must be 1..31", "ambiguous", "too frequent",
                          "conflict", "bad time")
        return
    assert 0 < len(p.text) <= REMINDER_TEXT and "\x00" not in p.text
    assert NOW < p.due_at <= NOW + timedelta(days=3661)


USERS = list(range(2001, 2031))


async def test_any_text_gets_a_reply_that_fits_telegrams_limits(make_bot, api, database_url):
    """Drives the real Application: every example is a message from one of 30 users (Telegram's
    1 msg/s per chat would otherwise pace the test); each must be answered, by a reply the double
    accepted, and no handler error may reach the admins."""
    await make_bot(ALLOWED_USER_IDS=",".join(map(str, USERS)))
    state = {"n": 0}

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(phrases.filter(lambda s: s.strip()))
    def prop(text):
        user = USERS[state["n"] % len(USERS)]
        state["n"] += 1
        before = len(api.sent_messages(user))
        api.push_message(user, text)
        api.wait_for(lambda: len(api.sent_messages(user)) > before
                     or any(c.status == 400 for c in api.calls), timeout=15)
        assert not [c for c in api.calls if c.status == 400], "Telegram would refuse a reply"
        assert not api.sent_messages(ADMIN), api.sent_messages(ADMIN)

    await asyncio.to_thread(prop)
    assert q(database_url, "SELECT count(*) FROM reminders WHERE length(text) > %s", REMINDER_TEXT) == [(0,)]


@pytest.mark.parametrize("command", ["/edit", "/edit 1", "/cancel", "/pause", "/resume", "/quiet",
                                     "/snooze", "/tz", "/lang"])
async def test_commands_answer_hostile_arguments(make_bot, api, command):
    b = await make_bot()
    for arg in ["²", "x" * 5000, "\x00", "-1", "99999999999999999999999", "😀" * 3000]:
        (m,) = await b.say(USER, f"{command} {arg}")
        assert m["text"]
    assert not api.sent_messages(ADMIN)
