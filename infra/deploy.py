"""Deploy: the release onto the droplet over SSH with pulumi-command (see docs/contracts.md).

Steps, each a resource so `pulumi preview` shows which will run:
1. `wait-ready`: `cloud-init status --wait` (trigger: the droplet id).
2. `copy-release`: the reproducible tarball of compose/, bot/, deploy/ (infra/release.py) to
   /opt/botstack/incoming/ (triggers: the content hash of each directory).
3. `unpack-release`: into /opt/botstack/releases/<release-id>/, then deploy/wait-ready.sh.
4. `write-env`: the `.env`, a secret, through the command's stdin into deploy/write-env.sh
   (0600, atomic). Never on a command line; the command's logging is off.
5. `pre-release-snapshot`: a DigitalOcean snapshot of the data volume named after the release;
   replaced (create new, then delete old) with each release, so exactly one is kept.
6. `activate`: deploy/activate.sh <release-id>: builds, stops the old bot, `docker compose up -d
   --wait` (a failing health check fails `pulumi up`), rolls back to the previous release on failure.
7. `final-backup` (container mode): does nothing on create; on delete (`pulumi destroy`, or before
   the droplet is replaced) runs deploy/final-backup.sh, one backup to Spaces, while the stack runs.

The connection verifies the droplet's host key (`host_key`: the ed25519 key the program generated
and put into cloud-init), logs in as `deploy` with the program's deploy key, and retries the dial
while the droplet boots.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_digitalocean as do
from pulumi_command.remote import Logging

from infra import cloudinit, release
from infra.config import StackConfig
from infra.database import DB_NAME, DB_USER, Database
from infra.network import Network
from infra.server import Server
from infra.storage import Storage

ROOT = cloudinit.BOTSTACK_ROOT
DATA_DIR = cloudinit.DATA_DIR
ENV_PREFIX = f"BOTSTACK_ROOT={ROOT} DATA_DIR={DATA_DIR}"

CLOUD_INIT_WAIT = (
    "rc=0; cloud-init status --wait >/dev/null || rc=$?; "
    # 0: done; 2: done with warnings (e.g. deprecated keys); anything else: failed
    "if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then cloud-init status --long; exit 1; fi"
)


def env_file_content(cfg: StackConfig, *, release_id: str, database_url: str, postgres_password: str,
                     backup_passphrase: str, bucket: str, endpoint: str, access_key_id: str,
                     secret_access_key: str, compose_profiles: str) -> str:
    """The stack's .env (keys: docs/contracts.md). Plain function: the program calls it inside an
    apply on secret Outputs and marks the result secret."""
    ids = lambda xs: ",".join(str(x) for x in xs)  # noqa: E731
    values = {
        "TELEGRAM_BOT_TOKEN": cfg.telegram_bot_token,
        "TELEGRAM_API_BASE_URL": cfg.telegram_api_base_url,
        "ALLOWED_USER_IDS": ids(cfg.allowed_user_ids),
        "ADMIN_USER_IDS": ids(cfg.admin_user_ids),
        "DEFAULT_TIMEZONE": cfg.default_timezone,
        "BOTSTACK_RELEASE": release_id,
        "DATABASE_URL": database_url,
        "BACKUP_PASSPHRASE": backup_passphrase,
        "SPACES_ENDPOINT": endpoint,
        "SPACES_REGION": cfg.region,
        "SPACES_BUCKET": bucket,
        "SPACES_ACCESS_KEY_ID": access_key_id,
        "SPACES_SECRET_ACCESS_KEY": secret_access_key,
        "BACKUP_INTERVAL_HOURS": str(cfg.backup_interval_hours),
        "BACKUP_LOCAL_RETENTION_DAYS": str(cfg.backup_local_retention_days),
        "BACKUP_DRILL_INTERVAL_DAYS": str(cfg.backup_drill_interval_days),
        "POSTGRES_USER": DB_USER,
        "POSTGRES_DB": DB_NAME,
        "POSTGRES_PASSWORD": postgres_password,
        "DATA_DIR": DATA_DIR,
        "COMPOSE_PROFILES": compose_profiles,
    }
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f".env value of {key} has a line break")
    return "".join(f"{k}={v}\n" for k, v in values.items())


def _asset_path(archive: Path, repo_root: Path) -> str:
    try:
        return Path(archive).resolve().relative_to(Path(repo_root).resolve()).as_posix()
    except ValueError:
        return str(archive)


class Deploy(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, repo_root: Path, network: Network, server: Server,
                 storage: Storage, database: Database, build_dir: Path,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Deploy", name, None, opts)
        prefix = f"botstack-{cfg.stack}"

        self.release_id = rid = release.release_id(repo_root)
        self.hashes = hashes = release.component_hashes(repo_root)
        archive = release.build_archive(repo_root, build_dir)
        release_dir = f"{ROOT}/releases/{rid}"
        triggers = [f"{d}:{h}" for d, h in hashes.items()]

        # the host is the reserved IP once it points at this droplet
        host = pulumi.Output.all(server.ip_address, server.ip_assignment.id).apply(lambda a: a[0])
        conn = command.remote.ConnectionArgs(
            host=host,
            user=cloudinit.DEPLOY_USER,
            private_key=server.deploy_key.private_key_openssh,
            host_key=server.host_key.public_key_openssh.apply(str.strip),
            dial_error_limit=40,
            per_dial_timeout=15,
        )

        def opts_(*deps) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=list(deps))

        self.wait_ready = command.remote.Command(
            f"{name}-wait-ready", connection=conn, create=CLOUD_INIT_WAIT,
            triggers=[server.droplet.id],
            opts=opts_(server.ip_assignment, server.volume_attachment))

        self.copy_release = command.remote.CopyToRemote(
            f"{name}-copy-release", connection=conn,
            # relative to the project directory (pulumi's working directory) when it is inside it,
            # so the state does not depend on where the repository is checked out
            source=pulumi.FileAsset(_asset_path(archive, repo_root)),
            remote_path=f"{ROOT}/incoming/release-{rid}.tar.gz",
            triggers=triggers + [server.droplet.id],
            opts=opts_(self.wait_ready))

        self.unpack_release = command.remote.Command(
            f"{name}-unpack-release", connection=conn,
            create=(f"set -eu; d={release_dir}; rm -rf \"$d.tmp\"; mkdir -p \"$d.tmp\"; "
                    f"tar -xzf {ROOT}/incoming/release-{rid}.tar.gz -C \"$d.tmp\"; "
                    f"rm -rf \"$d\"; mv \"$d.tmp\" \"$d\"; "
                    f"find {ROOT}/incoming -name 'release-*.tar.gz' ! -name 'release-{rid}.tar.gz' -delete; "
                    f"{ENV_PREFIX} bash \"$d/deploy/wait-ready.sh\""),
            triggers=triggers + [server.droplet.id],
            opts=opts_(self.copy_release))

        env = pulumi.Output.all(
            database.database_url, database.postgres_password.result, storage.backup_passphrase.result,
            storage.bucket.name, storage.backup_key.access_key, storage.backup_key.secret_key,
        ).apply(lambda v: env_file_content(
            cfg, release_id=rid, database_url=v[0], postgres_password=v[1], backup_passphrase=v[2],
            bucket=v[3], endpoint=storage.endpoint, access_key_id=v[4], secret_access_key=v[5],
            compose_profiles=database.compose_profiles))
        env = pulumi.Output.secret(env)
        env_hash = pulumi.Output.secret(env.apply(lambda s: hashlib.sha256(s.encode()).hexdigest()))

        self.write_env = command.remote.Command(
            f"{name}-write-env", connection=conn,
            create=f"{ENV_PREFIX} bash {release_dir}/deploy/write-env.sh",
            stdin=env,
            logging=Logging.NONE,
            triggers=[rid, server.droplet.id],
            opts=opts_(self.unpack_release))

        self.snapshot = do.VolumeSnapshot(
            f"{name}-pre-release-snapshot",
            volume_id=server.volume.id,
            name=f"{prefix}-pre-{rid}",
            tags=[network.tag.name],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.write_env], replace_on_changes=["name"]))

        self.activate = command.remote.Command(
            f"{name}-activate", connection=conn,
            create=f"{ENV_PREFIX} bash {release_dir}/deploy/activate.sh {rid}",
            triggers=triggers + [env_hash, server.droplet.id],
            logging=Logging.STDOUT_AND_STDERR,
            opts=opts_(self.write_env, self.snapshot))

        self.final_backup = None
        if not cfg.managed_db:
            self.final_backup = command.remote.Command(
                f"{name}-final-backup", connection=conn,
                create="true",
                delete=f"{ENV_PREFIX} bash {ROOT}/current/deploy/final-backup.sh",
                triggers=[server.droplet.id],
                logging=Logging.STDOUT_AND_STDERR,
                opts=opts_(self.activate))

        self.register_outputs({"releaseId": rid, "snapshotName": self.snapshot.name})
