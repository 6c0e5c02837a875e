"""Fixtures shared by every test package.

- `pg_server`: one real PostgreSQL server for the session (throwaway cluster, or TEST_DATABASE_URL).
- `database_url`: a fresh, empty database on it for one test, dropped afterwards.
- `restartable_pg`: a server of the test's own that it may stop and start (skipped with
  TEST_DATABASE_URL, where we do not own the server).
"""
from __future__ import annotations

import pytest

from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer.from_env_or_start()
    yield server
    server.destroy()


@pytest.fixture
def database_url(pg_server):
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def restartable_pg():
    import os
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is set: this test needs a server it can stop and start")
    server = PostgresServer.start_new()
    yield server
    server.destroy()
