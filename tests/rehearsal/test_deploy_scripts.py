"""Fast checks of the deploy scripts (deploy/*.sh) without a Docker engine: a fake `docker` on PATH
records every call and fails where a test tells it to. The dress rehearsal (test_rehearsal.py) runs
the same scripts against a real engine."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCRIPTS = ["activate.sh", "write-env.sh", "wait-ready.sh", "final-backup.sh"]

FAKE_DOCKER = textwrap.dedent(r"""
    #!/bin/sh
    # fake docker: logs "RELEASE=<BOTSTACK_RELEASE> FILES=<COMPOSE_FILE> args..." and fakes answers
    printf 'RELEASE=%s FILES=%s %s\n' "${BOTSTACK_RELEASE:-}" "${COMPOSE_FILE:-}" "$*" >>"$FAKE_LOG"
    case "$*" in
      *" run "*) [ -z "${FAKE_FAIL_RUN:-}" ] || { echo "fake: nothing to restore" >&2; exit 9; } ;;
      *" up "*)
        for r in ${FAKE_FAIL_UP:-}; do
          [ "$BOTSTACK_RELEASE" = "$r" ] && { echo "fake: bot unhealthy" >&2; exit 1; }
        done ;;
      *"ps -a --format"*) echo "bot exited  (exit 1)"; echo "postgres running healthy (exit 0)" ;;
      *"config --services"*) printf '%s\n' ${FAKE_SERVICES:-bot} ;;
      *"ps --services --status running"*) printf '%s\n' ${FAKE_RUNNING:-bot} ;;
      *"image ls"*) printf '%s\n' ${FAKE_IMAGES:-} ;;
      "info"*|*"compose version"*) echo "fake 1.0" ;;
    esac
    exit 0
