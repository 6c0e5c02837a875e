"""Fixtures shared by every test package.

- `pg_server`: one real PostgreSQL server for the session (throwaway cluster, or TEST_DATABASE_URL).
- `database_url`: a fresh, empty database on it for one test, dropped afterwards.
- `restartable_pg`: a server of the test's own that it may stop and start (skipped with
  TEST_DATABASE_URL, where we do not own the server).

The marker `docker` goes on every test that uses the Docker engine: one that carries `rehearsal`, or
requests (directly or through other fixtures) a fixture decorated with `@starts_docker`
(tests/support/docker_frame.py). There is one engine and the stand-ins have fixed names, so
./scripts/test runs those tests serially, after the rest has run in parallel (`-m "not docker" -n 2`);
a Docker engine asked for in a parallel worker is refused (tests/support/docker_engine.py).
"""
from __future__ import annotations

import pytest

from tests.support.docker_frame import STARTS_DOCKER
from tests.support.postgres import PostgresServer


def uses_docker(item: pytest.Item) -> bool:
    if item.get_closest_marker("rehearsal"):
        return True
    info = getattr(item, "_fixtureinfo", None)  # pytest's own items (doctests) have none
    if info is None:
        return False
    # every definition a name resolves to for this test, overridden ones too: serial when unsure
    return any(getattr(fixturedef.func, STARTS_DOCKER, False)
               for fixturedefs in info.name2fixturedefs.values() for fixturedef in fixturedefs)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if uses_docker(item):
            item.add_marker(pytest.mark.docker)


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
