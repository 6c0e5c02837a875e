"""Fixtures for the backup tool's tests: moto's S3 server as Spaces, the Bot API double, a seeded DB."""
from __future__ import annotations

import datetime as dt
import os
import sys
import uuid

import boto3
import psycopg
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKUP_SRC = os.path.join(ROOT, "compose", "backup")
if BACKUP_SRC not in sys.path:
    sys.path.insert(0, BACKUP_SRC)

from botstack_backup.config import Config  # noqa: E402
from botstack_backup.tool import BackupTool  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

TOKEN = "123456789:backup-tests-token"
ADMINS = [1001, 1002]
PASSPHRASE = "correct horse battery staple"
MIGRATION = os.path.join(ROOT, "bot", "migrations", "0002_backup_runs.sql")


class Clock:
    """An injectable clock: `clock()` -> aware UTC datetime; `clock.advance(hours=6)`."""

    def __init__(self, start: dt.datetime | None = None):
        self.t = start or dt.datetime(2026, 11, 1, 3, 0, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **kw) -> dt.datetime:
        self.t += dt.timedelta(**kw)
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server):
    name = f"bk-{uuid.uuid4().hex[:10]}"
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket=name)
    # versioned, as the program's bucket is (otherwise every run's store check reports it)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def botapi():
    from tests.support.botapi_double import BotApiDouble
    with BotApiDouble(token=TOKEN) as api:
        yield api


@pytest.fixture
def seeded_db(database_url):
    """A database with the backup_runs table and some data in two schemas."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        with open(MIGRATION) as f:
            conn.execute(f.read())
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 250) g")
        conn.execute("CREATE TABLE reminders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users,"
                     " text text, due timestamptz)")
        conn.execute("INSERT INTO reminders (user_id, text, due) SELECT 1 + g % 250, repeat('x', g % 50),"
                     " now() + g * interval '1 minute' FROM generate_series(1, 1234) g")
        conn.execute("CREATE SCHEMA extra")
        conn.execute("CREATE TABLE extra.notes (id int, body text)")
        conn.execute("INSERT INTO extra.notes SELECT g, md5(g::text) FROM generate_series(1, 77) g")
    return database_url


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_tool(tmp_path, s3_server, bucket, botapi, seeded_db, clock):
    """make_tool(**overrides) -> BackupTool configured against the test servers."""

    def make(endpoint: str | None = None, **over) -> BackupTool:
        env = {
            "DATABASE_URL": seeded_db,
            "BACKUP_PASSPHRASE": PASSPHRASE,
            "BACKUP_DIR": str(tmp_path / "backups"),
            "SPACES_ENDPOINT": endpoint or s3_server,
            "SPACES_REGION": "us-east-1",
            "SPACES_BUCKET": bucket,
            "SPACES_ACCESS_KEY_ID": "testing",
            "SPACES_SECRET_ACCESS_KEY": "testing",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": botapi.base_url,
            "ADMIN_USER_IDS": ",".join(map(str, ADMINS)),
        }
        env.update({k: str(v) for k, v in over.items()})
        return BackupTool(Config.from_env(env), now=clock)

    return make


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def backup_runs(url: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT kind, ok, object_key, size_bytes, uploaded, detail FROM backup_runs ORDER BY id")
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def table_counts(url: str) -> dict:
    from botstack_backup import pg
    with psycopg.connect(url) as conn:
        return pg.row_counts(conn)


def _fake_pg_dump(tmp_path, monkeypatch, body: str) -> None:
    """Put a pg_dump first on PATH that runs `body` (sh), the real one being $REAL."""
    import shutil
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    script = fake / "pg_dump"
    script.write_text(f"#!/bin/sh\nREAL={shutil.which('pg_dump')}\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")


@pytest.fixture
def failing_pg_dump(tmp_path, monkeypatch):
    """pg_dump reports the real version, then fails every dump."""
    _fake_pg_dump(tmp_path, monkeypatch, 'if [ "$1" = "--version" ]; then exec "$REAL" --version; fi\n'
                                         'echo "pg_dump: error: simulated failure" >&2; exit 1')


@pytest.fixture
def old_pg_dump(tmp_path, monkeypatch):
    """pg_dump reports another major version (11) and otherwise works."""
    _fake_pg_dump(tmp_path, monkeypatch, 'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 11.22"; '
                                         'exit 0; fi\nexec "$REAL" "$@"')
