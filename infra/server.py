"""Server: the droplet, its keys, its cloud-init, and the block volume that holds all data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_digitalocean as do
import pulumi_tls as tls

from infra import cloudinit, facts, resize, teardown

# a graceful shutdown (systemd stops docker, each container within its stop_grace_period) and the
# power-off DigitalOcean then waits for
DROPLET_DELETE_TIMEOUT = "10m"
# power-off, resize (a minute or two without the disk), power-on
DROPLET_RESIZE_TIMEOUT = "20m"


@dataclass(frozen=True)
class DropletBackups:
    plan: str        # weekly or daily
    weekday: str     # SUN..SAT (weekly only)
    hour: int


@dataclass(frozen=True)
class ServerArgs:
    stack: str
    region: str
    size: str
    image: str
    volume_size_gib: int
    droplet_backups: Optional[DropletBackups]   # None: DigitalOcean droplet backups off
    protect_data: bool
    tag_name: pulumi.Input[str]
    reserved_ip: pulumi.Input[str]
    final_backup: bool = True   # container mode: a backup to Spaces before a resize stops the stack


@dataclass(frozen=True)
class Connection:
    """How the program reaches the droplet: the deploy user with the generated deploy key, the
    host verified by its pinned host key."""
    host: pulumi.Output[str]          # the reserved IP, once it points at this droplet
    user: str
    private_key: pulumi.Output[str]   # secret
    host_key: pulumi.Output[str]      # "ssh-ed25519 AAAA..."
    droplet_id: pulumi.Output[str]    # a new droplet re-runs what ran on the old one
    ready: tuple[pulumi.Resource, ...]  # dial only after these (the IP and the volume attached)


class Server(pulumi.ComponentResource):
    """The droplet and what makes it: the pinned SSH host key and the deploy key (both generated
    here with pulumi-tls, ed25519), the deploy key registered with DigitalOcean (your keys are
    written by the deploy, infra/deploy.py), the data volume
    (ext4, label `botstack-data`, mounted at /mnt/botstack-data by cloud-init) and its attachment,
    and the reserved IP's assignment.

    The droplet is replaced only when a ForceNew input changes (image, region, the cloud-init
    template); your keys and a new release never touch it, a new size resizes it in place
    (`resize_disk` off, see `_droplet`). It is replaced delete-before-create, so two bots never poll the
    same token and the volume is detached from the old droplet before the new one wants it.

    Outputs for the others: `connection`, `droplet_id`, `vpc_id` (the VPC DigitalOcean put it in),
    `volume_id`, `droplet_urn`, `volume_urn`,
    `host_public_key`.
    """

    def __init__(self, name: str, args: ServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Server", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=child)
        volume = self._volume(name, args)
        pre_resize = self._pre_resize(name, args, host_key, deploy_key)
        droplet = self._droplet(name, args, host_key, deploy_key, pre_resize)
        droplet_id = droplet.id.apply(int)
        attachment = do.VolumeAttachment(
            f"{name}-data-attachment", droplet_id=droplet_id, volume_id=volume.id,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        # Both are droplet actions, and DigitalOcean refuses a second while one is pending; the
        # provider retries that only for the attachment, so the IP waits for the volume.
        assignment = do.ReservedIpAssignment(
            f"{name}-ip-assignment", ip_address=args.reserved_ip, droplet_id=droplet_id,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=[attachment]))

        self.host_public_key: pulumi.Output[str] = host_key.public_key_openssh.apply(str.strip)
        self.connection = Connection(
            host=pulumi.Output.all(args.reserved_ip, assignment.id).apply(lambda a: a[0]),
            user=facts.DEPLOY_USER, private_key=deploy_key.private_key_openssh,
            host_key=self.host_public_key, droplet_id=droplet.id, ready=(assignment, attachment))
        self.droplet_id: pulumi.Output[str] = droplet.id
        self.vpc_id: pulumi.Output[str] = droplet.vpc_uuid   # the region's default VPC
        self.volume_id: pulumi.Output[str] = volume.id
        self.droplet_urn: pulumi.Output[str] = droplet.droplet_urn
        self.volume_urn: pulumi.Output[str] = volume.volume_urn
        self.register_outputs({"dropletId": droplet.id, "volumeId": volume.id,
                               "hostPublicKey": host_key.public_key_openssh})

    def _volume(self, name: str, args: ServerArgs) -> do.Volume:
        return do.Volume(
            f"{name}-data",
            name=f"botstack-{args.stack}-data",
            region=args.region,
            size=args.volume_size_gib,
            initial_filesystem_type="ext4",
            initial_filesystem_label=facts.VOLUME_LABEL,
            description=f"botstack {args.stack}: PostgreSQL data and local backups",
            tags=[args.tag_name],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
        )

    def _pre_resize(self, name: str, args: ServerArgs, host_key: tls.PrivateKey,
                    deploy_key: tls.PrivateKey) -> command.local.Command:
        """Before a resize in place (a hard power-off): the final backup and the graceful stop
        (infra/resize.py)."""
        return command.local.Command(
            f"{name}-pre-resize",
            create=resize.create_script(),
            update=resize.pre_resize_script(args.final_backup),
            interpreter=["/bin/bash", "-c"],
            environment={resize.SIZE_ENV: args.size, teardown.HOST: args.reserved_ip, teardown.USER: facts.DEPLOY_USER,
                         teardown.HOST_KEY: host_key.public_key_openssh.apply(str.strip)},
            stdin=deploy_key.private_key_openssh,
            logging=command.local.Logging.STDOUT_AND_STDERR,
            opts=pulumi.ResourceOptions(parent=self))

    def _droplet(self, name: str, args: ServerArgs, host_key: tls.PrivateKey,
                 deploy_key: tls.PrivateKey, pre_resize: command.local.Command) -> do.Droplet:
        prefix = f"botstack-{args.stack}"
        # DigitalOcean takes a public key once per account, so your keys (already there, or shared
        # by dev and prod) would collide; nor are they in the user-data, which is ForceNew: the
        # deploy writes them (infra/deploy.py, admin-keys), so a new key replaces nothing. The
        # account gets only this stack's own deploy key, which no other stack has; a droplet
        # created with a key gets no root password by e-mail (root cannot log in over SSH anyway).
        account_key = do.SshKey(f"{name}-deploy-ssh-key", name=f"{prefix}-deploy",
                                public_key=deploy_key.public_key_openssh.apply(str.strip),
                                opts=pulumi.ResourceOptions(parent=self))
        user_data = pulumi.Output.all(
            host_key.private_key_openssh, host_key.public_key_openssh, deploy_key.public_key_openssh,
        ).apply(lambda k: cloudinit.render_user_data(cloudinit.UserDataParams(
            deploy_public_key=k[2],
            host_private_key=k[0], host_public_key=k[1])))
        # the host's private key is in here: the whole user-data is a secret
        secret_user_data: pulumi.Output[str] = pulumi.Output.secret(user_data)
        backups = args.droplet_backups
        policy = None if backups is None else do.DropletBackupPolicyArgs(
            plan=backups.plan, weekday=backups.weekday if backups.plan == "weekly" else None, hour=backups.hour)
        return do.Droplet(
            f"{name}-droplet",
            name=prefix,
            region=args.region,
            size=args.size,
            # a resize keeps the disk: a grown disk never shrinks, so a later smaller size would be
            # refused (the provider's default is true)
            resize_disk=False,
            image=args.image,
            # no vpc_uuid: the region's default VPC (infra/network.py says why)
            ssh_keys=[account_key.fingerprint],
            monitoring=True,
            droplet_agent=True,
            graceful_shutdown=True,
            backups=backups is not None,
            backup_policy=policy,
            tags=[args.tag_name],
            user_data=secret_user_data,
            # the delete shuts the droplet down gracefully and waits for it within this timeout
            # (the provider's default, 60 s, fails the delete of a droplet that takes longer)
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=[pre_resize],
                                        custom_timeouts=pulumi.CustomTimeouts(delete=DROPLET_DELETE_TIMEOUT,
                                                                              update=DROPLET_RESIZE_TIMEOUT)),
        )
