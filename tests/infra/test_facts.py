"""Each shared fact (infra/facts.py) is defined once; where it crosses into shell, cloud-init or
compose YAML, that side says the same."""
from __future__ import annotations

import re

import yaml

from infra import cloudinit, facts, memory
from tests.infra.harness import REPO

DEPLOY = REPO / "deploy"


def _render_user_data() -> dict:
    text = cloudinit.render_user_data(cloudinit.UserDataParams(
        deploy_public_key="ssh-ed25519 BBBB deploy",
        host_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
        host_public_key="ssh-ed25519 CCCC"))
    return yaml.safe_load(text)


def _service_unit(doc: dict) -> str:
    [unit] = [f["content"] for f in doc["write_files"] if f["path"].endswith("botstack.service")]
    return unit


def test_the_deploy_scripts_use_the_compose_project_name():
    assert re.search(r"^PROJECT=(\S+)$", (DEPLOY / "lib.sh").read_text(), re.M).group(1) == facts.COMPOSE_PROJECT


def test_the_compose_file_is_named_after_the_compose_project():
    assert yaml.safe_load((REPO / "compose" / "compose.yml").read_text())["name"] == facts.COMPOSE_PROJECT


def test_the_boot_unit_starts_the_compose_project_from_the_server_paths():
    unit = _service_unit(_render_user_data())
    assert f"--project-name {facts.COMPOSE_PROJECT} " in unit
    assert f"--env-file {facts.ENV_FILE} " in unit
    assert f"cd {facts.BOTSTACK_ROOT}/current/compose " in unit


def test_the_deploy_scripts_default_to_the_server_paths():
    assert f"BOTSTACK_ROOT=${{BOTSTACK_ROOT:-{facts.BOTSTACK_ROOT}}}" in (DEPLOY / "lib.sh").read_text()
    assert f"DATA_DIR=${{DATA_DIR:-{facts.DATA_DIR}}}" in (DEPLOY / "wait-ready.sh").read_text()
    assert "ENV_FILE=$BOTSTACK_ROOT/shared/.env" in (DEPLOY / "lib.sh").read_text()
    assert facts.ENV_FILE == f"{facts.BOTSTACK_ROOT}/shared/.env"


def test_cloud_init_mounts_the_volume_at_the_data_dir():
    [mount] = _render_user_data()["mounts"]
    assert mount[:2] == [f"LABEL={facts.VOLUME_LABEL}", facts.DATA_DIR]


def test_the_swap_file_and_the_memory_rule_use_one_swap_size():
    swap = _render_user_data()["swap"]
    assert swap["size"] == facts.SWAP_MIB * 1024 * 1024
    assert memory.SWAP_COUNTED_MIB == facts.SWAP_MIB // 4
    defined = [p.name for p in (REPO / "infra").glob("*.py")
               if re.search(r"^SWAP_MIB\s*=\s*[0-9]", p.read_text(), re.M)]
    assert defined == ["facts.py"]


def test_the_localdb_profile_is_the_compose_profile_of_postgres_and_backup():
    services = yaml.safe_load((REPO / "compose" / "compose.yml").read_text())["services"]
    assert facts.LOCALDB_PROFILE in services["postgres"]["profiles"]
    assert facts.LOCALDB_PROFILE in services["backup"]["profiles"]
    assert facts.LOCALDB_PROFILE not in (services["bot"].get("profiles") or [])


def test_compose_tags_images_with_the_release_as_activate_expects():
    services = yaml.safe_load((REPO / "compose" / "compose.yml").read_text())["services"]
    for name in ("bot", "backup"):
        repo, _, tag = services[name]["image"].partition(":")
        assert repo == facts.image_tag(name, "").rstrip(":")
        assert tag.startswith("${BOTSTACK_RELEASE")
    # activate.sh removes other releases' images by this pattern
    pattern = re.search(r'grep -E "\^(botstack-)\[a-z0-9_-\]\+:', (DEPLOY / "activate.sh").read_text())
    assert pattern and pattern.group(1) == facts.IMAGE_REPO_PREFIX


def test_the_dev_override_uses_the_dev_image_tag():
    services = yaml.safe_load((REPO / "compose" / "compose.dev.yml").read_text())["services"]
    assert services["bot"]["image"] == facts.image_tag("bot", facts.DEV_IMAGE_TAG)
    assert services["backup"]["image"] == facts.image_tag("backup", facts.DEV_IMAGE_TAG)


def test_the_bot_writes_and_checks_the_heartbeat_path():
    for path in ("bot/config.py", "bot/__main__.py"):
        assert f'"{facts.BOT_HEARTBEAT_FILE}"' in (REPO / path).read_text(), path

