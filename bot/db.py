"""PostgreSQL access: migrations (run at start-up under an advisory lock) and the connection pool."""
from __future__ import annotations

import pathlib
import re
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

from . import logs

log = logs.get("bot.db")
MIGRATIONS_DIR = pathlib.Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x626F7473  # "bots": the advisory lock serialising migration runs
DB_ERRORS = (psycopg.OperationalError, psycopg.errors.AdminShutdown, psycopg.InterfaceError)


def migration_files() -> list[tuple[str, pathlib.Path]]:
    out = []
    for p in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_[a-z0-9_]+\.sql", p.name)
        if m:
            out.append((p.stem, p))
    return out


def migrate(url: str, connect_timeout: int = 5) -> list[str]:
    """Apply pending migrations in order, each in its own transaction, under an advisory lock.

    Returns the names applied now. Safe to run concurrently from several processes."""
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                version    text PRIMARY KEY,
                                applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for name, path in migration_files():
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))
                applied_now.append(name)
                log.event("migration_applied", version=name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def migrate_with_retry(url: str, deadline_s: float = 60.0) -> list[str]:
    """`migrate`, retrying while the database is not reachable yet (container start order)."""
    deadline = time.monotonic() + deadline_s
    delay = 0.5
    while True:
        try:
            return migrate(url)
        except psycopg.OperationalError as e:
            if time.monotonic() + delay > deadline:
                raise
            log.event("database_wait", level=30, error=str(e).splitlines()[0][:200] if str(e) else "")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _check_if_idle(conn) -> None:
    """Pool check: a connection idle for more than 2 s is probed (an empty query) before use, so a
    database restart is noticed without costing every busy request an extra round trip."""
    now = time.monotonic()
    if now - _last_used.get(id(conn), 0.0) > 2.0:
        await AsyncConnectionPool.check_connection(conn)
    if len(_last_used) > 200:  # ids of closed connections: forget them all (costs one probe each)
        _last_used.clear()
    _last_used[id(conn)] = now


_last_used: dict[int, float] = {}


def make_pool(url: str, max_size: int = 6) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url, min_size=1, max_size=max_size, open=False, timeout=5.0,
        kwargs={"connect_timeout": 3, "autocommit": True},
        check=_check_if_idle,
        reconnect_timeout=365 * 86400.0,  # keep trying through long outages
        name="bot",
    )
