"""Facts several layers share, defined once (pure Python). Where a fact crosses into shell
(deploy/*.sh), cloud-init (cloud-init/user-data.yaml) or YAML (compose/compose.yml), a test in
tests/infra/test_facts.py checks that side against this module."""
from __future__ import annotations

# the compose project: `docker compose -p botstack` in deploy/lib.sh, `name:` in compose.yml and
# `--project-name` in botstack.service (cloud-init)
COMPOSE_PROJECT = "botstack"

# on the droplet: releases, symlinks and shared/.env under the root; the data volume's mount
BOTSTACK_ROOT = "/opt/botstack"
DATA_DIR = "/mnt/botstack-data"
VOLUME_LABEL = "botstack-data"
ENV_FILE = f"{BOTSTACK_ROOT}/shared/.env"

ADMIN_USER = "botadmin"      # you: your SSH keys, sudo (no password exists), docker
DEPLOY_USER = "deploy"       # the program: its generated deploy key, docker group, sudo for one tool:
# the tool that writes the admin's authorized_keys from stdin (cloud-init installs it, the deploy
# user runs it through sudo, infra/deploy.py's admin-keys step): your keys are not in the
# user-data, whose every change replaces the droplet
ADMIN_KEYS_TOOL = "/usr/local/sbin/botstack-admin-keys"

# the swap file cloud-init adds; the memory rule (infra/config.py) counts a quarter of it
SWAP_MIB = 1024

# the compose profile that runs PostgreSQL and the backup job in containers (`container` mode)
LOCALDB_PROFILE = "localdb"

# images compose builds are tagged botstack-<service>:<release-id> (`dev` outside a deploy);
# activate.sh removes other releases' images by this pattern
IMAGE_REPO_PREFIX = "botstack-"
DEV_IMAGE_TAG = "dev"


def image_tag(service: str, release_id: str) -> str:
    return f"{IMAGE_REPO_PREFIX}{service}:{release_id}"


# the bot's liveness file, written by the bot and read by its healthcheck (bot/config.py and
# bot/__main__.py own the default; BOT_HEARTBEAT_FILE overrides it)
BOT_HEARTBEAT_FILE = "/tmp/botstack-bot.heartbeat"
