"""The backup job's Prometheus metrics, served by `botstack-backup schedule` on `BACKUP_METRICS_PORT`
(default 9102; 0: off) on the stack's network, for the `observability` profile's Prometheus.

Written with the standard library (the text exposition format is a few lines), so the backup image
needs no package beyond Debian's python3. Most figures are read at scrape time from what survives
a restart: the newest complete local backup (its manifest: creation time, encrypted size, dump
duration) and the schedule's state file (last attempts, last good drill), so a backup taken by hand
(`botstack-backup run`) counts too. The durations of the last scheduled run and drill (upload and
pruning included) are the process's own.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Dict, Iterator, Mapping, Optional, Tuple

from .errors import ConfigError

if TYPE_CHECKING:
    from .schedule import Scheduler

log = logging.getLogger("botstack_backup")

DEFAULT_PORT = 9102
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (help, type)
FAMILIES: Dict[str, Tuple[str, str]] = {
    "botstack_backup_last_success_timestamp_seconds":
        ("Creation time of the newest complete local backup (0: none)", "gauge"),
    "botstack_backup_last_size_bytes": ("Encrypted size of the newest complete backup", "gauge"),
    "botstack_backup_last_dump_seconds": ("Dump and encryption time of the newest complete backup", "gauge"),
    "botstack_backup_last_attempt_timestamp_seconds": ("Start of the last scheduled backup", "gauge"),
    "botstack_backup_last_run_ok": ("1 if the last scheduled backup produced a complete backup", "gauge"),
    "botstack_backup_run_seconds": ("Duration of the last scheduled backup run, upload and pruning included",
                                    "gauge"),
    "botstack_backup_local_copies": ("Complete local backups on the volume", "gauge"),
    "botstack_backup_drill_last_success_timestamp_seconds": ("Time of the last good restore drill (0: none)",
                                                             "gauge"),
    "botstack_backup_drill_last_ok": ("1 if the last restore drill passed, 0 if it failed", "gauge"),
    "botstack_backup_drill_seconds": ("Duration of the last scheduled restore drill", "gauge"),
}


def _ts(when: Optional[dt.datetime]) -> float:
    return when.timestamp() if when is not None else 0.0


class BackupMetrics:
    def __init__(self, scheduler: "Scheduler"):
        self.sched = scheduler
        self._seconds: Dict[str, float] = {}
        self._lock = threading.Lock()

    def ran(self, kind: str, started_monotonic: float) -> None:
        """A scheduled `backup` or `drill` ended (however it ended)."""
        with self._lock:
            self._seconds[kind] = time.monotonic() - started_monotonic

    def samples(self) -> Iterator[Tuple[str, float]]:
        store = self.sched.tool.store
        good = [b for b in store.backups() if b.good]
        newest = good[-1] if good else None
        manifest = (newest.manifest or {}) if newest else {}
        state = self.sched._load()
        yield "botstack_backup_last_success_timestamp_seconds", _ts(newest.created_at if newest else None)
        yield "botstack_backup_local_copies", float(len(good))
        for name, key in (("botstack_backup_last_size_bytes", "size_encrypted"),
                          ("botstack_backup_last_dump_seconds", "duration_seconds")):
            v = manifest.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield name, float(v)
        attempt = state.get("last_backup_attempt")
        if attempt is not None:
            yield "botstack_backup_last_attempt_timestamp_seconds", _ts(attempt)
            # a backup is named after its start, to the second: it belongs to this attempt or a later one
            ok = newest is not None and newest.created_at >= attempt.replace(microsecond=0)
            yield "botstack_backup_last_run_ok", 1.0 if ok else 0.0
        drill_ok, drill_attempt = state.get("last_drill_ok"), state.get("last_drill_attempt")
        yield "botstack_backup_drill_last_success_timestamp_seconds", _ts(drill_ok)
        if drill_attempt is not None:
            yield "botstack_backup_drill_last_ok", 1.0 if drill_ok is not None and drill_ok >= drill_attempt else 0.0
        with self._lock:
            for kind, name in (("backup", "botstack_backup_run_seconds"), ("drill", "botstack_backup_drill_seconds")):
                if kind in self._seconds:
                    yield name, self._seconds[kind]

    def render(self) -> str:
        lines = []
        for name, v in self.samples():
            doc, kind = FAMILIES[name]
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {v!r}"]
        return "\n".join(lines) + "\n"


def port_from_env(env: Optional[Mapping[str, str]] = None) -> int:
    env = os.environ if env is None else env
    raw = (env.get("BACKUP_METRICS_PORT") or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError("BACKUP_METRICS_PORT must be a port number (0: off)")
    return int(raw)


def serve(metrics: BackupMetrics, port: int, addr: str = "0.0.0.0") -> Optional[ThreadingHTTPServer]:
    """Serve /metrics in a daemon thread. A port that cannot be bound is logged, never fatal: the
    backups matter more than their graphs."""
    if port == 0:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            try:
                body = metrics.render().encode()
            except Exception as exc:  # an unreadable volume: a failed scrape, which `up` shows
                log.error("metrics: %s", exc)
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
            pass

    try:
        server = ThreadingHTTPServer((addr, port), Handler)
    except OSError as exc:
        log.error("metrics: cannot listen on port %d: %s", port, exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics: serving /metrics on port %d", server.server_address[1])
    return server
