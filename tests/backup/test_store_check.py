"""issue 21 item 2: at every run the tool asks the store what it cannot guarantee (store_check.py):
versioning off, a lifecycle rule that could expire current backups, Object Lock. Against moto (which
implements all three calls) and s3rver, a second S3 implementation that, like small stores, has no
versioning and answers NotImplemented to the lifecycle and Object Lock calls."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from botstack_backup import store_check
from botstack_backup.cli import main
from botstack_backup.config import Config
from botstack_backup.offsite import Offsite
from botstack_backup.store_check import INFO, OK, RISK, UNKNOWN, check

from tests.infra.harness import REPO
from tests.support.postgres import free_port

from .conftest import ADMINS, backup_runs, s3_client

S3RVER = REPO / ".cache" / "s3rver" / "node_modules" / ".bin" / "s3rver"
S3RVER_KEY = "S3RVER"  # s3rver's one access key (and its secret): any other is refused


def s3rver_client(endpoint: str):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=S3RVER_KEY, aws_secret_access_key=S3RVER_KEY)


def levels(report) -> dict:
    return {f.topic: f.level for f in report.findings}


def client_for(endpoint: str, bucket: str, key: str = "testing"):
    """The tool's own S3 client (offsite.py's settings: path style, checksums only when required)."""
    return Offsite(Config.from_env({"SPACES_ENDPOINT": endpoint, "SPACES_BUCKET": bucket,
                                    "SPACES_ACCESS_KEY_ID": key, "SPACES_SECRET_ACCESS_KEY": key}))


def expire_rule(prefix: str, days: int = 30, **extra) -> dict:
    return {"ID": f"expire-{days}", "Status": "Enabled", "Filter": {"Prefix": prefix},
            "Expiration": {"Days": days}, **extra}


# --- moto ---------------------------------------------------------------------------------------------

@pytest.fixture
def plain_bucket(s3_server):
    """A bucket as S3 makes it: versioning never turned on (the `bucket` fixture's is on)."""
    name = f"pl-{uuid.uuid4().hex[:10]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


def test_a_versioned_bucket_without_rules_has_no_problem(s3_server, bucket):
    report = check(client_for(s3_server, bucket).client, bucket, "backups/")
    assert levels(report) == {"versioning": OK, "lifecycle": OK, "object lock": INFO}
    assert report.problems == []


def test_a_plain_bucket_has_versioning_off_no_rule_and_no_lock(s3_server, plain_bucket):
    bucket = plain_bucket
    off = client_for(s3_server, bucket)
    report = check(off.client, bucket, "backups/")
    assert levels(report) == {"versioning": RISK, "lifecycle": OK, "object lock": INFO}
    assert report.summary() == "versioning: off: a deleted or overwritten backup is gone at once"


def test_the_programs_own_spaces_bucket_passes(tmp_path, s3_server, bucket):
    """The rules exactly as the Pulumi program registers them on its SpacesBucket, in S3's terms."""
    from .test_offsite_retention import program_bucket_and_env
    spaces, _ = program_bucket_and_env(tmp_path)
    s3 = s3_client(s3_server)
    assert spaces["versioning"]["enabled"] is True
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rules = []
    for r in spaces["lifecycleRules"]:
        assert set(r) <= {"id", "enabled", "prefix", "abortIncompleteMultipartUploadDays", "expiration",
                          "noncurrentVersionExpiration"}, r
        rule = {"ID": r["id"], "Status": "Enabled" if r["enabled"] else "Disabled",
                "Filter": {"Prefix": r.get("prefix") or ""}}
        if "abortIncompleteMultipartUploadDays" in r:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(r["abortIncompleteMultipartUploadDays"])}
        if "noncurrentVersionExpiration" in r:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(r["noncurrentVersionExpiration"]["days"])}
        if "expiration" in r:
            exp = r["expiration"]
            assert set(exp) <= {"days", "date", "expiredObjectDeleteMarker"}, exp
            rule["Expiration"] = ({"ExpiredObjectDeleteMarker": True} if exp.get("expiredObjectDeleteMarker")
                                  else {"Days": int(exp["days"])} if "days" in exp else {"Date": exp["date"]})
        rules.append(rule)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    report = check(client_for(s3_server, bucket).client, bucket, "backups/")
    assert report.problems == [], report.findings
    assert levels(report) == {"versioning": OK, "lifecycle": OK, "object lock": INFO}


