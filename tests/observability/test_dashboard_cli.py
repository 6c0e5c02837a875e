"""`botstack STACK dashboard`: the SSH tunnel to the droplet's Prometheus, against a real sshd (host
key pinned as the stack's knownHostsLine) and Debian's Prometheus standing in for the droplet's;
the command's own output and Ctrl-C; one-line refusals before any side effect. Grafana's image
cannot be pulled here: its `docker run` line is checked instead."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from botstack_cli import CliError, dashboard  # noqa: E402 - scripts/ is on sys.path (conftest.py)
from botstack_cli.outputs import Stack  # noqa: E402
from botstack_cli.remote import Remote  # noqa: E402
from tests.observability.conftest import free_port
from tests.observability.realstack import Prometheus, REPO

SSHD = shutil.which("sshd", path="/usr/sbin:/usr/bin")

needs_tools = pytest.mark.skipif(not (SSHD and shutil.which("prometheus") and os.geteuid() == 0),
                                 reason="needs sshd, Debian's prometheus and root (sshd logs in as root)")


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def droplet(tmp_path):
    """A real sshd on 127.0.0.1 (the droplet) and a Prometheus on its loopback."""
    host_pub = keygen(tmp_path / "host")
    (tmp_path / "authorized_keys").write_text(keygen(tmp_path / "client") + "\n")
    ssh_port = free_port()
    (tmp_path / "sshd_config").write_text("\n".join([
        f"Port {ssh_port}", "ListenAddress 127.0.0.1", f"HostKey {tmp_path / 'host'}",
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "AllowTcpForwarding local", f"PidFile {tmp_path / 'sshd.pid'}", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp_path / "sshd_config")],
                            stderr=open(tmp_path / "sshd.log", "wb"))
    prom_port = free_port()
    (tmp_path / "prom").mkdir()
    prom = Prometheus(tmp_path / "prom", prom_port, {"global": {"scrape_interval": "1s"}, "scrape_configs": [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}]}]})
    try:
        prom.wait_ready()
        stack = Stack(name="obs", host="127.0.0.1", user="root", port=ssh_port,
                      known_hosts_line=f"127.0.0.1 {' '.join(host_pub.split()[:2])}")
        yield stack, str(tmp_path / "client"), prom_port
    finally:
        prom.stop()
        sshd.terminate()
        sshd.wait()


def args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"no_grafana": True, "port": free_port(), "grafana_port": 3000, **kw})


@needs_tools
def test_the_tunnel_reaches_prometheus_on_the_droplets_loopback(droplet):
    stack, key, prom_port = droplet
    local = free_port()
    with Remote(stack, identity=key) as r:
        tunnel = dashboard.open_tunnel(r, local, prom_port)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/api/v1/query?query=up", timeout=10) as resp:
                assert b'"status":"success"' in resp.read()
        finally:
            dashboard.stop(tunnel)


@needs_tools
def test_the_command_prints_the_url_and_ctrl_c_closes_the_tunnel(droplet, tmp_path):
    stack, key, prom_port = droplet
    local = free_port()
    code = ("import argparse, sys; sys.path.insert(0, sys.argv[1]); from botstack_cli import dashboard; "
            "from botstack_cli.outputs import Stack; "
            f"s = Stack(name='obs', host='127.0.0.1', user='root', port={stack.port}, "
            f"known_hosts_line={stack.known_hosts_line!r}); "
            f"a = argparse.Namespace(no_grafana=True, port={local}, grafana_port=3000); "
            f"sys.exit(dashboard.run(a, s, {key!r}, remote_port={prom_port}))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO / "scripts")], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first == f"Prometheus: http://127.0.0.1:{local}/graph (through SSH to 127.0.0.1)\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/-/ready", timeout=10) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # the tunnel is gone with the command (ssh has exited when dashboard.run returned)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{local}/-/ready", timeout=3)


@needs_tools
def test_a_droplet_without_the_profile_gets_a_one_line_hint(droplet):
    stack, key, _ = droplet
    nothing = free_port()
    with pytest.raises(CliError, match="is `botstack:observability: true` in the stack's config, and deployed"):
        dashboard.run(args(), stack, key, remote_port=nothing)


def test_without_docker_grafana_is_refused_before_any_connection(monkeypatch):
    monkeypatch.setattr(dashboard.shutil, "which", lambda name: None)
    stack = Stack(name="obs", host="192.0.2.1", user="botadmin", known_hosts_line="192.0.2.1 ssh-ed25519 AAAA")
    with pytest.raises(CliError, match="docker is not installed.*--no-grafana") as err:
        dashboard.run(args(no_grafana=False), stack, None)
    assert err.value.code == 2


def test_a_bad_port_is_a_usage_error():
    res = subprocess.run([str(REPO / "scripts" / "botstack"), "dev", "dashboard", "--port", "99999"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "not a port number: '99999'" in res.stderr


def test_grafana_runs_locally_with_the_projects_provisioning():
    argv = dashboard.grafana_argv("botstack-grafana-dev", 3000, 9090, linux=True)
    assert argv[:6] == ["docker", "run", "--rm", "-d", "--name", "botstack-grafana-dev"]
    assert argv[-1] == dashboard.GRAFANA_IMAGE and ":" in argv[-1] and not argv[-1].endswith(":latest")
    assert "PROMETHEUS_URL=http://127.0.0.1:9090" in argv and "GF_SERVER_HTTP_ADDR=127.0.0.1" in argv
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert mounts == [f"{dashboard.GRAFANA_DIR / 'provisioning'}:/etc/grafana/provisioning:ro",
                      f"{dashboard.GRAFANA_DIR / 'dashboards'}:/var/lib/grafana/dashboards:ro"]
    for d in ("provisioning/datasources", "provisioning/dashboards", "dashboards"):
        assert (dashboard.GRAFANA_DIR / d).is_dir()
    mac = dashboard.grafana_argv("g", 3001, 9091, linux=False)
    assert "127.0.0.1:3001:3000" in mac and "PROMETHEUS_URL=http://host.docker.internal:9091" in mac
    assert "--network" not in mac
