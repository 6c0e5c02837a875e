"""PostgreSQL helpers: connection URLs without passwords on command lines, versions, row counts."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .errors import BackupError, ConfigError

# Tables counted for the manifest and compared by the drill: ordinary tables (partitions included,
# partitioned parents excluded so rows are not counted twice) outside the system schemas.
_TABLES_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY 1, 2
"""

_USER_OBJECTS_SQL = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
"""


def split_url(url: str) -> Tuple[str, Dict[str, str]]:
    """Return (the URL without its password, extra environment for libpq tools).

    The password goes to PGPASSWORD in the child's environment, never on a command line."""
    if not url:
        raise ConfigError("DATABASE_URL is not set")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError("DATABASE_URL must start with postgresql://")
    env: Dict[str, str] = {}
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc)), env


def dbname(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or (urlsplit(url).username or "postgres")


def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=10, **kwargs)


def tool_path(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not on PATH")
    return found


def tool_version(name: str) -> Tuple[int, str]:
    """`pg_dump --version` -> (major, "pg_dump (PostgreSQL) 17.6 ...")."""
    out = subprocess.run([tool_path(name), "--version"], capture_output=True, text=True, timeout=30)
    text = (out.stdout or out.stderr).strip()
    m = re.search(r"\)\s*(\d+)(?:\.(\d+))?", text) or re.search(r"(\d+)\.(\d+)", text)
    if out.returncode != 0 or not m:
        raise BackupError(f"cannot read the version of {name}: {text[:200]!r}")
    return int(m.group(1)), text


def one(conn: psycopg.Connection, query: Any, params: Optional[tuple] = None) -> Any:
    """The first column of the one row `query` returns (a query that returns none is a failure)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise BackupError(f"the database returned no row for {str(query)[:60]!r}")
    return row[0]


def server_version(conn: psycopg.Connection) -> Tuple[int, int, str]:
    """-> (major, server_version_num, server_version)."""
    num = int(one(conn, "SHOW server_version_num"))
    full = str(one(conn, "SHOW server_version"))
    return num // 10000 if num >= 100000 else num // 100, num, full


def row_counts(conn: psycopg.Connection) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for schema, table in conn.execute(_TABLES_SQL).fetchall():
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        counts[f"{schema}.{table}"] = int(one(conn, q))
    return counts


def schema_version(conn: psycopg.Connection) -> Optional[str]:
    """The bot's newest applied migration (bot/db.py's schema_migrations); None without that table."""
    if one(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL") is not True:
        return None
    version = one(conn, "SELECT max(version) FROM public.schema_migrations")
    return version if isinstance(version, str) else None


def drop_tables(url: str, tables: List[str]) -> None:
    """DROP TABLE ... CASCADE of `schema.table` names, in one transaction."""
    with connect(url) as conn:
        with conn.transaction():
            for qualified in tables:
                schema, _, table = qualified.partition(".")
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))


def table_names(url: str) -> List[str]:
    """`schema.table` of every ordinary table (what the manifest's `tables` lists)."""
    with connect(url) as conn:
        return [f"{s}.{t}" for s, t in conn.execute(_TABLES_SQL).fetchall()]


def changes_since(url: str, since: object) -> Optional[Tuple[int, int]]:
    """(reminders created, reminder deliveries sent) after `since` in the bot's tables of `url`: what
    a restore of a backup of that time takes back. None when the tables are not there (not the bot's
    database) or cannot be read."""
    try:
        with connect(url) as conn:
            if one(conn, "SELECT to_regclass('public.reminders') IS NOT NULL AND "
                         "to_regclass('public.deliveries') IS NOT NULL") is not True:
                return None
            created = int(one(conn, "SELECT count(*) FROM public.reminders WHERE created_at > %s", (since,)))
            sent = int(one(conn, "SELECT count(*) FROM public.deliveries WHERE state = 'sent' AND sent_at > %s",
                           (since,)))
    except (psycopg.Error, BackupError):
        return None
    return created, sent


def user_object_count(url: str) -> int:
    with connect(url) as conn:
        return int(one(conn, _USER_OBJECTS_SQL))


# The owner of the target's public schema, when the connecting role may act as it (and it is neither
# itself nor a predefined pg_* role): a restore run as that role leaves every object it creates owned
# by it. With the stack's roles: botstack_backup restores as botstack_app, so the bot owns its
# tables again afterwards; in the drill's scratch database (owned by the connecting role) nothing.
_RESTORE_ROLE_SQL = """
SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
WHERE n.nspname = 'public' AND r.rolname <> current_user AND r.rolname NOT LIKE 'pg\\_%%'
  AND pg_has_role(current_user, r.oid, 'MEMBER')
"""


def restore_role(url: str) -> Optional[str]:
    with connect(url) as conn:
        row = conn.execute(_RESTORE_ROLE_SQL).fetchone()
    return row[0] if row else None


def child_env(extra: Dict[str, str]) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("PGPASSWORD", "PGSERVICEFILE", "PGPASSFILE"):
        env.pop(key, None)
    env.update(extra)
    return env


def create_database(url: str, name: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def exists_database(url: str, name: str) -> Optional[bool]:
    with connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