@pytest.mark.parametrize("rule, risky", [
    (expire_rule("backups/"), True),
    (expire_rule(""), True),                         # every key
    (expire_rule("back"), True),                     # a prefix of the prefix
    (expire_rule("backups/2026/"), True),            # some of the backups
    (expire_rule("logs/"), False),                   # another part of the bucket
    ({**expire_rule("backups/"), "Status": "Disabled"}, False),
    ({"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "tmp", "Value": "1"}},
      "Expiration": {"Days": 1}}, False),            # the tool tags nothing
    ({"ID": "date", "Status": "Enabled", "Filter": {"Prefix": ""},
      "Expiration": {"Date": dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)}}, True),
    ({"ID": "and", "Status": "Enabled", "Filter": {"And": {"Prefix": "backups/", "ObjectSizeGreaterThan": 10}},
      "Expiration": {"Days": 90}}, True),
    ({"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "backups/"},
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, True),
    ({"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": "backups/"},
      "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}, False),
])
def test_a_lifecycle_rule_is_a_risk_when_it_can_expire_current_backups(s3_server, bucket, rule, risky):
    s3 = s3_client(s3_server)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    report = check(client_for(s3_server, bucket).client, bucket, "backups/")
    assert levels(report)["lifecycle"] == (RISK if risky else OK), report.findings
    if risky:
        [finding] = report.problems
        assert repr(rule["ID"]) in finding.text


def test_suspended_versioning_is_a_risk(s3_server, bucket):
    s3 = s3_client(s3_server)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    report = check(client_for(s3_server, bucket).client, bucket, "backups/")
    assert levels(report)["versioning"] == RISK and "suspended" in report.summary()


def test_object_lock_is_reported_with_what_it_means_for_pruning(s3_server):
    name = f"lk-{uuid.uuid4().hex[:10]}"
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    report = check(client_for(s3_server, name).client, name, "backups/")
    [lock] = [f for f in report.findings if f.topic == "object lock"]
    assert lock.level == INFO and lock.text.startswith("on (GOVERNANCE, 30 days)")
    assert "delete marker" in lock.text
    assert levels(report)["versioning"] == OK  # Object Lock turns versioning on
    assert report.problems == []


def test_an_unreachable_store_cannot_be_verified_and_nothing_raises():
    endpoint = f"http://127.0.0.1:{free_port()}"
    off = client_for(endpoint, "gone")
    report = check(off.client, "gone", "backups/")
    assert levels(report) == {"versioning": UNKNOWN, "lifecycle": UNKNOWN, "object lock": UNKNOWN}
    assert {f.text for f in report.findings} == {"cannot verify (EndpointConnectionError)"}


# --- fail-closed parsing of the answers -------------------------------------------------------------

def refusing(code: str):
    def call(**kwargs):
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "GetBucketSomething")
    return call


@pytest.mark.parametrize("code", ["AccessDenied", "NotImplemented", "MethodNotAllowed"])
def test_a_refused_question_is_cannot_verify_naming_the_answer(code):
    class Client:
        get_bucket_versioning = get_bucket_lifecycle_configuration = get_object_lock_configuration = \
            staticmethod(refusing(code))
    report = check(Client(), "b", "backups/")
    assert levels(report) == {"versioning": UNKNOWN, "lifecycle": UNKNOWN, "object lock": UNKNOWN}
    assert all(f.text == f"cannot verify (the store answered {code})" for f in report.findings)


def test_a_connection_error_is_cannot_verify():
    class Client:
        @staticmethod
        def get_bucket_versioning(**kwargs):
            raise EndpointConnectionError(endpoint_url="http://x")
        get_bucket_lifecycle_configuration = staticmethod(refusing("NoSuchLifecycleConfiguration"))
        get_object_lock_configuration = staticmethod(refusing("ObjectLockConfigurationNotFoundError"))
    report = check(Client(), "b", "backups/")
    assert levels(report) == {"versioning": UNKNOWN, "lifecycle": OK, "object lock": INFO}


@pytest.mark.parametrize("answer", [
    {"Rules": "all"}, {}, {"Rules": ["x"]},
    {"Rules": [{"ID": "a", "Status": "Maybe", "Filter": {"Prefix": ""}}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": "backups/"}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": 7}}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Prefix": ["backups/"]}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": "30"}}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Soon": True}}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": "30 days"}]},
    {"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {}, "Transitions": {"Days": 3}}]},
])
def test_a_lifecycle_answer_of_an_unexpected_shape_is_cannot_verify(answer):
    [finding] = store_check.lifecycle(answer, "backups/")
    assert finding.level == UNKNOWN and finding.text.startswith("cannot verify")


@pytest.mark.parametrize("answer, level", [
    ({"Status": "Enabled"}, OK), ({"Status": "Suspended"}, RISK), ({}, RISK), ({"Status": 1}, UNKNOWN),
    ({"Status": "enabled"}, UNKNOWN)])
def test_versioning_answers(answer, level):
    assert store_check.versioning(answer).level == level


