"""Memory: RSS of the real `python -m bot` with 1k, 10k and 100k stored reminders, beside PTB's own
JobQueue (APScheduler) holding the same number of jobs in a bare PTB process.

    .venv/bin/python bench/bot_memory.py [--counts 1000,10000,100000]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import psycopg

from bot_common import BotApiDouble, PostgresServer, REPO, TOKEN, machine, rss_mb, start_bot, stop

JOBQUEUE_CHILD = r"""
import asyncio, sys, resource
from telegram.ext import ApplicationBuilder
n, base = int(sys.argv[1]), sys.argv[2]
async def cb(ctx): pass
async def main():
    app = ApplicationBuilder().token(sys.argv[3]).base_url(base + "/bot").build()
    await app.initialize()
    await app.job_queue.start()
    for i in range(n):
        app.job_queue.run_once(cb, when=86400 + i, chat_id=10000 + i % 100,
                               data={"text": f"reminder {i}"}, name=f"r{i}")
    await asyncio.sleep(2)
    print(open("/proc/self/status").read().split("VmRSS:")[1].split()[0], flush=True)
    await app.job_queue.stop(wait=False)
    await app.shutdown()
asyncio.run(main())
"""


def bot_rss(pg, api, n: int) -> float:
    from bot import db
    url = pg.create_database(f"mem{n}")
    db.migrate(url)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("INSERT INTO users (user_id, chat_id) SELECT g, g FROM generate_series(10000, 10099) g")
        with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at, recurrence) FROM STDIN") as cp:
            for i in range(n):
                u = 10000 + i % 100
                rec = '{"kind": "daily", "hour": 9, "minute": 0}' if i % 3 == 0 else None
                cp.write_row((u, u, f"reminder {i}", "Europe/Berlin",
                              "2099-01-01 00:00:00+00", rec))
    log = tempfile.mktemp(prefix="bot-mem-", suffix=".log")
    proc = start_bot(api, url, ",".join(str(10000 + i) for i in range(100)), log)
    try:
        api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls) or proc.poll() is not None, 60)
        # exercise it: a /list and a few reminders per chat, then sample for a while
        for u in range(10000, 10010):
            api.push_command(u, "list")
        peak = 0.0
        t_end = time.monotonic() + 6
        while time.monotonic() < t_end:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.25)
        return peak
    finally:
        stop(proc)
        pg.drop_database(url)


def jobqueue_rss(api, n: int) -> float:
    out = subprocess.run([sys.executable, "-c", JOBQUEUE_CHILD, str(n), api.base_url, TOKEN],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return int(out.stdout.strip()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1000,10000,100000")
    counts = [int(x) for x in ap.parse_args().counts.split(",")]
    pg = PostgresServer.start_new()
    api = BotApiDouble(TOKEN).start()
    try:
        print(f"# bench/bot_memory.py — {machine()}")
        print(f"{'stored reminders':>17} | {'bot RSS (MB)':>12} | {'PTB JobQueue RSS (MB)':>21}")
        for n in counts:
            api.reset()
            b = bot_rss(pg, api, n)
            j = jobqueue_rss(api, n)
            print(f"{n:>17,} | {b:>12.1f} | {j:>21.1f}", flush=True)
    finally:
        api.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
