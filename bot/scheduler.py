"""Delivery of due reminders. The database is the only source of truth for schedules.

Loop (one asyncio task, started from the Application's post_init):
1. every tick, refresh the maintenance switch; unless it is on, read due reminders
   (`status='pending' AND due_at <= now()`) fairly across chats — at most `per_chat` queued per chat
   (its oldest), the chats with the fewest queued first — and queue each to its chat's worker
   (one worker per chat with due work, so chats progress in parallel and one chat waits only for
   its own 1 msg/s). A chat sends one message a second whatever its backlog, so one user's
   thousands of due reminders occupy a few places in the queue, not the whole batch: another
   user's due reminder is queued at the next tick and sent at the rate limiter's next turn;
2. a chat worker first checks the user's quiet hours (a reminder due in them is held until they
   end), then waits for its rate-limit tokens, *then* claims the reminder (`SELECT ... FOR UPDATE
   SKIP LOCKED`, status -> 'sending', a `deliveries` row for this occurrence in state 'sending'; one
   statement), sends it, and records the outcome (`bot/delivery.py`: delivered, retry later, failed).

Guarantees: a reminder is never lost (it stays 'pending'/'sending' in the database until an
outcome is recorded), never stays 'sending' while the bot runs (every outcome of a send, an
unexpected exception included, is recorded), and is sent twice only if the process dies — or the
database becomes unreachable and then the process dies — in the window between handing the message
to Telegram and committing 'sent', or when Telegram's answer leaves it unknown whether the message
went out; such repeats say "possibly a repeat". Outcomes that cannot be recorded because the
database is down are kept in memory and written when it returns.
"""
from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timezone
from typing import Callable

from . import delivery_store as ds
from . import logs
from .db import DB_ERRORS
from .delivery import Delivered, Failed, Outcome, RetryLater, classify_error, keyboard, lang_of, render
from .quiet import quiet_until
from .ratelimit import TelegramLimiter
from .recurrence import next_occurrence

log = logs.get("bot.scheduler")

