"""Fairness: how late are other users' reminders while one user has a backlog of 10,000 due?

One user (A) has N reminders (default 10,000) already due; Telegram lets a chat receive one message
a second, so A's backlog takes ~N seconds to drain whatever the bot does. While it drains, M other
users (default 20) each have one reminder falling due a few seconds into the run. Measured at the
Bot API double (enforcing Telegram's limits) for the real bot process, twice in the same run:

- before: the bot with its due query as it was before issue 18 (global, oldest first: A's whole
  backlog ahead of everyone; a chat's queue unbounded), patched into the current code;
- after: the bot as it is (at most a few queued per chat, the chats with the fewest queued
  first).

Prints each phase's lateness of the other users' reminders (or how many were still waiting when
the observation window closed, and how long they would wait behind A's backlog) and A's own rate;
then what the fair query costs: its time per tick with 10,000 and 100,000 reminders due, in one
chat or over 1,000, beside the query it replaced.

    .venv/bin/python bench/bot_fairness.py [--backlog 10000] [--others 20] [--window 60]
                                           [--query-sizes 10000,100000]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone

import psycopg

from bot_common import BotApiDouble, PostgresServer, TOKEN, machine, start_bot, stop
from bot import db
from bot import delivery_store as ds

A = 20_000

# The bot as it was before the fix (commit 076efb1): its due query in place of the current one (the
# extra arguments of the current signature accepted and ignored), and no cap on a chat's queue.
BEFORE_QUERY = """SELECT r.id, r.chat_id, r.due_at, COALESCE(u.tz, r.tz) AS user_tz,
                      u.quiet_start, u.quiet_end
               FROM reminders r LEFT JOIN users u ON u.user_id = r.user_id
               WHERE r.status = 'pending' AND r.due_at <= %s
                 AND (r.hold_until IS NULL OR r.hold_until <= %s) AND NOT (r.id = ANY(%s))
               ORDER BY r.due_at, r.id LIMIT %s"""

BEFORE_CHILD = r"""
import runpy, sys
from psycopg.rows import dict_row
import bot.delivery_store as ds
import bot.scheduler as sch

async def due_candidates(pool, now, limit, exclude=None, per_chat=None, queued=None):
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute('''{QUERY}''', (now, now, list(exclude or ()), limit))
        return await cur.fetchall()

ds.due_candidates = due_candidates
_init = sch.Scheduler.__init__

def init(self, *args, **kwargs):
    _init(self, *args, **dict(kwargs, per_chat=10**9))

