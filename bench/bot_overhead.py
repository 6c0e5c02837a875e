"""Overhead: update -> reply time of the real `python -m bot` against a bare PTB echo bot, each on its
own Bot API double, requests interleaved in the same run (same machine noise).

Requests are paced 50 ms apart (20/s, under Telegram's 30 msg/s: a sequential request/reply loop
with no pause would measure the bot's rate limiter, 1/29 s per reply, not its overhead; the echo
bot has no limiter and would happily exceed Telegram's ceiling). Requests rotate over 20 users, so
each chat sees one request every 2 s (the bot keeps Telegram's 1 msg/s per chat, an echo bot does
not; this keeps that out of the comparison) and, as in real use, users are not new every time.
Latency = time the reply reaches
the double - time the update was enqueued (both bots long-poll, so both include the wake-up).

    .venv/bin/python bench/bot_overhead.py [--requests 300] [--baseline DIR]

`--baseline DIR` (repeatable) runs another checkout's bot as well (say `git worktree add /tmp/old <commit>`),
interleaved with the others, so old and new are compared under the same machine noise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bot_common import BotApiDouble, PostgresServer, REPO, TOKEN, machine, start_bot, stop

ECHO = r"""
import sys
from telegram.ext import ApplicationBuilder, MessageHandler, filters
async def echo(update, context):
    await update.effective_message.reply_text(update.effective_message.text)
app = ApplicationBuilder().token(sys.argv[1]).base_url(sys.argv[2] + "/bot").build()
app.add_handler(MessageHandler(filters.TEXT, echo))
app.run_polling(timeout=10, poll_interval=0)
"""


def roundtrip(api, user: int, text: str) -> float:
    before = len(api.sent_messages(user))
    t0 = time.monotonic()
    api.push_message(user, text)
    api.wait_for(lambda: len(api.sent_messages(user)) > before, timeout=30)
    reply = [c for c in api.calls if c.method == "sendMessage" and c.params.get("chat_id") == user][-1]
    return (reply.at - t0) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--baseline", metavar="DIR", action="append", default=[],
                    help="also run the bot of another checkout (e.g. a `git worktree` of an older "
                         "commit), interleaved in the same run, on its own double and database "
                         "(repeatable; labelled by the directory's name)")
    args = ap.parse_args()
    n = args.requests
    pg = PostgresServer.start_new()
    a_echo = BotApiDouble(TOKEN).start()
    bots = {"botstack": (BotApiDouble(TOKEN).start(), REPO)}
    for d in args.baseline:
        bots[os.path.basename(os.path.abspath(d))] = (BotApiDouble(TOKEN).start(), os.path.abspath(d))
    apis = [a_echo] + [api for api, _ in bots.values()]
    users = list(range(20000, 20000 + n))
    procs = []
    try:
        for api, cwd in bots.values():
            url = pg.create_database(f"overhead_{len(procs)}")  # each bot migrates its own at start
            procs.append(start_bot(api, url, ",".join(map(str, users)),
                                   tempfile.mktemp(prefix="bot-ovh-", suffix=".log"), cwd=cwd))
        procs.append(subprocess.Popen([sys.executable, "-c", ECHO, TOKEN, a_echo.base_url], cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for api in apis:
            api.wait_for(lambda api=api: any(c.method == "getUpdates" for c in api.calls), 60)
        # warm-up
        for u in range(1, 6):
            roundtrip(a_echo, u, "warm")
            for api, _ in bots.values():
                roundtrip(api, users[-u], "/help")
        echo: list[float] = []
        help_: dict[str, list[float]] = {name: [] for name in bots}
        remind: dict[str, list[float]] = {name: [] for name in bots}
        for i in range(n - 5):
            u = users[i % 20]
            time.sleep(0.05)
            echo.append(roundtrip(a_echo, u, "hello"))
            for name, (api, _) in bots.items():
                time.sleep(0.05)
                if i % 2:
                    help_[name].append(roundtrip(api, u, "/help"))
                else:
                    remind[name].append(roundtrip(api, u, "remind me in 10 minutes to stretch"))
        print(f"# bench/bot_overhead.py — {machine()}")
        print(f"{'':44} {'median ms':>9} {'p95 ms':>8}  ratio (median)")
        e = statistics.median(echo)
        print(f"{'bare PTB echo bot':44} {e:9.1f} {pct(echo, 95):8.1f}  1.00x")
        for name in bots:
            for what, xs in (("/help (no database)", help_[name]),
                             ("'remind me in 10 minutes ...'", remind[name])):
                m = statistics.median(xs)
                label = f"{name} {what}"
                print(f"{label:44} {m:9.1f} {pct(xs, 95):8.1f}  {m / e:.2f}x")
        print(f"samples: echo {len(echo)}, /help {len(help_['botstack'])}, remind {len(remind['botstack'])}"
              + "".join(f"; {name}: {cwd}" for name, (_, cwd) in list(bots.items())[1:]))
    finally:
        for p in procs:
            stop(p)
        for api in apis:
            api.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
