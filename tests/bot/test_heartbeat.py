"""The bot's heartbeat: pings arrive while it is healthy; a wedged bot (database unreachable,
scheduler stuck) stops pinging; nothing is pinged when the URL is unset; the URL never appears in
the logs. Against a local HTTP server standing in for healthchecks.io."""
from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.config import ConfigError, load
from bot.heartbeat import make_checks
from tests.bot.conftest import USER

PING_KEY = "Xq9ping-key-SECRET-42"


class PingServer:
    """Records every request's path (a healthchecks.io ping endpoint stand-in)."""

    def __init__(self, status: int = 200):
        self.paths: list[str] = []
        self.status = status
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ping/{PING_KEY}/botstack-test-bot?create=1"

    def count(self) -> int:
        return len(self.paths)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pings():
    s = PingServer()
    yield s
    s.close()


async def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def _silent_for(pings, seconds):
    """True when no ping arrives for `seconds` (after a grace for one already on its way)."""
    await asyncio.sleep(0.5)
    before = pings.count()
    await asyncio.sleep(seconds)
    return pings.count() == before


async def test_pings_arrive_while_healthy(make_bot, pings):
    await make_bot(HEALTHCHECK_BOT_URL=pings.url, BOT_HEALTHCHECK_INTERVAL_SECONDS="0.2")
    await _wait(lambda: pings.count() >= 3)
    assert set(pings.paths) == {f"/ping/{PING_KEY}/botstack-test-bot?create=1"}  # the URL as is


async def test_nothing_is_pinged_when_the_url_is_unset(make_bot, pings):
    b = await make_bot(BOT_HEALTHCHECK_INTERVAL_SECONDS="0.1")
    await b.say(USER, "/help")
    assert "heartbeat" not in b.app.bot_data
    assert await _silent_for(pings, 1.0) and pings.count() == 0


async def test_a_stuck_scheduler_stops_the_pings(make_bot, pings):
    b = await make_bot(HEALTHCHECK_BOT_URL=pings.url, BOT_HEALTHCHECK_INTERVAL_SECONDS="0.2")
    await _wait(lambda: pings.count() >= 1)
    b.scheduler._task.cancel()  # the loop no longer ticks (as if wedged)
    await asyncio.sleep(2.5)    # its last tick ages past 20 ticks (2 s here)
    assert await _silent_for(pings, 1.5)


async def test_an_unreachable_database_stops_the_pings_until_it_returns(make_bot, pings, restartable_pg):
    url = restartable_pg.create_database()
    await make_bot(DATABASE_URL=url, HEALTHCHECK_BOT_URL=pings.url, BOT_HEALTHCHECK_INTERVAL_SECONDS="0.2")
    await _wait(lambda: pings.count() >= 1)
    restartable_pg.stop()
    try:
        assert await _silent_for(pings, 3.0)
    finally:
        restartable_pg.start()
    before = pings.count()
    await _wait(lambda: pings.count() > before, timeout=40)


async def test_the_ping_url_never_appears_in_the_logs(make_bot):
    from bot import logs
    out = io.StringIO()
    logs.setup(logging.DEBUG, stream=out)  # what `python -m bot` runs with, at its most verbose
    failing = PingServer(status=500)
    try:
        await make_bot(HEALTHCHECK_BOT_URL=failing.url, BOT_HEALTHCHECK_INTERVAL_SECONDS="0.1")
        await _wait(lambda: failing.count() >= 2)
        await _wait(lambda: "heartbeat_ping_failed" in out.getvalue())
    finally:
        failing.close()
    refused = "http://127.0.0.1:1/ping/" + PING_KEY  # nothing listens: connection refused
    await make_bot(HEALTHCHECK_BOT_URL=refused, BOT_HEALTHCHECK_INTERVAL_SECONDS="0.1")
    await _wait(lambda: out.getvalue().count("heartbeat_ping_failed") >= 3)
    assert PING_KEY not in out.getvalue()


def test_a_malformed_url_is_refused_without_echoing_it():
    env = {"TELEGRAM_BOT_TOKEN": "1:abc", "DATABASE_URL": "postgresql://x", "ALLOWED_USER_IDS": "1",
           "ADMIN_USER_IDS": "", "DEFAULT_TIMEZONE": "UTC", "HEALTHCHECK_BOT_URL": "ftp://" + PING_KEY}
    with pytest.raises(ConfigError) as e:
        load(env)
    assert "HEALTHCHECK_BOT_URL" in str(e.value) and PING_KEY not in str(e.value)


def test_the_interval_defaults_to_five_minutes():
    env = {"TELEGRAM_BOT_TOKEN": "1:abc", "DATABASE_URL": "postgresql://x", "ALLOWED_USER_IDS": "1",
           "ADMIN_USER_IDS": "", "DEFAULT_TIMEZONE": "UTC", "HEALTHCHECK_BOT_URL": ""}
    cfg = load(env)
    assert cfg.healthcheck_interval == 300 and cfg.healthcheck_url == ""


class _Pool:
    def connection(self, timeout=None):
        raise AssertionError("not reached")


async def test_polling_that_stopped_answering_is_unhealthy():
    checks = make_checks(_Pool(), lambda: 120.0, lambda: 0.0, max_poll_age=90, max_tick_age=20)
    assert "poll" in await checks()
