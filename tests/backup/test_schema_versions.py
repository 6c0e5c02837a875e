"""A backup made at any migration level restores over a database at the newest one, and the bot's
start (bot.db.migrate) then brings the schema up to date. The restore drops the tables the backup
lacks (one with a foreign key to a table of the backup would stop `pg_restore --clean`), and the
migrations are idempotent all the same. The manifest says which level it holds."""
from __future__ import annotations

import psycopg
import pytest

from bot import db

from .conftest import table_counts

LEVELS = [name for name, _ in db.migration_files()]


def migrate_to(url: str, level: int) -> None:
    """The first `level` migrations, applied and recorded as bot.db.migrate does."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for name, path in db.migration_files()[:level]:
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))


def schema(url: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize("level", range(1, len(LEVELS) + 1), ids=LEVELS)
def test_a_backup_made_at_each_migration_level_restores_and_the_bot_then_migrates(make_tool, pg_server, level):
    source = pg_server.create_database()
    migrate_to(source, level)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("INSERT INTO users (user_id, chat_id) VALUES (7, 7)")
        conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) "
                     "VALUES (7, 7, 'from the backup', 'UTC', now())")
    result = make_tool(DATABASE_URL=source).run()
    assert result.manifest["schema_version"] == LEVELS[level - 1]

    target = pg_server.create_database()
    db.migrate(target)  # the database as it is today: every migration, and newer rows
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO users (user_id, chat_id) VALUES (8, 8)")
    fresh = schema(target)
    with psycopg.connect(target, autocommit=True) as conn:  # a table newer than any backup, with a foreign
        conn.execute("CREATE TABLE rules (reminder_id bigint REFERENCES reminders (id), rule text)")  # key
        conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES (8, 8, 'x', 'UTC', now())")
        conn.execute("INSERT INTO rules SELECT id, 'daily' FROM reminders")
    make_tool(DATABASE_URL=source).restore(result.name, target_url=target, force=True)

    assert db.migrate(target) == LEVELS[level:]  # the bot's start: what the backup lacked, again
    assert schema(target) == fresh
    counts = table_counts(target)
    assert counts["public.users"] == 1 and counts["public.reminders"] == 1
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT text FROM reminders").fetchone()[0] == "from the backup"
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == LEVELS
        assert conn.execute("SELECT count(*) FROM maintenance").fetchone()[0] == 1


def test_the_migrations_run_twice_change_nothing(pg_server):
    url = pg_server.create_database()
    migrate_to(url, len(LEVELS))
    before = schema(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for _, path in db.migration_files():
            conn.execute(path.read_text())
    assert schema(url) == before
