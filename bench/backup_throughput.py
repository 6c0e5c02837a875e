#!/usr/bin/env python3
"""Benchmark: botstack-backup throughput vs a plain `pg_dump -Fc > file`, and restore time.

    sudo .venv/bin/python bench/backup_throughput.py [--gb 1.0 [--gb 0.3 ...]] [--rounds 2]

Starts a throwaway PostgreSQL server (tests/support/postgres.py) and moto's S3 server (the Spaces
stand-in), and for each --gb size (smallest first; the database grows between sizes) fills a
database with at least that many GiB of rows (pg_database_size), then alternates, for --rounds
rounds:
  - plain: `pg_dump -Fc dbname > file` (the baseline),
  - ours:  `BackupTool.run()`: pg_dump -Fc -> sha256 -> gpg AES-256 -> local copy + streaming
           multipart upload to the S3 double, plus the manifest (row counts in the same snapshot),
and reports throughput ratio = plain seconds / our seconds (goal >= 0.8), and the memory of the
whole run as the container sees it: every run of ours starts in a memory cgroup of its own with the
backup service's limit (192M; bench/memory_cgroup.py), which holds python, pg_dump, gpg and the
gpg-agent gpg starts; the peak of its anonymous memory (sampled every 20 ms), the kernel's peak
usage with the page cache, and OOM kills. (Without root or cgroups: the old /proc sample of the
process tree only.) Then restore time, alternating for --rounds rounds: `BackupTool.restore()`
(download, verify sha256, decrypt streamed into pg_restore, verify) into an empty database, against
a plain `pg_restore` of the baseline file with the same options (--single-transaction ...): the
ratio ours / plain (goal <= 1.3); and separately the safety dump `restore --force` takes of a
non-empty database. Prints the figures and writes them to
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

sys.path.insert(0, os.path.join(ROOT, "bench"))
from memory_cgroup import MemoryCgroup  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20
LIMIT = 192 * MiB   # the backup service's deploy.resources.limits.memory in compose/compose.yml


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fill(url: str, target_bytes: int) -> dict:
    """Reminders-like rows: ids, timestamps, short texts, some random hex (partly compressible).
    Grows an already filled database up to the new target."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('events')").fetchone()[0] is None:
            conn.execute("""CREATE TABLE events (
                id bigint PRIMARY KEY, user_id int NOT NULL, created_at timestamptz NOT NULL,
                kind text NOT NULL, body text NOT NULL)""")
            with open(os.path.join(ROOT, "bot", "migrations", "0002_backup_runs.sql")) as f:
                conn.execute(f.read())
            conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text, tz text)")
            conn.execute("INSERT INTO users SELECT g, 'user ' || g, 'Europe/Berlin' FROM generate_series(1, 5000) g")
        batch = 500_000
        start = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
        while conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] < target_bytes:
            conn.execute(
                """INSERT INTO events
                   SELECT g, 1 + g %% 5000, timestamptz '2026-01-01' + g * interval '7 seconds',
                          (ARRAY['reminder','done','snooze','note'])[1 + g %% 4],
                          'remind me to ' || md5(random()::text) || ' at ' || (g %% 24)::text || ':00 '
                          || md5(g::text) || ' ' || repeat('x', (g %% 40)::int)
                   FROM generate_series(%s::bigint, %s::bigint) g""", (start, start + batch - 1))
            start += batch
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"db_bytes": size, "rows": rows + 5000}


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (pg_dump, gpg), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            pass
    return total / 1024


