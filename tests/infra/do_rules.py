"""DigitalOcean's rules for the test mocks: what the API or the provider would refuse, raised as
`DoRuleError` when the program registers it, against one simulated account.

Every rule names its source: the terraform provider the Pulumi provider is bridged from
(digitalocean/terraform-provider-digitalocean, file under digitalocean/) or DigitalOcean's API
reference. Two stacks run against one `Account` see each other's keys and names, as dev and prod
do in one real account; bucket names are checked against a namespace shared by every account.

Rules that need the whole program (the order of actions on one droplet) are in `check_run`;
`replaced(before, after)` says which resources a change of inputs replaces, from the provider's
ForceNew fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from pulumi.runtime import rpc

DO = "digitalocean:index/"
DROPLET = f"{DO}droplet:Droplet"
VOLUME = f"{DO}volume:Volume"
VOLUME_ATTACHMENT = f"{DO}volumeAttachment:VolumeAttachment"
IP_ASSIGNMENT = f"{DO}reservedIpAssignment:ReservedIpAssignment"
SSH_KEY = f"{DO}sshKey:SshKey"
BUCKET = f"{DO}spacesBucket:SpacesBucket"
SNAPSHOT = f"{DO}volumeSnapshot:VolumeSnapshot"


class DoRuleError(Exception):
    """What DigitalOcean (or the provider, before calling it) answers instead of creating."""


def _plain(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value


def _known(value: Any) -> bool:
    # a first preview registers unknown values: the API sees them only at `up`
    return isinstance(value, (str, int)) and value != rpc.UNKNOWN and value != ""


# --- names --------------------------------------------------------------------------------------

# API reference, "Create a New Droplet", `name`: "The human-readable string you wish to use when
# displaying the Droplet name ... will also determine the hostname"; the API answers 422 "Only
# valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)". A hostname label is at most
# 63 characters (RFC 1123), which cloud-init sets from this name.
DROPLET_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*")
# API reference, "Create a New Block Storage Volume", `name` (repeated in the provider's
# docs/resources/volume.md): "Must be lowercase and be composed only of numbers, letters and '-',
# up to a limit of 64 characters. The name must begin with a letter."
VOLUME_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")
# Spaces docs, "Create a Bucket" / S3 bucket naming: 3-63 characters, lowercase letters, numbers,
# dots and hyphens, beginning and ending with a letter or number; names are global across Spaces.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# provider digitalocean/tag/tags.go: tagNameRe `^[a-zA-Z0-9:\-_]{1,255}$`
TAG_NAME = re.compile(r"[a-zA-Z0-9:\-_]{1,255}")
# API reference, "Create a New VPC", `name`: "may only contain alphanumeric characters, dashes,
# and periods", unique per account; 255 at most.
VPC_NAME = re.compile(r"[a-zA-Z0-9.-]{1,255}")
# provider digitalocean/project/resource_project.go: name StringLenBetween(1, 175)
PROJECT_NAME_MAX = 175


def _name_rules(typ: str, name: str) -> Optional[str]:
    if typ == DROPLET and not DROPLET_NAME.fullmatch(name):
        return f"droplet name {name!r}: only valid hostname characters (a-z, A-Z, 0-9, . and -), labels of 1-63"
    if typ == VOLUME and not VOLUME_NAME.fullmatch(name):
        return f"volume name {name!r}: lowercase letters, digits and '-', starting with a letter, at most 64"
    if typ == BUCKET and not BUCKET_NAME.fullmatch(name):
        return f"bucket name {name!r}: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric"
    if typ == SNAPSHOT and not VOLUME_NAME.fullmatch(name):
        # the API applies the volume's naming to its snapshots (API reference, "Create Snapshot
        # from a Volume": "must be lowercase and be composed only of numbers, letters and '-', up
        # to a limit of 64 characters")
        return f"volume snapshot name {name!r}: lowercase letters, digits and '-', starting with a letter, at most 64"
    if typ == f"{DO}tag:Tag" and not TAG_NAME.fullmatch(name):
        return f"tag name {name!r}: letters, digits, ':', '-' and '_', 1-255"
    if typ == f"{DO}vpc:Vpc" and not VPC_NAME.fullmatch(name):
        return f"VPC name {name!r}: alphanumeric characters, dashes and periods"
    if typ == f"{DO}project:Project" and not 1 <= len(name) <= PROJECT_NAME_MAX:
        return f"project name {name!r}: 1-{PROJECT_NAME_MAX} characters"
    return None


# names the API keeps unique per account (a second one is 422): droplet names are not (the API
# allows duplicates), volumes are unique per region, the rest per account
_UNIQUE_PER_ACCOUNT = {f"{DO}vpc:Vpc", f"{DO}tag:Tag", f"{DO}firewall:Firewall", f"{DO}project:Project",
                       f"{DO}databaseCluster:DatabaseCluster"}


@dataclass
class Account:
    """One DigitalOcean account. Pass one to several runs to make them share it."""
    ssh_public_keys: dict[str, str] = field(default_factory=dict)   # key blob -> the name it has
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, name) -> resource
    volumes: dict[tuple[str, str], str] = field(default_factory=dict)  # (region, name) -> resource

    def create(self, typ: str, name: str, inputs: Mapping[str, Any]) -> None:
        """Raises DoRuleError as the API would answer the create call; records what it made."""
        given = {k: _plain(v) for k, v in inputs.items()}
        label = given.get("name")
        if _known(label):
            problem = _name_rules(typ, str(label))
            if problem:
                raise DoRuleError(f"{name}: 422 {problem}")
        if typ == SSH_KEY:
            self._ssh_key(name, given)
        elif typ == BUCKET and _known(label):
            _claim_bucket(name, str(label))
        elif typ == VOLUME and _known(label):
            self._claim(self.volumes, (str(given.get("region")), str(label)), name,
                        f"a volume named {label} already exists in {given.get('region')}")
        elif typ in _UNIQUE_PER_ACCOUNT and _known(label):
            self._claim(self.names, (typ, str(label)), name, f"name {label} is already in use")

    def _ssh_key(self, name: str, given: Mapping[str, Any]) -> None:
        key = given.get("publicKey")
        if not _known(key):
            return
        # API reference, "Create a New SSH Key": a public key is accepted once per account;
        # the second gets 422 "SSH Key is already in use on your account" (whatever its name)
        blob = str(key).split()[1] if len(str(key).split()) > 1 else str(key)
        self._claim(self.ssh_public_keys, blob, name, "SSH Key is already in use on your account")

    @staticmethod
    def _claim(table: dict, key: Any, name: str, message: str) -> None:
        owner = table.get(key)
        if owner is not None and owner != name:
            raise DoRuleError(f"{name}: 422 {message}")
        table[key] = name


# bucket names are global: another account (or another stack of this one) may hold it already
_GLOBAL_BUCKETS: dict[str, str] = {}


def _claim_bucket(name: str, bucket: str) -> None:
    Account._claim(_GLOBAL_BUCKETS, bucket, name, "BucketAlreadyExists")


def forget_buckets() -> None:
    """Each test starts with an empty bucket namespace (the harness calls this per run, unless
    the run shares an account with an earlier one)."""
    _GLOBAL_BUCKETS.clear()


# --- the order of actions on one droplet -----------------------------------------------------

# Each of these is a droplet action: the API refuses a second while one is in progress with 422
# "Droplet already has a pending event". The provider retries that only when attaching a volume
# (digitalocean/volume/resource_volume_attachment.go: IsDigitalOceanError(err, 422, "Droplet
# already has a pending event.") -> RetryableError); a reserved IP assignment
# (digitalocean/reservedip/resource_reserved_ip_assignment.go) fails outright. Two of them on one
# droplet must therefore be ordered: one depends on the other.
DROPLET_ACTIONS = (VOLUME_ATTACHMENT, IP_ASSIGNMENT)


def _deps(options: Mapping[str, Any], name: str) -> set[str]:
    opts = options.get(name)
    found = set()
    for d in (getattr(opts, "depends_on", None) or []):
        dep_name = getattr(d, "pulumi_resource_name", None) or getattr(d, "_name", None)
        if dep_name:
            found.add(dep_name)
    return found


def depends_on(options: Mapping[str, Any], name: str, other: str) -> bool:
    """Whether `name` (transitively, through recorded depends_on) waits for `other`."""
    seen, todo = set(), [name]
    while todo:
        for d in _deps(options, todo.pop()):
            if d == other:
                return True
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return False


def unordered_droplet_actions(resources: Iterable[Any], options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Pairs of droplet actions on the same droplet neither of which depends on the other."""
    by_droplet: dict[Any, list[str]] = {}
    for r in resources:
        if r.typ in DROPLET_ACTIONS:
            by_droplet.setdefault(str(_plain(r.inputs.get("dropletId"))), []).append(r.name)
    pairs = []
    for names in by_droplet.values():
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if not (depends_on(options, a, b) or depends_on(options, b, a)):
                    pairs.append((a, b))
    return pairs


