"""scripts/deploy, with a fake `pulumi` on PATH that records its arguments and stdin (the real CLI
is not installed here)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.harness import REPO

TOKEN = "123456789:TESTSECRET-telegram-token-0123456789abcdef"
CREDS = {
    "DIGITALOCEAN_TOKEN": "TESTSECRET-do-token",
    "SPACES_ACCESS_KEY_ID": "DO00TESTKEY",
    "SPACES_SECRET_ACCESS_KEY": "TESTSECRET-spaces",
    "PULUMI_CONFIG_PASSPHRASE": "TESTSECRET-passphrase",
    "TELEGRAM_BOT_TOKEN": TOKEN,
}

FAKE_PULUMI = """#!/usr/bin/env bash
{ printf 'ARGS'; printf ' %s' "$@"; printf '\\n'; } >> "$FAKE_LOG"
if [ "$1 $2" = "config set" ]; then printf 'STDIN %s\\n' "$(cat)" >> "$FAKE_LOG"; fi
# the state's export: FAKE_EXPORT's file, or a stack without resources
if [ "$1 $2" = "stack export" ]; then cat "${FAKE_EXPORT:-/dev/null}" 2>/dev/null || true; \
  [ -n "${FAKE_EXPORT:-}" ] || echo '{"version": 3, "deployment": {}}'; fi
