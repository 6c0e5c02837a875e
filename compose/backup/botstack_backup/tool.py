"""The backup operations behind one object: run, upload backlog, list, restore, prune, drill.

Each operation lives in its own module (backup, retention, listing, restore, drill); this class holds
what they share: the settings, the clock, the local store and its lock, and how failures are told."""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import backup, drill, listing, offsite_retention, pg, restore, retention
from .backup import RunResult
from .config import Config
from .drill import DrillResult
from .errors import EXIT_FAILED, BackupError, BusyError, VersionMismatch
from .healthcheck import Pinger
from .notify import Alerter, Recorder
from .offsite import Offsite
from .store import UTC, LocalBackup, LocalStore, fmt_ts, human_size, parse_ts, utcnow

__all__ = ["BackupTool", "RunResult", "DrillResult", "LocalBackup", "UTC", "fmt_ts", "parse_ts",
           "human_size", "utcnow"]

log = logging.getLogger("botstack_backup")


class BackupTool:
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
        self.verified_manifests: Dict[str, dict] = {}
        self._offsite: Optional[Offsite] = None

    # -- shared by the operations ------------------------------------------------------------------
    @property
    def dir(self) -> str:
        return self.store.dir

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One backup operation at a time (dump, restore, drill, prune), across processes."""
        with self.store.lock(self.lock_wait):
            yield

    def local_backups(self) -> List[LocalBackup]:
        return self.store.backups()

    def newest_good_local(self) -> Optional[LocalBackup]:
        return self.store.newest_good()

    def fail(self, kind: str, started: dt.datetime, exc: BaseException, **record) -> None:
        """A failed operation: logged, recorded in backup_runs, and alerted to the admins."""
        detail = str(exc) or type(exc).__name__
        log.error("%s failed: %s", kind, detail)
        self.recorder.record(kind, started, False, detail=detail, **record)
        self.alerter.send(f"\u26a0\ufe0f botstack {kind} FAILED\n{detail}")

    def check_versions(self, conn) -> Tuple[str, str, int]:
        dump_major, dump_text = pg.tool_version("pg_dump")
        server_major, server_num, server_text = pg.server_version(conn)
        if dump_major != server_major:
            raise VersionMismatch(
                f"version mismatch: {dump_text} (major {dump_major}) but the server is "
                f"PostgreSQL {server_text} (major {server_major}); the backup image must be built "
                f"from the same POSTGRES_IMAGE as the database")
        return dump_text, server_text, server_num

    # -- the operations -----------------------------------------------------------------------------
    def run(self, final: bool = False) -> RunResult:
        """One backup (`final`: the last one before the server goes, never pruned); the healthcheck hears its start (once the lock is held: a run skipped as busy
        is no run) and its outcome, with the exit status on failure."""
        started = self.now()
        try:
            self.cfg.require_database()
            self.cfg.require_passphrase()
            with self.lock():
                self.pinger.start()
                result = backup.run_locked(self, started, final)
        except BusyError:
            raise
        except BackupError as exc:
            self.fail("backup", started, exc)
            self.pinger.fail(exc.exit_code, str(exc))
            raise
        except Exception as exc:  # unexpected: still loud
            unexpected = BackupError(f"unexpected error: {type(exc).__name__}: {exc}")
            self.fail("backup", started, unexpected)
            self.pinger.fail(EXIT_FAILED, str(unexpected))
            raise
        if result.uploaded:
            self.pinger.success(f"{result.name}: {human_size(result.size)}, uploaded")
        else:
            self.pinger.fail(result.exit_code, f"{result.name} kept locally only: {result.upload_error}")
        return result

    def upload_backlog(self) -> List[str]:
        with self.lock():
            offsite = Offsite(self.cfg)
            return backup.upload_backlog(self, offsite, set(offsite.list()))

    def prune(self, offsite_keys: Optional[Set[str]] = None) -> List[str]:
        started = self.now()
        try:
            with self.lock():
                return retention.prune_locked(self, offsite_keys)
        except BusyError:
            raise
        except BackupError as exc:
            self.fail("prune", started, exc)
            raise

    def prune_offsite(self) -> List[str]:
        """Offsite retention (offsite_retention.py); run by `run` after each uploaded backup."""
        started = self.now()
        try:
            with self.lock():
                if self._offsite is None:  # a client costs a tenth of a second to make
                    self._offsite = Offsite(self.cfg)
                return offsite_retention.prune_offsite_locked(self, self._offsite)
        except BusyError:
            raise
        except BackupError as exc:
            self.fail("prune", started, exc)
            raise

    def list(self, offsite: bool = True) -> dict:
        return listing.list_backups(self, offsite)

    def restore(self, which: str = "latest", target_url: Optional[str] = None, force: bool = False,
                from_local: bool = False) -> dict:
        return restore.restore(self, which, target_url, force, from_local)

    def drill(self) -> DrillResult:
        return drill.drill(self)