def check_run(resources: Iterable[Any], options: Mapping[str, Any]) -> None:
    """The rules that need the whole program."""
    pairs = unordered_droplet_actions(list(resources), options)
    if pairs:
        a, b = pairs[0]
        raise DoRuleError(f"{a} and {b} act on one droplet at once: 422 Droplet already has a pending "
                          "event (order them with depends_on)")


# --- what forces a replacement ---------------------------------------------------------------

# ForceNew fields per type (camelCase, as Pulumi names the inputs), from the provider's schemas:
FORCE_NEW: dict[str, frozenset[str]] = {
    # digitalocean/droplet/resource_droplet.go (also ipv6 true -> false, CustomizeDiff)
    DROPLET: frozenset({"image", "region", "sshKeys", "userData", "monitoring", "dropletAgent", "vpcUuid",
                        "publicNetworking", "gpuPartitionMode"}),
    # digitalocean/volume/resource_volume.go
    VOLUME: frozenset({"region", "name", "description", "snapshotId", "initialFilesystemType",
                       "initialFilesystemLabel"}),
    # digitalocean/volume/resource_volume_attachment.go
    VOLUME_ATTACHMENT: frozenset({"dropletId", "volumeId"}),
    # digitalocean/reservedip/resource_reserved_ip.go, resource_reserved_ip_assignment.go
    f"{DO}reservedIp:ReservedIp": frozenset({"region"}),
    IP_ASSIGNMENT: frozenset({"ipAddress", "dropletId"}),
    # digitalocean/sshkey/resource_ssh_key.go
    SSH_KEY: frozenset({"publicKey"}),
    # digitalocean/spaces/resource_spaces_bucket.go (a new name is a new bucket: the id is the name)
    BUCKET: frozenset({"region", "name"}),
    # digitalocean/snapshot/resource_volume_snapshot.go
    SNAPSHOT: frozenset({"name", "volumeId"}),
    # digitalocean/vpc/resource_vpc.go, digitalocean/tag/resource_tag.go
    f"{DO}vpc:Vpc": frozenset({"region", "ipRange"}),
    f"{DO}tag:Tag": frozenset({"name"}),
    # digitalocean/database/resource_database_cluster.go, _db.go, _user.go, _firewall.go
    f"{DO}databaseCluster:DatabaseCluster": frozenset({"engine", "name", "privateNetworkUuid", "projectId"}),
    f"{DO}databaseDb:DatabaseDb": frozenset({"clusterId", "name"}),
    f"{DO}databaseUser:DatabaseUser": frozenset({"clusterId", "name"}),
    f"{DO}databaseFirewall:DatabaseFirewall": frozenset({"clusterId"}),
}


def _normal(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def replaced(before: Iterable[Any], after: Iterable[Any]) -> dict[str, set[str]]:
    """{resource name: the ForceNew fields whose value differs} between two runs' registrations
    (mock resources of the same program): what `pulumi up` would replace."""
    old = {r.name: r for r in before}
    out: dict[str, set[str]] = {}
    for r in after:
        prev = old.get(r.name)
        if prev is None or prev.typ != r.typ:
            continue
        fields = {f for f in FORCE_NEW.get(r.typ, ())
                  if _normal(prev.inputs.get(f)) != _normal(r.inputs.get(f))}
        if fields:
            out[r.name] = fields
    return out
