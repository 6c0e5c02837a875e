"""The bot's dead-man's switch: a healthchecks.io-compatible ping, sent only while really healthy.

Every `interval` seconds the bot checks itself: Telegram answered a long poll recently, the
database answers `SELECT 1`, and the scheduler's loop completed a tick recently. Only then does it
ping `HEALTHCHECK_BOT_URL` (a GET, 10 s timeout). A wedged bot (database gone, scheduler stuck,
polling dead) stops pinging, and the checker outside the droplet raises the alarm. A failed ping is
logged (without the URL: it holds the ping key) and never fatal. No URL, no pings.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

import httpx

from . import logs

log = logs.get("bot.heartbeat")
PING_TIMEOUT = 10.0


class Heartbeat:
    def __init__(self, url: str, interval: float, checks: Callable[[], "asyncio.Future"],
                 client: httpx.AsyncClient | None = None):
        self.url, self.interval, self.checks = url, interval, checks
        self._client = client
        self._task: asyncio.Task | None = None
        self.sent = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        self._client = self._client or httpx.AsyncClient(timeout=PING_TIMEOUT, follow_redirects=True)
        was_healthy = True
        while True:
            try:
                problem = await asyncio.wait_for(self.checks(), timeout=PING_TIMEOUT)
            except Exception as e:
                problem = f"health check failed: {type(e).__name__}"
            if problem is None:
                await self._ping()
                if not was_healthy:
                    log.event("heartbeat_resumed")
            elif was_healthy or problem != getattr(self, "_last_problem", None):
                log.event("heartbeat_withheld", level=30, reason=problem)
            was_healthy, self._last_problem = problem is None, problem
            await asyncio.sleep(self.interval)

    async def _ping(self) -> None:
        try:
            if self._client is None:  # not started: nothing to ping with
                return
            r = await self._client.get(self.url)
            if r.status_code >= 400:
                log.event("heartbeat_ping_failed", level=30, status=r.status_code)
            else:
                self.sent += 1
        except Exception as e:  # the URL is never logged: it holds the ping key
            log.event("heartbeat_ping_failed", level=30, error=type(e).__name__)


def make_checks(pool, poll_age: Callable[[], float], tick_age: Callable[[], float],
                max_poll_age: float, max_tick_age: float):
    """The bot's health: None when healthy, else one line saying what is wrong."""
    async def checks() -> str | None:
        if poll_age() > max_poll_age:
            return f"no answered poll for {poll_age():.0f} s"
        if tick_age() > max_tick_age:
            return f"scheduler has not ticked for {tick_age():.0f} s"
        try:
            async with pool.connection(timeout=5.0) as conn:
                await conn.execute("SELECT 1")
        except Exception as e:
            return f"database: {type(e).__name__}"
        return None
    return checks


def since(stamp: Callable[[], float]) -> Callable[[], float]:
    return lambda: time.monotonic() - stamp()
