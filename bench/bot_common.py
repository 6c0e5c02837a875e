"""Shared helpers of the bot benchmarks: a throwaway PostgreSQL, the Bot API double, the real bot."""
from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.support.botapi_double import BotApiDouble  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

__all__ = ["BotApiDouble", "PostgresServer", "REPO", "TOKEN", "machine", "rss_mb", "start_bot", "stop"]

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def machine() -> str:
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.machine()}")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_bot(api: BotApiDouble, database_url: str, allowed: str, log_path: str,
              argv: list[str] | None = None, cwd: str = REPO, **extra):
    """The real bot as a subprocess (`python -m bot`, or `argv` after the interpreter), run from
    `cwd` (another checkout's bot, for a comparison in the same run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    env.update({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url,
                "ALLOWED_USER_IDS": allowed, "ADMIN_USER_IDS": "1", "DEFAULT_TIMEZONE": "UTC",
                "TELEGRAM_API_BASE_URL": api.base_url, "BOT_POLL_TIMEOUT_SECONDS": "10",
                "BOT_HEARTBEAT_FILE": log_path + ".hb"})
    env.update({k: str(v) for k, v in extra.items()})
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, *(argv or ["-m", "bot"])], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
