"""Building and running the Application (long polling), with the scheduler and heartbeat beside it.

`build()` wires the parts: the gate (group -1), the command and button handlers (`bot/commands.py`,
`bot/settings.py`, `bot/editing.py`, `bot/buttons.py`, `bot/admin.py`), the scheduler
(`bot/scheduler.py`), maintenance mode (`bot/maintenance.py`) and the heartbeat (`bot/heartbeat.py`).
"""
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

from . import callbacks as cb
from . import db, logs, metrics
from .admin import AdminHandlers
from .buttons import ButtonHandlers
from .catalogue import COMMANDS, LANGS, t
from .commands import ChatHandlers
from .config import Config
from .editing import EditHandlers
from .gate import Gate
from .heartbeat import Heartbeat, make_checks, since
from .inflight import InFlightUpdates
from .limits import COMMAND_DESCRIPTION, fit
from .maintenance import MaintenanceState
from .ratelimit import TelegramLimiter
from .scheduler import Scheduler, utcnow
from .services import Services
from .settings import SettingsHandlers

log = logs.get("bot.app")


class PollingRequest(HTTPXRequest):
    """The getUpdates request: every answered long poll touches the heartbeat file (for the
    container's health check) and stamps `last_answer` (for the heartbeat ping). The next poll is
    sent once the updates in flight are handled, or after `inflight.HOLD_SECONDS` (bot/inflight.py)."""

    def __init__(self, heartbeat_file: str, updates: InFlightUpdates, **kw):
        super().__init__(**kw)
        self.heartbeat_file = heartbeat_file
        self.updates = updates
        self._last_touch = 0.0
        self.last_answer = time.monotonic()

    async def do_request(self, *args, **kwargs):
        await self.updates.settled()
        out = await super().do_request(*args, **kwargs)
        now = time.monotonic()
        if out[0] == 200:
            self.last_answer = now
            if now - self._last_touch > 2:
                self._last_touch = now
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


def add_handlers(app: Application, svc: Services) -> AdminHandlers:
    chat = ChatHandlers(svc)
    editing = EditHandlers(svc, chat)
    chat.editing = editing
    settings, buttons, admin = SettingsHandlers(svc), ButtonHandlers(svc, editing), AdminHandlers(svc)
    admin.app = app
    app.add_handler(TypeHandler(Update, metrics.count_update), group=-2)
    app.add_handler(TypeHandler(Update, Gate(svc)), group=-1)
    commands = {"start": chat.start, "help": chat.help, "remind": chat.remind, "list": chat.list,
                "cancel": chat.cancel, "export": chat.export, "tz": settings.tz, "lang": settings.lang,
                "quiet": settings.quiet, "snooze": settings.snooze, "edit": editing.edit,
                "pause": editing.pause, "resume": editing.resume, "status": admin.status}
    # plain text first: the most common update, and no command or button handler would take it
    # (PTB tries a group's handlers in order; this spares a message ~25 checks that cannot match)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, chat.text))
    for name, fn in commands.items():
        app.add_handler(CommandHandler(name, fn))
    for action, fn in ((cb.Done, buttons.done), (cb.Snooze, buttons.snooze), (cb.Tomorrow9, buttons.tomorrow),
                       (cb.Cancel, buttons.cancel), (cb.Edit, buttons.edit), (cb.Pause, buttons.pause),
                       (cb.Resume, buttons.resume), (cb.Undo, chat.asking.undo),
                       (cb.UndoEdit, editing.undo), (cb.Dismiss, chat.asking.dismiss), (cb.Pick, chat.asking.pick)):
        app.add_handler(CallbackQueryHandler(fn, pattern=action.PATTERN))
    app.add_handler(CallbackQueryHandler(buttons.unknown))
    app.add_handler(MessageHandler(filters.COMMAND, chat.help))  # unknown command: show the help
    app.add_error_handler(admin.on_error)
    return admin


async def set_commands(app: Application) -> None:
    try:
        for lang in LANGS:
            menu = [BotCommand(c, fit(t(lang, "cmd_" + c), COMMAND_DESCRIPTION)) for c in COMMANDS]
            await app.bot.set_my_commands(menu, language_code=None if lang == "en" else lang)
    except Exception as e:  # cosmetic: never block start-up on it
        log.event("set_commands_failed", level=30, error=str(e)[:200])


async def warm_up_parser(now) -> None:
    """The parser builds its caches on first use: do it now, not in a user's reply."""
    from .parsing import ParseError, parse
    try:
        await asyncio.to_thread(lambda: parse("on 1 December 18:00 x", now(), "UTC"))
    except ParseError:
        pass


