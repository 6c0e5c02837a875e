"""A new stack from existing backups, on the stand-in droplet (issue 21): how long from `pulumi up` to
the restored bot answering, and what is lost.

    .venv/bin/python bench/droplet_restore.py [--bulk 100000] [--region fra1] [--lost-droplet] [--keep]

Stack 1 boots on the stand-in (tests/droplet: the program's user-data under systemd and cloud-init,
the deploy over SSH; docs/rehearsal.md) and deploys; the user makes a handful of reminders in chat
(one-shot and recurring) and --bulk more by SQL; a backup runs (`botstack-backup run`, to moto's
S3 server); then a few more reminders in chat. Then stack 1 goes: by default as `pulumi destroy`
takes it (the program's delete steps, dependents first: the final backup, the stack stopped), with
--lost-droplet as a droplet that dies (no final backup). Either way the droplet, its Docker data and
its volume are removed and the store (moto, with its objects) stays.

Stack 2 is a fresh program run of the same stack with `restoreFrom: s3://<stack 1's bucket>/backups/`
and a read-only key for it, by default in another region (--region: a move, so also
`restoreFromEndpoint` = the old region's Spaces; the stand-in points both endpoints at moto) with
the same backupPassphrase (the stack file keeps it). It boots a NEW stand-in with an empty volume and
deploys; timed from the program run's start: the program, the boot (container start -> systemd ->
cloud-init done), the image load (a stand-in substitution), each deploy step (activate: the build,
`restore-into-empty`, the stack up), the restore itself (the tool's own `restore` record) and the
first `/list` answer that shows the restored reminders. Then checked: every reminder of the backup
is back with the same id, text, zone, due time, recurrence and status; lost are exactly the ones
made after that backup (none when the destroy's final backup ran). Last, "never over existing data":
a reminder made on stack 2, then its activate step run again with restoreFrom still set: nothing
restored, nothing changed.

Needs root and a Docker engine (tests/support/docker_engine.py); run it under the shared lock:
`flock /tmp/botstack-docker.lock .venv/bin/python bench/droplet_restore.py`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# its own names, so a stand-in another run left behind (tests/droplet, bench/droplet_host.py) is not touched
os.environ.setdefault("BOTSTACK_STANDIN_PREFIX", "botstack-restorebench")

from tests.droplet.session import Session  # noqa: E402
from tests.rehearsal import images  # noqa: E402
from tests.support.docker_engine import Engine, cache_dir  # noqa: E402

OLD_REGION = "ams3"  # Pulumi.dev.yaml's
PREFIX = "backups/"  # the tool's BACKUP_PREFIX
# (phrase, a word of the bot's answer); made in chat before the backup: all must come back
KEPT = [("tomorrow at 9:00 call the dentist", "dentist"),
        ("every monday 10:00 water the plants", "plants"),
        ("every day at 23:00 take the vitamins", "vitamins"),
        ("in 2 days renew the passport", "passport"),
        ("every year on March 8 congratulate mom", "mom")]
# made after the backup: lost unless a final backup took them
AFTER = [("tomorrow at 18:30 buy the cake", "cake"),
         ("every friday 17:00 submit the timesheet", "timesheet"),
         ("in 3 days return the library books", "library")]
ROWS = ("SELECT coalesce(json_agg(r ORDER BY r.id), '[]') FROM (SELECT id, text, tz, recurrence, "
        "due_at, status FROM reminders WHERE text NOT LIKE 'bulk reminder %') r")
# the bulk rows compared by one digest (100,000 rows through `docker exec` twice would be slow)
BULK = ("SELECT count(*) || ' ' || coalesce(md5(string_agg(concat_ws('|', id, text, tz, recurrence, "
        "due_at, status), ',' ORDER BY id)), '') FROM reminders WHERE text LIKE 'bulk reminder %'")
USERS = ("SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', user_id, chat_id, tz), ',' ORDER BY user_id)) "
         "FROM users")
# the bulk goes to other users (BULK_USER_BASE + 1...), BULK_PER_USER each: one person may keep 1,000
BULK_USER_BASE, BULK_PER_USER = 900_000_000, 100


def since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


def chat(s: Session, phrases: list[tuple[str, str]]) -> None:
    for phrase, word in phrases:
        s.ask(f"/remind {phrase}", word)


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict]  # the chat-made reminders, each as stored
    bulk: str         # the bulk reminders: "<count> <md5 of all of them>"
    users: str        # every user: "<count> <md5>"

    @property
    def count(self) -> int:
        return len(self.rows) + int(self.bulk.split()[0])


def snapshot(s: Session) -> Snapshot:
    return Snapshot(json.loads(s.psql(ROWS)), s.psql(BULK), s.psql(USERS))


def stack_1(s: Session, bulk: int, lost_droplet: bool, fig: dict) -> dict[str, Snapshot]:
    """Boot, deploy, the reminders, a backup, more reminders, and the destroy. Returns what stack 2
    must bring back."""
    t0 = time.monotonic()
    s.boot()
    fig["boot_s"] = since(t0)
    fig["deploy_s"] = sum(s.deploy(s.steps1).values())
    s.ask("/start", "")
    s.ask("/tz Europe/Berlin", "Europe/Berlin")
    chat(s, KEPT)
    if bulk:
        users = -(-bulk // BULK_PER_USER)
        s.psql(f"INSERT INTO users (user_id, chat_id) SELECT {BULK_USER_BASE} + u, {BULK_USER_BASE} + u "
               f"FROM generate_series(1, {users}) u")
        s.psql(f"INSERT INTO reminders (user_id, chat_id, text, tz, due_at) SELECT {BULK_USER_BASE} + 1 + i % "
               f"{users}, {BULK_USER_BASE} + 1 + i % {users}, 'bulk reminder ' || i, 'UTC', now() + interval "
               f"'30 days' + i * interval '1 minute' FROM generate_series(1, {bulk}) i")
        fig["bulk_users"] = users
    before = set(s.bucket_keys())
    t1 = time.monotonic()
    s.compose("exec", "-T", "backup", "botstack-backup", "run", timeout=900)
    fig["backup_s"] = since(t1)
    fig["backup_objects"] = sorted(set(s.bucket_keys()) - before)
    fig["database_size"] = s.psql("SELECT pg_size_pretty(pg_database_size('botstack'))")
    at_backup = snapshot(s)
    chat(s, AFTER)
    at_end = snapshot(s)
    assert len(at_end.rows) == len(KEPT) + len(AFTER), at_end.rows
    t2 = time.monotonic()
    if lost_droplet:
        fig["destroy"] = "the droplet lost (no delete step, no final backup)"
    else:
        # as `pulumi destroy` runs the delete steps: dependents first (tests/droplet/test_4_destroy.py)
        deleting = [st for st in reversed(s.steps1) if st.delete]
        outs = {st.name: s.destroy_step(st) for st in deleting}
        assert "final backup done" in outs["deploy-final-backup"], outs["deploy-final-backup"][-2000:]
        fig["destroy"] = "pulumi destroy's delete steps: " + ", ".join(outs)
    fig["destroy_steps_s"] = since(t2)
    s.d.remove()
    fig["store_objects_after_destroy"] = len(s.bucket_keys())
    return {"at_backup": at_backup, "at_end": at_end, "expected": at_end if not lost_droplet else at_backup}


def stack_2(s: Session, fig: dict) -> None:
    t_up = time.monotonic()
    s.boot()
    fig["program_and_volume_s"] = round(s.boot_started - t_up, 1)
    for key in ("volume_attached_s", "boot_systemd_s", "boot_cloud_init_done_s", "load_images_s"):
        fig[key] = s.figures[key]
    wall = datetime.now(timezone.utc)
    told = len(s.sent())
    t_deploy = time.monotonic()
    fig["deploy_steps_s"] = s.deploy(s.steps1)
    fig["deploy_s"] = since(t_deploy)
    # the tool tells the admins (the test user is one) which backup came back
    fig["admins_told"] = next((m.get("text", "") for m in s.sent()[told:] if "restored" in (m.get("text") or "")),
                              None)
    t_list = time.monotonic()
    answer = s.ask("/list", KEPT[0][1], timeout=120)
    fig["deploy_end_to_first_list_answer_s"] = since(t_list)
    fig["up_to_restored_answer_s"] = since(t_up)
    fig["first_list_answer"] = answer.get("text", "")
    restore = json.loads(s.psql(
        "SELECT row_to_json(r) FROM (SELECT ok, detail, extract(epoch FROM finished_at - started_at) AS secs, "
        "extract(epoch FROM started_at) AS started FROM backup_runs WHERE kind = 'restore' "
        "ORDER BY id DESC LIMIT 1) r") or "null")
    assert restore and restore["ok"], f"no successful restore recorded: {restore}"
    fig["restore_s"] = round(float(restore["secs"]), 1)
    fig["restore_started_after_deploy_start_s"] = round(float(restore["started"]) - wall.timestamp(), 1)
    # activate = the images' build (and the restore's container start) + the restore + the stack up
    steps = list(fig["deploy_steps_s"])
    before = sum(fig["deploy_steps_s"][n] for n in steps[:steps.index("deploy-activate")])
    fig["activate_until_the_restore_s"] = round(fig["restore_started_after_deploy_start_s"] - before, 1)
    fig["activate_after_the_restore_s"] = round(fig["deploy_steps_s"]["deploy-activate"]
                                                - fig["activate_until_the_restore_s"] - fig["restore_s"], 1)
    fig["restore_detail"] = restore["detail"]
    activate = next(log for log in s.logs if log.startswith("$ deploy-activate "))
    assert "restoring the newest backup of s3://" in activate, activate[-3000:]


def compare(s: Session, made: dict[str, Snapshot], fig: dict) -> None:
    now, at_end, expected = snapshot(s), made["at_end"], made["expected"]
    by_id = {r["id"]: r for r in now.rows}
    texts_now = {r["text"] for r in now.rows}
    after_backup = [r["text"] for r in at_end.rows if r["text"] not in {b["text"] for b in made["at_backup"].rows}]
    fig["reminders_before_destroy"] = at_end.count
    fig["reminders_restored"] = now.count
    fig["lost"] = sorted(r["text"] for r in at_end.rows if r["text"] not in texts_now)
    fig["lost_expected"] = sorted(t for t in after_backup if t not in {r["text"] for r in expected.rows})
    assert fig["lost"] == fig["lost_expected"], (fig["lost"], fig["lost_expected"])
    changed = [r for r in expected.rows if by_id.get(r["id"]) != r]
    assert not changed, f"restored differently (id, text, tz, due_at, recurrence, status): {changed} vs {now.rows}"
    assert len(now.rows) == len(expected.rows), now.rows
    assert now.bulk == expected.bulk, (now.bulk, expected.bulk)
    assert now.users == expected.users, (now.users, expected.users)
    fig["restored_identical"] = ("every reminder of the backup: same id, text, tz, due_at, recurrence, "
                                 "status; every user the same")
    fig["recurring_restored"] = sorted(r["text"] for r in now.rows if r["recurrence"])


def never_over_data(s: Session, fig: dict) -> None:
    """A reminder made on stack 2, then its activate step again with restoreFrom still set."""
    s.ask("/remind tomorrow at 7:00 made on the new stack", "new stack")
    before = snapshot(s)
    activate = next(st for st in s.steps1 if st.name == "deploy-activate")
    t0 = time.monotonic()
    s.deploy([activate])
    fig["redeploy_activate_s"] = since(t0)
    out = s.logs[-1]
    assert "restoring the newest backup of s3://" in out and "nothing restored" in out, out[-3000:]
    assert snapshot(s) == before, "a later deploy with restoreFrom set changed the data"
    restores = int(s.psql("SELECT count(*) FROM backup_runs WHERE kind = 'restore'"))
    assert restores == 1, f"{restores} restore records"
    fig["later_deploy"] = "restore-into-empty --skip-if-data: nothing restored, every row unchanged"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bulk", type=int, default=100_000, help="reminders added by SQL before the backup")
    ap.add_argument("--region", default="fra1", help=f"stack 2's region ({OLD_REGION}: the same as stack 1's)")
    ap.add_argument("--lost-droplet", action="store_true",
                    help="stack 1's droplet dies instead of `pulumi destroy` (no final backup)")
    ap.add_argument("--keep", action="store_true", help="leave stack 2's stand-in and the doubles running")
    args = ap.parse_args()
    engine = Engine(cache_dir() / "engine").ensure()
    refs = images.ensure_droplet_run()
    work = Path(tempfile.mkdtemp(prefix="botstack-bench-restore-"))
    fig: dict[str, Any] = {"mode": "lost droplet" if args.lost_droplet else "pulumi destroy",
                           "regions": f"{OLD_REGION} -> {args.region}", "bulk_reminders": args.bulk,
                           "chat_reminders_before_backup": len(KEPT), "chat_reminders_after_backup": len(AFTER)}
    for stack in ("stack-1", "stack-2"):
        (work / stack).mkdir()
    s1 = Session(work / "stack-1", refs)
    s2: Optional[Session] = None
    try:
        fig["stack_1"] = {}
        made = stack_1(s1, args.bulk, args.lost_droplet, fig["stack_1"])
        config: dict[str, Any] = {"region": args.region, "restoreFrom": f"s3://{s1.bucket}/{PREFIX}",
                                  # a read-only key of the old bucket (the new stack's own key reaches
                                  # its own bucket only); moto takes any
                                  "restoreFromAccessKeyId": "DO00READONLYBENCH01",
                                  "restoreFromSecretAccessKey": "read-only-secret-of-the-old-bucket"}
        if args.region != OLD_REGION:
            config["restoreFromEndpoint"] = f"https://{OLD_REGION}.digitaloceanspaces.com"
        s2 = Session(work / "stack-2", refs, config=config, doubles_of=s1.d)
        fig["stack_2"] = {"config": {k: v for k, v in config.items() if "Key" not in k}}
        stack_2(s2, fig["stack_2"])
        compare(s2, made, fig)
        never_over_data(s2, fig["stack_2"])
        print(json.dumps(fig, indent=2, ensure_ascii=False))
    except BaseException:
        for s in filter(None, (s2, s1)):
            print("\n".join(s.logs[-2:])[-6000:], file=sys.stderr)
        print(json.dumps(fig, indent=2, ensure_ascii=False, default=str), file=sys.stderr)
        raise
    finally:
        if not args.keep:
            left = (s2 or s1).teardown() + (s1.teardown() if s2 else [])
            engine.stop()
            if left:
                print(f"left behind: {left}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
