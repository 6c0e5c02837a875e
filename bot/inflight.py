"""Replies before the next long poll: the updates being handled, and a bounded wait for them.

With concurrent updates PTB hands each update to a task of its own and at once sends the next
getUpdates, so building that request (and the Bot API's handling of it) runs on the same core(s)
as the handler's database query and reply, and the reply waits for it: measured, ~1 ms of a new
reminder's 6 ms (docs/bot.md, Benchmarks). A bare PTB echo bot, handling updates one at a time,
replies first and polls after. Here the next poll waits for the updates in flight to finish, at
most `HOLD_SECONDS`: a slow handler (a database outage, a refusal that hangs) holds polling for no
longer than that, and the updates that arrive meanwhile are queued by Telegram and returned by
that poll. Handlers still run concurrently (up to the processor's limit).
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable

from telegram.ext import SimpleUpdateProcessor

HOLD_SECONDS = 0.025


class InFlightUpdates(SimpleUpdateProcessor):
    """PTB's default processor (each update awaited at once, up to `max_concurrent_updates` at a
    time), counting the updates being handled."""

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self.in_flight = 0
        self._idle: asyncio.Event | None = None  # made in the running loop, on first use

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if not self.in_flight:
                self._idle.set()
        return self._idle

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        self.in_flight += 1
        self._event().clear()
        try:
            await coroutine
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._event().set()

    async def settled(self, timeout: float | None = None) -> bool:
        """Wait until no update is being handled, or `timeout` seconds (default `HOLD_SECONDS`);
        whether none is."""
        await asyncio.sleep(0)  # the updates the last poll returned start before the next one
        if not self.in_flight:
            return True
        try:
            await asyncio.wait_for(self._event().wait(), HOLD_SECONDS if timeout is None else timeout)
        except TimeoutError:
            return False
        return True
