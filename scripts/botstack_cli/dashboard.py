"""`botstack STACK dashboard`: the stack's graphs on your machine.

Prometheus runs on the droplet (the `observability` profile) and listens on its 127.0.0.1 only; the
firewall admits SSH alone. This opens an SSH tunnel to it (host key pinned, as every command here),
then starts Grafana in Docker on your machine with the project's datasource and dashboard
(compose/observability/grafana, provisioned read-only), prints the URL and keeps both up until
Ctrl-C. `--no-grafana` only forwards Prometheus (its own graph page). Nothing runs on the droplet
but the tunnel; Grafana never leaves your machine's 127.0.0.1.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from . import CliError
from .outputs import Stack
from .remote import Remote

PROMETHEUS_ON_DROPLET = 9090       # compose/compose.yml: "127.0.0.1:9090:9090"
GRAFANA_IMAGE = "grafana/grafana:11.3.0"
GRAFANA_DIR = Path(__file__).resolve().parents[2] / "compose" / "observability" / "grafana"
DASHBOARD_PATH = "/d/botstack/botstack"

HELP = "the stack's graphs: an SSH tunnel to Prometheus and Grafana on your machine (Docker)"
DESCRIPTION = """\
Open an SSH tunnel to the droplet's Prometheus (stack config `observability: true`) and start
Grafana on this machine in Docker, provisioned with the project's datasource and dashboard:
reminders and lateness, errors and 429s, backups and drills, host memory and disk. Prints the URL
and keeps running until Ctrl-C, which closes the tunnel and removes the Grafana container.
--no-grafana only forwards Prometheus (its own graph page at the printed URL)."""


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--no-grafana", action="store_true", help="only forward Prometheus; no Docker needed")
    c.add_argument("--port", type=port, default=9090, metavar="PORT",
                   help="local port of the tunnel to Prometheus (default 9090)")
    c.add_argument("--grafana-port", type=port, default=3000, metavar="PORT",
                   help="local port of Grafana (default 3000)")


def tunnel_argv(remote: Remote, local_port: int, remote_port: int = PROMETHEUS_ON_DROPLET) -> list[str]:
    """ssh with the stack's pinned host key, forwarding 127.0.0.1:LOCAL to the droplet's 127.0.0.1:REMOTE
    and running nothing; it fails at once when the local port is taken."""
    argv = remote.argv(None)
    return [*argv[:-1], "-N", "-o", "ExitOnForwardFailure=yes",
            "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", argv[-1]]


def grafana_argv(name: str, grafana_port: int, prometheus_port: int, linux: bool,
                 image: str = GRAFANA_IMAGE) -> list[str]:
    """`docker run` of Grafana: anonymous read-only access on 127.0.0.1, the project's provisioning.
    On Linux it shares the host's network (the tunnel listens on the host's loopback); elsewhere
    Docker Desktop reaches the host as host.docker.internal."""
    if linux:
        net = ["--network", "host", "-e", "GF_SERVER_HTTP_ADDR=127.0.0.1", "-e", f"GF_SERVER_HTTP_PORT={grafana_port}"]
        prometheus = f"http://127.0.0.1:{prometheus_port}"
    else:
        net = ["-p", f"127.0.0.1:{grafana_port}:3000"]
        prometheus = f"http://host.docker.internal:{prometheus_port}"
    env = {"PROMETHEUS_URL": prometheus, "GF_AUTH_ANONYMOUS_ENABLED": "true",
           "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer", "GF_AUTH_DISABLE_LOGIN_FORM": "true",
           "GF_ANALYTICS_REPORTING_ENABLED": "false", "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
           "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": "/var/lib/grafana/dashboards/botstack.json"}
    argv = ["docker", "run", "--rm", "-d", "--name", name, *net]
    for k, v in env.items():
        argv += ["-e", f"{k}={v}"]
    return [*argv, "-v", f"{GRAFANA_DIR / 'provisioning'}:/etc/grafana/provisioning:ro",
            "-v", f"{GRAFANA_DIR / 'dashboards'}:/var/lib/grafana/dashboards:ro", image]


def wait_http(url: str, alive: Callable[[], bool], timeout: float, sleep=time.sleep,
              clock=time.monotonic) -> bool:
    """True once `url` answers 200; False when `alive()` turns false or `timeout` passes."""
    deadline = clock() + timeout
    while clock() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        sleep(0.3)
    return False


def open_tunnel(r: Remote, local_port: int, remote_port: int = PROMETHEUS_ON_DROPLET,
                timeout: float = 30.0) -> subprocess.Popen:
    """The tunnel, once Prometheus answers through it; a one-line CliError otherwise."""
    proc = subprocess.Popen(tunnel_argv(r, local_port, remote_port), stdin=subprocess.DEVNULL)
    if wait_http(f"http://127.0.0.1:{local_port}/-/ready", lambda: proc.poll() is None, timeout):
        return proc
    stop(proc)
    if proc.returncode not in (None, 0, -15):
        err = r.failure()
        log = Path(r.log_file).read_text(errors="replace") if Path(r.log_file).exists() else ""
        if "forwarding" in log.lower() or "address already in use" in log.lower():
            raise CliError(f"cannot listen on 127.0.0.1:{local_port} (in use?): choose another with --port", 2)
        if err is not None:
            raise err
    raise CliError(f"Prometheus does not answer on the droplet's 127.0.0.1:{remote_port}: is "
                   "`botstack:observability: true` in the stack's config, and deployed?", 1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_grafana(name: str, grafana_port: int, prometheus_port: int) -> None:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)  # a leftover of an earlier run
    res = subprocess.run(grafana_argv(name, grafana_port, prometheus_port, sys.platform.startswith("linux")),
                         capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"Grafana did not start in Docker: {last}", 1)
    if not wait_http(f"http://127.0.0.1:{grafana_port}/api/health", lambda: True, 90):
        raise CliError(f"Grafana started but does not answer on 127.0.0.1:{grafana_port} "
                       f"(`docker logs {name}`)", 1)


def run(args: argparse.Namespace, stack: Stack, identity: Optional[str],
        remote_port: int = PROMETHEUS_ON_DROPLET) -> int:
    grafana = not args.no_grafana
    if grafana and shutil.which("docker") is None:
        raise CliError("docker is not installed: Grafana runs in Docker on this machine "
                       "(or use --no-grafana for Prometheus' own graphs)", 2)
    if grafana and args.grafana_port == args.port:
        raise CliError("--port and --grafana-port must differ", 2)
    name = f"botstack-grafana-{stack.name}"
    with Remote(stack, identity=identity) as r:
        tunnel = open_tunnel(r, args.port, remote_port)
        started = False
        try:
            prometheus = f"http://127.0.0.1:{args.port}"
            if grafana:
                start_grafana(name, args.grafana_port, args.port)
                started = True
                print(f"Grafana: http://127.0.0.1:{args.grafana_port}{DASHBOARD_PATH}", flush=True)
            print(f"Prometheus: {prometheus}/graph (through SSH to {stack.host})", flush=True)
            print("Ctrl-C closes the tunnel" + (" and removes Grafana" if grafana else "") + ".", flush=True)
            rc = tunnel.wait()
            raise CliError(f"the SSH tunnel to {stack.host} closed (exit {rc})", 4)
        except KeyboardInterrupt:
            return 0
        finally:
            stop(tunnel)
            if started:
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
