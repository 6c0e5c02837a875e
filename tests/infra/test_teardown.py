"""The teardown steps' ssh wrapper (infra/teardown.py), run for real: bash, the OpenSSH client and
python3 on a "runner", a real sshd on a stand-in droplet, each in its own network namespace joined
by a veth pair (the droplet's address is the reserved IP). The droplet has its own metadata service
on 169.254.169.254 (serving /metadata/v1/id, as DigitalOcean's does), its firewall is an iptables
rule that drops TCP 22 (as a cloud firewall drops a host outside adminCidrs), and DigitalOcean's API
is an HTTP double beside the runner (tests/infra/do_api_double.py) that answers as the real one.

Only a droplet DigitalOcean says is gone (404) is a warning; a droplet that exists and does not
answer, another droplet at the same address (same keys: a re-created droplet), and every other
failure fail the step, and nothing runs on a droplet the step was not made for."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from infra import teardown

IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") or "ip"
SSHD = shutil.which("sshd", path="/usr/sbin:/usr/bin") or "/usr/sbin/sshd"
RUNNER_ADDR, DROPLET_ADDR = "10.251.0.1", "10.251.0.2"
METADATA = "169.254.169.254"
API_PORT = 8089
TOKEN = "TESTSECRET-do-token"
OLD, NEW = "1001", "2002"   # the droplet a step was made for, and a re-created one
DOUBLE = Path(__file__).with_name("do_api_double.py")


def _keygen(path: Path) -> tuple[str, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class World:
    """A runner namespace and a droplet namespace; the droplet can be booted with an id, shut
    down, and firewalled."""

    def __init__(self, d: Path):
        tag = str(os.getpid())
        self.d = d
        self.runner, self.droplet = f"btr{tag}", f"btd{tag}"
        self.procs: dict[str, subprocess.Popen] = {}
        _, self.host_pub = _keygen(d / "host")
        self.key, client_pub = _keygen(d / "client")
        (d / "authorized_keys").write_text(client_pub + "\n")
        (d / "sshd_config").write_text("\n".join([
            "Port 22", "ListenAddress 0.0.0.0", f"HostKey {d / 'host'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            f"PidFile {d / 'sshd.pid'}", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        _sh(IP, "netns", "add", self.runner)
        _sh(IP, "netns", "add", self.droplet)
        _sh(IP, "link", "add", f"vr{tag}", "type", "veth", "peer", "name", f"vd{tag}")
        _sh(IP, "link", "set", f"vr{tag}", "netns", self.runner)
        _sh(IP, "link", "set", f"vd{tag}", "netns", self.droplet)
        for ns, dev, addr in ((self.runner, f"vr{tag}", RUNNER_ADDR), (self.droplet, f"vd{tag}", DROPLET_ADDR)):
            _sh(IP, "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _sh(IP, "-n", ns, "link", "set", dev, "up")
            _sh(IP, "-n", ns, "link", "set", "lo", "up")
        _sh(IP, "-n", self.droplet, "addr", "add", f"{METADATA}/32", "dev", "lo")
        self.api_state = d / "api.json"
        self.api_log = d / "api.log"
        self.set_api(droplets={OLD: "active"})
        self._start("api", self.runner, ["python3", str(DOUBLE), str(API_PORT), str(self.api_state),
                                         str(self.api_log)], port=API_PORT)

    def _start(self, name: str, ns: str, cmd: list[str], port: int) -> None:
        self.procs[name] = subprocess.Popen([IP, "netns", "exec", ns, *cmd], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        for _ in range(200):
            out = subprocess.run([IP, "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"],
                                 capture_output=True, text=True).stdout
            if out.strip():
                return
            time.sleep(0.05)
        raise AssertionError(f"{name} did not start listening on port {port}")

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc:
            proc.terminate()
            proc.wait(timeout=10)

    def boot(self, droplet_id: str) -> None:
        """The droplet at the reserved IP is now `droplet_id`, with the same keys (same user-data)."""
        self.shutdown()
        served = self.d / f"metadata-{droplet_id}"
        (served / "metadata" / "v1").mkdir(parents=True, exist_ok=True)
        (served / "metadata" / "v1" / "id").write_text(droplet_id)
        self._start("sshd", self.droplet, [SSHD, "-D", "-e", "-f", str(self.d / "sshd_config")], port=22)
        self._start("metadata", self.droplet, ["python3", "-m", "http.server", "--bind", METADATA,
                                               "--directory", str(served), "80"], port=80)

    def shutdown(self) -> None:
        self._stop("sshd")
        self._stop("metadata")

    def firewall(self, drop: bool) -> None:
        action = "-I" if drop else "-D"
        _sh(IP, "netns", "exec", self.droplet, "iptables", action, "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP")

    def set_api(self, *, droplets: dict[str, str], answer: list | None = None) -> None:
        self.api_state.write_text(json.dumps({"token": TOKEN, "droplets": droplets, "answer": answer}))
        self.api_log.write_text("")

    def api_requests(self) -> list[dict]:
        return [json.loads(line) for line in self.api_log.read_text().splitlines()]

    def close(self) -> None:
        for name in list(self.procs):
            self._stop(name)
        for ns in (self.runner, self.droplet):
            subprocess.run([IP, "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    assert Path(SSHD).exists(), "sshd (openssh-server) is missing: run scripts/install-test-deps"
    assert os.geteuid() == 0, "these tests make network namespaces: run them as root (CI does)"
    w = World(tmp_path_factory.mktemp("teardown"))
    yield w
    w.close()


@pytest.fixture
def droplet(world):
    """Droplet OLD up and answering at the reserved IP; DigitalOcean knows it as active."""
    world.boot(OLD)
    world.set_api(droplets={OLD: "active"})
    yield world
    world.shutdown()
    subprocess.run([IP, "netns", "exec", world.droplet, "iptables", "-F", "INPUT"], capture_output=True)


def _run(world: World, script: str, *, droplet_id: str = OLD, key: str | None = None, host_key: str | None = None,
         **env: str) -> subprocess.CompletedProcess:
    full = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent",
            teardown.HOST: DROPLET_ADDR, teardown.USER: "root", teardown.HOST_KEY: host_key or world.host_pub,
            teardown.DROPLET_ID: droplet_id, teardown.CONNECT_TIMEOUT: "2", teardown.CONNECTION_ATTEMPTS: "1",
            "DIGITALOCEAN_TOKEN": TOKEN, "DIGITALOCEAN_API_URL": f"http://127.0.0.1:{API_PORT}", **env}
    return subprocess.run([IP, "netns", "exec", world.runner, "/bin/bash", "-c", script], input=key or world.key,
                          env={k: v for k, v in full.items() if v}, capture_output=True, text=True, timeout=120)


def _marking(world: World, name: str) -> tuple[str, Path]:
    """A remote command that leaves a mark (with the id of the droplet it ran on)."""
    mark = world.d / name
    mark.unlink(missing_ok=True)
    return f'echo "$have" >> {mark}', mark


# --- the droplet answers -----------------------------------------------------------------------

def test_the_command_runs_on_its_droplet_with_the_pinned_key_and_asks_no_api(droplet):
    p = _run(droplet, teardown.guarded_ssh("stop-stack", "echo ran-on-host; whoami"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ran-on-host", "root"]
    assert "warning" not in p.stderr
    assert droplet.api_requests() == []


def test_a_failing_backup_still_fails_the_step(droplet):
    # no release is deployed on the stand-in: the final backup cannot run, and that must not pass
    p = _run(droplet, teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP))
    assert p.returncode not in (0, 255), p.stderr
    assert "warning" not in p.stderr


def test_a_remote_failure_keeps_its_exit_status(droplet):
    p = _run(droplet, teardown.guarded_ssh("final-backup", "echo backup FAILED >&2; exit 3"))
    assert p.returncode == 3
    assert "backup FAILED" in p.stderr


def test_another_host_key_fails_the_step(droplet, tmp_path):
    _, other = _keygen(tmp_path / "other")
    p = _run(droplet, teardown.guarded_ssh("final-backup", "true"), host_key=other)
    assert p.returncode == 255
    assert "Host key verification failed" in p.stderr and "warning" not in p.stderr


def test_a_refused_login_fails_the_step(droplet, tmp_path):
    stranger, _ = _keygen(tmp_path / "stranger")
    p = _run(droplet, teardown.guarded_ssh("final-backup", "true"), key=stranger)
    assert p.returncode == 255
    assert "Permission denied" in p.stderr and "warning" not in p.stderr


def test_the_private_key_is_never_left_on_disk(droplet):
    script = teardown.guarded_ssh("final-backup", "true").replace("trap 'rm -rf \"$tmp\"' EXIT",
                                                                  "trap 'rm -rf \"$tmp\"; echo \"$tmp\"' EXIT")
    p = _run(droplet, script)
    assert p.returncode == 0, p.stderr
    assert not Path(p.stdout.strip().splitlines()[-1]).exists()


def test_a_step_without_its_droplet_id_fails_before_dialling(droplet):
    remote, mark = _marking(droplet, "no-id")
    p = _run(droplet, teardown.guarded_ssh("stop-stack", remote), droplet_id="")
    assert p.returncode == 1 and f"no droplet id in {teardown.DROPLET_ID}" in p.stderr
    assert not mark.exists()


# --- issue 19 item 5: silent is not gone -------------------------------------------------------

def test_a_droplet_behind_the_firewall_fails_the_step_and_nothing_runs(droplet):
    remote, mark = _marking(droplet, "firewalled")
    droplet.firewall(drop=True)
    p = _run(droplet, teardown.guarded_ssh("stop-stack", remote))
    assert p.returncode == 1, p.stderr
    assert "Connection timed out" in p.stderr
    assert (f"error: stop-stack: droplet {OLD}: it still exists (DigitalOcean: status active), but "
            f"{DROPLET_ADDR} does not answer SSH on port 22") in p.stderr
    assert "admit this machine to SSH (botstack:adminCidrs)" in p.stderr
    assert "warning" not in p.stderr and not mark.exists()
    # asked with the token, from the environment
    assert droplet.api_requests() == [{"method": "GET", "path": f"/v2/droplets/{OLD}", "authorised": True}]


def test_a_powered_off_droplet_that_exists_fails_the_step(droplet):
    droplet.shutdown()
    droplet.set_api(droplets={OLD: "off"})
    p = _run(droplet, teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP))
    assert p.returncode == 1 and "Connection refused" in p.stderr
    assert "it still exists (DigitalOcean: status off)" in p.stderr


@pytest.mark.parametrize("firewalled", [False, True], ids=["refused", "dropped"])
def test_a_droplet_that_is_gone_is_a_warning_and_the_step_succeeds(droplet, firewalled):
    droplet.shutdown()
    if firewalled:
        droplet.firewall(drop=True)
    droplet.set_api(droplets={})
    p = _run(droplet, teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP))
    assert p.returncode == 0, p.stderr
    assert (f"warning: final-backup skipped: droplet {OLD} is gone (DigitalOcean answers 404 not_found); "
            f"{DROPLET_ADDR} does not answer SSH on port 22") in p.stderr


@pytest.mark.parametrize("case, env, answer, says", [
    ("no token", {"DIGITALOCEAN_TOKEN": ""}, None, "DIGITALOCEAN_TOKEN is not set"),
    ("wrong token", {"DIGITALOCEAN_TOKEN": "TESTSECRET-revoked"}, None, "HTTP 401 Unauthorized"),
    ("outage", {}, [503, "<html>Service Unavailable</html>"], "HTTP 503 ?"),
    ("a 404 that is not DigitalOcean's", {}, [404, "<html>Not Found</html>"], "HTTP 404 ?"),
    ("redirected elsewhere", {}, [302, ""], "HTTP 302"),
    ("no API there", {"DIGITALOCEAN_API_URL": "http://127.0.0.1:9"}, None, "did not answer (URLError)"),
])
def test_an_api_that_cannot_tell_fails_the_step(droplet, case, env, answer, says):
    droplet.shutdown()
    droplet.set_api(droplets={}, answer=answer)
    p = _run(droplet, teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP), **env)
    assert p.returncode == 1, (case, p.stderr)
    assert f"and droplet {OLD} may still exist" in p.stderr and says in p.stderr, (case, p.stderr)
    assert "warning" not in p.stderr
    assert "TESTSECRET" not in p.stderr


def test_the_token_is_accepted_under_the_providers_other_name(droplet):
    droplet.shutdown()
    droplet.set_api(droplets={})
    p = _run(droplet, teardown.guarded_ssh("final-backup", "true"), DIGITALOCEAN_TOKEN="",
             DIGITALOCEAN_ACCESS_TOKEN=TOKEN)
    assert p.returncode == 0 and "is gone" in p.stderr, p.stderr


# --- issue 19 item 4: a re-created droplet at the same address is left alone ---------------------

def test_a_new_droplet_with_the_same_keys_is_left_alone_when_the_old_one_is_gone(droplet):
    remote, mark = _marking(droplet, "recreated")
    droplet.boot(NEW)                      # same host key, deploy key and address, another id
    droplet.set_api(droplets={NEW: "active"})
    p = _run(droplet, teardown.guarded_ssh("stop-stack", remote))
    assert p.returncode == 0, p.stderr
    assert not mark.exists(), f"ran on droplet {mark.read_text().strip()}"
    assert (f"warning: stop-stack skipped: droplet {OLD} is gone (DigitalOcean answers 404 not_found); "
            f"{DROPLET_ADDR} reaches another droplet ({NEW}), left alone") in p.stderr
    assert droplet.api_requests() == [{"method": "GET", "path": f"/v2/droplets/{OLD}", "authorised": True}]


def test_a_new_droplet_at_the_address_while_the_old_one_exists_fails_the_step(droplet):
    remote, mark = _marking(droplet, "both")
    droplet.boot(NEW)
    droplet.set_api(droplets={OLD: "active", NEW: "active"})
    p = _run(droplet, teardown.guarded_ssh("final-backup", remote))
    assert p.returncode == 1, p.stderr
    assert f"droplet {OLD}: it still exists" in p.stderr and f"reaches another droplet ({NEW})" in p.stderr
    assert not mark.exists()


def test_the_step_runs_on_its_own_droplet(droplet):
    remote, mark = _marking(droplet, "own")
    p = _run(droplet, teardown.guarded_ssh("stop-stack", remote))
    assert p.returncode == 0, p.stderr
    assert mark.read_text().split() == [OLD]


def test_a_droplet_that_cannot_say_who_it_is_fails_the_step(droplet):
    remote, mark = _marking(droplet, "unknown")
    droplet._stop("metadata")
    p = _run(droplet, teardown.guarded_ssh("stop-stack", remote))
    assert p.returncode == 1
    assert "cannot read this droplet's id from its metadata service" in p.stderr
    assert not mark.exists() and droplet.api_requests() == []


def test_the_scripts_pass_shellcheck():
    for script in (teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP), teardown.STOP_STACK,
                   "want=1; " + teardown.IDENTITY_CHECK + teardown.STOP_STACK):
        p = subprocess.run(["shellcheck", "-s", "bash", "-"], input=script, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout
