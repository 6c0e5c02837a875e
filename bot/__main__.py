"""`python -m bot` runs the bot (long polling); `python -m bot healthcheck` checks a running one."""
from __future__ import annotations

import os
import sys
import time


def healthcheck() -> int:
    """0 when the bot polled Telegram recently (heartbeat file < 90 s old) and the database answers."""
    path = os.environ.get("BOT_HEARTBEAT_FILE") or "/tmp/botstack-bot.heartbeat"
    max_age = float(os.environ.get("BOT_HEARTBEAT_MAX_AGE") or 90)
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        print("unhealthy: no heartbeat (the bot is not polling)")
        return 1
    if age > max_age:
        print(f"unhealthy: last poll {age:.0f}s ago")
        return 1
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("unhealthy: DATABASE_URL is missing")
        return 1
    try:
        import psycopg
        with psycopg.connect(url, connect_timeout=3, options="-c statement_timeout=3000") as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as e:
        print(f"unhealthy: database: {type(e).__name__}")
        return 1
    print("healthy")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck()
    if argv:
        print(f"usage: python -m bot [healthcheck]  (unknown argument {argv[0][:40]!r})")
        return 2
    from . import config, logs
    logs.setup()
    try:
        cfg = config.load()
    except config.ConfigError as e:
        print(f"config error: {e}", flush=True)
        return 2
    logs.add_secret(cfg.token)
    logs.add_secret(cfg.token.split(":", 1)[1])
    logs.add_secret(cfg.healthcheck_url)  # it holds the ping key
    from .app import run
    from telegram.error import InvalidToken
    try:
        return run(cfg)
    except InvalidToken:
        logs.get("bot").event("fatal", level=50, msg="TELEGRAM_BOT_TOKEN was rejected by the Bot API")
        return 2
    except Exception as e:
        logs.get("bot").event("fatal", level=50, exc_info=e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