""").lstrip()


@pytest.fixture
def droplet(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(FAKE_DOCKER)
    fake.chmod(0o755)
    root = tmp_path / "opt-botstack"
    (root / "releases").mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "shared" / ".env").write_text("TELEGRAM_BOT_TOKEN=1:secret-token\n")
    data = tmp_path / "data"
    data.mkdir()
    log = tmp_path / "docker.log"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BOTSTACK_ROOT": str(root), "DATA_DIR": str(data),
           "FAKE_LOG": str(log), "HOME": str(tmp_path)}


    def release(rid):
        rel = root / "releases" / rid
        shutil.copytree(DEPLOY, rel / "deploy")
        (rel / "compose").mkdir(parents=True)
        (rel / "compose" / "compose.yml").write_text("services: {}\n")
        return rid

    def run(script, *args, rid=None, input=None, **extra):
        path = (root / "releases" / rid / "deploy" / script) if rid else DEPLOY / script
        return subprocess.run(["bash", str(path), *args], input=input, capture_output=True, text=True,
                              env={**env, **extra}, timeout=60)

    def calls():
        return log.read_text().splitlines() if log.exists() else []

    def link(name):
        p = root / name
        return os.path.basename(os.readlink(p)) if p.is_symlink() else None

    return SimpleNamespace(root=root, env=env, log=log, release=release, run=run, calls=calls, link=link)


def test_the_deploy_scripts_pass_shellcheck():
    # a real dependency (scripts/install-test-deps installs it): a missing linter fails, never skips
    assert shutil.which("shellcheck"), "shellcheck not installed: run scripts/install-test-deps"
    proc = subprocess.run(["shellcheck", "-x", *[f"deploy/{s}" for s in SCRIPTS], "deploy/lib.sh"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_scripts_are_executable_and_strict():
    for s in SCRIPTS:
        p = DEPLOY / s
        assert os.access(p, os.X_OK), f"deploy/{s} is not executable"
        assert "set -eu" in p.read_text(), f"deploy/{s} does not set -eu"


def test_write_env_atomic_0600_and_silent(droplet):
    rid = droplet.release("r1")
    content = "TELEGRAM_BOT_TOKEN=1:very-secret\n# comment\n\nPOSTGRES_PASSWORD=p@ss=word\n"
    p = droplet.run("write-env.sh", rid=rid, input=content)
    assert p.returncode == 0, p.stderr
    env_file = droplet.root / "shared" / ".env"
    assert env_file.read_text() == content
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "very-secret" not in p.stdout + p.stderr and "p@ss" not in p.stdout + p.stderr
    assert not [f for f in (droplet.root / "shared").iterdir() if f.name != ".env"], "temp file left"


def test_write_env_refuses_bad_input_and_keeps_the_old_file(droplet):
    rid = droplet.release("r1")
    env_file = droplet.root / "shared" / ".env"
    old = env_file.read_text()
    p = droplet.run("write-env.sh", rid=rid, input="GOOD=1\nthis is secret garbage\n")
    assert p.returncode != 0 and "line(s) 2" in p.stderr
    assert "secret garbage" not in p.stdout + p.stderr
    assert env_file.read_text() == old
    p = droplet.run("write-env.sh", rid=rid, input="")
    assert p.returncode != 0 and env_file.read_text() == old
    assert not [f for f in (droplet.root / "shared").iterdir() if f.name != ".env"], "temp file left"


def test_activate_first_then_second_release(droplet):
    d = droplet
    r1 = d.release("aaaaaaaaaaa1")
    p = d.run("activate.sh", r1, rid=r1)
    assert p.returncode == 0, p.stderr
    assert (d.link("current"), d.link("previous")) == (r1, None)
    calls = d.calls()
    assert any(" build" in c for c in calls) and any(" up -d --wait" in c for c in calls)
    assert not any(" stop bot" in c for c in calls), "first deploy: no old bot to stop"
    assert all(f"RELEASE={r1}" in c for c in calls if "compose" in c)
    assert all(f"/releases/{r1}/compose/compose.yml" in c for c in calls if "compose" in c)

    d.log.unlink()
    r2 = d.release("bbbbbbbbbbb2")
    p = d.run("activate.sh", r2, rid=r2)
    assert p.returncode == 0, p.stderr
    assert (d.link("current"), d.link("previous")) == (r2, r1)
    calls = d.calls()
    build = next(i for i, c in enumerate(calls) if " build" in c and f"RELEASE={r2}" in c)
    stop = next(i for i, c in enumerate(calls) if " stop bot" in c)
    up = next(i for i, c in enumerate(calls) if " up -d --wait" in c)
    assert build < stop < up, f"build new images, then stop the old bot, then up: {calls}"
    assert f"RELEASE={r1}" in calls[stop] and f"/releases/{r1}/" in calls[stop]

    # re-running the same release converges and keeps the links
    p = d.run("activate.sh", r2, rid=r2)
    assert p.returncode == 0 and (d.link("current"), d.link("previous")) == (r2, r1)


def test_activate_failure_rolls_back_and_cleanup_keeps_two(droplet):
    d = droplet
    r1, r2, r3, r4 = (d.release(f"rel{i}") for i in range(1, 5))
    assert d.run("activate.sh", r1, rid=r1).returncode == 0
    assert d.run("activate.sh", r2, rid=r2).returncode == 0
    d.log.unlink()
    p = d.run("activate.sh", r3, rid=r3, FAKE_FAIL_UP=r3)
    assert p.returncode == 1
    assert "rolling back to rel2" in p.stderr and "rolled back" in p.stderr
    assert "last 60 log lines of bot" in p.stderr, p.stderr
    assert "secret-token" not in p.stdout + p.stderr
    assert (d.link("current"), d.link("previous")) == (r2, r1)
    ups = [c for c in d.calls() if " up -d --wait" in c]
    assert [c.split()[0] for c in ups] == [f"RELEASE={r3}", f"RELEASE={r2}"], ups

    # the next good release: only it and previous stay, with their images
    p = d.run("activate.sh", r4, rid=r4, FAKE_IMAGES="botstack-bot:rel1 botstack-backup:rel3 other:rel1")
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in (d.root / "releases").iterdir()) == [r2, r4]
    rm = [c for c in d.calls() if "image rm" in c]
    assert any("botstack-bot:rel1" in c for c in rm) and any("botstack-backup:rel3" in c for c in rm)
    assert not any("other:rel1" in c for c in rm)


def test_activate_first_deploy_failure_has_nothing_to_roll_back(droplet):
    d = droplet
    r1 = d.release("rel1")
    p = d.run("activate.sh", r1, rid=r1, FAKE_FAIL_UP=r1)
    assert p.returncode == 1 and "no previous release" in p.stderr
    assert d.link("current") is None


def test_restore_from_restores_into_the_empty_database_before_the_bot_starts(droplet):
    """issue 21 item 4: RESTORE_FROM in the .env runs the backup tool's restore-into-empty (a no-op
    once the database has data) after the build and before any bot starts; its failure stops the
    deploy with the bot not started."""
    d = droplet
    env_file = d.root / "shared" / ".env"
    r1 = d.release("rel1")
    assert d.run("activate.sh", r1, rid=r1).returncode == 0
    assert not any(" run " in c for c in d.calls()), "no RESTORE_FROM: no restore"

    env_file.write_text(env_file.read_text() + "RESTORE_FROM=s3://old-bucket/backups/\n")
    d.log.unlink()
    r2 = d.release("rel2")
    p = d.run("activate.sh", r2, rid=r2)
    assert p.returncode == 0, p.stderr
    calls = d.calls()
    build, run, stop, up = (next(i for i, c in enumerate(calls) if f in c) for f in (
        " build", " run --rm -T backup botstack-backup restore-into-empty --skip-if-data", " stop bot", " up -d"))
    assert build < run < stop < up, calls
    assert f"RELEASE={r2}" in calls[run] and "restoring the newest backup of s3://old-bucket/backups/" in p.stderr

    d.log.unlink()
    r3 = d.release("rel3")
    p = d.run("activate.sh", r3, rid=r3, FAKE_FAIL_RUN="1")
    assert p.returncode == 1 and "restore-into-empty failed (above); the bot was not started" in p.stderr
    assert not any(" up " in c or " stop " in c for c in d.calls())
    assert d.link("current") == r2


def test_activate_refuses_unknown_release_and_missing_env(droplet):
    d = droplet
    r1 = d.release("rel1")
    p = d.run("activate.sh", "nope", rid=r1)
    assert p.returncode != 0 and "no release nope" in p.stderr
    (d.root / "shared" / ".env").unlink()
    p = d.run("activate.sh", r1, rid=r1)
    assert p.returncode != 0 and ".env missing" in p.stderr


def test_compose_extra_hook(droplet):
    d = droplet
    r1 = d.release("rel1")
    p = d.run("activate.sh", r1, rid=r1, BOTSTACK_COMPOSE_EXTRA="/x/extra.yml")
    assert p.returncode == 0
    assert all(c.split()[1].endswith("compose.yml:/x/extra.yml") for c in d.calls() if "compose" in c)


def test_final_backup_modes(droplet):
    d = droplet
    p = d.run("final-backup.sh")
    assert p.returncode == 0 and "no release is deployed" in p.stderr
    r1 = d.release("rel1")
    assert d.run("activate.sh", r1, rid=r1).returncode == 0
    p = d.run("final-backup.sh", FAKE_SERVICES="bot")
    assert p.returncode == 0 and "managed database mode" in p.stderr
    d.log.unlink()
    p = d.run("final-backup.sh", FAKE_SERVICES="bot postgres backup", FAKE_RUNNING="bot postgres backup")
    assert p.returncode == 0, p.stderr
    assert any("exec -T backup botstack-backup run" in c for c in d.calls())
    d.log.unlink()
    p = d.run("final-backup.sh", FAKE_SERVICES="bot postgres backup", FAKE_RUNNING="bot postgres")
    assert p.returncode == 0
    calls = d.calls()
    assert any(" up -d --wait" in c and c.endswith(" backup") for c in calls), calls


def test_wait_ready_without_cloud_init(droplet):
    p = droplet.run("wait-ready.sh")
    assert p.returncode == 0, p.stderr
    assert "ready:" in p.stderr
    p = droplet.run("wait-ready.sh", DATA_DIR="/nonexistent/botstack-data")
    assert p.returncode != 0 and "block volume" in p.stderr
