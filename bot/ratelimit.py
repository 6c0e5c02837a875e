"""Telegram limits: ~30 messages/s overall, 1 message/s per chat, `retry_after` on 429, and retries
of 5xx / timeouts with exponential back-off.

PTB's `AIORateLimiter` limits overall and *group* chats only (private chats get no per-chat limit)
and does not retry 5xx or timeouts, so the bot uses this `BaseRateLimiter` instead:

- message-sending endpoints (``send*``, ``copyMessage``, ``forwardMessage``) take a token from a
  per-chat bucket (1/s, burst 1) and from the overall bucket (29/s, burst 3: one under Telegram's
  30/s ceiling, and spread evenly so few sends are ever on the wire at once); edits and
  ``answerCallbackQuery`` take only the overall one; ``getUpdates``/``getMe``/... are not limited;
- a 429 pauses *every* request for ``retry_after`` (+ a little) and retries (Telegram's flood
  control is per bot), up to ``max_retries``;
- a 5xx (PTB: ``NetworkError``) or ``TimedOut`` is retried after 0.5, 1, 2, 4, 8 s (capped), up to
  ``max_retries``; ``BadRequest``/``Forbidden``/``InvalidToken`` are not retried.

A caller that already took its tokens (the scheduler, which claims a reminder only once it may send
it) passes ``rate_limit_args={"acquired": True}``.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut, Conflict
from telegram.ext import BaseRateLimiter

from . import logs

log = logs.get("bot.ratelimit")

_SEND_PREFIXES = ("send", "copymessage", "forwardmessage", "copymessages", "forwardmessages")
_UNLIMITED = {"getupdates", "getme", "deletewebhook", "getwebhookinfo", "setmycommands", "close",
              "logout", "getmycommands", "setwebhook"}


class TokenBucket:
    def __init__(self, rate: float, capacity: float, clock=time.monotonic):
        self.rate, self.capacity, self.clock = rate, capacity, clock
        self.tokens = capacity
        self.stamp = clock()
        self.lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self) -> None:
        async with self.lock:  # FIFO: waiters are served in order
            while True:
                self._refill()
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)


class TelegramLimiter(BaseRateLimiter[dict]):
    def __init__(self, overall_per_second: float = 29.0, per_chat_per_second: float = 1.0,
                 max_retries: int = 5, backoff_base: float = 0.5, backoff_cap: float = 8.0,
                 max_chats: int = 10_000, overall_burst: float = 3.0):
        # a small burst: sends are spread evenly, so few are ever on the wire at the same moment
        self.overall = TokenBucket(overall_per_second, overall_burst)
        self.per_chat_rate = per_chat_per_second
        self.max_retries = max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._chats: collections.OrderedDict[int, TokenBucket] = collections.OrderedDict()
        self._max_chats = max_chats
        self._go = asyncio.Event()
        self._go.set()
        self.stats: collections.Counter[str] = collections.Counter()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _chat_bucket(self, chat_id: int) -> TokenBucket:
        b = self._chats.get(chat_id)
        if b is None:
            b = self._chats[chat_id] = TokenBucket(self.per_chat_rate, 1.0)
            # drop idle buckets (a bucket idle >1 s is full: forgetting it changes nothing)
            while len(self._chats) > self._max_chats:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_id)
        return b

    async def acquire(self, chat_id: int | None, endpoint: str = "sendMessage") -> None:
        """Wait until a message to `chat_id` may be sent (per-chat first, then overall)."""
        ep = endpoint.lower()
        if ep in _UNLIMITED:
            return
        await self._go.wait()
        if chat_id is not None and ep.startswith(_SEND_PREFIXES):
            try:
                await self._chat_bucket(int(chat_id)).acquire()
            except (TypeError, ValueError):
                pass
        await self.overall.acquire()

    async def process_request(self, callback, args, kwargs, endpoint: str, data: dict[str, Any],
                              rate_limit_args: dict | None):
        rl = rate_limit_args or {}
        acquired = bool(rl.get("acquired"))
        max_retries = int(rl.get("max_retries", self.max_retries))
        attempt = 0
        while True:
            if not acquired:
                await self.acquire(data.get("chat_id"), endpoint)
            acquired = False  # a retry takes fresh tokens
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.stats["429"] += 1
                if attempt >= max_retries:
                    raise
                ra = getattr(exc, "_retry_after", None)  # a timedelta (avoids a deprecation warning)
                if ra is None:
                    ra = exc.retry_after
                sleep = (ra.total_seconds() if hasattr(ra, "total_seconds") else float(ra)) + 0.2
                log.event("telegram_retry_after", level=30, endpoint=endpoint, retry_after=sleep)
                self._go.clear()  # hold every other request too
                try:
                    await asyncio.sleep(sleep)
                finally:
                    self._go.set()
            except (BadRequest, Forbidden, InvalidToken, Conflict):
                raise
            except (TimedOut, NetworkError) as exc:
                kind = "timeout" if isinstance(exc, TimedOut) else "network"
                self.stats[kind] += 1
                if attempt >= max_retries or endpoint.lower() == "getupdates":
                    raise
                sleep = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
                log.event("telegram_retry", level=30, endpoint=endpoint, error=str(exc)[:200],
                          kind=kind, attempt=attempt + 1, sleep=sleep)
                await asyncio.sleep(sleep)
            attempt += 1
