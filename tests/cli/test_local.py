"""`botstack local up|down|chat` on the stand-in droplet (tests/droplet): the program's user-data
booted, the stack deployed by the program's own commands, then the day-2 commands with stack name
`local`, then everything removed. Needs root (a loop device) and Docker, like the stand-in itself.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.conftest import SCRIPT
from tests.support.docker_frame import starts_docker

pytestmark = pytest.mark.rehearsal
PREFIX = "botstack-f-cli-local"


@pytest.fixture(scope="module")
@starts_docker
def local(tmp_path_factory):
    if os.environ.get("BOTSTACK_REHEARSAL", "").lower() == "skip":
        pytest.skip("BOTSTACK_REHEARSAL=skip")
    pytest.importorskip("tests.droplet.session", reason="the stand-in droplet harness is not here")
    if os.geteuid() != 0:
        pytest.skip("the stand-in droplet needs root (a loop device)")
    d = tmp_path_factory.mktemp("local")
    env = dict(os.environ, BOTSTACK_LOCAL_DIR=str(d), BOTSTACK_LOCAL_PREFIX=PREFIX)
    env.pop("TELEGRAM_BOT_TOKEN", None)

    def run(*args, input=None, timeout=600):
        return subprocess.run([sys.executable, str(SCRIPT), "local", *args], capture_output=True,
                              text=True, env=env, input=input, timeout=timeout)
    run.dir = d
    up = run("up", timeout=1800)
    try:
        assert up.returncode == 0, up.stdout + up.stderr[-6000:]
        yield run
    finally:
        if (d / "state.json").exists():
            run("down")


def containers() -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
    return [n for n in out.stdout.split() if n.startswith(PREFIX)]


def test_local_status_shows_the_stack_healthy(local):
    r = local("status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(line.split()[:3] == ["bot", "running", "healthy"] for line in r.stdout.splitlines())


def test_local_chat_talks_to_the_bot_through_the_double(local):
    r = local("chat", input="/start\n")
    assert r.returncode == 0, r.stderr
    assert "bot> " in r.stdout and "(no answer" not in r.stdout


def test_local_ssh_is_the_admin_on_the_stand_in(local):
    r = local("ssh", "--", "id", "-un")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "botadmin"


def test_local_backup_uploads_to_the_s3_double(local):
    r = local("backup")
    assert r.returncode == 0, r.stderr
    assert "uploaded to backups/" in r.stdout


def test_local_down_removes_everything_it_made(local):
    r = local("down")
    assert r.returncode == 0, r.stderr
    assert containers() == []
    assert not (local.dir / "state.json").exists() and not (local.dir / "outputs.json").exists()
    again = local("status")
    assert again.returncode == 2 and "not up" in again.stderr
