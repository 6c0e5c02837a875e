"""The pre-resize step's `update` (infra/resize.py), run by bash as pulumi-command runs it, with a
recording `ssh` first on PATH: it stops the stack only when the size really changed."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra import resize, teardown

FAKE_SSH = """#!/bin/sh
cat >/dev/null
printf '%s\\n' "$@" > "$SSH_LOG"
echo "stack stopped, /mnt/botstack-data flushed"   # what the remote side prints
exit "${SSH_RC:-0}"
"""


def run_update(tmp_path: Path, previous_stdout: str, size: str, ssh_rc: int = 0,
               final_backup: bool = True) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    log = tmp_path / "ssh.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SSH_LOG": str(log), "SSH_RC": str(ssh_rc),
           "PULUMI_COMMAND_STDOUT": previous_stdout, resize.SIZE_ENV: size, teardown.HOST: "192.0.2.10",
           teardown.USER: "deploy", teardown.HOST_KEY: "ssh-ed25519 AAAAtest"}
    result = subprocess.run(["/bin/bash", "-c", resize.pre_resize_script(final_backup)], input="KEY\n",
                            capture_output=True, text=True, env=env)
    return result, (log.read_text().splitlines() if log.exists() else [])


def test_a_new_size_takes_a_final_backup_and_stops_the_stack_first(tmp_path):
    result, ssh_args = run_update(tmp_path, "size s-1vcpu-1gb", "s-1vcpu-2gb")
    assert result.returncode == 0, result.stderr
    # what the next run compares with (pulumi-command keeps stdout less its last newline): only
    # the size line, the remote output went to stderr
    assert result.stdout == "size s-1vcpu-2gb\n"
    assert "stack stopped" in result.stderr
    remote = ssh_args[-1]
    assert remote.index("final-backup.sh") < remote.index("docker stop")
    assert "deploy@192.0.2.10" in ssh_args


def test_managed_mode_only_stops_the_stack(tmp_path):
    _, ssh_args = run_update(tmp_path, "size s-1vcpu-1gb", "s-1vcpu-2gb", final_backup=False)
    assert "final-backup.sh" not in ssh_args[-1] and "docker stop" in ssh_args[-1]


def test_any_other_change_of_the_step_stops_nothing(tmp_path):
    result, ssh_args = run_update(tmp_path, "size s-1vcpu-2gb", "s-1vcpu-2gb")
    assert result.returncode == 0 and result.stdout == "size s-1vcpu-2gb\n"
    assert ssh_args == []


@pytest.mark.parametrize("rc", [1, 255])
def test_a_failed_stop_fails_the_step_so_the_droplet_is_not_powered_off(tmp_path, rc):
    # 255: nothing answered, or the host key or login was refused: no resize of a running stack
    result, _ = run_update(tmp_path, "size s-1vcpu-1gb", "s-1vcpu-2gb", ssh_rc=rc)
    assert result.returncode == rc
    assert "size s-1vcpu-2gb" not in result.stdout
    assert "the droplet is not resized" in result.stderr
