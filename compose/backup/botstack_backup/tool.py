"""The backup operations behind one object: run, upload backlog, list, restore, prune, drill.

Each operation lives in its own module (backup, retention, offsite_retention, listing, restore,
drill), below this facade; what they share (settings, clock, local store and lock, how failures are
told) is `context.Context`, below them all."""
from __future__ import annotations

import datetime as dt
import logging
from typing import List, Optional, Set

from . import backup, drill, listing, offsite_retention, restore, retention
from .backup import RunResult
from .context import Context
from .drill import DrillResult
from .errors import EXIT_FAILED, BackupError, BusyError
from .store import UTC, LocalBackup, fmt_ts, human_size, parse_ts, utcnow

__all__ = ["BackupTool", "RunResult", "DrillResult", "LocalBackup", "UTC", "fmt_ts", "parse_ts",
           "human_size", "utcnow"]

log = logging.getLogger("botstack_backup")


class BackupTool(Context):
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
            offsite = self.offsite()
            return backup.upload_backlog(self, offsite, set(offsite.list()))

    def prune(self, offsite_keys: Optional[Set[str]] = None) -> List[str]:
        started = self.now()
        try:
            with self.lock():
                return retention.prune_locked(self, offsite_keys)
        except BusyError:
            raise
        except Exception as exc:
            raise self._failed("prune", started, exc) from exc

    def prune_offsite(self) -> List[str]:
        """Offsite retention (offsite_retention.py); run by `run` after each uploaded backup."""
        started = self.now()
        try:
            with self.lock():
                return offsite_retention.prune_offsite_locked(self, self.offsite())
        except BusyError:
            raise
        except Exception as exc:
            raise self._failed("prune", started, exc) from exc

    def _failed(self, kind: str, started: dt.datetime, exc: Exception) -> BackupError:
        """Any failure (an unexpected one too) told: alert and record; the error to raise."""
        err = exc if isinstance(exc, BackupError) else BackupError(
            f"unexpected error: {type(exc).__name__}: {exc}")
        self.fail(kind, started, err)
        return err

    def list(self, offsite: bool = True) -> dict:
        return listing.list_backups(self, offsite)

    def restore(self, which: str = "latest", target_url: Optional[str] = None, force: bool = False,
                from_local: bool = False, accept_older: bool = False) -> dict:
        return restore.restore(self, which, target_url, force, from_local, accept_older)

    def drill(self) -> DrillResult:
        return drill.drill(self)
