"""Offsite retention: the tool prunes the bucket by its documented rule, and the bucket's lifecycle
rule (exactly as the Pulumi program registers it, applied by tests/backup/lifecycle.py) never
empties it, whatever happens to the droplet. Simulated clocks throughout: no sleeping."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import psycopg
import pytest

from botstack_backup import integrity
from botstack_backup.config import Config
from botstack_backup.offsite_retention import FINAL_MARK, group
from botstack_backup.schedule import Scheduler
from botstack_backup.tool import BackupTool, fmt_ts
from tests.infra.harness import make_repo, run_program, unwrap

from .conftest import PASSPHRASE, s3_client, table_counts
from .lifecycle import LifecycleSimulator

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)


@pytest.fixture
def fast_macs(monkeypatch):
    """Manifests are MAC'd with a slow key derivation (600000 rounds, on purpose); hundreds of
    simulated backups need a cheap one. Signing and checking use the same setting, so what is
    checked (forged, altered, missing MACs) is unchanged; tests/backup/test_forged_backups.py
    covers the real setting."""
    monkeypatch.setattr(integrity, "KDF_ITERATIONS", 1000)


def program_bucket_and_env(tmp_path, overrides=None):
    """The SpacesBucket's inputs and the rendered .env of the dev stack, from the real program."""
    run = run_program("dev", make_repo(tmp_path / "repo"), overrides)
    assert run.error is None, run.error
    bucket = unwrap(run.one("spacesBucket:SpacesBucket").inputs)
    env = dict(line.split("=", 1) for line in unwrap(run.by_name()["deploy-write-env"].inputs["stdin"]).splitlines())
    return bucket, env


def objects(s3, bucket):
    return {o["Key"]: o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}


def names_in(s3, bucket) -> list[str]:
    """Complete backups (dump and manifest) currently in the bucket, oldest first."""
    return [b.name for b in reversed(group({k: {"size": v} for k, v in objects(s3, bucket).items()}))
            if b.dump_key and b.manifest_key]


# --- 90 days: the droplet vanishes on day 10 ------------------------------------------------------------

# short enough that the tool prunes within the droplet's 10 days
RETENTION = {"backupIntervalHours": 24, "backupOffsiteRetentionDays": 2, "backupOffsiteKeepLast": 2,
             "backupOffsiteKeepDaily": 3, "backupOffsiteKeepWeekly": 1, "backupOffsiteKeepMonthly": 1}


