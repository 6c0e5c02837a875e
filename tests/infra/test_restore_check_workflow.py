"""issue 21 item 5: the scheduled off-box restore check (.github/workflows/restore-check.yml). actionlint
and the pinning of its actions: tests/infra/test_workflows.py; its step run against moto and a
throwaway PostgreSQL with the workflow's own environment names: tests/backup/test_offbox_restore_check.py."""
from __future__ import annotations

import re

import yaml

from tests.infra.harness import REPO

WORKFLOW = REPO / ".github" / "workflows" / "restore-check.yml"
SECRETS = {"BACKUP_STORE_ACCESS_KEY_ID", "BACKUP_STORE_SECRET_ACCESS_KEY", "BACKUP_PASSPHRASE", "TELEGRAM_BOT_TOKEN"}


def load():
    doc = yaml.safe_load(WORKFLOW.read_text())
    return doc, doc[True], doc["jobs"]["restore-check"]  # PyYAML reads the `on` key as True


def check_step(job):
    [step] = [s for s in job["steps"] if "scripts/offbox-restore-check" in s.get("run", "")]
    return step


def test_it_runs_on_a_schedule_or_by_hand_never_for_a_pull_request():
    doc, on, job = load()
    assert set(on) == {"schedule", "workflow_dispatch"} and on["schedule"][0]["cron"]
    assert doc["permissions"] == {"contents": "read"}
    assert job["if"] == "vars.RESTORE_CHECK_STACKS != ''"
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(vars.RESTORE_CHECK_STACKS || '[]') }}"


def test_its_secrets_are_read_only_ones_from_its_own_environment_and_only_the_check_sees_them():
    doc, _, job = load()
    assert job["environment"] == "${{ matrix.stack }}-restore-check"
    step = check_step(job)
    used = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(doc)))
    assert used == SECRETS  # no deploy credential: no DigitalOcean token, no Pulumi passphrase
    assert set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(step))) == SECRETS
    for name in SECRETS:
        assert step["env"][name] == "${{ secrets.%s }}" % name
    for s in job["steps"]:
        if s.get("uses", "").startswith("actions/checkout@"):
            assert s["with"]["persist-credentials"] is False


def _compose_postgres_image() -> str:
    m = re.search(r"\$\{POSTGRES_IMAGE:-([^}]+)\}", (REPO / "compose" / "compose.yml").read_text())
    assert m
    return m.group(1)


def test_it_restores_with_the_backup_images_base_into_a_service_of_the_same_major_version():
    _, _, job = load()
    image = _compose_postgres_image()
    assert job["container"]["image"] == image == job["services"]["postgres"]["image"]
    assert check_step(job)["env"]["TARGET_DATABASE_URL"] == "postgresql://postgres@postgres:5432/postgres"


def test_it_installs_the_packages_the_backup_image_runs_the_tool_with():
    _, _, job = load()
    dockerfile = (REPO / "compose" / "backup" / "Dockerfile").read_text()
    wanted = set(re.search(r"--no-install-recommends \\\s+([^;]+);", dockerfile).group(1).split())
    [install] = [s for s in job["steps"] if "apt-get install" in s.get("run", "")]
    assert wanted and wanted <= set(install["run"].split())
    assert job["steps"].index(install) < job["steps"].index(check_step(job))
