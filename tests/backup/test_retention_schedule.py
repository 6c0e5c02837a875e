"""Local retention and the schedule (injected clock: no sleeping)."""
from __future__ import annotations

import itertools
import datetime as dt
import json
import os

import pytest

from botstack_backup.config import MIN_RETENTION_DAYS, Config
from botstack_backup.schedule import Scheduler
from botstack_backup.tool import BackupTool, fmt_ts

from .conftest import ADMINS, backup_runs

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


def fake_backup(d, created, good=True, name="botstack"):
    """A local backup as the tool leaves it (random bytes + a manifest recording their size)."""
    os.makedirs(d, exist_ok=True)
    base = f"{name}-{fmt_ts(created)}"
    payload = os.urandom(64)
    with open(os.path.join(d, base + ".dump.gpg"), "wb") as f:
        f.write(payload)
    manifest = {"name": base, "key": f"backups/{created:%Y/%m/%d}/{base}.dump.gpg",
                "manifest_key": f"backups/{created:%Y/%m/%d}/{base}.manifest.json",
                "created_at": created.isoformat(), "size_encrypted": len(payload) if good else 999,
                "tables": {}}
    with open(os.path.join(d, base + ".manifest.json"), "w") as f:
        json.dump(manifest, f)
    return base


def tool_at(tmp_path, now, **env):
    cfg = Config.from_env({"BACKUP_DIR": str(tmp_path / "b"), **{k: str(v) for k, v in env.items()}})
    return BackupTool(cfg, now=lambda: now)


def names(tool):
    return [b.name for b in tool.local_backups()]


def test_retention_of_14_days_keeps_7(tmp_path):
    tool = tool_at(tmp_path, NOW)
    made = [fake_backup(tool.dir, NOW - dt.timedelta(days=d, minutes=5)) for d in range(13, -1, -1)]
    deleted = tool.prune()
    assert len(deleted) == 7
    assert names(tool) == made[-7:]
    # idempotent
    assert tool.prune() == []


def test_retention_at_minimum_never_wipes_everything(tmp_path):
    tool = tool_at(tmp_path, NOW, BACKUP_LOCAL_RETENTION_DAYS=MIN_RETENTION_DAYS)
    made = [fake_backup(tool.dir, NOW - dt.timedelta(days=d)) for d in range(14, 1, -1)]
    tool.prune()
    assert names(tool) == [made[-1]]  # all are older than a day: only the newest good one stays
    # even a year later
    later = tool_at(tmp_path, NOW + dt.timedelta(days=365), BACKUP_LOCAL_RETENTION_DAYS=1)
    later.prune()
    assert names(later) == [made[-1]]


def test_minimum_retention_is_enforced():
    with pytest.raises(Exception, match="at least 1"):
        Config.from_env({"BACKUP_LOCAL_RETENTION_DAYS": "0"})
    with pytest.raises(Exception, match="at least 1"):
        Config.from_env({"BACKUP_LOCAL_RETENTION_DAYS": "-3"})


def test_newest_good_backup_survives_even_when_newer_ones_are_broken(tmp_path):
    tool = tool_at(tmp_path, NOW, BACKUP_LOCAL_RETENTION_DAYS=1)
    good = fake_backup(tool.dir, NOW - dt.timedelta(days=10))
    fake_backup(tool.dir, NOW - dt.timedelta(days=11))
    broken = fake_backup(tool.dir, NOW - dt.timedelta(days=5), good=False)
    tool.prune()
    assert names(tool) == [good]
    assert broken not in names(tool)


def test_backups_not_in_spaces_yet_are_kept_a_while(tmp_path):
    tool = tool_at(tmp_path, NOW)
    made = [fake_backup(tool.dir, NOW - dt.timedelta(days=d)) for d in (20, 10, 2)]
    offsite = set()  # Spaces reachable, but none of them is there
    tool.prune(offsite_keys=offsite)
    # 10 days old and not uploaded: kept (< 2 x retention); 20 days: gone
    assert names(tool) == made[1:]


# --------------------------------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------------------------------
def test_schedule_runs_every_interval_and_catches_up_once_after_downtime(make_tool, clock, botapi, seeded_db):
    tool = make_tool(BACKUP_INTERVAL_HOURS=6, BACKUP_DRILL_INTERVAL_DAYS=7)
    sched = Scheduler(tool, now=clock, sleep=clock.sleep)

    def backups():
        return [b.created_at for b in tool.local_backups() if b.good]

    start = clock()
    wait = sched.tick()                   # nothing yet: a backup now, then the first drill
    assert backups() == [start]
    assert [m["text"] for m in botapi.sent_messages(ADMINS[0]) if "drill OK" in m["text"]]
    assert 5.9 * 3600 <= wait or wait == 300.0
    clock.advance(hours=1)
    sched.tick()
    assert len(backups()) == 1            # not due yet
    clock.advance(hours=5)
    sched.tick()
    assert backups() == [start, start + dt.timedelta(hours=6)]

    # the droplet is off for three days: one catch-up backup at once, not twelve
    clock.advance(days=3)
    sched.tick()
    assert len(backups()) == 3 and backups()[-1] == clock()
    clock.advance(minutes=10)
    sched.tick()
    assert len(backups()) == 3
    # then the normal rhythm again, driven by run_forever with the fake sleep
    caught_up = backups()[-1]
    sched.run_forever(max_ticks=200)   # 5-minute naps at most: about 16 hours
    later = [t for t in backups() if t > caught_up]
    assert later[:2] == [caught_up + dt.timedelta(hours=6), caught_up + dt.timedelta(hours=12)]
    assert all(b - a == dt.timedelta(hours=6) for a, b in itertools.pairwise(later))
    # weekly drill: the first one, none in between, one more after 7 days
    drills = [r for r in backup_runs(seeded_db) if r["kind"] == "drill" and r["ok"]]
    assert len(drills) == 1
    clock.advance(days=7)
    sched.tick()
    drills = [r for r in backup_runs(seeded_db) if r["kind"] == "drill" and r["ok"]]
    assert len(drills) == 2


def test_schedule_after_a_failure_retries_within_the_hour(make_tool, clock, botapi, tmp_path, monkeypatch):
    tool = make_tool(BACKUP_INTERVAL_HOURS=6)
    sched = Scheduler(tool, now=clock, sleep=clock.sleep)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))   # no pg_dump: every run fails
    wait = sched.tick()
    assert tool.local_backups() == []
    assert wait <= 3600
    assert any("backup FAILED" in m["text"] for m in botapi.sent_messages(ADMINS[0]))
    clock.advance(minutes=30)
    sched.tick()
    n_alerts = len(botapi.sent_messages(ADMINS[0]))
    assert n_alerts == 1  # no retry before the hour is over (and no drill: no backup yet)
    monkeypatch.undo()
    clock.advance(minutes=31)
    sched.tick()
    assert len([b for b in tool.local_backups() if b.good]) == 1


def test_schedule_skips_while_another_operation_holds_the_lock(make_tool, clock):
    tool = make_tool()
    sched = Scheduler(tool, now=clock, sleep=clock.sleep)
    with tool.lock():
        sched.tick()
        assert tool.local_backups() == []
    clock.advance(minutes=1)
    sched.tick()                          # not counted as a failed attempt: runs right away
    assert len(tool.local_backups()) == 1