def test_a_dead_droplet_leaves_its_newest_and_final_backups_restorable_for_90_days(
        tmp_path, make_tool, clock, s3_server, bucket, pg_server, fast_macs):
    spaces, env = program_bucket_and_env(tmp_path, RETENTION)
    s3 = s3_client(s3_server)
    if (spaces.get("versioning") or {}).get("enabled"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    life = LifecycleSimulator(s3, bucket, spaces["lifecycleRules"])
    keys = [k for k in env if k.startswith(("BACKUP_INTERVAL", "BACKUP_OFFSITE_"))]
    tool = make_tool(**{k: env[k] for k in keys})
    assert tool.cfg.interval_hours == 24 and tool.cfg.offsite_retention_days == 2
    run = tool.run

    def run_and_observe(*args, **kwargs):  # the simulator notes each new version's (simulated) time
        try:
            return run(*args, **kwargs)
        finally:
            life.observe(clock())

    tool.run = run_and_observe
    scheduler = Scheduler(tool, now=clock, sleep=clock.sleep)
    start = clock()
    next_lifecycle = start + DAY
    while clock() < start + 10 * DAY:                      # the droplet's last 10 days
        wait = scheduler.tick()
        clock.advance(seconds=wait)
        if clock() >= next_lifecycle:
            life.run(clock())
            next_lifecycle += DAY
    final = tool.run(final=True)                            # `pulumi destroy` runs final-backup.sh...
    life.observe(clock())
    kept_at_the_end = names_in(s3, bucket)                  # ...or the droplet just dies: no more runs
    made = 10 + 1
    assert len(kept_at_the_end) < made, "the tool pruned nothing: the test proves nothing"
    pruned_keys = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        pruned_keys |= {m["Key"] for m in page.get("DeleteMarkers", [])}
    assert pruned_keys, "no pruned backup left a noncurrent version"

    while clock() < start + 90 * DAY:
        clock.advance(days=1)
        life.run(clock())

    assert names_in(s3, bucket) == kept_at_the_end
    assert final.name in kept_at_the_end and FINAL_MARK + "-" in final.name
    assert len(kept_at_the_end) >= 1 + tool.cfg.offsite_keep_last
    left_of_pruned = {k: vs for k, vs in life.versions().items() if k in pruned_keys}
    # only their delete markers are left (S3 keeps a lone delete marker unless a rule removes it)
    assert all(v["marker"] for vs in left_of_pruned.values() for v in vs), \
        "the lifecycle rule kept noncurrent versions of pruned backups past 7 days"
    # and they restore: the newest into one database, the final one by name into another
    target = pg_server.create_database("d2_day90")
    tool.restore("latest", target_url=target)
    assert table_counts(target)["public.users"] == 250
    target2 = pg_server.create_database("d2_day90_final")
    restored = tool.restore(final.name, target_url=target2)
    assert restored["final"] is True and table_counts(target2)["public.reminders"] == 1234


def test_the_lifecycle_rule_the_program_registers_expires_no_current_backup(tmp_path, s3_server, bucket, clock):
    spaces, _ = program_bucket_and_env(tmp_path)
    s3 = s3_client(s3_server)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    life = LifecycleSimulator(s3, bucket, spaces["lifecycleRules"])
    s3.put_object(Bucket=bucket, Key="backups/2026/11/01/botstack-20261101T030000Z.dump.gpg", Body=b"x")
    s3.put_object(Bucket=bucket, Key="backups/old.bin", Body=b"1")
    s3.put_object(Bucket=bucket, Key="backups/old.bin", Body=b"2")       # version 1 now noncurrent
    s3.create_multipart_upload(Bucket=bucket, Key="backups/unfinished.dump.gpg")
    life.observe(clock())
    for _ in range(120):                                  # the old rule emptied dev's bucket in 21 days
        clock.advance(days=1)
        life.run(clock())
    assert life.current_keys() == ["backups/2026/11/01/botstack-20261101T030000Z.dump.gpg", "backups/old.bin"]
    assert len(life.versions()["backups/old.bin"]) == 1
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_the_simulator_expires_current_objects_when_a_rule_says_so(s3_server, bucket, clock):
    """The simulator itself can fail a test: an age rule like the one the bucket used to have empties it."""
    s3 = s3_client(s3_server)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    life = LifecycleSimulator(s3, bucket, [{"id": "old", "enabled": True, "prefix": "",
                                            "expiration": {"days": 14},
                                            "noncurrentVersionExpiration": {"days": 7}}])
    s3.put_object(Bucket=bucket, Key="backups/a.dump.gpg", Body=b"x")
    life.observe(clock())
    for _ in range(30):
        clock.advance(days=1)
        life.run(clock())
    assert life.current_keys() == [] and life.versions() == {}


def test_the_simulator_refuses_a_rule_it_does_not_know(s3_server, bucket):
    with pytest.raises(ValueError, match="transitions"):
        LifecycleSimulator(s3_client(s3_server), bucket, [{"id": "x", "enabled": True, "transitions": []}])


# --- 400 days with the tool running: the generations ------------------------------------------------------

def plant(s3, bucket, created: dt.datetime, kind: str = "good") -> str:
    """A backup in the bucket as the tool leaves it (good, final), or a bad one: forged (a MAC made
    without the passphrase), truncated (the dump shorter than its manifest), failed (no manifest)."""
    name = f"botstack{FINAL_MARK if kind == 'final' else ''}-{fmt_ts(created)}"
    base = f"backups/{created:%Y/%m/%d}/{name}"
    body = os.urandom(32)
    s3.put_object(Bucket=bucket, Key=base + ".dump.gpg", Body=body[:16] if kind == "truncated" else body)
    manifest = {"format": 2, "name": name, "key": base + ".dump.gpg", "manifest_key": base + ".manifest.json",
                "created_at": created.isoformat(), "size_encrypted": len(body), "tables": {},
                "sha256_encrypted": hashlib.sha256(body).hexdigest(), "sha256_plain": "0" * 64, "size_plain": 0}
    if kind == "final":
        manifest["final"] = True
    if kind != "failed":
        signed = integrity.sign(manifest, "not the passphrase" if kind == "forged" else PASSPHRASE)
        s3.put_object(Bucket=bucket, Key=base + ".manifest.json", Body=json.dumps(signed).encode())
    return name


def test_generations_are_kept_as_documented_over_400_days(tmp_path, s3_server, bucket, botapi, fast_macs):
    s3 = s3_client(s3_server)
    now = dt.datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    cfg = Config.from_env({"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_PASSPHRASE": PASSPHRASE,
                           "SPACES_ENDPOINT": s3_server, "SPACES_BUCKET": bucket,
                           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
                           "TELEGRAM_API_BASE_URL": botapi.base_url})
    assert (cfg.offsite_retention_days, cfg.offsite_keep_last, cfg.offsite_keep_daily,
            cfg.offsite_keep_weekly, cfg.offsite_keep_monthly) == (30, 3, 7, 4, 6)
    tool = BackupTool(cfg, now=lambda: now)
    kinds = {}
    for day in range(400):
        now = dt.datetime(2026, 1, 1, 3, 0, tzinfo=UTC) + day * DAY
        # the last day of each month a bad object comes after the month's good backup
        kind = "good"
        if day == 20:
            kind = "final"              # e.g. a destroy and a later restore into a new stack
        elif (now + DAY).day == 1:
            kind = ("forged", "truncated", "failed")[now.month % 3]
        kinds[plant(s3, bucket, now, kind)] = kind
        tool.prune_offsite()
    left = names_in(s3, bucket) + [n for n in kinds if kinds[n] == "failed" and any(
        k.endswith(n + ".dump.gpg") for k in objects(s3, bucket))]
    ts = {n: dt.datetime.strptime(n.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for n in kinds}
    young = {n for n in kinds if ts[n] >= now - 30 * DAY}
    good = sorted((n for n in kinds if kinds[n] in ("good", "final")), key=ts.get)
    # monthly: the newest good backup of each of the 6 newest months that have one
    months = {}
    for n in good:
        months[(ts[n].year, ts[n].month)] = n
    monthly = {months[m] for m in sorted(months)[-6:]}
    final = {n for n in kinds if kinds[n] == "final"}
    assert set(left) == young | monthly | final, sorted(set(left) ^ (young | monthly | final))
    # the bad objects of the last days of months were never a month's generation
    assert all(kinds[n] == "good" for n in monthly)
    assert len(monthly) == 6 and len(final) == 1 and len(young) == 31
    assert len(monthly - young) >= 4, "the run was too short to prove the monthly generations"


def test_keep_last_daily_and_weekly_hold_when_backups_are_sparse(tmp_path, s3_server, bucket, botapi, fast_macs):
    """Every third day, retention 1 day: what survives is the newest 2, one a day for the newest 4
    days that have a backup, one a week for the newest 3 weeks that have one."""
    s3 = s3_client(s3_server)
    env = {"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_PASSPHRASE": PASSPHRASE, "SPACES_ENDPOINT": s3_server,
           "SPACES_BUCKET": bucket, "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
           "TELEGRAM_API_BASE_URL": botapi.base_url, "BACKUP_OFFSITE_RETENTION_DAYS": "1",
           "BACKUP_OFFSITE_KEEP_LAST": "2", "BACKUP_OFFSITE_KEEP_DAILY": "4", "BACKUP_OFFSITE_KEEP_WEEKLY": "3",
           "BACKUP_OFFSITE_KEEP_MONTHLY": "0"}
    start = dt.datetime(2026, 3, 2, 3, 0, tzinfo=UTC)     # a Monday
    made = []
    tool = BackupTool(Config.from_env(env), now=lambda: now)
    for i in range(30):
        now = start + 3 * i * DAY
        made.append(plant(s3, bucket, now))
        tool.prune_offsite()
    newest_daily = made[-4:]                               # one per day: the newest 4
    weeks = {}
    for n in made:
        t = dt.datetime.strptime(n.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ")
        weeks[t.isocalendar()[:2]] = n
    weekly = [weeks[w] for w in sorted(weeks)[-3:]]
    assert names_in(s3, bucket) == sorted(set(newest_daily) | set(weekly))


def test_a_forged_final_mark_protects_nothing(tmp_path, s3_server, bucket, botapi, fast_macs):
    s3 = s3_client(s3_server)
    old = dt.datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    name = f"botstack{FINAL_MARK}-{fmt_ts(old)}"
    base = f"backups/{old:%Y/%m/%d}/{name}"
    s3.put_object(Bucket=bucket, Key=base + ".dump.gpg", Body=b"x" * 10)
    forged = integrity.sign({"format": 2, "name": name, "key": base + ".dump.gpg", "final": True,
                             "manifest_key": base + ".manifest.json", "size_encrypted": 10}, "guessed wrong")
    s3.put_object(Bucket=bucket, Key=base + ".manifest.json", Body=json.dumps(forged).encode())
    genuine_final = plant(s3, bucket, old + DAY, "final")
    now = old + 400 * DAY
    recent = [plant(s3, bucket, now - dt.timedelta(hours=h)) for h in (2, 1, 0)]
    cfg = Config.from_env({"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_PASSPHRASE": PASSPHRASE,
                           "SPACES_ENDPOINT": s3_server, "SPACES_BUCKET": bucket,
                           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
                           "TELEGRAM_API_BASE_URL": botapi.base_url, "BACKUP_OFFSITE_RETENTION_DAYS": "1",
                           "BACKUP_OFFSITE_KEEP_LAST": "3", "BACKUP_OFFSITE_KEEP_DAILY": "0",
                           "BACKUP_OFFSITE_KEEP_WEEKLY": "0", "BACKUP_OFFSITE_KEEP_MONTHLY": "0"})
    deleted = BackupTool(cfg, now=lambda: now).prune_offsite()
    assert deleted == [name]
    assert names_in(s3, bucket) == [genuine_final, *recent]


def test_pruning_is_recorded_and_a_listing_failure_deletes_nothing(make_tool, s3_server, bucket, clock, seeded_db,
                                                                   fast_macs):
    s3 = s3_client(s3_server)
    made = [plant(s3, bucket, clock() - (40 - d) * DAY) for d in range(10)]
    tool = make_tool(BACKUP_OFFSITE_KEEP_LAST="1", BACKUP_OFFSITE_KEEP_DAILY="0", BACKUP_OFFSITE_KEEP_WEEKLY="0",
                     BACKUP_OFFSITE_KEEP_MONTHLY="0")
    broken = make_tool(endpoint="http://127.0.0.1:9", BACKUP_OFFSITE_KEEP_LAST="1")
    with pytest.raises(Exception, match="Spaces"):
        broken.prune_offsite()
    assert names_in(s3, bucket) == made
    assert tool.prune_offsite() == list(reversed(made[:-1]))
    assert names_in(s3, bucket) == made[-1:]
    with psycopg.connect(seeded_db) as conn:
        rows = conn.execute("SELECT kind, ok, detail FROM backup_runs ORDER BY id").fetchall()
    assert rows[-1][0] == "prune" and rows[-1][1] is True and "offsite: deleted 9" in rows[-1][2]
    assert rows[-2][0] == "prune" and rows[-2][1] is False


def test_latest_is_the_newest_by_time_even_after_a_final_backup_the_same_day(tmp_path, s3_server, bucket,
                                                                             botapi, fast_macs):
    from botstack_backup.offsite import Offsite
    from botstack_backup.resolve import Reader, resolve

    s3 = s3_client(s3_server)
    day = dt.datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    plant(s3, bucket, day, "final")                        # a destroy that then did not happen
    later = plant(s3, bucket, day + dt.timedelta(hours=3))
    cfg = Config.from_env({"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_PASSPHRASE": PASSPHRASE,
                           "SPACES_ENDPOINT": s3_server, "SPACES_BUCKET": bucket,
                           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing"})
    offsite = Offsite(cfg)
    tool = BackupTool(cfg)
    assert resolve(Reader(tool, offsite), offsite.list(), "latest").manifest["name"] == later
