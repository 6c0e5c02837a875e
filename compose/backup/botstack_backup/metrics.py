"""The backup job's Prometheus metrics, served by `botstack-backup schedule` on `BACKUP_METRICS_PORT`
(default 9102; 0: off) on the stack's network, for the `observability` profile's Prometheus.

Written with the standard library (the text exposition format is a few lines), so the backup image
needs no package beyond Debian's python3. The job also reports PostgreSQL's figures (`pg_samples`:
size, connections, commits, rollbacks, deadlocks, cache hits) over its own connection, instead of
a postgres_exporter container: one process less on a 1 GB droplet, no extra role or password.
Most backup figures are read at scrape time from what survives
a restart: the newest complete local backup (its manifest: creation time, encrypted size, dump
duration) and the schedule's state file (last attempts, last good drill), so a backup taken by hand
(`botstack-backup run`) counts too. The same server takes Prometheus' alerts to the admins
(alert_receiver.py). The durations of the last scheduled run and drill (upload and
pruning included) are the process's own.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .alert_receiver import MAX_BODY, AlertReceiver, BadAlerts, read_body
from .errors import ConfigError

log = logging.getLogger("botstack_backup")

DEFAULT_PORT = 9102
ALERTS_PATH = "/api/v2/alerts"  # where Prometheus posts to an Alertmanager (alerting: in prometheus.yml)
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
    "botstack_backup_interval_seconds": ("BACKUP_INTERVAL_HOURS: a backup is due this long after the last", "gauge"),
    "botstack_backup_drill_last_success_timestamp_seconds": ("Time of the last good restore drill (0: none)",
                                                             "gauge"),
    "botstack_backup_drill_last_ok": ("1 if the last restore drill passed, 0 if it failed", "gauge"),
    "botstack_backup_drill_seconds": ("Duration of the last scheduled restore drill", "gauge"),
    "botstack_pg_up": ("1 if the backup job could query PostgreSQL at this scrape", "gauge"),
    "botstack_pg_database_size_bytes": ("Size of the stack's database", "gauge"),
    "botstack_pg_connections": ("Connections to the stack's database, by state", "gauge"),
    "botstack_pg_max_connections": ("The server's max_connections", "gauge"),
    "botstack_pg_xact_commit_total": ("Transactions committed in the stack's database", "counter"),
    "botstack_pg_xact_rollback_total": ("Transactions rolled back in the stack's database", "counter"),
    "botstack_pg_deadlocks_total": ("Deadlocks detected in the stack's database", "counter"),
    "botstack_pg_blocks_read_total": ("Disk blocks read (not found in PostgreSQL's cache)", "counter"),
    "botstack_pg_blocks_hit_total": ("Disk blocks found in PostgreSQL's cache", "counter"),
}
CONNECTION_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")

Sample = Tuple[str, Dict[str, str], float]


def _ts(when: Optional[dt.datetime]) -> float:
    return when.timestamp() if when is not None else 0.0


class BackupMetrics:
    def __init__(self, scheduler: Any):
        """`scheduler`: the schedule.Scheduler that owns this (not imported: it imports this module)."""
        self.sched = scheduler
        self._seconds: Dict[str, float] = {}
        self._lock = threading.Lock()

    def ran(self, kind: str, started_monotonic: float) -> None:
        """A scheduled `backup` or `drill` ended (however it ended)."""
        with self._lock:
            self._seconds[kind] = time.monotonic() - started_monotonic

    def samples(self) -> Iterator[Tuple[str, float]]:
        """The backup job's own figures."""
        store = self.sched.tool.store
        good = [b for b in store.backups() if b.good]
        newest = good[-1] if good else None
        manifest = (newest.manifest or {}) if newest else {}
        state = self.sched._load()
        yield "botstack_backup_last_success_timestamp_seconds", _ts(newest.created_at if newest else None)
        yield "botstack_backup_local_copies", float(len(good))
        yield "botstack_backup_interval_seconds", self.sched.interval.total_seconds()
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
        samples: list = [(name, {}, v) for name, v in self.samples()]
        samples += pg_samples(self.sched.tool.cfg.database_url)
        lines, seen = [], set()
        for name, labels, v in samples:
            if name not in seen:
                seen.add(name)
                doc, kind = FAMILIES[name]
                lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
            tags = ",".join(f'{k}="{val}"' for k, val in sorted(labels.items()))
            lines.append(f"{name}{{{tags}}} {float(v)!r}" if tags else f"{name} {float(v)!r}")
        return "\n".join(lines) + "\n"


def pg_samples(database_url: str) -> List[Sample]:
    """PostgreSQL's figures for the stack's database; only `botstack_pg_up 0` when it cannot be read."""
    if not database_url:
        return [("botstack_pg_up", {}, 0.0)]
    import psycopg  # the backup tool's own dependency (Debian's python3-psycopg)
    try:
        with psycopg.connect(database_url, connect_timeout=3, autocommit=True,
                             options="-c statement_timeout=3000") as conn:
            row = conn.execute(
                "SELECT pg_database_size(current_database()), current_setting('max_connections')::int").fetchone()
            size, max_conn = row if row is not None else (0, 0)
            stat = conn.execute(
                "SELECT xact_commit, xact_rollback, deadlocks, blks_read, blks_hit FROM pg_stat_database "
                "WHERE datname = current_database()").fetchone()
            states: Dict[str, int] = dict(conn.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() GROUP BY 1").fetchall())
    except psycopg.Error as exc:
        log.warning("metrics: PostgreSQL not readable: %s", type(exc).__name__)
        return [("botstack_pg_up", {}, 0.0)]
    out: List[Sample] = [("botstack_pg_up", {}, 1.0), ("botstack_pg_database_size_bytes", {}, float(size)),
                         ("botstack_pg_max_connections", {}, float(max_conn))]
    # a closed set of label values: the states PostgreSQL documents, anything else is "other"
    counts = {state: 0 for state in (*CONNECTION_STATES, "other")}
    for state, n in states.items():
        counts[state if state in CONNECTION_STATES else "other"] += int(n)
    out += [("botstack_pg_connections", {"state": state}, float(n)) for state, n in counts.items()]
    if stat is not None:
        for name, v in zip(("botstack_pg_xact_commit_total", "botstack_pg_xact_rollback_total",
                            "botstack_pg_deadlocks_total", "botstack_pg_blocks_read_total",
                            "botstack_pg_blocks_hit_total"), stat, strict=True):
            out.append((name, {}, float(v or 0)))
    return out


def port_from_env(env: Optional[Mapping[str, str]] = None) -> int:
    env = os.environ if env is None else env
    raw = (env.get("BACKUP_METRICS_PORT") or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError("BACKUP_METRICS_PORT must be a port number (0: off)")
    return int(raw)


def serve(metrics: BackupMetrics, port: int, addr: str = "0.0.0.0") -> Optional[ThreadingHTTPServer]:
    """Serve /metrics, and receive Prometheus' alerts on /api/v2/alerts (alert_receiver.py), in a
    daemon thread. A port that cannot be bound is logged, never fatal: the backups matter more than
    their graphs."""
    if port == 0:
        return None
    tool = metrics.sched.tool
    receiver = AlertReceiver(tool.alerter.send, tool.now)

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

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?", 1)[0] != ALERTS_PATH:
                self.send_error(404)
                return
            body = read_body(self.headers, self.rfile)
            if body is None:
                self.send_error(413, f"a Content-Length of at most {MAX_BODY} bytes is required")
                return
            try:
                receiver.receive(body)
            except BadAlerts as exc:
                log.error("alerts refused: %s", exc)
                self.send_error(400, f"alerts refused: {exc}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

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
