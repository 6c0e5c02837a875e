"""Fixtures of the `botstack` CLI tests.

- `cli`: runs scripts/botstack as a program (HOME is a temp dir: no ~/.ssh of the machine counts).
- `standin` (session): the SSH stand-in for the droplet (tests/cli/standin.py), no stack yet.
- `deployed` (session): two releases of the real stack deployed into it over SSH, as the Pulumi
  program deploys them; the outputs file points at it.

The tests that need Docker are skipped with BOTSTACK_REHEARSAL=skip, like the dress rehearsal.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docker_frame import docker_frame, docker_tests_skipped, starts_docker

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "botstack"
sys.path.insert(0, str(REPO / "scripts"))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout + self.stderr


class Cli:
    def __init__(self, home: Path):
        self.home = home
        self.env = dict(os.environ, HOME=str(home), PATH=os.environ.get("PATH", ""))
        self.env.pop("SSH_AUTH_SOCK", None)
        self.env.pop("PULUMI_BACKEND_URL", None)
        self.runs: list[Result] = []

    def __call__(self, *args: str, input: str | None = None, timeout: float = 600,
                 env: dict | None = None) -> Result:
        p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], input=input,
                           capture_output=True, text=True, timeout=timeout,
                           env=dict(self.env, **(env or {})), cwd=self.home)
        r = Result(p.returncode, p.stdout, p.stderr)
        self.runs.append(r)
        return r


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home)


def _docker_skip():
    if docker_tests_skipped():
        pytest.skip("BOTSTACK_REHEARSAL=skip")


# package scope: the stand-in and its stack are gone before the next test package starts (the
# rehearsal after it checks that no botstack network is left in the engine)
@pytest.fixture(scope="package")
@starts_docker
def standin():
    _docker_skip()
    from tests.cli.standin import StandIn
    from tests.rehearsal import images

    with docker_frame("botstack-f-cli-", "the CLI tests") as frame:
        built = images.ensure_all()
        frame.cleanup_image = built["debian"]
        s = StandIn(frame.work, built)
        frame.on_teardown(s.teardown)
        s.start()
        yield s


@pytest.fixture(scope="package")
def deployed(standin):
    """Releases "one" then "two" live (previous -> one, current -> two)."""
    one = standin.deploy(standin.tree("one"))
    standin.create_bucket()
    two = standin.deploy(standin.tree("two", lambda t: (t / "bot" / "TEST-ONLY-two.txt").write_text("two\n")))
    assert one != two
    standin.first, standin.second = one, two
    return standin
