"""issue 21 item 5: the off-box restore check (scripts/offbox-restore-check), run as a program the way
the scheduled workflow runs it: a real backup made by the tool into moto, then, away from it, the
newest backup downloaded, its manifest verified, decrypted by stock gpg, restored into an empty
throwaway PostgreSQL database, its row counts compared; every failure told to the admins through the
Bot API double. Also under Debian bookworm's python3 with its python3-boto3 and python3-psycopg, the
libraries the workflow's postgres:17 container installs."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from botstack_backup import integrity
from botstack_backup.store import utcnow

from tests.infra.harness import REPO

from .conftest import ADMINS, PASSPHRASE, TOKEN, s3_client, table_counts

SCRIPT = REPO / "scripts" / "offbox-restore-check"
DEBIAN_PY = "/usr/bin/python3"


@pytest.fixture
def target(pg_server):
    url = pg_server.create_database("offbox")
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def run_check(tmp_path, s3_server, bucket, botapi, target):
    """run_check(python=..., **env) -> CompletedProcess of the script, with a read-only view of the
    store's settings and the passphrase in a file (as the workflow may give it)."""
    pfile = tmp_path / "passphrase"
    pfile.write_text(PASSPHRASE + "\n")
    pfile.chmod(0o600)

    def run(python: str = sys.executable, **over: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
               "BACKUP_STORE_ENDPOINT": s3_server, "BACKUP_STORE_BUCKET": bucket,
               "BACKUP_STORE_ACCESS_KEY_ID": "testing", "BACKUP_STORE_SECRET_ACCESS_KEY": "testing",
               "BACKUP_PASSPHRASE_FILE": str(pfile), "TARGET_DATABASE_URL": target,
               "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": botapi.base_url,
               "ADMIN_USER_IDS": ",".join(map(str, ADMINS)), "RUN_URL": "https://ci.example/runs/7"}
        env.update(over)
        env = {k: v for k, v in env.items() if v is not None}
        return subprocess.run([python, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    return run


def failures(botapi) -> list[str]:
    return [m["text"] for m in botapi.sent_messages(ADMINS[0]) if "off-box restore check FAILED" in m["text"]]


@pytest.fixture
def made(make_tool, clock):
    """Two real backups by the tool, the newest one an hour old."""
    clock.t = utcnow().replace(microsecond=0) - dt.timedelta(hours=25)
    tool = make_tool()
    tool.run()
    clock.advance(hours=24)
    return tool, tool.run()


def test_the_newest_backup_restores_off_box_and_its_counts_match(made, run_check, target, botapi):
    tool, newest = made
    p = run_check(MAX_AGE_HOURS="48")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"offbox-restore-check: OK: {newest.name} (1.0 h old): restored into PostgreSQL")
    assert p.stdout.rstrip().endswith("rows match the manifest")
    assert table_counts(target) == newest.manifest["tables"]
    assert failures(botapi) == []
    assert PASSPHRASE not in p.stdout + p.stderr and TOKEN not in p.stdout + p.stderr


def test_on_debian_bookworms_python_and_libraries(made, run_check, target):
    probe = subprocess.run([DEBIAN_PY, "-c", "import boto3, psycopg"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no /usr/bin/python3 with python3-boto3 and python3-psycopg (apt-get install them)")
    tool, newest = made
    p = run_check(python=DEBIAN_PY, BACKUP_PASSPHRASE_FILE=None, BACKUP_PASSPHRASE=PASSPHRASE)
    assert p.returncode == 0, p.stderr
    assert table_counts(target) == newest.manifest["tables"]


def test_a_tampered_backup_is_not_restored_and_the_admins_are_told(made, run_check, s3_server, bucket,
                                                                   target, botapi):
    tool, newest = made
    s3 = s3_client(s3_server)
    body = bytearray(s3.get_object(Bucket=bucket, Key=newest.key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=newest.key, Body=bytes(body))
    p = run_check()
    assert p.returncode == 1
    assert "checksum mismatch" in p.stderr
    [told] = failures(botapi)
    assert bucket in told and "checksum mismatch" in told and told.endswith("https://ci.example/runs/7")
    assert table_counts(target) == {}


def test_a_backup_made_with_another_passphrase_is_refused(made, run_check, tmp_path, botapi, target):
    p = run_check(BACKUP_PASSPHRASE_FILE=None, BACKUP_PASSPHRASE="not the stack's passphrase at all")
    assert p.returncode == 1
    [told] = failures(botapi)
    assert "refused" in told and "does not carry a valid MAC" in told
    assert table_counts(target) == {}


def test_a_stale_newest_backup_fails_the_check(made, run_check, botapi):
    p = run_check(MAX_AGE_HOURS="0.5")
    assert p.returncode == 1
    [told] = failures(botapi)
    assert "is 1.0 h old (MAX_AGE_HOURS 0.5)" in told


def test_counts_that_differ_from_the_manifest_fail_the_check(made, run_check, s3_server, bucket, botapi):
    """A manifest that promises a row the dump does not hold (a bug in the tool), sealed with the
    passphrase so only the comparison can catch it."""
    tool, newest = made
    manifest = {k: v for k, v in newest.manifest.items() if k != "mac"}
    manifest["tables"] = {**manifest["tables"], "public.users": manifest["tables"]["public.users"] + 1}
    s3_client(s3_server).put_object(Bucket=bucket, Key=newest.manifest["manifest_key"],
                                    Body=json.dumps(integrity.sign(manifest, PASSPHRASE)).encode())
    p = run_check()
    assert p.returncode == 1
    [told] = failures(botapi)
    assert "row counts differ: public.users: backup 251 rows, restored 250" in told


def test_an_empty_store_fails_the_check(run_check, botapi):
    p = run_check()
    assert p.returncode == 1
    [told] = failures(botapi)
    assert "no complete backup in the bucket" in told


def test_a_target_with_data_is_refused_before_any_download(made, run_check, target, botapi):
    import psycopg
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    p = run_check()
    assert p.returncode == 1 and "is not empty" in p.stderr


@pytest.mark.parametrize("over, culprit", [
    ({"BACKUP_STORE_BUCKET": ""}, "not set: BACKUP_STORE_BUCKET"),
    ({"TARGET_DATABASE_URL": ""}, "TARGET_DATABASE_URL is not set"),
    ({"BACKUP_PASSPHRASE_FILE": "/nonexistent/passphrase"}, "BACKUP_PASSPHRASE_FILE: cannot read it"),
    ({"MAX_AGE_HOURS": "two days"}, "MAX_AGE_HOURS must be a number of hours"),
])
def test_bad_settings_are_one_line_naming_them_and_told(run_check, botapi, over, culprit):
    p = run_check(**over)
    assert p.returncode == 2
    [line] = [x for x in p.stderr.splitlines() if "FAILED" in x]
    assert culprit in line
    [told] = failures(botapi)
    assert culprit in told


def test_an_unreachable_bot_api_still_fails_the_check_and_says_so(made, run_check):
    from .conftest import closed_port_url
    p = run_check(MAX_AGE_HOURS="0.5", TELEGRAM_API_BASE_URL=closed_port_url())
    assert p.returncode == 1
    assert "told 0 admin(s)" in p.stderr and TOKEN not in p.stderr


def test_the_workflows_step_runs_the_check_with_its_own_environment_names(made, s3_server, bucket, botapi,
                                                                          target, tmp_path):
    """Every variable the workflow's check step sets is one the script reads (given here the test's
    values), and nothing else is needed: a misspelt name fails this test."""
    import yaml
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "restore-check.yml").read_text())
    [step] = [s for s in doc["jobs"]["restore-check"]["steps"] if "offbox-restore-check" in s.get("run", "")]
    assert step["run"] == "python3 scripts/offbox-restore-check"
    values = {"BACKUP_STORE_ENDPOINT": s3_server, "BACKUP_STORE_REGION": "", "BACKUP_STORE_BUCKET": bucket,
              "BACKUP_STORE_PREFIX": "", "BACKUP_STORE_ACCESS_KEY_ID": "testing",
              "BACKUP_STORE_SECRET_ACCESS_KEY": "testing", "BACKUP_PASSPHRASE": PASSPHRASE,
              "TELEGRAM_BOT_TOKEN": TOKEN, "ADMIN_USER_IDS": ",".join(map(str, ADMINS)),
              "TARGET_DATABASE_URL": target, "MAX_AGE_HOURS": "48", "RUN_URL": "https://ci.example/runs/8"}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TELEGRAM_API_BASE_URL": botapi.base_url,
           **{k: values[k] for k in step["env"]}}  # KeyError: a name the test does not know
    p = subprocess.run([sys.executable, *step["run"].split()[1:]], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "rows match the manifest" in p.stdout
