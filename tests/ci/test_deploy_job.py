"""The deploy job of .github/workflows/pulumi-up.yml, its steps' own scripts run in order as GitHub
runs them (each step's `if:` evaluated on the earlier steps' outcomes and outputs), with the
stand-in `pulumi` that keeps the diy backend's locks (tests/ci/fake_pulumi.py) and DigitalOcean's
API double. Issue 19 item 6: a cancelled or timed-out `pulumi up` must leave neither SSH open nor
the stack locked."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from tests.ci.do_api import DoApi
from tests.ci.fake_repo import Repo
from tests.infra.harness import REPO

SCRIPT = REPO / "scripts" / "ci-ssh-access"
STEPS = ("Admit this runner to SSH for this job", "pulumi up", "Close SSH to this runner",
         "Unlock the stack if this job's pulumi up was cut off")


def _job_steps() -> dict[str, dict]:
    job = yaml.safe_load((REPO / ".github" / "workflows" / "pulumi-up.yml").read_text())["jobs"]["up"]
    return {s["name"]: s for s in job["steps"] if s.get("name") in STEPS}


def _if(expression: str, outcome: dict[str, str], outputs: dict[str, dict]) -> bool:
    """The subset of GitHub's expression language these steps use."""
    py = expression.replace("&&", " and ").replace("||", " or ").replace("always()", "True")
    py = re.sub(r"steps\.(\w+)\.outputs\.(\w+)", r"outputs.get('\1', {}).get('\2', '')", py)
    py = re.sub(r"steps\.(\w+)\.outcome", r"outcome.get('\1', 'skipped')", py)
    assert re.fullmatch(r"[\w\s().'=!,{}\[\]:-]*", py), py
    return bool(eval(py, {"__builtins__": {}}, {"outcome": outcome, "outputs": outputs}))  # noqa: S307


@pytest.fixture
def job(tmp_path):
    api = DoApi(tmp_path)
    repo = Repo(tmp_path, SCRIPT)
    (repo.root / ".venv" / "bin").mkdir(parents=True)
    (repo.root / ".venv" / "bin" / "python").symlink_to(sys.executable)
    repo.env.update(api.env)
    repo.env.update({"STACK": "dev", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1", "CI_SSH_POLL_SECONDS": "0",
                     "CI_RUNNER_IP": "20.42.0.7", "FAKE_PULUMI_STATE": str(tmp_path / "state")})
    yield repo, api
    api.close()


def run_job(repo: Repo, *, up_env: dict[str, str], runner_kills_the_step: bool = False) -> dict[str, str]:
    """Runs the steps; returns each step's outcome. With runner_kills_the_step, the runner ends the
    `pulumi up` step itself (a cancel, or the job's timeout): its shell never records anything."""
    outcome: dict[str, str] = {}
    outputs: dict[str, dict] = {}
    for name, step in _job_steps().items():
        sid = step.get("id", name)
        if not _if(step.get("if", "success()").replace("success()", "True"), outcome, outputs):
            outcome[sid] = "skipped"
            continue
        out = repo.root / f"out-{sid}"
        out.write_text("")
        env = {**repo.env, "GITHUB_OUTPUT": str(out), **(up_env if sid == "up" else {})}
        if sid == "up" and runner_kills_the_step:
            subprocess.run(["pulumi", "up", "--stack", "dev", "--yes"], cwd=repo.root, env=env, capture_output=True)
            outcome[sid], outputs[sid] = "cancelled", {}
            continue
        p = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo.root, env=env, capture_output=True,
                           text=True, timeout=60)
        outcome[sid] = "success" if p.returncode == 0 else "failure"
        outputs[sid] = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return outcome


def _next_deploy(repo: Repo) -> subprocess.CompletedProcess:
    return repo.pulumi("up", "--stack", "dev", "--yes")


@pytest.mark.parametrize("runner_kills_the_step", [False, True], ids=["timeout kills pulumi", "runner cancels"])
def test_a_pulumi_up_cut_off_leaves_neither_ssh_open_nor_the_stack_locked(job, runner_kills_the_step):
    repo, api = job
    outcome = run_job(repo, up_env={"FAKE_PULUMI_UP_KILLED": "1"}, runner_kills_the_step=runner_kills_the_step)
    assert outcome["up"] in ("failure", "cancelled")
    assert outcome["admit"] == "success"
    assert outcome["Close SSH to this runner"] == "success"
    assert api.firewall_names() == []                      # SSH closed
    assert outcome["Unlock the stack if this job's pulumi up was cut off"] == "success"
    p = _next_deploy(repo)
    assert p.returncode == 0, p.stderr                     # the next deploy is not locked out


def test_a_pulumi_up_that_fails_by_itself_unlocks_itself_and_the_job_leaves_locks_alone(job):
    repo, api = job
    outcome = run_job(repo, up_env={"FAKE_PULUMI_UP_EXIT": "1"})
    assert outcome["up"] == "failure"
    assert outcome["Unlock the stack if this job's pulumi up was cut off"] == "skipped"
    assert api.firewall_names() == [] and _next_deploy(repo).returncode == 0


def test_a_successful_deploy_closes_ssh_and_unlocks_nothing(job):
    repo, api = job
    outcome = run_job(repo, up_env={})
    assert outcome["up"] == "success" and outcome["Close SSH to this runner"] == "success"
    assert outcome["Unlock the stack if this job's pulumi up was cut off"] == "skipped"
    assert api.firewall_names() == []
    assert ["cancel", "--stack", "dev", "--yes", "--non-interactive"] not in repo.calls()


def test_without_the_unlock_a_killed_up_locks_out_the_next_deploy(job):
    # the rule the unlock step answers: the diy backend's lock outlives a killed pulumi
    repo, _ = job
    assert repo.pulumi("up", "--stack", "dev", "--yes", FAKE_PULUMI_UP_KILLED="1").returncode == -9
    p = _next_deploy(repo)
    assert p.returncode == 255 and "the stack is currently locked by 1 lock(s)" in p.stderr