def builder(cfg: Config, limiter: TelegramLimiter, polling: PollingRequest) -> ApplicationBuilder:
    return (ApplicationBuilder()
            .token(cfg.token)
            .base_url(cfg.api_base_url + "/bot")
            .base_file_url(cfg.api_base_url + "/file/bot")
            .request(HTTPXRequest(connection_pool_size=64, connect_timeout=5.0, read_timeout=15.0,
                                  write_timeout=15.0, pool_timeout=10.0))
            .get_updates_request(polling)
            .rate_limiter(limiter)
            .concurrent_updates(polling.updates)  # 32 at a time
            .job_queue(None))  # schedules live in PostgreSQL, not in memory


class Runtime:
    """What runs beside PTB's polling: the scheduler and the heartbeat (started in post_init)."""

    def __init__(self, cfg: Config, svc: Services, limiter, polling: PollingRequest, admin):
        self.cfg, self.svc, self.limiter, self.polling, self.admin = cfg, svc, limiter, polling, admin
        self.scheduler: Scheduler | None = None
        self.heartbeat: Heartbeat | None = None

    async def post_init(self, app: Application) -> None:
        cfg, svc = self.cfg, self.svc
        await svc.pool.open(wait=False)
        self.scheduler = Scheduler(app.bot, svc.pool, self.limiter, now=svc.now, tick=cfg.scheduler_tick,
                                   on_error=self.admin.notify, on_failed=self.admin.delivery_failed,
                                   maintenance=svc.maintenance, send_deadline=cfg.send_deadline)
        scheduler = self.scheduler
        app.bot_data["scheduler"] = scheduler
        metrics.watch(svc.pool, scheduler, cfg.release)
        await scheduler.start()
        await set_commands(app)
        touch(cfg.heartbeat_file)
        await warm_up_parser(svc.now)
        if cfg.healthcheck_url:
            checks = make_checks(svc.pool, since(lambda: self.polling.last_answer),
                                 since(lambda: scheduler.last_tick),
                                 max_poll_age=max(90.0, 3 * (cfg.poll_timeout + 10)),
                                 max_tick_age=max(2.0, 20 * cfg.scheduler_tick))
            self.heartbeat = Heartbeat(cfg.healthcheck_url, cfg.healthcheck_interval, checks)
            app.bot_data["heartbeat"] = self.heartbeat
            self.heartbeat.start()
        log.event("bot_started", release=cfg.release, username=app.bot.username,
                  heartbeat=bool(cfg.healthcheck_url))

    async def post_stop(self, app: Application) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()

    async def post_shutdown(self, app: Application) -> None:
        await self.svc.pool.close()
        try:
            os.unlink(self.cfg.heartbeat_file)
        except OSError:
            pass
        log.event("bot_stopped")


def build(cfg: Config, now=utcnow, pool=None) -> Application:
    limiter = metrics.MeasuredLimiter()
    pool = pool or db.make_pool(cfg.database_url)
    rt: Runtime  # made below; the services look its scheduler up only once the bot runs
    svc = Services(cfg, pool, now, scheduler_ref=lambda: rt.scheduler, maintenance=MaintenanceState())
    polling = PollingRequest(cfg.heartbeat_file, InFlightUpdates(32), connect_timeout=5.0,
                             read_timeout=cfg.poll_timeout + 10.0, pool_timeout=5.0)
    rt = Runtime(cfg, svc, limiter, polling, admin=None)
    app = (builder(cfg, limiter, polling)
           .post_init(rt.post_init).post_stop(rt.post_stop).post_shutdown(rt.post_shutdown)
           .build())
    rt.admin = add_handlers(app, svc)
    app.bot_data.update(services=svc, limiter=limiter, pool=pool, polling=polling, runtime=rt)
    return app


def run(cfg: Config) -> int:
    try:
        metrics_port = metrics.port_from_env()
    except ValueError as e:
        log.event("config_error", level=50, error=str(e))
        return 2
    metrics.serve(metrics_port)
    db.migrate_with_retry(cfg.database_url, float(os.environ.get("BOT_DB_STARTUP_TIMEOUT") or 60))
    app = build(cfg, now=clock_from_env())
    app.run_polling(allowed_updates=["message", "callback_query"], poll_interval=0.0,
                    timeout=cfg.poll_timeout, drop_pending_updates=False, bootstrap_retries=-1,
                    stop_signals=(signal.SIGINT, signal.SIGTERM), close_loop=True)
    return 0
