"""scripts/deploy, with a fake `pulumi` on PATH that records its arguments and stdin (the real CLI
is not installed here)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
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
# the backend this call works on, by the CLI's own precedence (pkg/workspace/creds.go):
# PULUMI_BACKEND_URL, else Pulumi.yaml's backend.url, else the stored login
if [ "$1" = login ]; then echo "$2" > "$HOME/.fake-pulumi-login"; exit 0; fi
backend=${PULUMI_BACKEND_URL:-}
[ -n "$backend" ] || backend=$(awk '/^backend:/ {b = 1; next} /^[^ ]/ {b = 0}
  b && /^ +url:/ {sub(/^ +url: */, ""); print; exit}' Pulumi.yaml)
[ -n "$backend" ] || backend=$(cat "$HOME/.fake-pulumi-login" 2>/dev/null)
if [ "$1 $2" = "config set" ]; then printf 'STDIN %s\\n' "$(cat)" >> "$FAKE_LOG"; fi
printf 'BACKEND %s AWS %s\\n' "${backend:-none}" "${AWS_ACCESS_KEY_ID:-none}" >> "$FAKE_LOG"
# the state's export: FAKE_EXPORT's file, or a stack without resources
if [ "$1 $2" = "stack export" ]; then cat "${FAKE_EXPORT:-/dev/null}" 2>/dev/null || true; \\
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
    shutil.copytree(REPO / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    for stack in ("dev", "prod"):
        text = (REPO / f"Pulumi.{stack}.yaml").read_text()
        (root / f"Pulumi.{stack}.yaml").write_text(text.replace(" # REPLACE-ME", ""))
    # a ready virtualenv, so the script installs nothing
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    # its python is the project's (the checks import infra.config); pip must not be needed
    (venv / "python").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    (venv / "pip").write_text("#!/bin/sh\necho \"$0 $*\" >> \"$FAKE_LOG\"\n")
    for tool in ("python", "pip"):
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


def _backends(calls: str) -> set[str]:
    return {line.split()[1] for line in calls.splitlines() if line.startswith("BACKEND ")}


# --- issue 19 item 11: every check before any side effect; --help -------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_does_nothing(repo, fake_bin, flag):
    result, calls = deploy(repo, {}, flag, path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/deploy <stack> [pulumi up arguments]")
    for name in ("DIGITALOCEAN_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "TELEGRAM_BOT_TOKEN", "backend"):
        assert name in result.stdout
    assert result.stderr == "" and calls == ""


def test_an_option_in_place_of_the_stack_is_refused(repo, fake_bin):
    result, calls = deploy(repo, CREDS, "--yes", path=system_path(fake_bin))
    assert result.returncode == 2
    assert result.stderr.strip() == ("deploy: unknown option --yes: the stack comes first "
                                     "(scripts/deploy <stack> [pulumi up arguments]; --help)")
    assert calls == ""


def test_a_bad_stack_name_is_refused_before_the_stack_is_made(repo, fake_bin):
    shutil.copy(repo / "Pulumi.dev.yaml", repo / "Pulumi.Dev_2.yaml")
    result, calls = deploy(repo, CREDS, "Dev_2", path=system_path(fake_bin))
    assert result.returncode == 2
    assert result.stderr.startswith("deploy: Pulumi.Dev_2.yaml: stack 'Dev_2': may hold only lowercase letters")
    assert len(result.stderr.strip().splitlines()) == 1
    assert calls == ""  # no login, no stack, no token stored, no passphrase made


def test_the_programs_value_checks_run_before_the_stack_is_made(repo, fake_bin):
    # the interface scripts/deploy expects from infra/config.py: check_stack_file(stack, path)
    # raising ConfigError; here one that refuses every file, to see where it runs
    with (repo / "infra" / "config.py").open("a") as f:
        f.write("\n\ndef check_stack_file(stack, stack_file):\n"
                "    raise ConfigError('adminCidrs', f'{stack} {stack_file.name}: refused by the program')\n")
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    assert result.stderr.strip() == ("deploy: Pulumi.dev.yaml: botstack:adminCidrs: dev Pulumi.dev.yaml: "
                                     "refused by the program")
    assert calls == ""


# --- issue 19 item 8: one state for CI and every laptop ------------------------------------------

S3 = "s3://botstack-state-1a2b?endpoint=ams3.digitaloceanspaces.com&region=us-east-1&s3ForcePathStyle=true"


def _project_backend(repo: Path, url: str) -> None:
    with (repo / "Pulumi.yaml").open("a") as f:
        f.write(f"backend:\n  url: {url}\n")


def test_the_projects_backend_is_the_one_every_call_uses(repo, fake_bin):
    _project_backend(repo, S3)
    # a laptop that deployed locally before the move: its stored login still names the file backend
    (repo.parent / ".fake-pulumi-login").write_text(f"file://{repo}/.botstack/state\n")
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert _backends(calls) == {S3}
    assert "ARGS login" not in calls and not (repo / ".botstack").exists()
    # the Spaces key reaches the S3 backend
    assert {line.split()[3] for line in calls.splitlines() if line.startswith("BACKEND ")} == {"DO00TESTKEY"}


def test_a_backend_named_only_in_the_shell_is_refused(repo, fake_bin):
    result, calls = deploy(repo, {**CREDS, "PULUMI_BACKEND_URL": S3}, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    assert "PULUMI_BACKEND_URL is set, but Pulumi.yaml names no state backend" in result.stderr
    assert calls == ""


def test_a_shell_backend_other_than_the_projects_is_refused(repo, fake_bin):
    _project_backend(repo, S3)
    result, calls = deploy(repo, {**CREDS, "PULUMI_BACKEND_URL": f"file://{repo}/.botstack/state"}, "dev",
                           path=system_path(fake_bin))
    assert result.returncode == 2
    assert f"PULUMI_BACKEND_URL differs from the project's state backend ({S3}" in result.stderr
    assert calls == ""


def test_the_same_backend_in_the_shell_is_fine(repo, fake_bin):
    _project_backend(repo, S3)
    result, calls = deploy(repo, {**CREDS, "PULUMI_BACKEND_URL": S3}, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert _backends(calls) == {S3}


def test_without_a_project_backend_the_state_is_local(repo, fake_bin):
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert _backends(calls) == {f"file://{repo}/.botstack/state"}


# --- issue 19 item 11: the README's "Try it first" works as written -----------------------------

def test_the_readmes_try_it_first_installs_what_local_up_asks_for_before_running_it():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Try it first"):readme.index("**Before deploying**")]
    commands = [line.split("#")[0].strip() for line in re.findall(r"```sh\n(.*?)```", section, re.S)[0].splitlines()]
    assert commands == ["sudo scripts/install-test-deps", "sudo scripts/botstack local up"]
    # what `botstack local` refuses without, in its own words
    local = (REPO / "scripts" / "botstack_cli" / "local.py").read_text()
    assert "run scripts/install-test-deps first" in local
    # and what install-test-deps installs is what local up imports: the dev requirements
    assert "-r requirements-dev.txt" in (REPO / "scripts" / "install-test-deps").read_text()


# --- the user's own backup store (issue 21 item 1) ---------------------------------------------------

STORE_KEY = {"BACKUP_STORE_ACCESS_KEY_ID": "003TESTSECRETkeyid0001", "BACKUP_STORE_SECRET_ACCESS_KEY": "K003TESTSECRET-store"}


def test_the_own_stores_key_is_stored_as_two_secrets_through_stdin(repo, fake_bin):
    result, calls = deploy(repo, {**CREDS, **STORE_KEY}, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert _stdin_of(calls, "botstack:backupStoreAccessKeyId") == STORE_KEY["BACKUP_STORE_ACCESS_KEY_ID"]
    assert _stdin_of(calls, "botstack:backupStoreSecretAccessKey") == STORE_KEY["BACKUP_STORE_SECRET_ACCESS_KEY"]
    args = [line for line in calls.splitlines() if line.startswith("ARGS ")]
    assert not any("TESTSECRET" in a for a in args) and "TESTSECRET" not in result.stderr + result.stdout


@pytest.mark.parametrize("only", sorted(STORE_KEY))
def test_half_of_the_own_stores_key_is_refused_before_anything(repo, fake_bin, only):
    result, calls = deploy(repo, {**CREDS, only: STORE_KEY[only]}, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    assert "BACKUP_STORE_ACCESS_KEY_ID and BACKUP_STORE_SECRET_ACCESS_KEY together" in result.stderr
    assert "config set" not in calls and "stack select" not in calls


def test_a_stack_with_its_own_store_needs_no_spaces_key(repo, fake_bin):
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  botstack:backupStoreEndpoint: https://s3.example.com\n"
                          "  botstack:backupStoreBucket: my-backups\n")
    no_spaces = {k: v for k, v in CREDS.items() if not k.startswith("SPACES_")}
    result, calls = deploy(repo, {**no_spaces, **STORE_KEY}, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert "ARGS up --stack dev" in calls
    result, _ = deploy(repo, no_spaces, "prod", path=system_path(fake_bin))
    assert "SPACES_ACCESS_KEY_ID (Spaces key)" in result.stderr  # prod still uses Spaces


def test_an_own_store_without_its_key_anywhere_is_refused_before_anything(repo, fake_bin):
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  botstack:backupStoreEndpoint: https://s3.example.com\n"
                          "  botstack:backupStoreBucket: my-backups\n")
    result, calls = deploy(repo, CREDS, "dev", path=system_path(fake_bin))
    assert result.returncode == 2
    assert "botstack:backupStoreEndpoint is set, its key not yet stored" in result.stderr
    assert "config set" not in calls


def test_an_own_store_whose_key_is_in_the_stack_file_passes_the_file_check(repo, fake_bin):
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  botstack:backupStoreEndpoint: https://s3.example.com\n"
                          "  botstack:backupStoreBucket: my-backups\n"
                          "  botstack:backupStoreAccessKeyId:\n    secure: v1:abc\n"
                          "  botstack:backupStoreSecretAccessKey:\n    secure: v1:def\n")
    no_spaces = {k: v for k, v in CREDS.items() if not k.startswith("SPACES_")}
    result, calls = deploy(repo, no_spaces, "dev", path=system_path(fake_bin))
    assert result.returncode == 0, result.stderr
    assert "ARGS up --stack dev" in calls
