"""Storage: the private Spaces bucket for offsite backups and a key that can use only that bucket.

Managing a bucket goes through Spaces' S3 API, which takes Spaces keys, not the API token: the
DigitalOcean provider reads them from SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY in the
environment of `pulumi up` (scripts/deploy checks they are set). That key is yours, made once in
the control panel; the key this component creates is the backup job's, scoped to one bucket.
"""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_digitalocean as do
import pulumi_random as random

from infra.config import StackConfig
from infra.network import Network

NONCURRENT_VERSION_DAYS = 7


class Storage(pulumi.ComponentResource):
    """The bucket (private ACL, versioning on, lifecycle: objects expire after
    `backupOffsiteRetentionDays`, overwritten or deleted versions 7 days later), the backup job's
    SpacesKey (readwrite on this bucket only), and the backup passphrase.

    The bucket is `retain_on_delete`: `pulumi destroy` leaves it (and the final backup in it) in
    your account; in prod it is also protected.
    """

    def __init__(self, name: str, cfg: StackConfig, network: Network,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Storage", name, None, opts)
        prefix = f"botstack-{cfg.stack}"
        child = pulumi.ResourceOptions(parent=self)

        # bucket names are global across all Spaces users: a random suffix keeps ours free
        self.suffix = random.RandomId(f"{name}-bucket-suffix", byte_length=4, opts=child)
        self.bucket = do.SpacesBucket(
            f"{name}-bucket",
            name=pulumi.Output.concat(prefix, "-backups-", self.suffix.hex),
            region=cfg.region,
            acl="private",
            versioning=do.SpacesBucketVersioningArgs(enabled=True),
            lifecycle_rules=[do.SpacesBucketLifecycleRuleArgs(
                id="expire-backups",
                enabled=True,
                abort_incomplete_multipart_upload_days=1,
                expiration=do.SpacesBucketLifecycleRuleExpirationArgs(days=cfg.backup_offsite_retention_days),
                noncurrent_version_expiration=do.SpacesBucketLifecycleRuleNoncurrentVersionExpirationArgs(
                    days=NONCURRENT_VERSION_DAYS),
            )],
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect_data, retain_on_delete=True),
        )
        self.backup_key = do.SpacesKey(
            f"{name}-backup-key",
            name=f"{prefix}-backup",
            grants=[do.SpacesKeyGrantArgs(bucket=self.bucket.name, permission="readwrite")],
            opts=child,
        )
        self.backup_passphrase = random.RandomPassword(
            # backups are encrypted with it: losing it loses the backups, so it is data
            f"{name}-backup-passphrase", length=48, special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect_data))

        self.endpoint = f"https://{cfg.region}.digitaloceanspaces.com"
        self.register_outputs({
            "bucketName": self.bucket.name,
            "endpoint": self.endpoint,
            "backupKeyId": self.backup_key.access_key,
        })
