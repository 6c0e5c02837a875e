#!/usr/bin/env python3
"""Benchmark: botstack-backup throughput vs a plain `pg_dump -Fc > file`, and restore time.

    .venv/bin/python bench/backup_throughput.py [--gb 1.0] [--rounds 2]

Starts a throwaway PostgreSQL server (tests/support/postgres.py) and moto's S3 server (the Spaces
stand-in), fills a database with at least --gb GiB of rows (pg_database_size), then alternates, for
--rounds rounds:
  - plain: `pg_dump -Fc dbname > file` (the baseline),
  - ours:  `BackupTool.run()`: pg_dump -Fc -> sha256 -> gpg AES-256 -> local copy + streaming
           multipart upload to the S3 double, plus the manifest (row counts in the same snapshot),
and reports throughput ratio = plain seconds / our seconds (goal >= 0.8). Then restore time:
`BackupTool.restore()` (download, verify sha256, decrypt, verify, pg_restore) into an empty
database, against a plain `pg_restore` of the baseline file. Prints the figures and writes them to
bench/results/backup_throughput-<date>.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "compose", "backup")]

import boto3  # noqa: E402
import psycopg  # noqa: E402

from botstack_backup.config import Config  # noqa: E402
from botstack_backup.tool import BackupTool  # noqa: E402
from tests.support.postgres import PostgresServer, free_port  # noqa: E402

GiB = 1 << 30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fill(url: str, target_bytes: int) -> dict:
    """Reminders-like rows: ids, timestamps, short texts, some random hex (partly compressible)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE events (
            id bigint PRIMARY KEY, user_id int NOT NULL, created_at timestamptz NOT NULL,
            kind text NOT NULL, body text NOT NULL)""")
        with open(os.path.join(ROOT, "bot", "migrations", "0002_backup_runs.sql")) as f:
            conn.execute(f.read())
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text, tz text)")
        conn.execute("INSERT INTO users SELECT g, 'user ' || g, 'Europe/Berlin' FROM generate_series(1, 5000) g")
        batch, start = 500_000, 1
        while True:
            conn.execute(
                """INSERT INTO events
                   SELECT g, 1 + g %% 5000, timestamptz '2026-01-01' + g * interval '7 seconds',
                          (ARRAY['reminder','done','snooze','note'])[1 + g %% 4],
                          'remind me to ' || md5(random()::text) || ' at ' || (g %% 24)::text || ':00 '
                          || md5(g::text) || ' ' || repeat('x', (g %% 40)::int)
                   FROM generate_series(%s::bigint, %s::bigint) g""", (start, start + batch - 1))
            start += batch
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            if size >= target_bytes:
                break
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"db_bytes": size, "rows": rows + 5000}


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0, help="database size to generate, GiB (default 1.0)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="botstack-bench-")
    server = PostgresServer.start_new()
    from moto.server import ThreadedMotoServer
    s3_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{s3_port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket="bench")
    results: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "host": f"{platform.node()} {os.cpu_count()} cpus", "pg_dump": subprocess.run(
                         ["pg_dump", "--version"], capture_output=True, text=True).stdout.strip()}
    try:
        url = server.create_database("bench")
        log(f"filling the database to {args.gb} GiB ...")
        secs, info = timed(lambda: fill(url, int(args.gb * GiB)))
        results.update(info)
        log(f"database: {info['db_bytes'] / GiB:.2f} GiB, {info['rows']} rows ({secs:.0f} s)")

        env = {"DATABASE_URL": url, "BACKUP_PASSPHRASE": "benchmark passphrase 123",
               "BACKUP_DIR": os.path.join(work, "backups"), "SPACES_ENDPOINT": endpoint,
               "SPACES_BUCKET": "bench", "SPACES_ACCESS_KEY_ID": "bench", "SPACES_SECRET_ACCESS_KEY": "bench",
               "BACKUP_LOCAL_RETENTION_DAYS": "30"}
        tool = BackupTool(Config.from_env(env))  # for the restore; the backups run as a program
        child_env = {**os.environ, **env, "PYTHONPATH": os.path.join(ROOT, "compose", "backup")}

        def tree_rss_mib(pid: int) -> float:
            """Resident memory of a process and its descendants (pg_dump, gpg), from /proc."""
            total, todo = 0, [pid]
            while todo:
                p = todo.pop()
                try:
                    with open(f"/proc/{p}/status") as f:
                        total += next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
                    for task in os.listdir(f"/proc/{p}/task"):
                        with open(f"/proc/{p}/task/{task}/children") as f:
                            todo += [int(c) for c in f.read().split()]
                except (OSError, StopIteration):
                    pass
            return total / 1024

        def ours():
            """`python -m botstack_backup run` as a program; returns the peak RSS of its process tree
            (sampled every 0.1 s: the container's memory limit must hold python + pg_dump + gpg)."""
            proc = subprocess.Popen([sys.executable, "-m", "botstack_backup", "run"], env=child_env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            peak = [0.0]

            def sample():
                while proc.poll() is None:
                    peak[0] = max(peak[0], tree_rss_mib(proc.pid))
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            err = proc.stderr.read()
            proc.wait()
            sampler.join()
            if proc.returncode != 0:
                raise RuntimeError(err.decode()[-2000:])
            return peak[0]

        plain_file = os.path.join(work, "plain.dump")
        plain_times, our_times, rss = [], [], []
        for r in range(args.rounds):
            def plain():
                with open(plain_file, "wb") as out:
                    subprocess.run(["pg_dump", "-Fc", url], stdout=out, check=True)
            secs, _ = timed(plain)
            plain_times.append(secs)
            log(f"round {r + 1}: plain pg_dump -Fc > file: {secs:.1f} s ({os.path.getsize(plain_file) / 2**20:.0f} MiB)")
            secs, peak = timed(ours)
            our_times.append(secs)
            rss.append(peak)
            newest = tool.local_backups()[-1]
            log(f"round {r + 1}: botstack-backup run: {secs:.1f} s ({newest.manifest['size_encrypted'] / 2**20:.0f} MiB "
                f"encrypted, uploaded; peak RSS of python + pg_dump + gpg {peak:.0f} MiB)")
        best_plain, best_ours = min(plain_times), min(our_times)
        results.update({
            "plain_seconds": plain_times, "backup_seconds": our_times,
            "dump_bytes": os.path.getsize(plain_file),
            "encrypted_bytes": tool.local_backups()[-1].manifest["size_encrypted"],
            "backup_peak_rss_mib": round(max(rss)),
            "ratio_best": round(best_plain / best_ours, 3),
            "ratio_mean": round((sum(plain_times) / len(plain_times)) / (sum(our_times) / len(our_times)), 3),
            "backup_mb_per_s_of_database": round(info["db_bytes"] / 2**20 / best_ours, 1),
        })
        target = server.create_database("restore")
        secs, _ = timed(lambda: tool.restore("latest", target_url=target))
        results["restore_seconds"] = round(secs, 1)
        log(f"botstack-backup restore latest: {secs:.1f} s")
        with psycopg.connect(target) as conn:
            restored = conn.execute("SELECT count(*) FROM events").fetchone()[0] + 5000
        assert restored == info["rows"], (restored, info["rows"])
        target2 = server.create_database("plainrestore")
        secs, _ = timed(lambda: subprocess.run(["pg_restore", "--no-owner", "-d", target2, plain_file], check=True))
        results["plain_pg_restore_seconds"] = round(secs, 1)
        log(f"plain pg_restore of the baseline file: {secs:.1f} s")
    finally:
        moto.stop()
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"backup benchmark {results['date']} on {results['host']}, {results['pg_dump']}")
    print(f"  database          {results['db_bytes'] / GiB:.2f} GiB, {results['rows']} rows")
    print(f"  dump -Fc          {results['dump_bytes'] / 2**20:.0f} MiB; encrypted {results['encrypted_bytes'] / 2**20:.0f} MiB")
    print(f"  plain pg_dump     {', '.join(f'{s:.1f}' for s in results['plain_seconds'])} s")
    print(f"  botstack backup   {', '.join(f'{s:.1f}' for s in results['backup_seconds'])} s "
          "(dump + sha256 + gpg + local copy + multipart upload to the S3 double + manifest)")
    print(f"  peak RSS          {results['backup_peak_rss_mib']} MiB (python + pg_dump + gpg, sampled; the container's limit is 192M)")
    print(f"  throughput ratio  {results['ratio_best']} (best vs best), {results['ratio_mean']} (mean vs mean); goal >= 0.8")
    print(f"  restore           {results['restore_seconds']} s (download + verify + decrypt + pg_restore); "
          f"plain pg_restore {results['plain_pg_restore_seconds']} s")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", f"backup_throughput-{results['date'][:10]}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"  written to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
