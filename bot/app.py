"""Building and running the Application (long polling), with the scheduler beside it."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime, timedelta, timezone

from telegram import BotCommand, Update
from telegram.ext import (Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          MessageHandler, TypeHandler, filters)
from telegram.request import HTTPXRequest

from . import db, logs
from .config import Config
from .handlers import Bot
from .ratelimit import TelegramLimiter
from .scheduler import Scheduler, utcnow

log = logs.get("bot.app")

COMMANDS = [("start", "Start"), ("help", "Examples"), ("remind", "New reminder: /remind <when> <text>"),
            ("list", "Upcoming reminders"), ("cancel", "Cancel: /cancel N"), ("tz", "Time zone: /tz Europe/Berlin"),
            ("export", "Your data as JSON")]


class HeartbeatRequest(HTTPXRequest):
    """The getUpdates request: every answered long poll touches the heartbeat file."""

    def __init__(self, heartbeat_file: str, **kw):
        super().__init__(**kw)
        self.heartbeat_file = heartbeat_file
        self._last = 0.0

    async def do_request(self, *args, **kwargs):
        out = await super().do_request(*args, **kwargs)
        now = time.monotonic()
        if out[0] == 200 and now - self._last > 2:
            self._last = now
            touch(self.heartbeat_file)
        return out


def touch(path: str) -> None:
    try:
        with open(path, "a"):
            pass
        os.utime(path, None)
    except OSError as e:
        log.event("heartbeat_failed", level=30, error=str(e)[:200])


def clock_from_env():
    """`BOT_CLOCK_OFFSET_SECONDS` (test hook, default 0): shifts the scheduler's and parser's "now"."""
    off = float(os.environ.get("BOT_CLOCK_OFFSET_SECONDS") or 0)
    if not off:
        return utcnow
    return lambda: datetime.now(timezone.utc) + timedelta(seconds=off)


def build(cfg: Config, now=utcnow, pool=None) -> Application:
    limiter = TelegramLimiter()
    pool = pool or db.make_pool(cfg.database_url)
    state: dict = {}
    h = Bot(cfg, pool, now, scheduler_ref=lambda: state.get("scheduler"))

    async def post_init(app: Application) -> None:
        await pool.open(wait=False)
        sch = Scheduler(app.bot, pool, limiter, now=now, tick=cfg.scheduler_tick,
                        on_error=lambda key, e: h.notify_admins(app, key, e))
        state["scheduler"] = sch
        app.bot_data["scheduler"] = sch
        await sch.start()
        try:
            await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        except Exception as e:  # cosmetic: never block start-up on it
            log.event("set_commands_failed", level=30, error=str(e)[:200])
        touch(cfg.heartbeat_file)
        # dateparser loads its language data on first use (~1 s): do it now, not in a user's reply
        from .parsing import ParseError, parse
        try:
            await asyncio.to_thread(lambda: parse("on 1 December 18:00 x", now(), "UTC"))
        except ParseError:
            pass
        log.event("bot_started", release=cfg.release, username=app.bot.username)

    async def post_stop(app: Application) -> None:
        sch = state.get("scheduler")
        if sch is not None:
            await sch.stop()

    async def post_shutdown(app: Application) -> None:
        await pool.close()
        try:
            os.unlink(cfg.heartbeat_file)
        except OSError:
            pass
        log.event("bot_stopped")

    app = (ApplicationBuilder()
           .token(cfg.token)
           .base_url(cfg.api_base_url + "/bot")
           .base_file_url(cfg.api_base_url + "/file/bot")
           .request(HTTPXRequest(connection_pool_size=64, connect_timeout=5.0, read_timeout=15.0,
                                 write_timeout=15.0, pool_timeout=10.0))
           .get_updates_request(HeartbeatRequest(cfg.heartbeat_file, connect_timeout=5.0,
                                                 read_timeout=cfg.poll_timeout + 10.0, pool_timeout=5.0))
           .rate_limiter(limiter)
           .concurrent_updates(32)
           .job_queue(None)  # schedules live in PostgreSQL, not in memory
           .post_init(post_init).post_stop(post_stop).post_shutdown(post_shutdown)
           .build())
    app.bot_data["handlers"] = h
    app.bot_data["limiter"] = limiter
    app.bot_data["pool"] = pool
    app.add_handler(TypeHandler(Update, h.gate), group=-1)
    app.add_handler(CommandHandler("start", h.start))
    app.add_handler(CommandHandler("help", h.help))
    app.add_handler(CommandHandler("tz", h.tz))
    app.add_handler(CommandHandler("remind", h.remind))
    app.add_handler(CommandHandler("list", h.list))
    app.add_handler(CommandHandler("cancel", h.cancel))
    app.add_handler(CommandHandler("export", h.export))
    app.add_handler(CommandHandler("status", h.status))
    app.add_handler(CallbackQueryHandler(h.button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, h.text))
    app.add_handler(MessageHandler(filters.COMMAND, h.help))  # unknown command: show the help
    app.add_error_handler(h.on_error)
    return app


def run(cfg: Config) -> int:
    db.migrate_with_retry(cfg.database_url, float(os.environ.get("BOT_DB_STARTUP_TIMEOUT") or 60))
    app = build(cfg, now=clock_from_env())
    app.run_polling(allowed_updates=["message", "callback_query"], poll_interval=0.0,
                    timeout=cfg.poll_timeout, drop_pending_updates=False, bootstrap_retries=-1,
                    stop_signals=(signal.SIGINT, signal.SIGTERM), close_loop=True)
    return 0