sch.Scheduler.__init__ = init
sys.argv = ["bot"]
runpy.run_module("bot", run_name="__main__", alter_sys=True)
""".replace("{QUERY}", BEFORE_QUERY)


def phase(pg, name: str, argv: list[str] | None, backlog: int, others: list[int], window: float) -> dict:
    api = BotApiDouble(TOKEN, enforce_limits=True).start()
    url = pg.create_database(f"fair_{name}")
    try:
        db.migrate(url)
        with psycopg.connect(url, autocommit=True) as c:
            with c.cursor().copy("COPY users (user_id, chat_id) FROM STDIN") as cp:
                for u in [A, *others]:
                    cp.write_row((u, u))
            with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at) FROM STDIN") as cp:
                due = datetime.now(timezone.utc) - timedelta(minutes=1)
                for i in range(backlog):
                    cp.write_row((A, A, f"backlog {i}", "UTC", due + timedelta(milliseconds=i)))
        log = tempfile.mktemp(prefix=f"bot-fair-{name}-", suffix=".log")
        proc = start_bot(api, url, ",".join(map(str, [A, *others])), log, argv=argv)
        try:
            # once A's backlog is flowing, the others' reminders fall due 3 s later
            api.wait_for(lambda: api.sent_messages(A) or proc.poll() is not None, 60)
            if proc.poll() is not None:
                raise RuntimeError(f"the bot exited; see {log}")
            due_wall = datetime.now(timezone.utc) + timedelta(seconds=3)
            due_mono = time.monotonic() + 3
            with psycopg.connect(url, autocommit=True) as c:
                for u in others:
                    c.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) "
                              "VALUES (%s, %s, 'on time', 'UTC', %s)", (u, u, due_wall))
            a_before = len(api.send_times(A))
            try:
                api.wait_for(lambda: all(api.send_times(u) for u in others) or proc.poll() is not None,
                             timeout=window)
            except TimeoutError:
                pass  # still waiting: reported as such
            waited = time.monotonic() - due_mono
            lateness = [api.send_times(u)[0] - due_mono for u in others if api.send_times(u)]
            a_times = api.send_times(A)
            a_rate = (len(a_times) - 1) / (a_times[-1] - a_times[0]) if len(a_times) > 1 else 0.0
            with psycopg.connect(url, autocommit=True) as c:
                ahead = c.execute("SELECT count(*) FROM reminders WHERE user_id = %s AND status = 'pending' "
                                  "AND due_at < %s", (A, due_wall)).fetchone()[0]
        finally:
            stop(proc)
        return {"lateness": lateness, "waiting": len(others) - len(lateness), "waited": waited,
                "a_sent": len(a_times), "a_sent_meanwhile": len(a_times) - a_before, "a_rate": a_rate,
                "ahead": ahead}
    finally:
        api.stop()
        pg.drop_database(url)


def report(name: str, r: dict, others: int) -> None:
    late = r["lateness"]
    if late:
        print(f"{name:>6}: {len(late)}/{others} delivered, lateness median {statistics.median(late):.1f} s, "
              f"max {max(late):.1f} s")
    if r["waiting"]:
        eta = r["waited"] + (r["ahead"] / r["a_rate"] if r["a_rate"] else float("inf"))
        print(f"{name:>6}: {r['waiting']}/{others} still waiting after {r['waited']:.0f} s, behind "
              f"{r['ahead']:,} of A's reminders at {r['a_rate']:.2f} msg/s: ~{eta:,.0f} s "
              f"({eta / 3600:.1f} h) late")
    print(f"{'':>6}  A: {r['a_sent']} sent at {r['a_rate']:.2f} msg/s "
          f"({r['a_sent_meanwhile']} while the others were due)")


def query_cost(pg, n: int, chats: int) -> tuple[float, float]:
    """Median ms of the fair due query and of the one it replaced, `n` due over `chats` chats."""
    url = pg.create_database(f"fair_q{n}_{chats}")
    try:
        db.migrate(url)
        with psycopg.connect(url, autocommit=True) as c:
            with c.cursor().copy("COPY users (user_id, chat_id) FROM STDIN") as cp:
                for u in range(chats):
                    cp.write_row((A + u, A + u))
            with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at) FROM STDIN") as cp:
                due = datetime.now(timezone.utc) - timedelta(hours=1)
                for i in range(n):
                    u = A + i % chats
                    cp.write_row((u, u, f"r{i}", "UTC", due + timedelta(milliseconds=i)))
            c.execute("ANALYZE reminders")

        async def timed() -> tuple[float, float]:
            pool = db.make_pool(url)
            await pool.open()
            try:
                now = datetime.now(timezone.utc)
                fair, before = [], []
                for _ in range(7):
                    t = time.perf_counter()
                    await ds.due_candidates(pool, now, 2000)
                    fair.append(time.perf_counter() - t)
                    async with pool.connection() as conn:
                        t = time.perf_counter()
                        await (await conn.execute(BEFORE_QUERY, (now, now, [], 2000))).fetchall()
                        before.append(time.perf_counter() - t)
                return statistics.median(fair) * 1000, statistics.median(before) * 1000
            finally:
                await pool.close()
        return asyncio.run(timed())
    finally:
        pg.drop_database(url)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backlog", type=int, default=10_000, help="user A's due reminders")
    ap.add_argument("--others", type=int, default=20, help="other users, one reminder each")
    ap.add_argument("--window", type=float, default=60.0, help="seconds to wait for the others")
    ap.add_argument("--query-sizes", default="10000,100000", help="due backlogs to time the query at")
    a = ap.parse_args()
    others = list(range(A + 1, A + 1 + a.others))
    pg = PostgresServer.start_new()
    try:
        before = phase(pg, "before", ["-c", BEFORE_CHILD], a.backlog, others, a.window)
        after = phase(pg, "after", None, a.backlog, others, a.window)
        costs = [(n, chats, *query_cost(pg, n, chats))
                 for n in (int(x) for x in a.query_sizes.split(",") if x) for chats in (1, 1000)]
    finally:
        pg.destroy()
    print(f"# bench/bot_fairness.py — {machine()}")
    print(f"user A: {a.backlog:,} reminders due; {a.others} other users: one reminder each, due 3 s "
          f"into A's backlog; window {a.window:.0f} s")
    report("before", before, a.others)
    report("after", after, a.others)
    print("due query per tick (median ms): reminders due | chats | fair (now) | oldest first (before)")
    for n, chats, fair, old in costs:
        print(f"{n:>30,} | {chats:>5,} | {fair:>10.1f} | {old:>21.1f}")


if __name__ == "__main__":
    main()
