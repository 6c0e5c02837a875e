"""./scripts/test's two phases: the tests that need no Docker in parallel workers, then the Docker
tests one at a time. Together they run exactly what one plain `pytest` run collects; the serial phase
holds every test that reaches the Docker engine (marker `docker`, tests/conftest.py) and no other;
and a Docker engine asked for in a parallel worker is refused."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from tests.infra.harness import REPO
from tests.support.docker_engine import Engine

SCRIPT = REPO / "scripts" / "test"


def phase_selections() -> list[str]:
    """The `-m` expressions of the whole run's pytest phases, in order."""
    text = SCRIPT.read_text()
    whole_run = text[text.index("if (($#)); then"):]
    return [m.strip('"') for m in re.findall(r'pytest -m ("[^"]*"|\S+)', whole_run)]


def collected(*args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return [line for line in p.stdout.splitlines() if "::" in line]


@pytest.fixture(scope="module")
def phases() -> dict[str, list[str]]:
    parallel, serial = phase_selections()
    return {"all": collected(), "parallel": collected("-m", parallel), "serial": collected("-m", serial)}


def _tests_of(path: str, needing: set[str] | None = None) -> set[str]:
    """The test functions of a module (those with one of the `needing` parameters, if given)."""
    tree = ast.parse((REPO / path).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and (needing is None or needing & {a.arg for a in node.args.args})}


def _names(ids: list[str], path: str) -> set[str]:
    return {i.split("::")[1].split("[")[0] for i in ids if i.startswith(path + "::")}


def test_the_whole_run_is_the_parallel_phase_then_the_serial_one():
    assert phase_selections() == ["not docker", "docker"]
    text = SCRIPT.read_text()
    assert re.search(r'pytest -m "not docker" -n \S+', text), "the first phase runs in parallel workers"
    assert not re.search(r"pytest -m docker .*-n", text), "the Docker phase runs in one process"


def test_the_two_phases_together_are_exactly_one_plain_run(phases):
    parallel, serial = set(phases["parallel"]), set(phases["serial"])
    assert len(phases["all"]) == len(set(phases["all"])) > 1000
    assert not parallel & serial
    assert parallel | serial == set(phases["all"])


def test_the_serial_phase_is_the_tests_that_reach_the_docker_engine(phases):
    serial = phases["serial"]
    for path in ("tests/rehearsal/test_rehearsal.py", "tests/droplet/test_1_deploy.py",
                 "tests/droplet/test_3_reboot.py", "tests/cli/test_local.py"):
        assert _names(serial, path) == _tests_of(path), path
    # the CLI's module mixes both: only the tests on the SSH stand-in need the engine
    cli = "tests/cli/test_cli.py"
    assert _names(serial, cli) == _tests_of(cli, {"standin", "deployed"})
    assert _names(phases["parallel"], cli) == _tests_of(cli) - _tests_of(cli, {"standin", "deployed"})
    # a fixture named `droplet` of its own (a fake docker on PATH): not the stand-in droplet's
    assert not _names(serial, "tests/rehearsal/test_deploy_scripts.py")
    assert {i.split("/")[1] for i in serial} == {"rehearsal", "droplet", "cli"}


def test_a_docker_engine_asked_for_in_a_parallel_worker_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    with pytest.raises(RuntimeError, match="parallel pytest worker: the test needs the `docker` marker"):
        Engine(tmp_path).ensure()
    assert not (tmp_path / "dockerd.pid").exists()
