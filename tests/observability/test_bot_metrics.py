"""The bot's /metrics (bot/metrics.py), scraped over HTTP from the real Application while it
serves a user through the Bot API double: updates, replies, reminders created, delivered with their
lateness, retried, failed, 429s and their retry-after, request latency, scheduler lag and queue, the
database pool. The registry is the process's own, so each test compares before and after."""
from __future__ import annotations

import re

import pytest

from bot import metrics
from tests.bot.conftest import USER, q, wait_reminders
from tests.observability.conftest import scrape, value


@pytest.fixture
def metrics_url(port):
    assert metrics.serve(port, "127.0.0.1")
    return f"http://127.0.0.1:{port}/metrics"


async def test_a_conversation_and_deliveries_show_in_the_metrics(make_bot, database_url, api, metrics_url):
    before = scrape(metrics_url)
    b = await make_bot()
    await b.say(USER, "/start")
    await b.say(USER, "/nosuchcommand")
    await b.say(USER, "remind me in 2 hours to water the plants")
    # one reminder 90 s overdue, delivered after one 429 (retry_after 1) the limiter waits out
    api.fail_next("sendMessage", status=429, retry_after=1, count=1, chat_id=USER)
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'late one', 'UTC', now() - interval '90 seconds')", USER, USER)
    await wait_reminders(api, USER, 1, timeout=20)
    await api.async_wait_for(lambda: q(database_url, "SELECT count(*) FROM deliveries WHERE state='sent'") == [(1,)])
    after = scrape(metrics_url)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("botstack_updates_total", kind="command") == 2
    assert delta("botstack_updates_total", kind="text") == 1
    assert delta("botstack_commands_total", command="start") == 1
    assert delta("botstack_commands_total", command="unknown") == 1
    assert delta("botstack_replies_total") >= 3
    assert delta("botstack_reminders_created_total") == 1
    assert delta("botstack_reminders_delivered_total") == 1
    # 90 s late: in the (60, 90] or (90, 300] bucket, never under a minute
    assert delta("botstack_reminder_lateness_seconds_count") == 1
    assert delta("botstack_reminder_lateness_seconds_bucket", le="60.0") == 0
    assert delta("botstack_reminder_lateness_seconds_bucket", le="300.0") == 1
    assert 89 <= delta("botstack_reminder_lateness_seconds_sum") <= 120
    assert delta("botstack_telegram_429_total") == 1
    assert delta("botstack_telegram_retry_after_seconds_sum") == 1
    assert delta("botstack_telegram_requests_total", method="sendMessage", outcome="throttled") == 1
    assert delta("botstack_telegram_requests_total", method="sendMessage", outcome="ok") >= 4
    assert delta("botstack_telegram_request_seconds_count", method="sendMessage") >= 5
    assert value(after, "botstack_bot_info", release="test-release") == 1
    assert value(after, "botstack_db_pool_requests_total") > 0
    assert metrics.POOL.pool is b.pool  # the running Application's pool, also after a restart in-process
    assert value(after, "botstack_db_pool_size") >= 1
    assert 0 <= value(after, "botstack_scheduler_tick_age_seconds") < 5
    await b.stop()


async def test_retries_failures_lag_and_queue_depth(make_bot, database_url, api, metrics_url):
    before = scrape(metrics_url)
    # the counters are the process's: earlier tests in this run may have moved them already
    retried0, failed0 = metrics.RETRIED._value.get(), metrics.FAILED._value.get()
    b = await make_bot()
    await b.say(USER, "/start")
    b.scheduler.limiter = None  # no per-chat pacing: this test is about outcomes, not rates
    api.fail_next("sendMessage", status=502, count=6, chat_id=USER)   # the limiter's retries, used up
    api.fail_next("sendMessage", status=403, count=1, chat_id=USER)   # then blocked: failed for good
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'doomed', 'UTC', now() - interval '10 minutes')", USER, USER)
    await api.async_wait_for(lambda: metrics.RETRIED._value.get() > retried0 or None, timeout=20)
    after = scrape(metrics_url)
    assert value(after, "botstack_reminders_retried_total") - value(before, "botstack_reminders_retried_total") == 1
    assert value(after, "botstack_telegram_requests_total", method="sendMessage", outcome="network") \
        - value(before, "botstack_telegram_requests_total", method="sendMessage", outcome="network") == 6
    # the scheduler saw a reminder ten minutes overdue
    lag = value(after, "botstack_scheduler_lag_seconds")
    assert lag == 0 or 590 <= lag <= 700
    b.clock.advance(minutes=2)
    await api.async_wait_for(lambda: metrics.FAILED._value.get() > failed0 or None, timeout=20)
    final = scrape(metrics_url)
    assert value(final, "botstack_reminders_failed_total") - value(before, "botstack_reminders_failed_total") == 1
    assert value(final, "botstack_telegram_requests_total", method="sendMessage", outcome="refused") \
        - value(before, "botstack_telegram_requests_total", method="sendMessage", outcome="refused") == 1
    await b.stop()


def test_the_page_carries_no_user_or_chat_ids():
    """Labels are closed sets: after the tests above ran in this process, no label value is an id."""
    from prometheus_client import generate_latest
    text = generate_latest(metrics.REGISTRY).decode()
    labels = re.findall(r'\w+="([^"]*)"', text)
    assert labels and not [v for v in labels if re.fullmatch(r"\d{3,}", v) or str(USER) in v]
    assert set(re.findall(r'kind="([^"]*)"', text)) <= {"command", "text", "button", "other"}


@pytest.mark.parametrize("raw, port", [("", metrics.DEFAULT_PORT), ("0", 0), (" 9300 ", 9300)])
def test_the_port_comes_from_the_environment(raw, port):
    assert metrics.port_from_env({"BOT_METRICS_PORT": raw}) == port


@pytest.mark.parametrize("raw", ["x", "-1", "70000", "91 01"])
def test_a_malformed_port_is_refused_naming_the_variable(raw):
    with pytest.raises(ValueError, match="BOT_METRICS_PORT"):
        metrics.port_from_env({"BOT_METRICS_PORT": raw})


def test_a_busy_port_is_logged_not_fatal(port):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert metrics.serve(port, "127.0.0.1") is False


def test_the_bot_process_refuses_a_malformed_port_in_one_line(spawn_bot, database_url):
    bot = spawn_bot(database_url, BOT_METRICS_PORT="ninety")
    assert bot.proc.wait(timeout=30) == 2
    out = bot.output()
    assert "BOT_METRICS_PORT is malformed" in out and "Traceback" not in out


def test_the_bot_process_serves_its_metrics_and_its_memory(spawn_bot, database_url, api, port):
    bot = spawn_bot(database_url, BOT_METRICS_PORT=port)
    bot.wait_started(api)
    page = scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(page, "process_resident_memory_bytes") > 20 * 2 ** 20
    assert value(page, "botstack_bot_info", release="test-release") == 1
    assert bot.terminate() == 0


async def test_a_reminder_refused_by_the_cap_is_not_counted_as_created(make_bot, database_url):
    from datetime import datetime, timedelta, timezone

    from bot import store
    b = await make_bot()
    await b.say(USER, "/start")
    before = metrics.REMINDERS_CREATED._value.get()
    due = datetime.now(timezone.utc) + timedelta(days=1)
    await store.add_reminder(b.pool, USER, USER, "one", "UTC", due, None, "test", limit=1)
    with pytest.raises(store.ReminderLimitReached):
        await store.add_reminder(b.pool, USER, USER, "two", "UTC", due, None, "test", limit=1)
    assert metrics.REMINDERS_CREATED._value.get() - before == 1
    await b.stop()
