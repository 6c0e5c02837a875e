"""The long-running mode: a backup every N hours (catching up after downtime), a weekly drill."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from typing import Callable, Optional

from .errors import BackupError, BusyError
from .tool import UTC, BackupTool

log = logging.getLogger("botstack_backup")

STATE_FILE = ".schedule.json"
MAX_SLEEP = 300.0  # wake up at least every 5 minutes (clock jumps, suspended laptops)


class Scheduler:
    """`tick()` does whatever is due now and returns the seconds until the next thing is due.

    - a backup is due when the newest complete local backup is older than the interval (or there is
      none): after any downtime exactly one catch-up backup runs at once, then the interval resumes;
    - after a failed backup the next attempt waits `min(interval, 1 h)`;
    - the drill is due `BACKUP_DRILL_INTERVAL_DAYS` after the last successful drill (a failed drill is
      retried after the backup interval); the first drill follows the first backup;
    - operations take the tool's lock, so two dumps never overlap, even with a manual `run`.
    """

    def __init__(self, tool: BackupTool, now: Optional[Callable[[], dt.datetime]] = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.tool = tool
        self.now = now or tool.now
        self.sleep = sleep
        self.interval = dt.timedelta(hours=tool.cfg.interval_hours)
        self.retry = min(self.interval, dt.timedelta(hours=1))
        self.drill_interval = dt.timedelta(days=tool.cfg.drill_interval_days)
        self.drill_retry = self.interval

    # -- state (attempt times; the last good backup is read from the backups themselves) ----------
    @property
    def _state_path(self) -> str:
        return os.path.join(self.tool.dir, STATE_FILE)

    def _load(self) -> dict:
        """The state file, with its types checked: anything else in it (damaged, planted) is ignored."""
        try:
            with open(self._state_path, "rb") as f:
                raw = json.loads(f.read(64 * 1024))
        except (OSError, ValueError, RecursionError):
            return {}
        state = {}
        for k, v in (raw.items() if isinstance(raw, dict) else ()):
            try:
                t = dt.datetime.fromisoformat(v) if isinstance(v, str) else None
            except ValueError:
                continue
            if t is not None and t.tzinfo is not None:
                state[k] = t
        return state

    def _save(self, state: dict) -> None:
        try:
            self.tool.store.ensure_dir()
            self.tool.store.write_json(self._state_path, {k: v.isoformat() for k, v in state.items()})
        except (OSError, BackupError) as exc:  # the run itself reports an unusable directory
            log.error("schedule: cannot save its state: %s", exc)

    # -- decisions ----------------------------------------------------------------------------------
    def next_backup_at(self, state: dict) -> dt.datetime:
        newest = self.tool.newest_good_local()
        due = newest.created_at + self.interval if newest else dt.datetime.min.replace(tzinfo=UTC)
        attempt = state.get("last_backup_attempt")
        if attempt is not None and (newest is None or attempt > newest.created_at):
            due = max(due, attempt + self.retry)
        return due

    def next_drill_at(self, state: dict) -> dt.datetime:
        ok = state.get("last_drill_ok")
        due = ok + self.drill_interval if ok else dt.datetime.min.replace(tzinfo=UTC)
        attempt = state.get("last_drill_attempt")
        if attempt is not None and (ok is None or attempt > ok):
            due = max(due, attempt + self.drill_retry)
        return due

    def tick(self) -> float:
        state = self._load()
        now = self.now()
        if now >= self.next_backup_at(state):
            state["last_backup_attempt"] = now
            self._save(state)
            try:
                self.tool.run()
            except BusyError as exc:
                log.warning("%s", exc)
                state.pop("last_backup_attempt", None)
            except BackupError:
                pass  # already logged, recorded and alerted
            except Exception as exc:
                log.exception("backup crashed")
                self._told("backup", now, exc)
            self._save(state)
        now = self.now()
        if now >= self.next_drill_at(state) and self.tool.newest_good_local() is not None:
            state["last_drill_attempt"] = now
            self._save(state)
            try:
                self.tool.drill()
                state["last_drill_ok"] = now
            except BusyError as exc:
                log.warning("%s", exc)
                state.pop("last_drill_attempt", None)
            except BackupError:
                pass  # already logged, recorded and alerted
            except Exception as exc:
                log.exception("drill crashed")
                self._told("drill", now, exc)
            self._save(state)
        now = self.now()
        nxt = min(self.next_backup_at(state), self.next_drill_at(state))
        return max(1.0, min(MAX_SLEEP, (nxt - now).total_seconds()))

    def _told(self, kind: str, started: dt.datetime, exc: Exception) -> None:
        """A crash the operation itself did not report: alerted and recorded all the same."""
        try:
            self.tool.fail(kind, started, BackupError(f"crashed: {type(exc).__name__}: {exc}"))
        except Exception:  # the alert and the record never raise; this is the last resort
            log.exception("could not report the crash")

    def run_forever(self, max_ticks: Optional[int] = None) -> None:
        log.info("schedule: a backup every %s h, local retention %d days, a drill every %d days",
                 self.tool.cfg.interval_hours, self.tool.cfg.local_retention_days,
                 self.tool.cfg.drill_interval_days)
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            try:
                wait = self.tick()
            except Exception as exc:  # the schedule itself must survive anything in its directory
                log.exception("schedule: tick failed")
                self._told("backup", self.now(), exc)
                wait = self.retry.total_seconds()
            reap_orphans()
            self.sleep(wait)
            ticks += 1


def reap_orphans() -> None:
    """As PID 1 of the container we inherit orphans (gpg-agent after `gpgconf --kill`): reap them.

    Only called between operations, when none of our own subprocesses is running."""
    if os.getpid() != 1:
        return
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