def run_ours(child_env: dict) -> dict:
    """`python -m botstack_backup run` as a program, in a memory cgroup of its own when possible."""
    cg = MemoryCgroup.create(LIMIT)
    cmd = [sys.executable, "-m", "botstack_backup", "run"]
    if cg:  # the shell moves itself into the cgroup, then becomes the program (no preexec_fn: threads)
        cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs_file, *cmd]
    proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree_peak = [0.0]

    def sample():
        while proc.poll() is None:
            tree_peak[0] = max(tree_peak[0], tree_rss_mib(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if cg:
        cg.start_sampling()
    err = proc.stderr.read()
    proc.wait()
    sampler.join()
    out = {"tree_rss_mib": round(tree_peak[0])}
    if cg:
        cg.stop_sampling()
        out.update(cgroup="v2" if cg.v2 else "v1", anon_peak_mib=round(cg.anon_peak / MiB),
                   usage_peak_mib=round((cg.peak_bytes() or 0) / MiB), oom_kills=cg.oom_kills())
        cg.remove()
    if proc.returncode != 0:
        raise RuntimeError(err.decode()[-2000:])
    return out


def bench_size(gb: float, rounds: int, url: str, work: str, tool: BackupTool, child_env: dict) -> dict:
    log(f"filling the database to {gb} GiB ...")
    secs, info = timed(lambda: fill(url, int(gb * GiB)))
    log(f"database: {info['db_bytes'] / GiB:.2f} GiB, {info['rows']} rows ({secs:.0f} s)")
    plain_file = os.path.join(work, "plain.dump")
    plain_times, our_times, mem = [], [], []
    for r in range(rounds):
        def plain():
            with open(plain_file, "wb") as out:
                subprocess.run(["pg_dump", "-Fc", url], stdout=out, check=True)
        secs, _ = timed(plain)
        plain_times.append(secs)
        log(f"round {r + 1}: plain pg_dump -Fc > file: {secs:.1f} s ({os.path.getsize(plain_file) / MiB:.0f} MiB)")
        secs, m = timed(lambda: run_ours(child_env))
        our_times.append(secs)
        mem.append(m)
        log(f"round {r + 1}: botstack-backup run: {secs:.1f} s; memory {m}")
    res = dict(info, gb=gb, plain_seconds=plain_times, backup_seconds=our_times,
               dump_bytes=os.path.getsize(plain_file),
               encrypted_bytes=tool.local_backups()[-1].manifest["size_encrypted"],
               ratio_best=round(min(plain_times) / min(our_times), 3),
               ratio_mean=round(sum(plain_times) / sum(our_times), 3),
               backup_mb_per_s_of_database=round(info["db_bytes"] / MiB / min(our_times), 1),
               tree_rss_peak_mib=max(m["tree_rss_mib"] for m in mem))
    if "anon_peak_mib" in mem[0]:
        res.update(cgroup=mem[0]["cgroup"], cgroup_anon_peak_mib=max(m["anon_peak_mib"] for m in mem),
                   cgroup_usage_peak_mib=max(m["usage_peak_mib"] for m in mem),
                   oom_kills=sum(m["oom_kills"] for m in mem))
    return res


def restore_times(server, tool: BackupTool, work: str, rows: int, rounds: int) -> dict:
    """Ours (`restore latest` into an empty database: download + sha256 + gpg streamed into
    pg_restore) against a plain `pg_restore` of the same dump with the options ours uses, alternating;
    then, separately, `restore --force` over the now non-empty database (it takes a safety dump first)."""
    plain_file = os.path.join(work, "plain.dump")
    ours, plain = [], []
    for r in range(rounds):
        target = server.create_database(f"plainrestore{r}")
        psecs, _ = timed(lambda t=target: subprocess.run(
            ["pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
             "-d", t, plain_file], check=True))
        plain.append(psecs)
        log(f"round {r + 1}: plain pg_restore of the same dump: {psecs:.1f} s")
        target = server.create_database(f"restore{r}")
        secs, _ = timed(lambda t=target: tool.restore("latest", target_url=t))
        ours.append(secs)
        log(f"round {r + 1}: botstack-backup restore latest: {secs:.1f} s")
    with psycopg.connect(target) as conn:
        restored = conn.execute("SELECT count(*) FROM events").fetchone()[0] + 5000
    assert restored == rows, (restored, rows)
    from botstack_backup import safety
    ssecs, path = timed(lambda: safety.safety_dump(tool, target))
    os.unlink(path)
    fsecs, _ = timed(lambda: tool.restore("latest", target_url=target, force=True))
    log(f"safety dump of the non-empty database: {ssecs:.1f} s; restore --force over it: {fsecs:.1f} s")
    return {"restore_seconds": [round(x, 1) for x in ours], "plain_pg_restore_seconds": [round(x, 1) for x in plain],
            "restore_ratio_best": round(min(ours) / min(plain), 3),
            "restore_ratio_mean": round(sum(ours) / sum(plain), 3),
            "safety_dump_seconds": round(ssecs, 1), "restore_force_with_safety_dump_seconds": round(fsecs, 1)}


def report(results: dict) -> None:
    print()
    print(f"backup benchmark {results['date']} on {results['host']}, {results['pg_dump']}")
    for r in results["sizes"]:
        print(f"  database          {r['db_bytes'] / GiB:.2f} GiB, {r['rows']} rows")
        print(f"    dump -Fc          {r['dump_bytes'] / MiB:.0f} MiB; encrypted {r['encrypted_bytes'] / MiB:.0f} MiB")
        print(f"    plain pg_dump     {', '.join(f'{s:.1f}' for s in r['plain_seconds'])} s")
        print(f"    botstack backup   {', '.join(f'{s:.1f}' for s in r['backup_seconds'])} s "
              "(dump + sha256 + gpg + local copy + multipart upload to the S3 double + manifest)")
        print(f"    throughput ratio  {r['ratio_best']} (best vs best), {r['ratio_mean']} (mean vs mean); goal >= 0.8")
        if "cgroup_anon_peak_mib" in r:
            print(f"    memory (cgroup {r['cgroup']}, limit {LIMIT // MiB}M: python + pg_dump + gpg + gpg-agent) "
                  f"peak anonymous {r['cgroup_anon_peak_mib']} MiB; peak usage with page cache "
                  f"{r['cgroup_usage_peak_mib']} MiB; OOM kills {r['oom_kills']}")
        print(f"    process tree RSS  {r['tree_rss_peak_mib']} MiB (python + pg_dump + gpg, /proc sampled every 0.1 s)")
    print(f"  restore           {results['restore_seconds']} s (download + verify + decrypt streamed into "
          f"pg_restore) of the largest; plain pg_restore {results['plain_pg_restore_seconds']} s")
    print(f"  restore ratio     {results['restore_ratio_best']} (best vs best), {results['restore_ratio_mean']} "
          "(mean vs mean); goal <= 1.3")
    print(f"  safety dump       {results['safety_dump_seconds']} s of the non-empty database (restore --force "
          f"over it: {results['restore_force_with_safety_dump_seconds']} s, not in the ratio)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, action="append",
                    help="database size to benchmark, GiB; repeat for several (default 1.0)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    sizes = sorted(args.gb or [1.0])

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
                         ["pg_dump", "--version"], capture_output=True, text=True).stdout.strip(),
                     "sizes": []}
    try:
        url = server.create_database("bench")
        env = {"DATABASE_URL": url, "BACKUP_PASSPHRASE": "benchmark passphrase 123",
               "BACKUP_DIR": os.path.join(work, "backups"), "SPACES_ENDPOINT": endpoint,
               "SPACES_BUCKET": "bench", "SPACES_ACCESS_KEY_ID": "bench", "SPACES_SECRET_ACCESS_KEY": "bench",
               "BACKUP_LOCAL_RETENTION_DAYS": "30"}
        tool = BackupTool(Config.from_env(env))  # for the restore; the backups run as a program
        child_env = {**os.environ, **env, "PYTHONPATH": os.path.join(ROOT, "compose", "backup")}
        for gb in sizes:
            results["sizes"].append(bench_size(gb, args.rounds, url, work, tool, child_env))
        results.update(restore_times(server, tool, work, results["sizes"][-1]["rows"], args.rounds))
    finally:
        moto.stop()
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", f"backup_throughput-{results['date'][:10]}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"  written to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
