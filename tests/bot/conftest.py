"""Fixtures for the bot's tests: the Bot API double, a migrated database, and a running bot
(the real Application in-process, or the real `python -m bot` process)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from bot import db
from bot.config import load
from tests.support.botapi_double import BotApiDouble

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # token-shaped, so redaction is exercised
USER, OTHER, ADMIN, STRANGER = 1001, 1002, 9001, 666
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeClock:
    """An injectable clock: real time shifted by an offset the test moves."""

    def __init__(self, start: datetime | None = None):
        real = datetime.now(timezone.utc)
        self.offset = (start - real) if start else timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **kw) -> None:
        self.offset += timedelta(**kw)

    def set(self, when: datetime) -> None:
        self.offset = when - datetime.now(timezone.utc)


def q(url, sql, *args):
    """Run one statement on its own connection; the rows, if it returns any."""
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
        cur = c.execute(sql, args)
        return cur.fetchall() if cur.description else None


def reminder_messages(api, chat):
    return [m for m in api.sent_messages(chat) if m.get("text", "").startswith("⏰")]


async def wait_reminders(api, chat, n, timeout=15):
    return await api.async_wait_for(
        lambda: (lambda ms: ms if len(ms) >= n else None)(reminder_messages(api, chat)), timeout)


def buttons(message) -> list[str]:
    return [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


@pytest.fixture
def api():
    with BotApiDouble(TOKEN) as d:
        yield d


def bot_env(api, database_url, **extra) -> dict:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url,
        "ALLOWED_USER_IDS": f"{USER},{OTHER}", "ADMIN_USER_IDS": str(ADMIN),
        "DEFAULT_TIMEZONE": "Europe/Berlin", "TELEGRAM_API_BASE_URL": api.base_url,
        "BOTSTACK_RELEASE": "test-release", "BOT_SCHEDULER_TICK_SECONDS": "0.1",
        "BOT_POLL_TIMEOUT_SECONDS": "1",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class RunningBot:
    def __init__(self, app, clock, api, pool):
        self.app, self.clock, self.api, self.pool = app, clock, api, pool
        self.stopped = False

    async def stop(self) -> None:
        """Stop as `python -m bot` does on SIGTERM (idempotent): a later make_bot() is a restart."""
        if self.stopped:
            return
        self.stopped = True
        app = self.app
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.post_stop(app)
        await app.shutdown()
        await app.post_shutdown(app)

    @property
    def scheduler(self):
        return self.app.bot_data["scheduler"]

    async def say(self, user, text, count=1, timeout=10.0, lang="en"):
        """Send a message as `user` (Telegram `language_code` `lang`); wait for `count` new messages
        to that chat; return them."""
        before = len(self.api.sent_messages(user))
        self.api.push_message(user, text, language_code=lang)
        msgs = await self.api.async_wait_for(
            lambda: (lambda ms: ms if len(ms) >= before + count else None)(self.api.sent_messages(user)),
            timeout)
        return msgs[before:]


@pytest.fixture
async def make_bot(api, database_url, tmp_path):
    """Start the real Application in-process (the same `build()` as `python -m bot`)."""
    from bot.app import build
    started = []

    async def start(clock=None, **env):
        await asyncio.to_thread(db.migrate, env.get("DATABASE_URL", database_url))
        cfg = load(bot_env(api, database_url, BOT_HEARTBEAT_FILE=tmp_path / "hb", **env))
        clock = clock or FakeClock()
        app = build(cfg, now=clock)
        await app.initialize()
        await app.post_init(app)
        await app.updater.start_polling(timeout=1, poll_interval=0,
                                        allowed_updates=["message", "callback_query"])
        await app.start()
        rb = RunningBot(app, clock, api, app.bot_data["pool"])
        started.append(rb)
        return rb

    yield start
    for rb in started:
        await rb.stop()


class BotProcess:
    """The real `python -m bot` as a subprocess; output captured to a file for the token check."""

    def __init__(self, env: dict, log_path):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
        full.update(env)
        self.env = full
        self.proc = subprocess.Popen([sys.executable, "-m", "bot"], cwd=REPO, env=full,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_started(self, api, timeout=30):
        api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls) or self.proc.poll() is not None,
                     timeout)
        assert self.proc.poll() is None, self.output()

    def terminate(self, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def spawn_bot(api, tmp_path):
    procs = []

    def spawn(database_url, **env) -> BotProcess:
        e = bot_env(api, database_url, BOT_HEARTBEAT_FILE=tmp_path / "hb", **env)
        p = BotProcess(e, tmp_path / f"bot-{len(procs)}.log")
        procs.append(p)
        return p

    yield spawn
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
