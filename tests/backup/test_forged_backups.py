"""Backups planted in the bucket by someone who can write to it but does not hold the passphrase
(and, as a second line, data that is not sealed even under a valid manifest): restore and drill
refuse them, alert, record the failure and leave the target database untouched."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import psycopg
import pytest

from botstack_backup import integrity
from botstack_backup.cli import main
from botstack_backup.config import Config
from botstack_backup.errors import EXIT_FORGED, ConfigError, ForgedError

from .conftest import ADMINS, PASSPHRASE, ROOT, backup_runs, s3_client, table_counts

PLANTED = "botstack-20261102T030000Z"
PLANTED_KEY = f"backups/2026/11/02/{PLANTED}.dump.gpg"
PLANTED_MANIFEST_KEY = f"backups/2026/11/02/{PLANTED}.manifest.json"


def alerts(botapi):
    return [m["text"] for m in botapi.sent_messages(ADMINS[0])]


@pytest.fixture
def gpg_home():
    # not under tmp_path: gpg-agent's sockets live in the home, and a socket path is limited to 107
    # bytes; pytest's temp dirs (longer under pytest-xdist: .../popen-gw0/...) went past that, and
    # gpg failed to start its agent. A short directory of its own, as the backup tool's (gpg.py).
    home = tempfile.mkdtemp(prefix="botstack-attacker-gnupg-")
    yield home
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def planted_dump(pg_server, tmp_path):
    """A valid pg_dump -Fc of a database holding a table `planted`: restorable if nothing refused it."""
    url = pg_server.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE planted (id int)")
        conn.execute("INSERT INTO planted VALUES (1)")
    path = tmp_path / "planted.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(path), url], check=True, capture_output=True)
    return path


def gpg(home, *args):
    passfile = os.path.join(home, "pass")
    with open(passfile, "w") as f:
        f.write(PASSPHRASE)
    subprocess.run(["gpg", "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback",
                    "--passphrase-file", passfile, *args], check=True, capture_output=True,
                   env=dict(os.environ, GNUPGHOME=home))


def stored(home, plain, tmp_path):
    """A bare literal packet: `gpg --decrypt` prints it and exits 0."""
    out = tmp_path / "stored.gpg"
    gpg(home, "--store", "--output", str(out), str(plain))
    return out.read_bytes()


def without_mdc(home, plain, tmp_path):
    """Passphrase-encrypted but without integrity protection (RFC 2440's packet, no MDC)."""
    out = tmp_path / "nomdc.gpg"
    gpg(home, "--symmetric", "--rfc2440", "--cipher-algo", "AES256", "--output", str(out), str(plain))
    return out.read_bytes()


def plant(s3_server, bucket, real: dict, payload: bytes, plain: bytes, sign: bool, **over) -> dict:
    """Write a newer "backup" into the bucket: its manifest's sha256 sums match the payload."""
    manifest = {k: v for k, v in real.items() if k != "mac"}
    manifest.update(name=PLANTED, key=PLANTED_KEY, manifest_key=PLANTED_MANIFEST_KEY,
                    created_at="2026-11-02T03:00:00Z", sha256_encrypted=hashlib.sha256(payload).hexdigest(),
                    size_encrypted=len(payload), sha256_plain=hashlib.sha256(plain).hexdigest(),
                    size_plain=len(plain), tables={"public.planted": 1})
    manifest.update(over)
    if sign:
        manifest = integrity.sign(manifest, PASSPHRASE)
    s3 = s3_client(s3_server)
    s3.put_object(Bucket=bucket, Key=PLANTED_KEY, Body=payload)
    s3.put_object(Bucket=bucket, Key=PLANTED_MANIFEST_KEY, Body=json.dumps(manifest).encode())
    return manifest


def assert_refused_and_untouched(tool, target, before, botapi, kind="restore"):
    assert table_counts(target) == before
    assert "public.planted" not in table_counts(target)
    assert any(f"{kind} FAILED" in t and "refused" in t for t in alerts(botapi))
    rec = backup_runs(tool.cfg.database_url)[-1]
    assert (rec["kind"], rec["ok"]) == (kind, False) and "refused" in rec["detail"]


@pytest.fixture
def real_backup(make_tool):
    tool = make_tool()
    result = tool.run()
    return tool, result.manifest


@pytest.fixture
def target(pg_server):
    url = pg_server.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (id int)")
        conn.execute("INSERT INTO precious SELECT generate_series(1, 5)")
    return url


def refuse_planted(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket, target, botapi,
                   make_payload, sign, match, **over):
    """Plant a newer backup, restore `latest` over `target` with --force: refused, target untouched."""
    tool, real = real_backup
    payload = make_payload(gpg_home, planted_dump, tmp_path)
    plant(s3_server, bucket, real, payload, planted_dump.read_bytes(), sign=sign, **over)
    before = table_counts(target)
    with pytest.raises(ForgedError, match=match):
        tool.restore("latest", target_url=target, force=True)
    assert_refused_and_untouched(tool, target, before, botapi)


def skip_planted(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket, target, botapi,
                 make_payload, sign, match, **over):
    """Plant a newer backup that fails verification, restore `latest`: the planted one is skipped and
    reported, never chosen; the real backup is what is restored."""
    tool, real = real_backup
    payload = make_payload(gpg_home, planted_dump, tmp_path)
    plant(s3_server, bucket, real, payload, planted_dump.read_bytes(), sign=sign, **over)
    assert tool.restore("latest", target_url=target, force=True)["name"] == real["name"]
    assert "public.planted" not in table_counts(target)
    assert table_counts(target)["public.users"] == real["tables"]["public.users"]
    assert any("planted or damaged objects" in t and PLANTED in t and match in t for t in alerts(botapi))
    rec = backup_runs(tool.cfg.database_url)[-1]
    assert (rec["kind"], rec["ok"]) == ("restore", True) and "failed verification" in rec["detail"]


@pytest.fixture
def planting(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket, target, botapi):
    return lambda **kw: refuse_planted(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket,
                                       target, botapi, **kw)


@pytest.fixture
def skipping(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket, target, botapi):
    return lambda **kw: skip_planted(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket,
                                     target, botapi, **kw)


def test_a_stored_literal_packet_with_recomputed_sums_is_skipped_for_the_real_backup(skipping):
    skipping(make_payload=stored, sign=False, match="MAC")


def test_a_stored_literal_packet_is_refused_even_under_a_valid_manifest(planting):
    planting(make_payload=stored, sign=True, match="not passphrase-encrypted")


def test_data_without_integrity_protection_is_refused_even_under_a_valid_manifest(planting):
    planting(make_payload=without_mdc, sign=True, match="no MDC")


def test_a_manifest_with_recomputed_sums_but_no_valid_mac_is_skipped(skipping, real_backup):
    forged_mac = dict(real_backup[1]["mac"], value="0" * 64)
    skipping(make_payload=stored, sign=False, match="does not carry a valid MAC", mac=forged_mac)


def test_an_altered_field_of_a_real_manifest_breaks_its_mac(real_backup, s3_server, bucket, pg_server, botapi):
    tool, real = real_backup
    altered = dict(real, tables={**real["tables"], "public.users": 0})
    s3_client(s3_server).put_object(Bucket=bucket, Key=real["manifest_key"], Body=json.dumps(altered).encode())
    with pytest.raises(ForgedError, match="does not carry a valid MAC"):
        tool.restore("latest", target_url=pg_server.create_database())


def test_a_manifest_naming_a_path_outside_the_work_directory_is_skipped(skipping):
    skipping(make_payload=stored, sign=True, match="not a backup name",
             name="../../../tmp/botstack-20261102T030000Z")
    assert not os.path.exists("/tmp/botstack-20261102T030000Z.dump.gpg")


@pytest.mark.parametrize("name", ["botstack-20261102T030000Z/x", "bot stack-20261102T030000Z",
                                  "botstack..x-20261102T030000Z", "-20261102T030000Z", "botstack", ""])
def test_names_with_separators_dots_or_odd_characters_are_refused(name):
    with pytest.raises(ForgedError, match="not a backup name"):
        integrity.check_name(name)


@pytest.mark.parametrize("name", ["../x", "a/b", "bot stack"])
def test_a_backup_name_setting_that_restores_would_refuse_is_a_config_error(name):
    with pytest.raises(ConfigError, match="BACKUP_NAME"):
        Config.from_env({"BACKUP_NAME": name})


def test_a_manifest_filed_under_another_backups_name_is_refused(real_backup, pg_server):
    tool, real = real_backup
    with pytest.raises(ForgedError, match="manifest of another backup"):
        integrity.verify(real, PASSPHRASE, PLANTED_MANIFEST_KEY)


def test_a_manifest_made_before_manifests_were_authenticated_is_refused_with_a_way_out(
        real_backup, s3_server, bucket, pg_server, botapi):
    tool, real = real_backup
    old = {k: v for k, v in real.items() if k != "mac"}
    old["format"] = 1
    s3_client(s3_server).put_object(Bucket=bucket, Key=real["manifest_key"], Body=json.dumps(old).encode())
    with pytest.raises(ForgedError) as ei:
        tool.restore("latest", target_url=pg_server.create_database())
    assert "has no MAC" in str(ei.value) and "botstack-backup run" in str(ei.value)


def test_the_drill_refuses_a_planted_backup_and_creates_no_scratch_database(
        real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket, pg_server, botapi):
    tool, real = real_backup
    payload = stored(gpg_home, planted_dump, tmp_path)
    plant(s3_server, bucket, real, payload, planted_dump.read_bytes(), sign=True)
    with pytest.raises(ForgedError):
        tool.drill()
    assert any("drill FAILED" in t and "not passphrase-encrypted" in t for t in alerts(botapi))
    rec = backup_runs(tool.cfg.database_url)[-1]
    assert (rec["kind"], rec["ok"]) == ("drill", False)
    with psycopg.connect(pg_server.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'botstack_drill_%'"
                            ).fetchone()[0] == 0


def test_a_tampered_local_manifest_is_refused(real_backup, pg_server, botapi):
    tool, real = real_backup
    local = tool.local_backups()[-1]
    with open(local.manifest_path, "w") as f:
        json.dump(dict(local.manifest, tables={}), f)
    with pytest.raises(ForgedError, match="does not carry a valid MAC"):
        tool.restore("latest", target_url=pg_server.create_database(), from_local=True)


def test_the_cli_exits_10_on_a_forged_backup(real_backup, planted_dump, gpg_home, tmp_path, s3_server, bucket,
                                              target, capsys):
    tool, real = real_backup
    s3_client(s3_server).delete_object(Bucket=bucket, Key=real["manifest_key"])  # the forged one is all there is
    plant(s3_server, bucket, real, stored(gpg_home, planted_dump, tmp_path), planted_dump.read_bytes(),
          sign=False)
    assert main(["restore", "latest", "--force", "--target-url", target], tool=tool) == EXIT_FORGED == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("botstack-backup restore: refused:")


def test_a_real_backup_still_restores_after_a_refusal(real_backup, pg_server):
    tool, real = real_backup
    target = pg_server.create_database()
    tool.restore("latest", target_url=target)
    assert table_counts(target) == real["tables"]




def _runbook_one_liner() -> str:
    with open(os.path.join(ROOT, "docs", "backups.md")) as f:
        lines = [line.strip() for line in f if line.strip().startswith("python3 -c 'import getpass")]
    assert len(lines) == 1, "docs/backups.md shows one python3 one-liner that checks a manifest's MAC"
    return lines[0]


def test_the_runbooks_one_liner_verifies_a_real_manifest_and_rejects_an_altered_one(real_backup, tmp_path):
    tool, real = real_backup
    cmd = _runbook_one_liner().replace("MANIFEST.json", str(tmp_path / "m.json"))
    (tmp_path / "m.json").write_text(json.dumps(real))
    ok = subprocess.run(["sh", "-c", cmd], input=PASSPHRASE + "\n", capture_output=True, text=True)
    assert ok.stdout.strip() == "MAC OK", ok.stderr
    (tmp_path / "m.json").write_text(json.dumps(dict(real, size_plain=1)))
    bad = subprocess.run(["sh", "-c", cmd], input=PASSPHRASE + "\n", capture_output=True, text=True)
    assert bad.stdout.strip() == "MAC BAD", bad.stderr
