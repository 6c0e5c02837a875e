"""Burst: N reminders (default 10,000) due in the same minute, spread over many users, delivered by
the real `python -m bot` to the Bot API double *enforcing* Telegram's limits (30 msg/s overall,
1 msg/s per chat: it answers 429 when they are exceeded).

Prints: delivery rate vs the 30 msg/s ceiling, lost, duplicated, 429s received.

    .venv/bin/python bench/bot_burst.py [--reminders 10000] [--users 1000]
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time

import psycopg

from bot_common import BotApiDouble, PostgresServer, TOKEN, machine, start_bot, stop
from bot import db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reminders", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=1000)
    a = ap.parse_args()
    pg = PostgresServer.start_new()
    api = BotApiDouble(TOKEN, enforce_limits=True).start()
    try:
        url = pg.create_database("burst")
        db.migrate(url)
        users = list(range(10_000, 10_000 + a.users))
        with psycopg.connect(url, autocommit=True) as c:
            with c.cursor().copy("COPY users (user_id, chat_id) FROM STDIN") as cp:
                for u in users:
                    cp.write_row((u, u))
            with c.cursor().copy("COPY reminders (user_id, chat_id, text, tz, due_at) FROM STDIN") as cp:
                due = time.strftime("%Y-%m-%d %H:%M:00+00", time.gmtime())  # all in this minute
                for i in range(a.reminders):
                    u = users[i % len(users)]
                    cp.write_row((u, u, f"burst {i}", "UTC", due))
        log = tempfile.mktemp(prefix="bot-burst-", suffix=".log")
        proc = start_bot(api, url, ",".join(map(str, users)), log)
        t0 = time.monotonic()
        deadline = t0 + a.reminders / 25 + 120
        api.wait_for(lambda: len(api.sent_messages()) >= a.reminders or time.monotonic() > deadline
                     or proc.poll() is not None, timeout=a.reminders / 25 + 130)
        time.sleep(2)
        stop(proc)
        sent = api.sent_messages()
        texts = collections.Counter(m["text"].split("\n")[0] for m in sent)
        lost = sum(1 for i in range(a.reminders) if texts.get(f"⏰ burst {i}", 0) == 0)
        dup = sum(c - 1 for c in texts.values() if c > 1)
        st = api.rate_stats()
        with psycopg.connect(url) as c:
            done = c.execute("SELECT count(*) FROM reminders WHERE status = 'done'").fetchone()[0]
        print(f"# bench/bot_burst.py — {machine()}")
        print(f"reminders due in the same minute: {a.reminders} over {a.users} chats")
        print(f"delivered: {len(sent)} in {st['duration']:.1f} s -> {st['mean_rate']:.1f} msg/s "
              f"(Telegram ceiling 30 msg/s: {100 * st['mean_rate'] / 30:.0f}%)")
        print(f"worst 1 s window: {st['max_overall_in_window']} msgs overall, "
              f"{st['max_per_chat_in_window']} per chat; min gap in a chat: "
              f"{(st['min_gap_per_chat'] or 0):.2f} s")
        print(f"lost: {lost}   duplicated: {dup}   429s received: {api.injected['limit429'] + api.injected['429']}")
        print(f"reminders marked done in the database: {done}")
    finally:
        api.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