exit 0
"""


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "deploy", root / "scripts" / "deploy")
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    (root / "infra").mkdir()
    shutil.copy(REPO / "infra" / "passphrase.py", root / "infra" / "passphrase.py")
    for stack in ("dev", "prod"):
        text = (REPO / f"Pulumi.{stack}.yaml").read_text()
        (root / f"Pulumi.{stack}.yaml").write_text(text.replace(" # REPLACE-ME", ""))
    # a ready virtualenv, so the script installs nothing
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    for tool in ("python", "pip"):
        (venv / tool).write_text("#!/bin/sh\necho \"$0 $*\" >> \"$FAKE_LOG\"\n")
        (venv / tool).chmod(0o755)
    import hashlib
    (root / ".venv" / ".deploy-requirements.sha256").write_text(
        hashlib.sha256((root / "requirements.txt").read_bytes()).hexdigest() + "\n")
    return root


@pytest.fixture
def fake_bin(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "pulumi").write_text(FAKE_PULUMI)
    (d / "pulumi").chmod(0o755)
    return d


def deploy(repo: Path, env: dict, *args: str, path: str) -> tuple[subprocess.CompletedProcess, str]:
    log = repo.parent / "calls.log"
    full = {"PATH": path, "HOME": str(repo.parent), "FAKE_LOG": str(log), **env}
    result = subprocess.run(["bash", str(repo / "scripts" / "deploy"), *args], env=full,
                            capture_output=True, text=True, timeout=60)
    return result, log.read_text() if log.exists() else ""


def system_path(fake_bin=None) -> str:
    dirs = ["/usr/bin", "/bin"]
    return ":".join(([str(fake_bin)] if fake_bin else []) + dirs)


def test_a_missing_pulumi_cli_is_named(repo):
    result, _ = deploy(repo, CREDS, "dev", path=system_path())
    assert result.returncode != 0
    assert "the pulumi CLI is not installed" in result.stderr


def test_names_every_missing_credential_in_one_line(repo, fake_bin):
    result, calls = deploy(repo, {}, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in ("DIGITALOCEAN_TOKEN", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY",
                 "PULUMI_CONFIG_PASSPHRASE", "TELEGRAM_BOT_TOKEN"):
        assert name in lines[0]
    assert calls == ""  # nothing ran


@pytest.mark.parametrize("absent", ["DIGITALOCEAN_TOKEN", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY",
                                    "PULUMI_CONFIG_PASSPHRASE", "TELEGRAM_BOT_TOKEN"])
def test_names_only_what_is_missing(repo, fake_bin, absent):
    env = {k: v for k, v in CREDS.items() if k != absent}
    result, calls = deploy(repo, env, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    assert result.stderr.startswith("deploy: missing credentials: ")
    assert absent in result.stderr
    others = [k for k in CREDS if k != absent and k != "PULUMI_CONFIG_PASSPHRASE"]
    assert not any(f"{k} (" in result.stderr for k in others)
    assert "TESTSECRET" not in result.stderr
    assert calls == ""


def test_passphrase_file_and_a_stored_token_are_enough(repo, fake_bin, tmp_path):
    pf = tmp_path / "passphrase"
    pf.write_text("TESTSECRET-passphrase\n")
    env = {k: v for k, v in CREDS.items() if k not in ("PULUMI_CONFIG_PASSPHRASE", "TELEGRAM_BOT_TOKEN")}
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(pf)
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  botstack:telegramBotToken:\n    secure: v1:abc\n")
    result, calls = deploy(repo, env, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert "botstack:telegramBotToken" not in calls


def test_refuses_example_values(repo, fake_bin):
    shutil.copy(REPO / "Pulumi.prod.yaml", repo / "Pulumi.prod.yaml")
    result, calls = deploy(repo, CREDS, "prod", path=system_path(fake_bin))
    assert result.returncode == 2
    assert "REPLACE-ME" in result.stderr
    for key in ("botstack:sshPublicKeys", "botstack:adminCidrs", "botstack:adminUserIds", "botstack:alertEmails"):
        assert key in result.stderr
    assert calls == ""


def test_an_unknown_stack_is_refused(repo, fake_bin):
    result, _ = deploy(repo, CREDS, "staging", path=system_path(fake_bin))
    assert result.returncode == 2 and "no Pulumi.staging.yaml" in result.stderr


def test_deploys_with_a_local_backend(repo, fake_bin):
    result, calls = deploy(repo, CREDS, "dev", "--yes", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    args = [line[5:] for line in calls.splitlines() if line.startswith("ARGS ")]
    assert args[0] == f"login file://{repo}/.botstack/state"
    assert args[1] == "stack select --create dev --secrets-provider passphrase"
    assert args[2] == "config set --secret botstack:telegramBotToken --stack dev"
    assert args[3] == "stack export --show-secrets --stack dev"
    assert args[4] == "config set --secret botstack:backupPassphrase --stack dev"
    assert args[5] == "up --stack dev --yes"
    assert (repo / ".botstack" / "state").is_dir()
    # the token went through stdin, never as an argument
    assert f"STDIN {TOKEN}" in calls
    assert not any("TESTSECRET" in a for a in args)


def _stdin_of(calls: str, key: str) -> str:
    lines = calls.splitlines()
    i = lines.index(f"ARGS config set --secret {key} --stack dev")
    return lines[i + 1].removeprefix("STDIN ")


def test_a_new_stack_gets_a_backup_passphrase_in_its_config_through_stdin(repo, fake_bin):
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    passphrase = _stdin_of(calls, "botstack:backupPassphrase")
    assert len(passphrase) == 48 and passphrase.isalnum()
    assert passphrase not in result.stderr + result.stdout
    assert "state unprotect" not in calls


def test_a_stack_made_before_keeps_its_generated_passphrase(repo, fake_bin, tmp_path):
    # as `pulumi stack export --show-secrets` shows a secret output
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"version": 3, "deployment": {"resources": [{
        "urn": "urn:pulumi:dev::botstack::botstack:infra:Storage$random:index/randomPassword:RandomPassword"
               "::storage-backup-passphrase",
        "outputs": {"result": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                               "plaintext": json.dumps("TESTSECRETold0passphrase0from0the0state00000000")}}}]}}))
    result, calls = deploy(repo, {**CREDS, "FAKE_EXPORT": str(export)}, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert _stdin_of(calls, "botstack:backupPassphrase") == "TESTSECRETold0passphrase0from0the0state00000000"
    assert ("ARGS state unprotect --stack dev --yes urn:pulumi:dev::botstack::botstack:infra:Storage"
            "$random:index/randomPassword:RandomPassword::storage-backup-passphrase") in calls
    assert "TESTSECRET" not in result.stderr


def test_a_stack_with_a_passphrase_in_config_is_left_alone(repo, fake_bin):
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  botstack:backupPassphrase:\n    secure: v1:abc\n")
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert "backupPassphrase" not in calls and "stack export" not in calls
