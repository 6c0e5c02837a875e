"""A throwaway PostgreSQL server for tests and benchmarks.

`PostgresServer.start()` runs `initdb` and `pg_ctl` from the machine's server binaries as the
`postgres` user when we are root (initdb refuses root), on a temp directory that user owns, UTF-8,
on a free port of 127.0.0.1. When `TEST_DATABASE_URL` is set, `from_env_or_start()` uses that server
instead (restart tests are then skipped: we do not own it).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL server binary {name!r} not found (apt-get install postgresql)")
    return candidates[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A PostgreSQL server reachable at `admin_url` (a superuser URL to the `postgres` database)."""

    admin_url: str
    datadir: str | None = None  # set when we own the cluster (and can stop/start it)
    port: int | None = None
    _run_as: list[str] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def from_env_or_start(cls) -> "PostgresServer":
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            return cls(admin_url=url)
        return cls.start_new()

    @classmethod
    def start_new(cls) -> "PostgresServer":
        run_as: list[str] = []
        base = tempfile.mkdtemp(prefix="botstack-pg-")
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(base, pw.pw_uid, pw.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        datadir = os.path.join(base, "data")
        subprocess.run(
            [*run_as, _bin("initdb"), "-D", datadir, "-E", "UTF8", "--locale=C.UTF-8",
             "-U", "postgres", "--auth=trust"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        port = free_port()
        server = cls(admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
                     datadir=datadir, port=port, _run_as=run_as)
        server.start()
        return server

    @property
    def owned(self) -> bool:
        return self.datadir is not None

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([*self._run_as, _bin("pg_ctl"), "-D", self.datadir, *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        assert self.owned, "cannot start a server we do not own"
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._pg_ctl("-w", "-t", "60", "-o", opts, "-l", os.path.join(self.datadir, "..", "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        assert self.owned, "cannot stop a server we do not own"
        self._pg_ctl("-w", "-m", mode, "stop")

    def destroy(self) -> None:
        if self.owned:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
            shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)

    # -- databases -------------------------------------------------------------------------------
    def url(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + dbname))

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
