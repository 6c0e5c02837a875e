"""The bot's Prometheus metrics (prometheus-client), served on `BOT_METRICS_PORT` (default 9101).

What is counted, and where (each a one-line call at the place it happens):
- updates by kind (`count_update`, a handler in group -2, before the gate), replies and every Bot
  API request's latency and outcome, 429s and their retry-after (`MeasuredLimiter`, around each
  attempt the rate limiter makes);
- reminders created (`bot/store.py`), delivered with their lateness, retried later and failed
  (`observe_outcome`, from the scheduler's one place that logs outcomes);
- the scheduler's lag (how overdue the oldest due reminder is at each poll) and its due-queue depth
  (`observe_poll`), the seconds since its last tick, and the database pool's waits (`PoolCollector`,
  read from psycopg_pool's own statistics at scrape time).

Labels are closed sets (update kinds, the bot's own command names, a few Bot API methods and
outcomes): never a user id, chat id, text or error message, so the number of series is fixed.
The port is off the host: the container publishes nothing; Prometheus (the `observability` profile)
reaches it on the stack's network.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from telegram import Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from . import logs
from .catalogue import COMMANDS
from .delivery import Delivered, Failed, Outcome, RetryLater
from .ratelimit import TelegramLimiter

log = logs.get("bot.metrics")

DEFAULT_PORT = 9101
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes and friends: the bot's own memory

# lateness of delivered reminders: on time (< 1 s) to a day (the bot was down)
LATENESS_BUCKETS = (1, 5, 15, 30, 60, 90, 300, 900, 3600, 4 * 3600, 86400)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RETRY_AFTER_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 3600)

UPDATES = Counter("botstack_updates", "Updates received, by kind (command, text, button, other)",
                  ["kind"], registry=REGISTRY)
COMMANDS_USED = Counter("botstack_commands", "Commands received, by the bot's own command name "
                        "(anything else: unknown)", ["command"], registry=REGISTRY)
REPLIES = Counter("botstack_replies", "Answers the bot sent (messages, edits, button answers; "
                  "reminder deliveries not included)", registry=REGISTRY)
REMINDERS_CREATED = Counter("botstack_reminders_created", "Reminders created", registry=REGISTRY)
DELIVERED = Counter("botstack_reminders_delivered", "Reminder deliveries Telegram accepted",
                    registry=REGISTRY)
LATENESS = Histogram("botstack_reminder_lateness_seconds", "How late delivered reminders arrived "
                     "after their due time", buckets=LATENESS_BUCKETS, registry=REGISTRY)
RETRIED = Counter("botstack_reminders_retried", "Deliveries postponed to a retry (5xx, timeouts, "
                  "429s after the limiter's own retries)", registry=REGISTRY)
FAILED = Counter("botstack_reminders_failed", "Deliveries failed for good (blocked, chat gone, "
                 "retries used up); the admins are told", registry=REGISTRY)
REQUESTS = Counter("botstack_telegram_requests", "Bot API requests (each attempt), by method and "
                   "outcome", ["method", "outcome"], registry=REGISTRY)
LATENCY = Histogram("botstack_telegram_request_seconds", "Bot API request latency (each attempt; "
                    "long polls not included), by method", ["method"], buckets=LATENCY_BUCKETS,
                    registry=REGISTRY)
THROTTLED = Counter("botstack_telegram_429", "429 Too Many Requests answers from the Bot API",
                    registry=REGISTRY)
RETRY_AFTER = Histogram("botstack_telegram_retry_after_seconds", "retry_after of the 429 answers",
                        buckets=RETRY_AFTER_BUCKETS, registry=REGISTRY)
SCHEDULER_LAG = Gauge("botstack_scheduler_lag_seconds", "How overdue the oldest due reminder was at "
                      "the scheduler's last poll (0: nothing overdue)", registry=REGISTRY)
DUE_QUEUE = Gauge("botstack_scheduler_due_queue", "Due reminders the scheduler found at its last "
                  "poll plus those still queued or in flight", registry=REGISTRY)
TICK_AGE = Gauge("botstack_scheduler_tick_age_seconds", "Seconds since the scheduler's last "
                 "completed tick", registry=REGISTRY)
INFO = Gauge("botstack_bot_info", "The running release (value 1)", ["release"], registry=REGISTRY)

# the Bot API methods the bot uses that get their own label value; any other is "other"
METHODS = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery",
           "sendDocument", "setMyCommands", "getMe", "deleteWebhook")
_METHOD_BY_LOWER = {m.lower(): m for m in METHODS}
_REPLY_PREFIXES = ("send", "edit", "answercallbackquery")
_KNOWN_COMMANDS = frozenset(COMMANDS)


def method_label(endpoint: str) -> str:
    return _METHOD_BY_LOWER.get(str(endpoint).lower(), "other")


def update_kind(update: object) -> tuple[str, str | None]:
    """(kind, command name or None) of an update; the command is one of the bot's or `unknown`."""
    if not isinstance(update, Update):
        return "other", None
    if update.callback_query is not None:
        return "button", None
    msg = update.message
    text = msg.text if msg is not None else None
    if not text:
        return "other", None
    if text.startswith("/"):
        name = text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else ""
        return "command", name if name in _KNOWN_COMMANDS else "unknown"
    return "text", None


