"""Storage: the private Spaces bucket for offsite backups and a key that can use only that bucket.

Managing a bucket goes through Spaces' S3 API, which takes Spaces keys, not the API token: the
DigitalOcean provider reads them from SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY in the
environment of `pulumi up` (scripts/deploy checks they are set). That key is yours, made once in
the control panel; the key this component creates is the backup job's, scoped to one bucket.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_digitalocean as do
import pulumi_random as random

from infra.backup_store import OwnStore

NONCURRENT_VERSION_DAYS = 7


@dataclass(frozen=True)
class StorageArgs:
    stack: str
    region: str
    protect_data: bool
    # botstack:backupPassphrase (required: infra/config.py)
    passphrase: str = field(repr=False)


@dataclass(frozen=True)
class BackupCredentials:
    """What the backup job needs to write to and read from the bucket."""
    bucket: pulumi.Output[str]
    endpoint: str
    region: str
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]   # secret
    passphrase: pulumi.Output[str]          # secret: encrypts every backup


class Storage(pulumi.ComponentResource):
    """The bucket (private ACL, versioning on; lifecycle, one action a rule: overwritten or deleted
    versions expire 7 days later, lone delete markers go, incomplete multipart uploads after a day;
    current objects never expire by age: the backup tool owns offsite retention), the backup job's SpacesKey (readwrite on this
    bucket only), and the backup passphrase (`botstack:backupPassphrase`: never generated here, as
    a passphrase kept only in the state would go with `pulumi destroy` while the bucket stays).

    The bucket is `retain_on_delete`: `pulumi destroy` leaves it (and the final backup in it) in
    your account; in prod it is also protected.

    Outputs for the others: `credentials`, `bucket_urn`.
    """

    def __init__(self, name: str, args: StorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Storage", name, None, opts)
        prefix = f"botstack-{args.stack}"
        child = pulumi.ResourceOptions(parent=self)

        suffix = random.RandomId(f"{name}-bucket-suffix", byte_length=4, opts=child)
        bucket = do.SpacesBucket(
            f"{name}-bucket",
            name=pulumi.Output.concat(prefix, "-backups-", suffix.hex),
            region=args.region,
            acl="private",
            versioning=do.SpacesBucketVersioningArgs(enabled=True),
            # one action a rule, each of a shape Spaces takes (the provider's acceptance tests put
            # and read back each: tests/infra/do_rules.py, LIFECYCLE_SHAPES); none expires a current
            # object, the backup tool owns offsite retention
            lifecycle_rules=[
                do.SpacesBucketLifecycleRuleArgs(id="abort-incomplete-uploads", enabled=True,
                                                 abort_incomplete_multipart_upload_days=1),
                # a pruned or overwritten backup's old version: gone a week later
                do.SpacesBucketLifecycleRuleArgs(
                    id="expire-old-versions", enabled=True,
                    noncurrent_version_expiration=do.SpacesBucketLifecycleRuleNoncurrentVersionExpirationArgs(
                        days=NONCURRENT_VERSION_DAYS)),
                # a pruned backup leaves a delete marker over its old version; once that version has
                # expired the lone marker holds nothing: remove it (never a current object)
                do.SpacesBucketLifecycleRuleArgs(
                    id="remove-lone-delete-markers", enabled=True,
                    expiration=do.SpacesBucketLifecycleRuleExpirationArgs(expired_object_delete_marker=True)),
            ],
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data, retain_on_delete=True),
        )
        key = do.SpacesKey(
            f"{name}-backup-key",
            name=f"{prefix}-backup",
            grants=[do.SpacesKeyGrantArgs(bucket=bucket.name, permission="readwrite")],
            opts=child,
        )
        endpoint = f"https://{args.region}.digitaloceanspaces.com"
        self.credentials = BackupCredentials(
            bucket=bucket.name, endpoint=endpoint, region=args.region, access_key_id=key.access_key,
            secret_access_key=key.secret_key, passphrase=pulumi.Output.secret(args.passphrase))
        self.bucket_urn: pulumi.Output[str] = bucket.bucket_urn
        self.register_outputs({"bucketName": bucket.name, "endpoint": endpoint, "backupKeyId": key.access_key})


def own_store_credentials(store: OwnStore, passphrase: str) -> BackupCredentials:
    """The user's own store (botstack:backupStore*, infra/backup_store.py): no bucket or key is
    made; the backup job gets the store's settings and key as they are configured."""
    return BackupCredentials(
        bucket=pulumi.Output.from_input(store.bucket), endpoint=store.endpoint, region=store.region,
        access_key_id=pulumi.Output.secret(store.access_key_id),
        secret_access_key=pulumi.Output.secret(store.secret_access_key),
        passphrase=pulumi.Output.secret(passphrase))
