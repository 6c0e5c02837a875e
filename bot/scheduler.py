"""Delivery of due reminders. The database is the only source of truth for schedules.

Loop (one asyncio task, started from the Application's post_init):
1. every tick, read due reminders (`status='pending' AND due_at <= now()`), oldest first, and queue
   each to its chat's worker (one worker per chat with due work, so chats progress in parallel and
   one chat waits only for its own 1 msg/s);
2. a chat worker first waits for its rate-limit tokens, *then* claims the reminder
   (`SELECT ... FOR UPDATE SKIP LOCKED`, status -> 'sending', a `deliveries` row for this occurrence
   in state 'sending'; one transaction), sends it, and records the result (delivery 'sent' with the
   message id, reminder 'done' or advanced to its next occurrence; one transaction).

Guarantees: a reminder is never lost (it stays 'pending'/'sending' in the database until its
delivery is recorded as sent), and is sent twice only if the process dies — or the database becomes
unreachable and then the process dies — in the window between handing the message to Telegram and
committing 'sent'. At start-up such deliveries ('sending') are flagged `in_doubt` and re-sent with
a note "possibly a repeat", because the Bot API offers no idempotency key or way to ask whether a
message went out. Results that cannot be recorded because the database is down are kept in memory
and written when it returns.
"""
from __future__ import annotations

import asyncio
import collections
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError

from . import logs, store
from .db import DB_ERRORS
from .recurrence import next_occurrence
from .ratelimit import TelegramLimiter

log = logs.get("bot.scheduler")

LATE_NOTE_AFTER = timedelta(seconds=90)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def fmt_delay(seconds: float, lang: str = "en") -> str:
    s = int(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = []
    if d:
        parts.append(f"{d} д" if lang == "ru" else f"{d} d")
    if h:
        parts.append(f"{h} ч" if lang == "ru" else f"{h} h")
    if m or not parts:
        parts.append(f"{m} мин" if lang == "ru" else f"{m} min")
    return " ".join(parts)


def reminder_keyboard(delivery_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [InlineKeyboardButton("✅ Done", callback_data=f"d:{delivery_id}"),
         InlineKeyboardButton("💤 10 min", callback_data=f"s10:{delivery_id}")],
        [InlineKeyboardButton("💤 1 h", callback_data=f"s60:{delivery_id}"),
         InlineKeyboardButton("🌅 Tomorrow 9:00", callback_data=f"t9:{delivery_id}")],
    ])


def render(r: dict, now: datetime) -> tuple[str, int]:
    late = max(0, int((now - r["due_at"]).total_seconds()))
    text = f"⏰ {r['text']}"
    if late >= LATE_NOTE_AFTER.total_seconds():
        local = r["due_at"].astimezone(ZoneInfo(r["tz"]))
        text += f"\n\n(late by {fmt_delay(late)}: it was due {local:%Y-%m-%d %H:%M}; the bot was unavailable)"
    if r.get("in_doubt"):
        text += "\n(possibly a repeat: the bot restarted while sending this)"
    return text, late