# Reminders queued per chat at a time: the chat sends 1 msg/s, so a few keep its worker busy from
# one tick (1 s) to the next; the rest of its backlog waits in the database, not in the batch.
PER_CHAT_QUEUE = 3


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Scheduler:
    def __init__(self, bot, pool, limiter: TelegramLimiter | None, now: Callable[[], datetime] = utcnow,
                 tick: float = 1.0, batch: int = 2000, max_chat_workers: int = 2000,
                 on_error: Callable[[str, BaseException], None] | None = None,
                 on_failed: Callable[[Failed], None] | None = None, maintenance=None,
                 send_deadline: float = 60.0, per_chat: int = PER_CHAT_QUEUE):
        self.bot, self.pool, self.limiter, self.now = bot, pool, limiter, now
        self.tick, self.batch, self.max_chat_workers = tick, batch, max_chat_workers
        self.on_error, self.on_failed = on_error, on_failed
        self.maintenance = maintenance
        self.send_deadline = send_deadline
        self.per_chat = per_chat
        self._queued: set[int] = set()                       # reminder ids queued or in flight
        self._queues: dict[int, collections.deque] = {}      # chat_id -> reminder ids
        self._workers: dict[int, asyncio.Task] = {}
        self._unrecorded: list[Outcome] = []                 # outcomes to write when the DB returns
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._sending_chats: set[int] = set()               # chats with a claimed reminder
        self._needs_recovery = False
        self.stats: collections.Counter[str] = collections.Counter()
        self.db_ok = True
        self.last_tick = time.monotonic()                    # the heartbeat's "scheduler alive"

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            n = await ds.recover_in_flight(self.pool)
            if n:
                log.event("recovered_in_flight", level=30, reminders=n)
        except DB_ERRORS as e:
            log.event("recover_failed", level=30, error=str(e)[:200])
            self._needs_recovery = True
        self._task = asyncio.create_task(self._run(), name="scheduler")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop claiming; let in-flight sends finish (at most `timeout` s: docker stop allows 10)."""
        self._stopping.set()
        self._wake.set()
        # workers still waiting for a rate-limit token have claimed nothing: cancel them now
        for chat, task in list(self._workers.items()):
            if chat not in self._sending_chats:
                task.cancel()
        tasks = [task for task in self._workers.values() if not task.done()]
        if self._task:
            tasks.append(self._task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
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
                await self._tick()
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

    async def _tick(self) -> None:
        if self._needs_recovery:
            await ds.recover_in_flight(self.pool)
            self._needs_recovery = False
        await self._flush_unrecorded()
        if self.maintenance is not None:
            await self.maintenance.refresh(self.pool)
        if self.maintenance is None or not self.maintenance.enabled:
            await self._poll_due()
        self.last_tick = time.monotonic()

    async def _poll_due(self) -> None:
        room = self.batch - len(self._queued)
        if room <= 0:
            return
        now = self.now()
        queued = {chat: len(q) for chat, q in self._queues.items() if q}
        rows = await ds.due_candidates(self.pool, now, room, self._queued, self.per_chat, queued)
        for r in rows:
            if self._stopping.is_set():
                return
            if r["id"] in self._queued:
                continue
            chat = r["chat_id"]
            if len(self._queues.get(chat, ())) >= self.per_chat:
                continue  # still 'pending': read again once the chat's queue has room
            until = quiet_until(now, r["user_tz"], r["quiet_start"], r["quiet_end"])
            if until is not None:
                await ds.hold_for_quiet_hours(self.pool, r["id"], until)
                log.event("reminder_held_quiet_hours", reminder=r["id"], until=until.isoformat())
                continue
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
            try:
                r = await ds.claim(self.pool, rid, self.now())
            except DB_ERRORS as e:
                self.db_ok = False
                log.event("claim_failed", level=30, reminder=rid, error=str(e)[:200])
                return
            if r is not None:
                await self._record(await self._send(r))
        finally:
            self._sending_chats.discard(chat_id)

    async def _send(self, r: dict) -> Outcome:
        """Send a claimed reminder; whatever happens, return its outcome."""
        now = self.now()
        next_due = None
        try:
            if r["recurrence"]:
                next_due = next_occurrence(r["recurrence"], r["tz"], max(now, r["due_at"]))
            text, late = render(r, now)
            markup = keyboard(r["delivery_id"], int(r["snooze_minutes"]), lang_of(r))
        except Exception as e:  # a corrupt row (bad zone or rule): park it, tell the admins
            return Failed(r["id"], r["delivery_id"], f"unreadable reminder: {e!r}"[:300], None)
        try:
            msg = await asyncio.wait_for(self.bot.send_message(
                chat_id=r["chat_id"], text=text, reply_markup=markup,
                rate_limit_args={"acquired": True} if self.limiter is not None else None),
                timeout=self.send_deadline)
            return Delivered(r["id"], r["delivery_id"], getattr(msg, "message_id", None), late, next_due)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            return classify_error(r, e, now, next_due)

    async def _record(self, outcome: Outcome) -> None:
        self._log(outcome)
        try:
            await self._write(outcome)
        except DB_ERRORS as e:
            self.db_ok = False
            log.event("result_unrecorded", level=30, reminder=outcome.reminder_id, error=str(e)[:200])
            self._unrecorded.append(outcome)

    def _log(self, o: Outcome) -> None:
        if isinstance(o, Delivered):
            self.stats["sent"] += 1
            log.event("reminder_sent", reminder=o.reminder_id, delivery=o.delivery_id,
                      late_s=o.late_seconds, message_id=o.message_id)
        elif isinstance(o, RetryLater):
            self.stats["retry_later"] += 1
            log.event("delivery_postponed", level=30, reminder=o.reminder_id, delivery=o.delivery_id,
                      error=o.error[:200], retry_at=o.retry_at.isoformat(), in_doubt=o.in_doubt)
            if self.on_error:
                self.on_error("delivery", RuntimeError(o.error))
        else:
            self.stats["failed"] += 1
            log.event("delivery_failed", level=40, reminder=o.reminder_id, delivery=o.delivery_id,
                      error=o.error[:200], permanent=True)
            if self.on_failed:
                self.on_failed(o)

    async def _write(self, o: Outcome) -> None:
        if isinstance(o, Delivered):
            await ds.mark_sent(self.pool, o.reminder_id, o.delivery_id, o.message_id, o.late_seconds,
                               o.next_due)
        elif isinstance(o, RetryLater):
            await ds.mark_retry(self.pool, o.reminder_id, o.delivery_id, o.error, o.retry_at, o.in_doubt)
        else:
            await ds.mark_failed(self.pool, o.reminder_id, o.delivery_id, o.error, o.next_due)

    async def _flush_unrecorded(self) -> None:
        while self._unrecorded:
            await self._write(self._unrecorded[0])
            self._unrecorded.pop(0)