@pytest.mark.parametrize("answer, level", [
    ({"ObjectLockConfiguration": "on"}, UNKNOWN), ({}, UNKNOWN),
    ({"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}, INFO),
    ({"ObjectLockConfiguration": {}}, INFO)])
def test_object_lock_answers(answer, level):
    assert store_check.object_lock(answer).level == level


# --- at every run: the record, and the admins told when the problems change ---------------------------

def store_alerts(botapi) -> list[str]:
    return [m["text"] for m in botapi.sent_messages(ADMINS[0]) if "backup store" in m["text"]]


def test_every_run_checks_the_store_records_the_problems_and_tells_the_admins_when_they_change(
        make_tool, s3_server, plain_bucket, botapi, seeded_db, clock):
    bucket = plain_bucket
    tool = make_tool(SPACES_BUCKET=bucket)
    tool.run()
    [alert] = store_alerts(botapi)
    assert "versioning: off" in alert and bucket in alert
    [row] = [r for r in backup_runs(seeded_db) if r["kind"] == "backup"]
    assert row["ok"] and row["detail"].endswith("; store: versioning: off: a deleted or overwritten backup is gone at once")

    clock.advance(hours=24)
    tool.run()  # the same problems: recorded again, not told again
    assert len(store_alerts(botapi)) == 1
    second = [r for r in backup_runs(seeded_db) if r["kind"] == "backup"][-1]
    assert "; store: versioning: off" in second["detail"]

    s3_client(s3_server).put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
        "Rules": [expire_rule("backups/", days=10)]})
    clock.advance(hours=24)
    tool.run()  # a new problem is told at once
    alerts = store_alerts(botapi)
    assert len(alerts) == 2 and "'expire-10' expires current objects" in alerts[-1]

    s3 = s3_client(s3_server)
    s3.delete_bucket_lifecycle(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    clock.advance(hours=24)
    tool.run()
    alerts = store_alerts(botapi)
    assert len(alerts) == 3 and "resolved" in alerts[-1]
    last = [r for r in backup_runs(seeded_db) if r["kind"] == "backup"][-1]
    assert "store:" not in last["detail"]


def test_a_run_whose_upload_failed_asks_nothing_of_the_store(make_tool, botapi):
    from .conftest import closed_port_url
    result = make_tool(endpoint=closed_port_url()).run()
    assert not result.uploaded and result.store == ""
    assert store_alerts(botapi) == []


def test_check_prints_the_findings(make_tool, plain_bucket, capsys):
    assert main(["check"], tool=make_tool(SPACES_BUCKET=plain_bucket)) == 0
    out = capsys.readouterr().out
    assert "store risk: versioning: off" in out and "store ok: lifecycle: no rule" in out


# --- s3rver: a second S3 implementation -------------------------------------------------------------

@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    if not S3RVER.exists():
        pytest.fail("s3rver is not installed: run scripts/install-test-deps")
    port = free_port()
    data = tmp_path_factory.mktemp("s3rver")
    proc = subprocess.Popen([str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            s3rver_client(endpoint).list_buckets()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"s3rver did not start: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            time.sleep(0.2)
    yield endpoint
    proc.terminate()
    proc.wait(10)


def test_on_s3rver_versioning_is_off_and_the_rest_cannot_be_verified(s3rver):
    name = f"sr-{uuid.uuid4().hex[:10]}"
    s3rver_client(s3rver).create_bucket(Bucket=name)
    report = check(client_for(s3rver, name, S3RVER_KEY).client, name, "backups/")
    assert levels(report) == {"versioning": RISK, "lifecycle": UNKNOWN, "object lock": UNKNOWN}
    assert "lifecycle: cannot verify (the store answered NotImplemented)" in report.summary()


def test_a_backup_to_s3rver_is_uploaded_restored_and_its_store_reported(make_tool, s3rver, botapi, tmp_path):
    name = f"sr-{uuid.uuid4().hex[:10]}"
    s3rver_client(s3rver).create_bucket(Bucket=name)
    tool = make_tool(endpoint=s3rver, SPACES_BUCKET=name, SPACES_ACCESS_KEY_ID=S3RVER_KEY,
                     SPACES_SECRET_ACCESS_KEY=S3RVER_KEY)
    result = tool.run()
    assert result.uploaded
    assert result.store.startswith("versioning: off")
    [alert] = store_alerts(botapi)
    assert "cannot verify (the store answered NotImplemented)" in alert
    target = tool.cfg.database_url.rsplit("/", 1)[0] + "/" + f"sr_{uuid.uuid4().hex[:8]}"
    import psycopg
    with psycopg.connect(tool.cfg.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target.rsplit("/", 1)[1]}"')
    manifest = tool.restore("latest", target_url=target)
    assert manifest["name"] == result.name
    assert os.path.exists(tool.dir)


def test_problems_the_admins_did_not_get_are_told_again_next_run(make_tool, plain_bucket, botapi, clock,
                                                                  monkeypatch):
    from .conftest import closed_port_url
    tool = make_tool(SPACES_BUCKET=plain_bucket, TELEGRAM_API_BASE_URL=closed_port_url())
    tool.run()  # the Bot API unreachable: nobody heard of it
    assert not os.path.exists(os.path.join(tool.dir, store_check.STATE_FILE))
    tool.alerter.base = botapi.base_url
    clock.advance(hours=24)
    tool.run()
    [alert] = store_alerts(botapi)
    assert "versioning: off" in alert
