"""What every backup operation shares: the settings, the clock, the local store and its lock, how
failures are told, the version check and the verified-manifest memory.

The operations (backup, retention, offsite_retention, listing, restore, drill) take a `Context`;
the facade `tool.BackupTool` is a Context with one method per operation, on top of them all."""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import psycopg

from . import pg
from .config import Config
from .errors import VersionMismatch
from .healthcheck import Pinger
from .notify import Alerter, Recorder
from .offsite import Offsite
from .store import LocalBackup, LocalStore, utcnow

log = logging.getLogger("botstack_backup")

Manifest = Dict[str, Any]


class Context:
    def __init__(self, cfg: Config, now: Callable[[], dt.datetime] = utcnow,
                 alerter: Optional[Alerter] = None, recorder: Optional[Recorder] = None,
                 pinger: Optional[Pinger] = None):
        self.cfg = cfg
        self.now = now
        self.alerter = alerter or Alerter(cfg)
        self.recorder = recorder or Recorder(cfg.database_url)
        self.pinger = pinger or Pinger(cfg.healthcheck_url)
        self.store = LocalStore(cfg.backup_dir)
        # seconds to wait for the lock when another operation holds it (0: fail at once with
        # BusyError, what the scheduler wants; the CLI waits, see --wait)
        self.lock_wait = 0.0
        # offsite manifests already verified (object key -> manifest): a MAC check is slow on purpose
        self.verified_manifests: Dict[str, Manifest] = {}
        self._offsite: Optional[Offsite] = None

    @property
    def dir(self) -> str:
        return self.store.dir

    def offsite(self) -> Offsite:
        """The Spaces client, made once (a client costs a tenth of a second to make)."""
        if self._offsite is None:
            self._offsite = Offsite(self.cfg)
        return self._offsite

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One backup operation at a time (dump, restore, drill, prune), across processes."""
        with self.store.lock(self.lock_wait):
            yield

    def local_backups(self) -> List[LocalBackup]:
        return self.store.backups()

    def newest_good_local(self) -> Optional[LocalBackup]:
        return self.store.newest_good()

    def fail(self, kind: str, started: dt.datetime, exc: BaseException, **record: Any) -> None:
        """A failed operation: logged, recorded in backup_runs, and alerted to the admins."""
        detail = str(exc) or type(exc).__name__
        log.error("%s failed: %s", kind, detail)
        self.recorder.record(kind, started, False, detail=detail, **record)
        self.alerter.send(f"\u26a0\ufe0f botstack {kind} FAILED\n{detail}")

    def check_versions(self, conn: psycopg.Connection) -> Tuple[str, str, int]:
        dump_major, dump_text = pg.tool_version("pg_dump")
        server_major, server_num, server_text = pg.server_version(conn)
        if dump_major != server_major:
            raise VersionMismatch(
                f"version mismatch: {dump_text} (major {dump_major}) but the server is "
                f"PostgreSQL {server_text} (major {server_major}); the backup image must be built "
                f"from the same POSTGRES_IMAGE as the database")
        return dump_text, server_text, server_num
