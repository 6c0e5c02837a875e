"""Deploy: the release onto the droplet over SSH with pulumi-command (see docs/contracts.md).

Steps, each a resource so `pulumi preview` shows which will run:
1. `wait-ready`: `cloud-init status --wait` (trigger: the droplet id).
   `admin-keys` (beside it, as soon as `deploy` can log in): your SSH public keys
   (botstack:sshPublicKeys) through stdin into the admin's authorized_keys, by the tool cloud-init
   installed (`sudo`, that tool only). Triggers: the keys, the droplet id: a new or rotated key
   rewrites the file, the droplet stays (user-data, which would replace it, does not hold them).
2. `copy-release`: the reproducible tarball of compose/, bot/, deploy/ (infra/release.py) to
   /opt/botstack/incoming/ (triggers: the content hash of each directory).
3. `unpack-release`: into /opt/botstack/releases/<release-id>/, then deploy/wait-ready.sh.
4. `write-env`: the `.env`, a secret, through the command's stdin into deploy/write-env.sh
   (0600, atomic). Never on a command line; the command's logging is off.
5. `pre-release-snapshot`: a DigitalOcean snapshot of the data volume named after the release;
   replaced (create new, then delete old) with each release, so exactly one is kept.
6. `activate`: deploy/activate.sh <release-id>: builds, stops the old bot, `docker compose up -d
   --wait` (a failing health check fails `pulumi up`), rolls back to the previous release on failure.
7. `stop-stack` and `final-backup` (container mode): nothing on create; on delete (`pulumi destroy`,
   or before the droplet is replaced) first deploy/final-backup.sh (one backup to Spaces, while the
   stack runs), then every container stopped and the volume flushed, before the Server's volume
   attachment is deleted. They run through the local ssh client, on the droplet they were made
   for only, and only warn when DigitalOcean says that droplet is gone (infra/teardown.py).

Every remote command also waits for the cloud firewall (its SSH rules admit the dialling host).
The connection verifies the droplet's host key (`host_key`: the ed25519 key the program generated
and put into cloud-init), logs in as `deploy` with the program's deploy key, and retries the dial
while the droplet boots.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_digitalocean as do
from pulumi_command.remote import Logging

from infra import facts, release, teardown
from infra.server import Connection

ROOT = facts.BOTSTACK_ROOT
ENV_PREFIX = f"BOTSTACK_ROOT={ROOT} DATA_DIR={facts.DATA_DIR}"

CLOUD_INIT_WAIT = (
    "rc=0; cloud-init status --wait >/dev/null || rc=$?; "
    # 0: done; 2: done with warnings (e.g. deprecated keys); anything else: failed
    "if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then cloud-init status --long; exit 1; fi"
)


@dataclass(frozen=True)
class DeployArgs:
    stack: str
    repo_root: Path
    build_dir: Path
    connection: Connection
    env: pulumi.Output[str]            # the .env text (secret)
    volume_id: pulumi.Input[str]       # snapshotted before each release
    tag_name: pulumi.Input[str]
    final_backup: bool                 # container mode: one backup to Spaces before the server goes
    ssh_open: pulumi.Resource          # the firewall: commands dial only once it admits us
    admin_ssh_keys: tuple[str, ...]    # botstack:sshPublicKeys (validated: infra/config.py)


def _asset_path(archive: Path, repo_root: Path) -> str:
    try:
        return Path(archive).resolve().relative_to(Path(repo_root).resolve()).as_posix()
    except ValueError:
        return str(archive)


def unpack_command(rid: str) -> str:
    release_dir = f"{ROOT}/releases/{rid}"
    return (f"set -eu; d={release_dir}; rm -rf \"$d.tmp\"; mkdir -p \"$d.tmp\"; "
            f"tar -xzf {ROOT}/incoming/release-{rid}.tar.gz -C \"$d.tmp\"; "
            f"rm -rf \"$d\"; mv \"$d.tmp\" \"$d\"; "
            f"find {ROOT}/incoming -name 'release-*.tar.gz' ! -name 'release-{rid}.tar.gz' -delete; "
            f"{ENV_PREFIX} bash \"$d/deploy/wait-ready.sh\"")


class Deploy(pulumi.ComponentResource):
    """Outputs: `release_id`, `snapshot_name`."""

    def __init__(self, name: str, args: DeployArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Deploy", name, None, opts)
        self._step_prefix = name
        c = args.connection
        self._conn = command.remote.ConnectionArgs(
            host=c.host, user=c.user, private_key=c.private_key, host_key=c.host_key,
            dial_error_limit=40, per_dial_timeout=15)
        self.release_id = rid = release.release_id(args.repo_root)
        hashes = release.component_hashes(args.repo_root)
        archive = release.build_archive(args.repo_root, args.build_dir)
        triggers = [f"{d}:{h}" for d, h in hashes.items()]
        release_dir = f"{ROOT}/releases/{rid}"

        wait_ready = self._cmd("wait-ready", CLOUD_INIT_WAIT, [c.droplet_id], [*c.ready, args.ssh_open])
        # public keys, not secret; the tool refuses an empty or broken list (a lock-out). Not after
        # wait-ready: cloud-init writes the tool and the sudo rule before sshd lets `deploy` in, and
        # you can log in to see why, should the rest of cloud-init fail
        admin_keys = "".join(f"{k}\n" for k in args.admin_ssh_keys)
        self._cmd("admin-keys", f"sudo -n {facts.ADMIN_KEYS_TOOL}", [admin_keys, c.droplet_id],
                  [*c.ready, args.ssh_open], stdin=admin_keys)
        copy_release = command.remote.CopyToRemote(
            f"{name}-copy-release", connection=self._conn,
            # relative to the project directory (pulumi's working directory) when it is inside it,
            # so the state does not depend on where the repository is checked out
            source=pulumi.FileAsset(_asset_path(archive, args.repo_root)),
            remote_path=f"{ROOT}/incoming/release-{rid}.tar.gz",
            triggers=triggers + [c.droplet_id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[wait_ready]))
        unpack = self._cmd("unpack-release", unpack_command(rid), triggers + [c.droplet_id], [copy_release])
        write_env = self._cmd("write-env", f"{ENV_PREFIX} bash {release_dir}/deploy/write-env.sh",
                              [rid, c.droplet_id], [unpack], stdin=args.env, logging=Logging.NONE)
        snapshot = do.VolumeSnapshot(
            f"{name}-pre-release-snapshot",
            volume_id=args.volume_id,
            name=f"botstack-{args.stack}-pre-{rid}",
            tags=[args.tag_name],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[write_env], replace_on_changes=["name"]))
        env_hash: pulumi.Output[str] = pulumi.Output.secret(
            args.env.apply(lambda s: hashlib.sha256(s.encode()).hexdigest()))
        activate = self._cmd("activate", f"{ENV_PREFIX} bash {release_dir}/deploy/activate.sh {rid}",
                             triggers + [env_hash, c.droplet_id], [write_env, snapshot],
                             logging=Logging.STDOUT_AND_STDERR)
        # Pulumi deletes dependents first: the final backup (while the stack runs), then the stop,
        # then (Server) the volume attachment, the IP and the droplet.
        stop = self._on_delete("stop-stack", teardown.STOP_STACK, c, [*c.ready, args.ssh_open, wait_ready])
        if args.final_backup:
            self._on_delete("final-backup", teardown.FINAL_BACKUP, c, [activate, stop])
        self.snapshot_name: pulumi.Output[str] = snapshot.name
        self.register_outputs({"releaseId": rid, "snapshotName": snapshot.name})

    def _on_delete(self, step: str, remote: str, c: Connection, after: list) -> command.local.Command:
        """Nothing on create; on delete `remote` on the droplet, a warning if the droplet is gone
        (infra/teardown.py). The droplet id trigger re-creates it for a new droplet. The id is in
        the environment too: the reserved IP (and the pinned host key) move to a new droplet, so
        a step made for a droplet deleted by hand would otherwise, at the end of the `up` that
        replaced it, stop the new droplet's stack; teardown compares it with the id of the droplet
        it reached (DigitalOcean's metadata)."""
        return command.local.Command(
            f"{self._step_prefix}-{step}", delete=teardown.guarded_ssh(step, remote), interpreter=["/bin/bash", "-c"],
            # the droplet id: the step acts on this droplet only, never on a re-created one
            environment={teardown.HOST: c.host, teardown.USER: c.user, teardown.HOST_KEY: c.host_key,
                         teardown.DROPLET_ID: c.droplet_id},
            stdin=c.private_key, triggers=[c.droplet_id], logging=command.local.Logging.STDOUT_AND_STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after))

    def _cmd(self, step: str, create: str, triggers: list, after: list, **kw) -> command.remote.Command:
        return command.remote.Command(
            f"{self._step_prefix}-{step}", connection=self._conn, create=create, triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after), **kw)