async def count_update(update: object, context: Any) -> None:
    """A TypeHandler callback (group -2, before the gate): counts every update, strangers' too."""
    kind, command = update_kind(update)
    UPDATES.labels(kind).inc()
    if command is not None:
        COMMANDS_USED.labels(command).inc()


def observe_outcome(o: Outcome) -> None:
    if isinstance(o, Delivered):
        DELIVERED.inc()
        LATENESS.observe(max(0, o.late_seconds))
    elif isinstance(o, RetryLater):
        RETRIED.inc()
    elif isinstance(o, Failed):
        FAILED.inc()


def observe_poll(rows: Iterable[dict], now: Any, queued: int) -> None:
    """After a scheduler poll: `rows` are the due candidates found (each with `due_at`, in the
    scheduler's fair order, not necessarily the oldest first)."""
    rows = list(rows)
    lag = max((0.0, *((now - r["due_at"]).total_seconds() for r in rows)))
    SCHEDULER_LAG.set(lag)
    DUE_QUEUE.set(len(rows) + queued)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, RetryAfter):
        return "throttled"
    if isinstance(exc, TimedOut):
        return "timeout"
    if isinstance(exc, (BadRequest, Forbidden, InvalidToken)):
        return "refused"
    if isinstance(exc, NetworkError):
        return "network"
    return "error"


def _retry_after_seconds(exc: RetryAfter) -> float:
    ra = getattr(exc, "_retry_after", None)  # a timedelta (avoids PTB's deprecation warning)
    if ra is None:
        ra = exc.retry_after
    return ra.total_seconds() if hasattr(ra, "total_seconds") else float(ra)


class MeasuredLimiter(TelegramLimiter):
    """The bot's rate limiter, with each attempt it makes timed and its outcome counted."""

    async def process_request(self, callback, args, kwargs, endpoint: str, data: dict[str, Any],
                              rate_limit_args: dict | None):
        ep = str(endpoint).lower()
        if ep == "getupdates":
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        method = method_label(endpoint)
        reply = ep.startswith(_REPLY_PREFIXES) and not (rate_limit_args or {}).get("acquired")

        async def measured(*a, **kw):
            t0 = time.monotonic()
            try:
                out = await callback(*a, **kw)
            except Exception as exc:
                LATENCY.labels(method).observe(time.monotonic() - t0)
                REQUESTS.labels(method, _outcome(exc)).inc()
                if isinstance(exc, RetryAfter):
                    THROTTLED.inc()
                    RETRY_AFTER.observe(_retry_after_seconds(exc))
                raise
            LATENCY.labels(method).observe(time.monotonic() - t0)
            REQUESTS.labels(method, "ok").inc()
            return out

        out = await super().process_request(measured, args, kwargs, endpoint, data, rate_limit_args)
        if reply:
            REPLIES.inc()
        return out


class PoolCollector(Collector):
    """psycopg_pool's statistics (`get_stats()`: totals since the pool opened), read at scrape time."""

    def __init__(self, pool=None):
        self.pool = pool              # the running Application's (`watch` sets it)

    def collect(self) -> Iterable[Metric]:
        if self.pool is None:
            return []
        try:
            s = self.pool.get_stats()
        except Exception:  # a closed or broken pool: no figures rather than a failed scrape
            return []
        out: list[Metric] = []
        for name, key, doc, scale in (
                ("botstack_db_pool_requests", "requests_num", "Connections asked of the pool", 1),
                ("botstack_db_pool_queued_requests", "requests_queued",
                 "Requests that had to wait for a free connection", 1),
                ("botstack_db_pool_wait_seconds", "requests_wait_ms",
                 "Time requests spent waiting for a connection", 1000),
                ("botstack_db_pool_errors", "requests_errors",
                 "Requests that got no connection (timeout or error)", 1),
                ("botstack_db_connection_errors", "connections_errors",
                 "Failed attempts to connect to the database", 1)):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], s.get(key, 0) / scale)
            out.append(c)
        for name, key, doc in (("botstack_db_pool_size", "pool_size", "Connections the pool holds"),
                               ("botstack_db_pool_available", "pool_available", "Idle connections"),
                               ("botstack_db_pool_waiting", "requests_waiting",
                                "Requests waiting for a connection now")):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], s.get(key, 0))
            out.append(g)
        return out


POOL = PoolCollector()
REGISTRY.register(POOL)


def watch(pool, scheduler: Any, release: str) -> None:
    """Called once the scheduler exists: the pool's statistics and its tick age join the registry."""
    POOL.pool = pool  # a restarted Application (tests) brings a new pool: the newest counts
    TICK_AGE.set_function(lambda: max(0.0, time.monotonic() - scheduler.last_tick))
    INFO.clear()
    INFO.labels(release).set(1)


def port_from_env(env=None) -> int:
    """`BOT_METRICS_PORT` (0 turns the endpoint off). A malformed value is a one-line refusal."""
    env = os.environ if env is None else env
    raw = (env.get("BOT_METRICS_PORT") or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError("BOT_METRICS_PORT is malformed: expected a port number (0: off)")
    return int(raw)


def serve(port: int, addr: str = "0.0.0.0") -> bool:
    """Serve /metrics in a thread. A port that cannot be bound is logged, never fatal: reminders
    matter more than graphs."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=addr, registry=REGISTRY)
    except OSError as e:
        log.event("metrics_unavailable", level=30, port=port, error=str(e)[:200])
        return False
    log.event("metrics_serving", port=port)
    return True