class Scheduler:
    def __init__(self, bot, pool, limiter: TelegramLimiter | None, now: Callable[[], datetime] = utcnow,
                 tick: float = 1.0, batch: int = 2000, max_chat_workers: int = 2000,
                 on_error: Callable[[str, BaseException], None] | None = None):
        self.bot, self.pool, self.limiter, self.now = bot, pool, limiter, now
        self.tick, self.batch, self.max_chat_workers = tick, batch, max_chat_workers
        self.on_error = on_error
        self._queued: set[int] = set()                       # reminder ids queued or in flight
        self._queues: dict[int, collections.deque] = {}      # chat_id -> reminder ids
        self._workers: dict[int, asyncio.Task] = {}
        self._unrecorded: list[tuple] = []                   # results to write when the DB returns
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._in_flight = 0
        self._sending_chats: set[int] = set()               # chats with a claimed reminder
        self.stats = collections.Counter()
        self.db_ok = True

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            n = await store.recover_in_flight(self.pool)
            if n:
                log.event("recovered_in_flight", level=30, reminders=n)
        except DB_ERRORS as e:
            log.event("recover_failed", level=30, error=str(e)[:200])
            self._needs_recovery = True
        else:
            self._needs_recovery = False
        self._task = asyncio.create_task(self._run(), name="scheduler")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop claiming; let in-flight sends finish (bounded) and record them."""
        self._stopping.set()
        self._wake.set()
        # workers still waiting for a rate-limit token have claimed nothing: cancel them now
        # (docker stop allows 10 s); wait only for the ones with a send on the wire
        for chat, t in list(self._workers.items()):
            if chat not in self._sending_chats:
                t.cancel()
        tasks = [t for t in self._workers.values() if not t.done()]
        if self._task:
            tasks.append(self._task)
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
        try:
            await self._flush_unrecorded()
        except DB_ERRORS as e:
            # still 'sending' in the database: re-sent, flagged as a possible repeat, at next start
            log.event("results_unrecorded_at_stop", level=40, count=len(self._unrecorded),
                      error=str(e)[:200])
        log.event("scheduler_stopped", sent=self.stats["sent"], unrecorded=len(self._unrecorded))

    # -- main loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.tick
        while not self._stopping.is_set():
            try:
                if self._needs_recovery:
                    await store.recover_in_flight(self.pool)
                    self._needs_recovery = False
                await self._flush_unrecorded()
                await self._poll_due()
                if not self.db_ok:
                    log.event("database_back", component="scheduler")
                self.db_ok = True
                delay = self.tick
            except DB_ERRORS + (asyncio.TimeoutError,) as e:
                if self.db_ok:
                    log.event("database_unavailable", level=40, component="scheduler",
                              error=str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
                self.db_ok = False
                delay = min(max(delay * 2, 1.0), 10.0)
            except Exception as e:  # never let the loop die
                log.event("scheduler_error", level=40, exc_info=e)
                if self.on_error:
                    self.on_error("scheduler", e)
                delay = min(max(delay * 2, 1.0), 10.0)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _poll_due(self) -> None:
        room = self.batch - len(self._queued)
        if room <= 0:
            return
        rows = await store.due_candidates(self.pool, self.now(), room, self._queued)
        for r in rows:
            if self._stopping.is_set():
                return
            if r["id"] in self._queued:
                continue
            chat = r["chat_id"]
            if chat not in self._workers and len(self._workers) >= self.max_chat_workers:
                break
            self._queued.add(r["id"])
            self._queues.setdefault(chat, collections.deque()).append(r["id"])
            if chat not in self._workers:
                self._workers[chat] = asyncio.create_task(self._chat_worker(chat), name=f"chat-{chat}")

    async def _chat_worker(self, chat_id: int) -> None:
        q = self._queues[chat_id]
        try:
            while q and not self._stopping.is_set():
                rid = q[0]
                try:
                    await self._deliver(rid, chat_id)
                except Exception as e:  # never let a worker die silently
                    log.event("scheduler_error", level=40, exc_info=e, reminder=rid)
                    if self.on_error:
                        self.on_error("scheduler", e)
                finally:
                    q.popleft()
                    self._queued.discard(rid)
        finally:
            self._workers.pop(chat_id, None)
            self._queues.pop(chat_id, None)
            for rid in q:  # abandoned on stop: still 'pending' in the database
                self._queued.discard(rid)

    async def _deliver(self, rid: int, chat_id: int) -> None:
        if self.limiter is not None:
            await self.limiter.acquire(chat_id, "sendMessage")
        if self._stopping.is_set():
            return
        self._sending_chats.add(chat_id)
        try:
            await self._claim_send_record(rid, chat_id)
        finally:
            self._sending_chats.discard(chat_id)

    async def _claim_send_record(self, rid: int, chat_id: int) -> None:
        try:
            r = await store.claim(self.pool, rid, self.now())
        except DB_ERRORS as e:
            self.db_ok = False
            log.event("claim_failed", level=30, reminder=rid, error=str(e)[:200])
            return
        if r is None:
            return
        now = self.now()
        try:
            text, late = render(r, now)
            next_due = (next_occurrence(r["recurrence"], r["tz"], max(now, r["due_at"]))
                        if r["recurrence"] else None)
        except Exception as e:  # a corrupt row (bad zone or rule): park it, tell the admins
            log.event("delivery_failed", level=40, reminder=rid, error=repr(e)[:200], permanent=True)
            if self.on_error:
                self.on_error("bad_reminder", e)
            await self._record(("failed", rid, r["delivery_id"], repr(e), True, None, None))
            return
        self._in_flight += 1
        try:
            msg = await self.bot.send_message(
                chat_id=r["chat_id"], text=text, reply_markup=reminder_keyboard(r["delivery_id"]),
                rate_limit_args={"acquired": True} if self.limiter is not None else None)
        except (Forbidden, BadRequest, InvalidToken) as e:
            # Telegram refused for good (user blocked the bot, chat gone): do not retry this one
            self.stats["failed"] += 1
            log.event("delivery_failed", level=30, reminder=rid, delivery=r["delivery_id"],
                      error=str(e)[:200], permanent=True)
            await self._record(("failed", rid, r["delivery_id"], str(e), True, None, next_due))
            return
        except (TelegramError, asyncio.TimeoutError, OSError) as e:
            # retries exhausted (5xx, timeouts, 429s): nothing reached the user as far as we know
            self.stats["retry_later"] += 1
            retry_at = now + timedelta(seconds=30)
            log.event("delivery_postponed", level=30, reminder=rid, delivery=r["delivery_id"],
                      error=str(e)[:200], retry_at=retry_at.isoformat())
            if self.on_error:
                self.on_error("delivery", e)
            await self._record(("failed", rid, r["delivery_id"], str(e), False, retry_at, None))
            return
        finally:
            self._in_flight -= 1
        self.stats["sent"] += 1
        log.event("reminder_sent", reminder=rid, delivery=r["delivery_id"], chat=r["chat_id"],
                  late_s=late, in_doubt=bool(r.get("in_doubt")), message_id=msg.message_id)
        await self._record(("sent", rid, r["delivery_id"], msg.message_id, late, next_due))

    async def _record(self, result: tuple) -> None:
        try:
            await self._write(result)
        except DB_ERRORS as e:
            self.db_ok = False
            log.event("result_unrecorded", level=30, reminder=result[1], error=str(e)[:200])
            self._unrecorded.append(result)

    async def _write(self, result: tuple) -> None:
        if result[0] == "sent":
            _, rid, did, mid, late, next_due = result
            await store.mark_sent(self.pool, rid, did, mid, late, next_due)
        else:
            _, rid, did, err, permanent, retry_at, next_due = result
            await store.mark_failed(self.pool, rid, did, err, permanent, retry_at, next_due)

    async def _flush_unrecorded(self) -> None:
        while self._unrecorded:
            await self._write(self._unrecorded[0])
            self._unrecorded.pop(0)
