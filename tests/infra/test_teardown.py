"""The teardown steps' ssh wrapper (infra/teardown.py), run for real: bash, the OpenSSH client, and
a real sshd on a local port standing in for the droplet. A host that does not answer is a warning;
every other failure still fails the step."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from infra import teardown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> tuple[str, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def droplet(tmp_path_factory):
    """A real sshd on 127.0.0.1, with its own host key and one authorised client key (user root)."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).exists(), "sshd (openssh-server) is missing: run scripts/install-test-deps"
    d = tmp_path_factory.mktemp("sshd")
    _, host_pub = _keygen(d / "host")
    client_private, client_pub = _keygen(d / "client")
    (d / "authorized_keys").write_text(client_pub + "\n")
    port = _free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        f"PidFile {d / 'sshd.pid'}", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield {"port": port, "host_key": host_pub, "key": client_private}
    proc.terminate()
    proc.wait(timeout=10)


def _run(script: str, *, port: int, host_key: str, key: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent",
           teardown.HOST: host, teardown.PORT: str(port), teardown.USER: "root", teardown.HOST_KEY: host_key}
    return subprocess.run(["/bin/bash", "-c", script], input=key, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_host_that_does_not_answer_is_a_warning_and_the_step_succeeds(droplet):
    closed = _free_port()
    p = _run(teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP), port=closed,
             host_key=droplet["host_key"], key=droplet["key"])
    assert p.returncode == 0, p.stderr
    assert "warning: final-backup skipped: 127.0.0.1 does not answer SSH" in p.stderr
    assert "Connection refused" in p.stderr


def test_the_command_runs_on_the_host_with_the_pinned_key(droplet):
    p = _run(teardown.guarded_ssh("stop-stack", "echo ran-on-host; whoami"), **droplet)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ran-on-host", "root"]
    assert "warning" not in p.stderr


def test_a_failing_backup_still_fails_the_step(droplet):
    # no release is deployed on the stand-in: the final backup cannot run, and that must not pass
    p = _run(teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP), **droplet)
    assert p.returncode not in (0, 255), p.stderr
    assert "warning" not in p.stderr


def test_a_remote_failure_keeps_its_exit_status(droplet):
    p = _run(teardown.guarded_ssh("final-backup", "echo backup FAILED >&2; exit 3"), **droplet)
    assert p.returncode == 3
    assert "backup FAILED" in p.stderr


def test_another_host_key_fails_the_step(droplet, tmp_path):
    _, other = _keygen(tmp_path / "other")
    p = _run(teardown.guarded_ssh("final-backup", "true"), port=droplet["port"], host_key=other, key=droplet["key"])
    assert p.returncode == 255
    assert "Host key verification failed" in p.stderr and "warning" not in p.stderr


def test_a_refused_login_fails_the_step(droplet, tmp_path):
    stranger, _ = _keygen(tmp_path / "stranger")
    p = _run(teardown.guarded_ssh("final-backup", "true"), port=droplet["port"], host_key=droplet["host_key"],
             key=stranger)
    assert p.returncode == 255
    assert "Permission denied" in p.stderr and "warning" not in p.stderr


def test_the_private_key_is_never_left_on_disk(droplet, tmp_path):
    script = teardown.guarded_ssh("final-backup", "true").replace("trap 'rm -rf \"$tmp\"' EXIT",
                                                                  "trap 'rm -rf \"$tmp\"; echo \"$tmp\"' EXIT")
    p = _run(script, **droplet)
    assert p.returncode == 0
    assert not Path(p.stdout.strip().splitlines()[-1]).exists()


def test_the_scripts_pass_shellcheck():
    for script in (teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP), teardown.STOP_STACK):
        p = subprocess.run(["shellcheck", "-s", "bash", "-"], input=script, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout
