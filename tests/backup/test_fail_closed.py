"""Whatever is planted in the bucket or the backup directory by someone without the passphrase, the
outcome is a refusal that is alerted and recorded: never an escaped exception, never a restore."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from botstack_backup.cli import main
from botstack_backup.errors import EXIT_FORGED, EXIT_OLDER, ForgedError, RollbackError

from .conftest import ADMINS, backup_runs, closed_port_url, s3_client, table_counts


def alerts(botapi):
    return [m["text"] for m in botapi.sent_messages(ADMINS[0])]


def objects(endpoint, bucket):
    resp = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


# -- the backlog: a local manifest is no more trusted than the bucket --------------------------------
def test_a_tampered_local_manifest_is_not_uploaded_and_the_rest_of_the_backlog_is(make_tool, clock, s3_server,
                                                                                   bucket, botapi):
    down = make_tool(endpoint=closed_port_url())
    tampered = down.run()
    clock.advance(hours=1)
    kept = down.run()
    path = f"{down.dir}/{tampered.name}.manifest.json"
    with open(path) as f:
        manifest = json.load(f)
    del manifest["key"]  # what the MAC covers: the local copy is no longer provably ours
    with open(path, "w") as f:
        json.dump(manifest, f)
    clock.advance(hours=6)
    result = make_tool().run()
    assert result.uploaded and result.backlog_uploaded == [kept.name]
    assert not any(tampered.name in k for k in objects(s3_server, bucket))
    assert any("upload FAILED" in t and tampered.name in t and "refused" in t for t in alerts(botapi))
    assert ("upload", False) in [(r["kind"], r["ok"]) for r in backup_runs(down.cfg.database_url)]


# -- planted manifests: a refusal with an alert and a record, never an escaped exception -------------
FUTURE = "botstack-20991231T000000Z"
FUTURE_MKEY = f"backups/2099/12/31/{FUTURE}.manifest.json"
FUTURE_DKEY = f"backups/2099/12/31/{FUTURE}.dump.gpg"


def template(**over) -> dict:
    """A manifest of the right shape for FUTURE, with a MAC made without the passphrase."""
    m = {"format": 2, "name": FUTURE, "key": FUTURE_DKEY, "manifest_key": FUTURE_MKEY,
         "created_at": "2099-12-31T00:00:00Z", "sha256_encrypted": "0" * 64, "size_encrypted": 4,
         "sha256_plain": "0" * 64, "size_plain": 4, "tables": {"public.planted": 1},
         "mac": {"alg": "HMAC-SHA256", "kdf": "PBKDF2-HMAC-SHA256", "iterations": 600000, "salt": "00" * 16,
                 "value": "0" * 64}}
    m.update(over)
    return m


# what crashed the tool before (issue 20): each raised past every `except BackupError`
CRASHERS = {
    "non-ascii MAC value": json.dumps(template(mac=dict(template()["mac"], value="\u00e9" * 64))).encode(),
    "a list as the dump's key": json.dumps(template(key=[FUTURE_DKEY])).encode(),
    "deeply nested JSON": b"[" * 100_000 + b"]" * 100_000,
}


def plant_bytes(s3_server, bucket, manifest: bytes, dump_key: str = FUTURE_DKEY) -> None:
    s3 = s3_client(s3_server)
    s3.put_object(Bucket=bucket, Key=dump_key, Body=b"junk")
    s3.put_object(Bucket=bucket, Key=FUTURE_MKEY, Body=manifest)


@pytest.fixture
def real(make_tool):
    tool = make_tool()
    return tool, tool.run()


@pytest.mark.parametrize("planted", list(CRASHERS.values()), ids=list(CRASHERS))
def test_a_planted_manifest_that_crashed_restore_and_drill_is_skipped_and_reported(
        real, planted, s3_server, bucket, botapi, pg_server):
    tool, result = real
    plant_bytes(s3_server, bucket, planted)
    target = pg_server.create_database()
    assert tool.restore("latest", target_url=target)["name"] == result.name
    assert tool.drill().manifest["name"] == result.name
    reports = [t for t in alerts(botapi) if "planted or damaged objects" in t and FUTURE in t]
    assert len(reports) == 2  # the restore's and the drill's
    rows = [(r["kind"], r["ok"]) for r in backup_runs(tool.cfg.database_url)]
    assert rows[-2:] == [("restore", True), ("drill", True)]


@pytest.mark.parametrize("planted", list(CRASHERS.values()), ids=list(CRASHERS))
def test_a_planted_manifest_alone_is_a_refusal_with_exit_10_an_alert_and_a_record(
        make_tool, planted, s3_server, bucket, botapi, pg_server, capsys):
    tool = make_tool()
    plant_bytes(s3_server, bucket, planted)
    target = pg_server.create_database()
    assert main(["restore", "latest", "--target-url", target], tool=tool) == EXIT_FORGED
    assert main(["drill"], tool=tool) == EXIT_FORGED
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in err] == ["botstack-backup restore", "botstack-backup drill"]
    assert table_counts(target) == {}
    assert [(r["kind"], r["ok"]) for r in backup_runs(tool.cfg.database_url)] == [("restore", False),
                                                                                    ("drill", False)]
    assert len([t for t in alerts(botapi) if "FAILED" in t and "refused" in t]) == 2


def test_a_future_dated_manifest_whose_dump_lies_elsewhere_is_pruned_and_never_latest(
        real, s3_server, bucket, botapi, pg_server):
    tool, result = real
    elsewhere = f"backups/elsewhere/{FUTURE}.dump.gpg"
    plant_bytes(s3_server, bucket, json.dumps(template(key=elsewhere)).encode(), dump_key=elsewhere)
    assert tool.restore("latest", target_url=pg_server.create_database())["name"] == result.name
    tool.prune_offsite()
    assert not any(FUTURE in k for k in objects(s3_server, bucket))
    assert result.key in objects(s3_server, bucket)


def test_the_scheduler_reports_what_a_planted_manifest_does_to_the_drill(real, s3_server, bucket, botapi):
    from botstack_backup.schedule import Scheduler
    tool, result = real
    plant_bytes(s3_server, bucket, CRASHERS["a list as the dump's key"])
    Scheduler(tool).tick()
    assert any("drill" in t and FUTURE in t for t in alerts(botapi))
    assert ("drill", True) in [(r["kind"], r["ok"]) for r in backup_runs(tool.cfg.database_url)]


def test_a_planted_schedule_state_does_not_stop_the_scheduler(real, botapi):
    from botstack_backup.schedule import Scheduler
    tool, _ = real
    with open(f"{tool.dir}/.schedule.json", "w") as f:  # a naive time: compared with aware ones it raised
        json.dump({"last_backup_attempt": "2026-11-01T05:00:00", "last_drill_ok": [1]}, f)
    assert Scheduler(tool).tick() > 0


def test_an_unexpected_failure_of_prune_is_alerted_and_recorded(real, botapi, monkeypatch):
    from botstack_backup import offsite_retention
    tool, _ = real

    def boom(*a, **kw):
        raise KeyError("surprise")
    monkeypatch.setattr(offsite_retention, "group", boom)
    assert main(["prune"], tool=tool) == 1
    assert any("prune FAILED" in t and "KeyError" in t for t in alerts(botapi))
    assert backup_runs(tool.cfg.database_url)[-1]["kind"] == "prune"


# -- hypothesis: whatever the manifest's bytes, a refusal -------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
FIELDS = ["format", "name", "key", "manifest_key", "created_at", "sha256_encrypted", "size_encrypted",
          "sha256_plain", "size_plain", "tables", "final", "mac"]
MAC_FIELDS = ["alg", "kdf", "iterations", "salt", "value"]


def _mutate(field: str, value, in_mac: bool) -> bytes:
    m = template()
    if in_mac:
        m["mac"] = dict(m["mac"], **{field: value})
    else:
        m[field] = value
    return json.dumps(m).encode()


MANIFEST_BYTES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(_mutate, st.sampled_from(FIELDS), JSON, st.just(False)),
    st.builds(_mutate, st.sampled_from(MAC_FIELDS), JSON, st.just(True)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(planted=MANIFEST_BYTES)
@example(planted=CRASHERS["non-ascii MAC value"])
@example(planted=CRASHERS["a list as the dump's key"])
@example(planted=CRASHERS["deeply nested JSON"])
def test_whatever_is_planted_restore_and_drill_refuse_with_an_alert_and_prune_deletes_it(
        make_tool, s3_server, bucket, botapi, pg_server, planted):
    tool = make_tool()
    target = pg_server.create_database()
    plant_bytes(s3_server, bucket, planted)
    for op in (lambda: tool.restore("latest", target_url=target), tool.drill):
        sent, rows = len(alerts(botapi)), len(backup_runs(tool.cfg.database_url))
        with pytest.raises(ForgedError):
            op()
        assert len(alerts(botapi)) == sent + 1
        assert backup_runs(tool.cfg.database_url)[-1]["ok"] is False
        assert len(backup_runs(tool.cfg.database_url)) == rows + 1
    assert table_counts(target) == {}
    tool.prune_offsite()
    assert objects(s3_server, bucket) == []


# -- rollback: "latest" is never older than the newest backup the tool knows of -------------------------
@pytest.fixture
def two(make_tool, clock):
    tool = make_tool()
    first = tool.run()
    clock.advance(hours=6)
    return tool, first, tool.run()


def test_deleting_the_newest_backup_from_the_bucket_makes_restore_latest_refuse(two, s3_server, bucket, botapi,
                                                                                pg_server):
    tool, first, second = two
    s3 = s3_client(s3_server)
    for key in (second.manifest["manifest_key"], second.key):
        s3.delete_object(Bucket=bucket, Key=key)
    target = pg_server.create_database()
    assert main(["restore", "latest", "--target-url", target], tool=tool) == EXIT_OLDER == 11
    assert table_counts(target) == {}
    assert any("restore FAILED" in t and second.name in t and first.name in t for t in alerts(botapi))
    assert backup_runs(tool.cfg.database_url)[-1]["kind"] == "restore"
    with pytest.raises(RollbackError):
        tool.drill()
    assert any("drill FAILED" in t and second.name in t for t in alerts(botapi))
    # the operator may still take the older one, knowingly
    assert tool.restore("latest", target_url=target, accept_older=True)["name"] == first.name


def test_restore_latest_offers_a_newer_local_copy_the_bucket_lacks(make_tool, clock, pg_server):
    tool = make_tool()
    tool.run()
    clock.advance(hours=6)
    local_only = make_tool(endpoint=closed_port_url()).run()  # Spaces down: kept locally only
    target = pg_server.create_database()
    with pytest.raises(RollbackError, match=f"restore {local_only.name} --from-local"):
        tool.restore("latest", target_url=target)
    assert tool.restore("latest", target_url=target, from_local=True)["name"] == local_only.name


def test_a_forged_manifest_with_a_real_name_in_an_earlier_folder_does_not_block_restore_by_name(
        real, s3_server, bucket, pg_server, botapi):
    tool, result = real
    forged = dict(result.manifest, tables={})
    s3 = s3_client(s3_server)
    s3.put_object(Bucket=bucket, Key=f"backups/0000/{result.name}.manifest.json", Body=json.dumps(forged).encode())
    s3.put_object(Bucket=bucket, Key=f"backups/0000/{result.name}.dump.gpg", Body=b"junk")
    target = pg_server.create_database()
    assert tool.restore(result.name, target_url=target)["name"] == result.name
    assert table_counts(target)["public.users"] == 250


# -- the cost of planted objects: remembered by ETag, bounded per run --------------------------------
def test_a_forged_object_costs_one_verification_and_a_prune_verifies_at_most_its_budget(
        tmp_path, s3_server, bucket, botapi, monkeypatch):
    import datetime as dt

    from botstack_backup import integrity
    from botstack_backup.config import Config
    from botstack_backup.resolve import MAX_VERIFICATIONS
    from botstack_backup.tool import BackupTool

    from .conftest import PASSPHRASE
    from .test_offsite_retention import plant

    monkeypatch.setattr(integrity, "KDF_ITERATIONS", 1000)  # counted, not timed
    derived = []
    real_key = integrity._key
    monkeypatch.setattr(integrity, "_key", lambda p, salt: derived.append(salt) or real_key(p, salt))
    s3 = s3_client(s3_server)
    now = dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.timezone.utc)
    good = plant(s3, bucket, now - dt.timedelta(days=1))
    forged = [plant(s3, bucket, now - dt.timedelta(minutes=i + 1), "forged") for i in range(40)]
    cfg = Config.from_env({"BACKUP_DIR": str(tmp_path / "b"), "BACKUP_PASSPHRASE": PASSPHRASE,
                           "SPACES_ENDPOINT": s3_server, "SPACES_BUCKET": bucket,
                           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
                           "TELEGRAM_API_BASE_URL": botapi.base_url})
    tool = BackupTool(cfg, now=lambda: now)
    per_run = []
    for _ in range(4):
        derived.clear()
        assert tool.prune_offsite() == []  # young: the age rule keeps them all, forged or not
        per_run.append(len(derived))
    assert per_run[0] == MAX_VERIFICATIONS                     # bounded, however many are planted
    assert per_run[1] == 41 - MAX_VERIFICATIONS                # the rest, the good one among them
    assert per_run[2:] == [0, 0]                               # then nothing: refusals are remembered
    with open(tmp_path / "b" / ".refused.json") as f:
        assert sorted(k.rsplit("/", 1)[-1] for k in json.load(f)) == sorted(f"{n}.manifest.json" for n in forged)
    assert good in [b["name"] for b in tool.list()["backups"]]


# -- restore streams into pg_restore: nothing is committed before every check passed ----------------
def test_a_dump_whose_plain_checksum_differs_is_rolled_back_not_committed(real, s3_server, bucket, pg_server):
    from botstack_backup import integrity
    from botstack_backup.errors import ChecksumError

    from .conftest import PASSPHRASE
    tool, result = real
    wrong = {k: v for k, v in result.manifest.items() if k != "mac"}
    wrong["sha256_plain"] = "0" * 64  # sealed by the passphrase holder, but not what the dump is
    s3_client(s3_server).put_object(Bucket=bucket, Key=result.manifest["manifest_key"],
                                    Body=json.dumps(integrity.sign(wrong, PASSPHRASE)).encode())
    target = pg_server.create_database()
    import psycopg
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO users VALUES (1, 'the only one')")
    with pytest.raises(ChecksumError, match="rolled back"):
        tool.restore(result.name, target_url=target, force=True)
    assert table_counts(target) == {"public.users": 1}


# -- restore --force keeps what it replaces --------------------------------------------------------------
def test_restore_over_a_non_empty_database_takes_a_safety_dump_first(real, pg_server, tmp_path, botapi):
    import glob
    import os
    import subprocess

    import psycopg

    from .conftest import PASSPHRASE
    tool, result = real
    target = pg_server.create_database()
    tool.restore(result.name, target_url=target)  # empty: nothing to keep
    assert glob.glob(f"{tool.dir}/safety-*") == []
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (4242, 'created after the backup')")
    tool.restore(result.name, target_url=target, force=True)
    (safety,) = glob.glob(f"{tool.dir}/safety-*.pgdump.gpg")
    assert oct(os.stat(safety).st_mode & 0o777) == "0o600"
    assert backup_runs(tool.cfg.database_url)[-1]["detail"].endswith(safety)
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    (tmp_path / "pass").write_text(PASSPHRASE)
    plain = tmp_path / "safety.dump"
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase-file", str(tmp_path / "pass"),
                    "--output", str(plain), "--decrypt", safety], check=True, capture_output=True, env=env)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env)
    kept = pg_server.create_database()
    subprocess.run(["pg_restore", "--no-owner", "--dbname", kept, str(plain)], check=True, capture_output=True)
    with psycopg.connect(kept) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = 4242").fetchone()[0] == "created after the backup"


def test_restore_over_the_bots_database_says_what_it_takes_back(real, pg_server, caplog):
    import psycopg

    from bot import db
    tool, result = real
    target = pg_server.create_database()
    db.migrate(target)
    with psycopg.connect(target, autocommit=True) as conn:  # after the backup (its time is the test clock's)
        conn.execute("INSERT INTO users (user_id, chat_id) VALUES (1, 1)")
        rid = conn.execute("INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
                           "(1, 1, 'new', 'UTC', now()) RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO deliveries (reminder_id, user_id, chat_id, occurrence, state, sent_at) "
                     "VALUES (%s, 1, 1, now(), 'sent', now())", (rid,))
    tool.restore(result.name, target_url=target, force=True)
    detail = backup_runs(tool.cfg.database_url)[-1]["detail"]
    assert f"{result.name} was made 2026-11-01 03:00 UTC" in detail
    assert "1 reminder(s) were created" in detail and "1 delivered" in detail
    assert any("1 reminder(s) were created" in r.getMessage() for r in caplog.records)


def test_reminders_delivered_after_the_backup_stay_delivered_after_a_restore(make_tool, pg_server, clock):
    # restored, the backup's reminders were pending again at occurrences already sent: the bot sent
    # them a second time, marked "late"
    import datetime as dt

    import psycopg

    from bot import db
    url = pg_server.create_database()
    db.migrate(url)
    t0 = clock()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (user_id, chat_id) VALUES (1, 1)")
        once, daily, later = (conn.execute(
            "INSERT INTO reminders (user_id, chat_id, text, tz, due_at, recurrence) "
            "VALUES (1, 1, %s, 'UTC', %s, %s) RETURNING id", (text, t0 + dt.timedelta(hours=h), rule)).fetchone()[0]
            for text, h, rule in (("once", 2, None), ("daily", 3, '{"kind": "daily", "hour": 6, "minute": 0}'),
                                  ("not yet", 48, None)))
    tool = make_tool(DATABASE_URL=url)
    result = tool.run()
    with psycopg.connect(url, autocommit=True) as conn:  # the bot delivers both after the backup
        for rid, h in ((once, 2), (daily, 3)):
            conn.execute("INSERT INTO deliveries (reminder_id, user_id, chat_id, occurrence, state, message_id, "
                         "sent_at) VALUES (%s, 1, 1, %s, 'sent', 77, %s)",
                         (rid, t0 + dt.timedelta(hours=h), t0 + dt.timedelta(hours=h, seconds=1)))
        conn.execute("UPDATE reminders SET status = 'done' WHERE id = %s", (once,))
        conn.execute("UPDATE reminders SET due_at = due_at + interval '1 day' WHERE id = %s", (daily,))
    clock.advance(hours=4)
    tool.restore(result.name, target_url=url, force=True)
    with psycopg.connect(url) as conn:
        rows = dict((r[0], r[1:]) for r in conn.execute("SELECT id, status, due_at FROM reminders"))
        sent = conn.execute("SELECT reminder_id, occurrence FROM deliveries WHERE state = 'sent' "
                            "ORDER BY reminder_id").fetchall()
    assert rows[once][0] == "done"
    assert rows[daily] == ("pending", t0 + dt.timedelta(days=1, hours=3))
    assert rows[later] == ("pending", t0 + dt.timedelta(hours=48))
    assert sent == [(once, t0 + dt.timedelta(hours=2)), (daily, t0 + dt.timedelta(hours=3))]
    assert "2 reminder(s) delivered after the backup kept delivered" in backup_runs(url)[-1]["detail"]
