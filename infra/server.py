"""Server: the droplet, its keys, its cloud-init, and the block volume that holds all data."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_digitalocean as do
import pulumi_tls as tls

from infra import cloudinit
from infra.config import StackConfig
from infra.network import Network


class Server(pulumi.ComponentResource):
    """The droplet and what makes it: the pinned SSH host key and the deploy key (both generated
    here with pulumi-tls, ed25519), your SSH keys registered with DigitalOcean, the data volume
    (ext4, label `botstack-data`, mounted at /mnt/botstack-data by cloud-init) and its attachment,
    and the reserved IP's assignment.

    The droplet is replaced only when its own inputs change (size, image, region, keys, cloud-init);
    a new release never touches it. It is replaced delete-before-create, so two bots never poll the
    same token and the volume is detached from the old droplet before the new one wants it.
    """

    def __init__(self, name: str, cfg: StackConfig, network: Network,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Server", name, None, opts)
        prefix = f"botstack-{cfg.stack}"
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, protect=cfg.protect_data)

        self.host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        self.deploy_key = tls.PrivateKey(f"{name}-deploy-key", algorithm="ED25519", opts=child)
        self.ssh_keys = [
            do.SshKey(f"{name}-ssh-key-{i}", name=f"{prefix}-admin-{i}", public_key=key, opts=child)
            for i, key in enumerate(cfg.ssh_public_keys)
        ]

        self.volume = do.Volume(
            f"{name}-data",
            name=f"{prefix}-data",
            region=cfg.region,
            size=cfg.volume_size_gib,
            initial_filesystem_type="ext4",
            initial_filesystem_label=cloudinit.VOLUME_LABEL,
            description=f"botstack {cfg.stack}: PostgreSQL data and local backups",
            tags=[network.tag.name],
            opts=data,
        )

        user_data = pulumi.Output.all(
            self.host_key.private_key_openssh,
            self.host_key.public_key_openssh,
            self.deploy_key.public_key_openssh,
        ).apply(lambda k: cloudinit.render_user_data(cloudinit.UserDataParams(
            admin_ssh_keys=cfg.ssh_public_keys, deploy_public_key=k[2],
            host_private_key=k[0], host_public_key=k[1])))

        backup_policy = None
        if cfg.enable_droplet_backups:
            backup_policy = do.DropletBackupPolicyArgs(
                plan=cfg.droplet_backup_plan,
                weekday=cfg.droplet_backup_weekday if cfg.droplet_backup_plan == "weekly" else None,
                hour=cfg.droplet_backup_hour,
            )
        self.droplet = do.Droplet(
            f"{name}-droplet",
            name=prefix,
            region=cfg.region,
            size=cfg.droplet_size,
            image=cfg.image,
            vpc_uuid=network.vpc.id,
            ssh_keys=[k.fingerprint for k in self.ssh_keys],
            monitoring=True,
            droplet_agent=True,
            graceful_shutdown=True,
            backups=cfg.enable_droplet_backups,
            backup_policy=backup_policy,
            tags=[network.tag.name],
            # the host's private key is in here: the whole user-data is a secret
            user_data=pulumi.Output.secret(user_data),
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        droplet_id = self.droplet.id.apply(int)
        self.volume_attachment = do.VolumeAttachment(
            f"{name}-data-attachment", droplet_id=droplet_id, volume_id=self.volume.id,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        self.ip_assignment = do.ReservedIpAssignment(
            f"{name}-ip-assignment", ip_address=network.reserved_ip.ip_address, droplet_id=droplet_id,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))

        self.ip_address = network.reserved_ip.ip_address
        self.register_outputs({
            "dropletId": self.droplet.id,
            "volumeId": self.volume.id,
            "hostPublicKey": self.host_key.public_key_openssh,
        })
