"""The backup tool against real PostgreSQL, real pg_dump/pg_restore/gpg, moto's S3 server and the
Bot API double."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from botstack_backup import gpg, integrity, pg
from botstack_backup.cli import main
from botstack_backup.config import Config
from botstack_backup.errors import (BackupError, BusyError, ChecksumError, ConfigError, DrillMismatch, NotFound,
                                    RefusedError, VersionMismatch)

from .conftest import (ADMINS, BACKUP_SRC, PASSPHRASE, TOKEN, backup_runs, closed_port_url, s3_client,
                       table_counts)


def alerts(botapi, chat_id=ADMINS[0]):
    return [m["text"] for m in botapi.sent_messages(chat_id)]


def objects(endpoint, bucket):
    resp = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return {o["Key"]: o["Size"] for o in resp.get("Contents", [])}


# --------------------------------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def backed_up(make_tool, seeded_db):
    """A tool and the result of one successful backup of the seeded database."""
    tool = make_tool()
    counts = table_counts(seeded_db)  # before the run records itself in backup_runs
    return tool, tool.run(), counts


def fetch_manifest(s3_server, bucket, result):
    return json.loads(s3_client(s3_server).get_object(
        Bucket=bucket, Key=result.manifest["manifest_key"])["Body"].read())


def test_a_backup_lands_in_dated_keys_beside_a_private_local_copy(backed_up, s3_server, bucket):
    tool, result, _ = backed_up
    assert result.uploaded and result.exit_code == 0
    keys = objects(s3_server, bucket)
    assert set(keys) == {"backups/2026/11/01/botstack-20261101T030000Z.dump.gpg",
                         "backups/2026/11/01/botstack-20261101T030000Z.manifest.json"}
    local = os.path.join(tool.dir, "botstack-20261101T030000Z.dump.gpg")
    assert os.path.exists(local) and stat.S_IMODE(os.stat(local).st_mode) == 0o600
    assert keys[result.key] == fetch_manifest(s3_server, bucket, result)["size_encrypted"]


def test_the_manifest_counts_every_tables_rows_and_names_both_versions(backed_up, s3_server, bucket):
    _, result, source_counts = backed_up
    manifest = fetch_manifest(s3_server, bucket, result)
    assert manifest["tables"] == source_counts
    assert manifest["tables"]["public.reminders"] == 1234 and manifest["tables"]["extra.notes"] == 77
    assert manifest["server_version_num"] // 10000 == int(manifest["pg_dump_version"].split(")")[1].split(".")[0])


def test_a_backup_restores_with_the_tool(backed_up, pg_server):
    tool, _, source_counts = backed_up
    target = pg_server.create_database()
    tool.restore("latest", target_url=target)
    assert table_counts(target) == source_counts
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = 42").fetchone()[0] == "user 42"


def test_a_backup_restores_with_the_standard_tools_alone(backed_up, pg_server, s3_server, bucket, tmp_path):
    _, result, source_counts = backed_up
    manifest = fetch_manifest(s3_server, bucket, result)
    enc = tmp_path / "dl.dump.gpg"
    s3_client(s3_server).download_file(bucket, result.key, str(enc))
    assert hashlib.sha256(enc.read_bytes()).hexdigest() == manifest["sha256_encrypted"]
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    plain = tmp_path / "dl.dump"
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase-file", str(passfile),
                    "--output", str(plain), "--decrypt", str(enc)], check=True, env=env,
                   capture_output=True)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env)
    assert hashlib.sha256(plain.read_bytes()).hexdigest() == manifest["sha256_plain"]
    target2 = pg_server.create_database()
    subprocess.run(["pg_restore", "--no-owner", "--dbname", target2, str(plain)], check=True,
                   capture_output=True)
    assert table_counts(target2) == source_counts


def test_a_successful_backup_is_recorded_and_alerts_nobody(backed_up, seeded_db, botapi):
    runs = backup_runs(seeded_db)
    assert [(r["kind"], r["ok"], r["uploaded"]) for r in runs][:1] == [("backup", True, True)]
    assert alerts(botapi) == []


def test_encrypted_copy_is_not_plaintext(make_tool, tmp_path):
    tool = make_tool()
    result = tool.run()
    data = open(os.path.join(tool.dir, result.name + ".dump.gpg"), "rb").read()
    assert not data.startswith(b"PGDMP")
    assert b"user 42" not in data
    # an OpenPGP message starting with a symmetric-key encrypted session key packet (tag 3)
    assert data[0] in (0x8C, 0x8D, 0x8E, 0x8F, 0xC3)


def test_wrong_passphrase_fails_clearly(make_tool, pg_server, botapi):
    make_tool().run()
    tool = make_tool(BACKUP_PASSPHRASE="a different passphrase!")
    target = pg_server.create_database()
    with pytest.raises(Exception) as ei:
        tool.restore("latest", target_url=target)
    # the manifest's MAC is the first thing keyed by the passphrase, so it is what notices
    assert "another BACKUP_PASSPHRASE" in str(ei.value)
    assert table_counts(target) == {}
    assert any("restore FAILED" in t for t in alerts(botapi))


def test_gpg_fails_clearly_on_a_wrong_passphrase(make_tool):
    result = make_tool().run()
    with open(os.path.join(make_tool().dir, result.name + ".dump.gpg"), "rb") as src:
        with gpg.decryptor("a different passphrase!", src, subprocess.DEVNULL) as dec:
            with pytest.raises(BackupError) as ei:
                dec.finish()
    assert "gpg failed" in str(ei.value)


# --------------------------------------------------------------------------------------------------
# restore safety
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def shrunk_after_backup(make_tool, seeded_db):
    """A backup of the seeded database, which then loses some rows (the target is not empty)."""
    tool = make_tool()
    tool.run()
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("DELETE FROM reminders WHERE id > 1000")
    return tool


def test_restore_refuses_a_non_empty_target_without_force(shrunk_after_backup, seeded_db):
    with pytest.raises(RefusedError) as ei:
        shrunk_after_backup.restore("latest")
    assert ei.value.exit_code == 5 and "--force" in str(ei.value)
    assert table_counts(seeded_db)["public.reminders"] == 1000  # untouched


def test_the_cli_refuses_a_non_empty_target_with_exit_5(shrunk_after_backup, seeded_db):
    assert main(["restore", "latest"], tool=shrunk_after_backup) == 5
    assert table_counts(seeded_db)["public.reminders"] == 1000


def test_restore_with_force_replaces_a_non_empty_target(shrunk_after_backup, seeded_db):
    assert main(["restore", "latest", "--force"], tool=shrunk_after_backup) == 0
    assert table_counts(seeded_db)["public.reminders"] == 1234


@pytest.fixture
def corrupted(make_tool, s3_server, bucket):
    """A backup whose object in the bucket had one byte flipped."""
    tool = make_tool()
    result = tool.run()
    s3 = s3_client(s3_server)
    data = bytearray(s3.get_object(Bucket=bucket, Key=result.key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=result.key, Body=bytes(data))
    return tool


def test_a_corrupted_object_is_detected_and_not_restored(corrupted, pg_server, botapi, seeded_db):
    target = pg_server.create_database()
    with pytest.raises(ChecksumError) as ei:
        corrupted.restore("latest", target_url=target)
    assert ei.value.exit_code == 4 and "checksum mismatch" in str(ei.value)
    assert table_counts(target) == {}
    assert any("restore FAILED" in t and "checksum" in t for t in alerts(botapi))
    assert [(r["kind"], r["ok"]) for r in backup_runs(seeded_db)][-1] == ("restore", False)


def test_the_drill_detects_a_corrupted_object(corrupted, botapi):
    with pytest.raises(ChecksumError):
        corrupted.drill()
    assert any("drill FAILED" in t for t in alerts(botapi))


@pytest.fixture
def two_backups(make_tool, seeded_db, clock):
    """Two backups six hours apart; the newer one has one more user."""
    tool = make_tool()
    first = tool.run()
    clock.advance(hours=6)
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (9999, 'late')")
    tool.run()
    return tool, first


def test_restore_from_the_local_copy_by_name_needs_no_spaces(two_backups, make_tool, pg_server):
    _, first = two_backups
    target = pg_server.create_database()
    make_tool(endpoint=closed_port_url()).restore(first.name, target_url=target, from_local=True)
    assert table_counts(target)["public.users"] == 250


def test_restore_by_object_key(two_backups, pg_server):
    tool, first = two_backups
    target = pg_server.create_database()
    tool.restore(first.key, target_url=target)
    assert table_counts(target)["public.users"] == 250


def test_restore_latest_takes_the_newest_backup(two_backups, pg_server):
    tool, _ = two_backups
    target = pg_server.create_database()
    tool.restore("latest", target_url=target)
    assert table_counts(target)["public.users"] == 251


def test_restore_of_an_unknown_name_is_not_found(two_backups, pg_server):
    tool, _ = two_backups
    with pytest.raises(NotFound):
        tool.restore("botstack-20200101T000000Z", target_url=pg_server.create_database())


# --------------------------------------------------------------------------------------------------
# Spaces down
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def down(make_tool):
    """The tool with Spaces unreachable."""
    return make_tool(endpoint=closed_port_url())


def test_spaces_down_keeps_the_local_copy_and_exits_3(down, s3_server, bucket):
    result = down.run()
    assert not result.uploaded and result.exit_code == 3
    assert os.path.exists(os.path.join(down.dir, result.name + ".dump.gpg"))
    assert os.path.exists(os.path.join(down.dir, result.name + ".manifest.json"))
    assert objects(s3_server, bucket) == {}


def test_spaces_down_alerts_every_admin_once(down, botapi):
    result = down.run()
    texts = alerts(botapi)
    assert len(texts) == 1 and "NOT UPLOADED" in texts[0] and result.name in texts[0]
    assert len(alerts(botapi, ADMINS[1])) == 1


def test_spaces_down_is_recorded_as_not_uploaded(down, seeded_db):
    down.run()
    rec = backup_runs(seeded_db)[-1]
    assert (rec["kind"], rec["ok"], rec["uploaded"]) == ("backup", True, False)


def test_the_cli_exits_3_when_the_backup_stays_local(down):
    assert main(["run"], tool=down) == 3


def test_the_next_run_uploads_the_backlog(down, make_tool, s3_server, bucket, clock):
    result = down.run()
    clock.advance(hours=1)
    assert main(["run"], tool=down) == 3
    clock.advance(hours=6)
    up = make_tool()
    second = up.run()
    assert second.uploaded
    assert sorted(second.backlog_uploaded) == sorted([result.name, "botstack-20261101T040000Z"])
    keys = objects(s3_server, bucket)
    assert len([k for k in keys if k.endswith(".manifest.json")]) == 3
    assert len([k for k in keys if k.endswith(".dump.gpg")]) == 3
    kinds = [(r["kind"], r["ok"], r["uploaded"]) for r in backup_runs(up.cfg.database_url)]
    assert kinds.count(("upload", True, True)) == 2
    # the uploaded backlog restores
    assert up.list()["backups"][0]["offsite_complete"] is True


def test_spaces_down_listing_and_drill_fail_loudly(make_tool, botapi):
    down = make_tool(endpoint=closed_port_url())
    assert down.list()["offsite_error"]
    with pytest.raises(BackupError):
        down.drill()
    assert any("drill FAILED" in t for t in alerts(botapi))


# --------------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def mismatched(make_tool, old_pg_dump):
    """The tool with a pg_dump on PATH that reports another major version."""
    return make_tool()


def test_a_version_mismatch_fails_the_backup_with_exit_6_and_no_dump(mismatched):
    with pytest.raises(VersionMismatch) as ei:
        mismatched.run()
    assert ei.value.exit_code == 6
    assert "major 11" in str(ei.value)
    assert mismatched.local_backups() == []


def test_a_version_mismatch_is_alerted_and_recorded(mismatched, botapi, seeded_db):
    with pytest.raises(VersionMismatch):
        mismatched.run()
    texts = alerts(botapi)
    assert len(texts) == 1 and "backup FAILED" in texts[0] and "version mismatch" in texts[0]
    rec = backup_runs(seeded_db)[-1]
    assert rec["kind"] == "backup" and rec["ok"] is False and "version mismatch" in rec["detail"]


def test_check_reports_a_version_mismatch_with_exit_6(mismatched):
    assert main(["check"], tool=mismatched) == 6


# --------------------------------------------------------------------------------------------------
# drill
# --------------------------------------------------------------------------------------------------
def scratch_dbs(pg_server):
    with psycopg.connect(pg_server.admin_url) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'botstack_drill_%'")]


def test_drill_success_is_reported_and_recorded(make_tool, botapi, seeded_db, pg_server):
    tool = make_tool()
    tool.run()
    res = tool.drill()
    assert res.counts == res.manifest["tables"]
    texts = alerts(botapi)
    assert len(texts) == 1 and "drill OK" in texts[0] and "1561 rows match" in texts[0]
    assert len(alerts(botapi, ADMINS[1])) == 1
    rec = backup_runs(seeded_db)[-1]
    assert rec["kind"] == "drill" and rec["ok"] is True
    assert scratch_dbs(pg_server) == []


def test_drill_failure_is_reported_and_recorded(make_tool, botapi, seeded_db, pg_server, s3_server, bucket):
    tool = make_tool()
    result = tool.run()
    # The manifest says more rows than the dump holds: the drill must notice.
    s3 = s3_client(s3_server)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=result.manifest["manifest_key"])["Body"].read())
    manifest["tables"]["public.users"] += 1
    manifest = integrity.sign(manifest, PASSPHRASE)   # as if the tool itself had miscounted
    s3.put_object(Bucket=bucket, Key=result.manifest["manifest_key"], Body=json.dumps(manifest).encode())
    with pytest.raises(DrillMismatch) as ei:
        tool.drill()
    assert ei.value.exit_code == 8 and "public.users" in str(ei.value)
    texts = alerts(botapi)
    assert len(texts) == 1 and "drill FAILED" in texts[0] and "public.users: backup 251 rows, restored 250" in texts[0]
    rec = backup_runs(seeded_db)[-1]
    assert rec["kind"] == "drill" and rec["ok"] is False
    assert scratch_dbs(pg_server) == []
    assert main(["drill"], tool=tool) == 8


def test_drill_without_any_offsite_backup_fails_loudly(make_tool, botapi):
    tool = make_tool()
    with pytest.raises(NotFound):
        tool.drill()
    assert any("drill FAILED" in t and "no complete backup" in t for t in alerts(botapi))


# --------------------------------------------------------------------------------------------------
# failures are loud; recording without the table
# --------------------------------------------------------------------------------------------------
def test_pg_dump_failure_alerts_and_leaves_no_partial_file(make_tool, failing_pg_dump, botapi, seeded_db):
    tool = make_tool()
    with pytest.raises(Exception) as ei:
        tool.run()
    assert "simulated failure" in str(ei.value)
    assert [f for f in os.listdir(tool.dir) if f.endswith((".gpg", ".partial"))] == []
    assert any("backup FAILED" in t for t in alerts(botapi))
    assert backup_runs(seeded_db)[-1]["ok"] is False


def test_missing_backup_runs_table_still_alerts(make_tool, seeded_db, botapi, caplog):
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("DROP TABLE backup_runs")
    tool = make_tool(endpoint=closed_port_url())
    tool.run()
    assert any("NOT UPLOADED" in t for t in alerts(botapi))
    assert "backup_runs: table missing" in caplog.text


def test_alert_failures_never_log_the_token(make_tool, caplog):
    tool = make_tool(endpoint=closed_port_url(), TELEGRAM_API_BASE_URL=closed_port_url())
    tool.run()
    assert "not delivered" in caplog.text
    assert TOKEN not in caplog.text


def test_a_retention_under_one_day_is_a_config_error():
    with pytest.raises(ConfigError, match="BACKUP_LOCAL_RETENTION_DAYS must be at least 1"):
        Config.from_env({"BACKUP_LOCAL_RETENTION_DAYS": "0"})


def test_an_interval_that_is_not_a_number_is_a_config_error():
    with pytest.raises(ConfigError, match="BACKUP_INTERVAL_HOURS must be a whole number"):
        Config.from_env({"BACKUP_INTERVAL_HOURS": "six"})


def test_the_cli_exits_2_without_a_passphrase(make_tool):
    assert main(["run"], tool=make_tool(BACKUP_PASSPHRASE="")) == 2


def test_split_url_moves_the_password_into_the_environment():
    url, env = pg.split_url("postgresql://bot:p%40ss%2Fw0rd@db.example:25060/botstack?sslmode=require")
    assert url == "postgresql://bot@db.example:25060/botstack?sslmode=require"
    assert env == {"PGPASSWORD": "p@ss/w0rd"}


def test_split_url_leaves_a_url_without_password_alone():
    assert pg.split_url("postgresql://postgres@127.0.0.1:5432/x") == ("postgresql://postgres@127.0.0.1:5432/x", {})


def test_split_url_refuses_another_scheme():
    with pytest.raises(ConfigError):
        pg.split_url("mysql://x")


def program_env(tool):
    return {**os.environ, "PYTHONPATH": BACKUP_SRC, "DATABASE_URL": tool.cfg.database_url,
            "BACKUP_PASSPHRASE": PASSPHRASE, "BACKUP_DIR": tool.dir, "SPACES_ENDPOINT": tool.cfg.spaces_endpoint,
            "SPACES_BUCKET": tool.cfg.spaces_bucket, "SPACES_ACCESS_KEY_ID": "testing",
            "SPACES_SECRET_ACCESS_KEY": "testing", "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": tool.cfg.telegram_api_base_url, "ADMIN_USER_IDS": "1001"}


def test_the_program_backs_up_and_lists(make_tool):
    env = program_env(make_tool())
    run = subprocess.run([sys.executable, "-m", "botstack_backup", "run"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "uploaded to backups/" in run.stdout
    ls = subprocess.run([sys.executable, "-m", "botstack_backup", "list"], env=env, capture_output=True,
                        text=True, timeout=60)
    assert ls.returncode == 0 and "local, spaces" in ls.stdout


def test_the_program_exits_2_on_an_unknown_command(make_tool):
    bad = subprocess.run([sys.executable, "-m", "botstack_backup", "frobnicate"], env=program_env(make_tool()),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


# --------------------------------------------------------------------------------------------------
# one operation at a time
# --------------------------------------------------------------------------------------------------
def test_never_two_dumps_at_once(make_tool, botapi):
    tool = make_tool()
    with tool.lock():
        with pytest.raises(BusyError) as ei:
            tool.run()
        assert ei.value.exit_code == 7
        assert main(["--wait", "0", "run"], tool=tool) == 7
    assert tool.local_backups() == []
    assert alerts(botapi) == []  # busy is not a failure
    tool.run()
    assert len(tool.local_backups()) == 1


def test_cli_waits_for_a_running_operation(make_tool, clock):
    tool = make_tool()
    held, release = threading.Event(), threading.Event()

    def hold():
        with tool.lock():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    assert main(["--wait", "30", "run"], tool=tool) == 0   # waited, then ran: still one at a time
    t.join()
    assert len(tool.local_backups()) == 1


# --------------------------------------------------------------------------------------------------
# the image's libraries: Debian bookworm's python3 + python3-boto3 (1.26) + python3-psycopg (3.1)
# --------------------------------------------------------------------------------------------------
def _system_python_with_debian_libs():
    py = "/usr/bin/python3"
    if not os.path.exists(py):
        return None
    probe = subprocess.run([py, "-c", "import boto3, psycopg; print(boto3.__version__, psycopg.__version__)"],
                           capture_output=True, text=True)
    return (py, probe.stdout.split()) if probe.returncode == 0 else None


def test_cli_on_debian_bookworm_libraries(make_tool, pg_server, botapi):
    found = _system_python_with_debian_libs()
    if not found:
        pytest.skip("no /usr/bin/python3 with python3-boto3 and python3-psycopg (apt-get install them)")
    py, versions = found
    tool = make_tool()
    env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": BACKUP_SRC,
           "DATABASE_URL": tool.cfg.database_url, "BACKUP_PASSPHRASE": PASSPHRASE, "BACKUP_DIR": tool.dir,
           "SPACES_ENDPOINT": tool.cfg.spaces_endpoint, "SPACES_BUCKET": tool.cfg.spaces_bucket,
           "SPACES_ACCESS_KEY_ID": "testing", "SPACES_SECRET_ACCESS_KEY": "testing",
           "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": tool.cfg.telegram_api_base_url,
           "ADMIN_USER_IDS": "1001"}

    def cli(*args):
        return subprocess.run([py, "-m", "botstack_backup", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    run = cli("run")
    assert run.returncode == 0, (versions, run.stderr)
    target = pg_server.create_database()
    restore = cli("restore", "latest", "--target-url", target)
    assert restore.returncode == 0, (versions, restore.stderr)
    assert table_counts(target) == tool.local_backups()[-1].manifest["tables"]
    assert table_counts(target)["public.reminders"] == 1234
    drill = cli("drill")
    assert drill.returncode == 0, (versions, drill.stderr)
    assert any("drill OK" in t for t in alerts(botapi))


def test_spaces_dies_during_the_upload(make_tool, seeded_db, botapi, clock):
    """Spaces stops answering while the dump streams: the local copy is complete, the run says so
    (exit 3), and once Spaces is back the next run uploads it."""
    from moto.server import ThreadedMotoServer
    from tests.support.postgres import free_port
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE bulk AS SELECT g AS id, md5(random()::text) || md5(g::text) AS body "
                     "FROM generate_series(1, 600000) g")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3_client(endpoint).create_bucket(Bucket="dies")
    tool = make_tool(endpoint=endpoint, SPACES_BUCKET="dies")

    def kill_when_the_dump_is_under_way():
        # as soon as 1 MiB of the (about 25 MiB) encrypted dump is on disk: the upload cannot have
        # completed, it waits for the end of the dump
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if any(f.endswith(".partial") and os.path.getsize(os.path.join(tool.dir, f)) > 1 << 20
                       for f in os.listdir(tool.dir)):
                    break
            except OSError:
                pass
            time.sleep(0.005)
        server.stop()
        server._server.server_close()   # refuse new connections (stop() leaves the socket open)

    killer = threading.Thread(target=kill_when_the_dump_is_under_way)
    killer.start()
    try:
        result = tool.run()
    finally:
        killer.join()
    assert not result.uploaded and result.exit_code == 3
    local = tool.local_backups()[-1]
    assert local.good and local.manifest["tables"]["public.bulk"] == 600000
    assert any("NOT UPLOADED" in t for t in alerts(botapi))

    server2 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server2.start()
    try:
        s3_client(endpoint).create_bucket(Bucket="dies")
        clock.advance(hours=6)
        second = tool.run()
        assert second.uploaded and second.backlog_uploaded == [result.name]
        keys = objects(endpoint, "dies")
        assert local.key in keys and local.manifest_key in keys
        # and what was uploaded late restores like any other backup
        target = tool.cfg.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "late_upload_check"')
        try:
            late_url = tool.cfg.database_url.rsplit("/", 1)[0] + "/late_upload_check"
            tool.restore(result.name, target_url=late_url)
            assert table_counts(late_url)["public.bulk"] == 600000
        finally:
            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "late_upload_check" WITH (FORCE)')
    finally:
        server2.stop()


def test_two_backups_in_the_same_second_get_distinct_names(make_tool):
    tool = make_tool()
    a, b = tool.run(), tool.run()          # the injected clock does not move
    assert a.name != b.name and a.key != b.key
    assert [x.name for x in tool.local_backups()] == [a.name, b.name]


def test_an_object_named_like_a_backup_with_an_impossible_time_is_left_out_of_the_list(make_tool, s3_server,
                                                                                         bucket):
    tool = make_tool()
    tool.run()
    # month 13: matches the name pattern, is no time; listing and pruning must skip it, not crash
    s3_client(s3_server).put_object(Bucket=bucket, Key="backups/botstack-20261399T250000Z.dump.gpg", Body=b"x")
    names = [b["name"] for b in tool.list()["backups"]]
    assert names and "botstack-20261399T250000Z" not in names
    assert "botstack-20261399T250000Z" not in " ".join(tool.prune_offsite())
