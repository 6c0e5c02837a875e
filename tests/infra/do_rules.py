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
VPC = f"{DO}vpc:Vpc"
RESERVED_IP = f"{DO}reservedIp:ReservedIp"
LOCAL_COMMAND = "command:local:Command"
# the environment key a teardown step reads the id of the droplet it was made for from
DROPLET_ID_ENV = "BOTSTACK_DROPLET_ID"


class DoRuleError(Exception):
    """What DigitalOcean (or the provider, before calling it) answers instead of creating."""


def _plain(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value


def _known(value: Any) -> bool:
    # a first preview registers unknown values: the API sees them only at `up`
    return isinstance(value, (str, int, float)) and value != rpc.UNKNOWN and value != ""


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


# --- droplet sizes and resizes ------------------------------------------------------------------

# The disk of each size the stacks use, GiB (DigitalOcean's droplet pricing page, as
# infra/prices.py records the sizes).
DISK_GIB = {"s-1vcpu-512mb-10gb": 10, "s-1vcpu-1gb": 25, "s-1vcpu-2gb": 50, "s-2vcpu-2gb": 60,
            "s-2vcpu-4gb": 80, "s-4vcpu-8gb": 160}


def disk_gib(size: str) -> int:
    return DISK_GIB.get(size, 25)


@dataclass
class LiveDroplet:
    id: int
    region: str
    vpc: str
    size: str
    disk_gib: int
    # what happened to it that its owner should know of: ("power-off", reason), ...
    events: list[tuple[str, str]] = field(default_factory=list)

    def resize(self, name: str, old: str, new: str, resize_disk: bool) -> None:
        """provider digitalocean/droplet/resource_droplet.go, Update on a `size` change: PowerOff
        (a hard power cut, not Shutdown), then Resize(size, resize_disk) with `resize_disk`
        defaulting to true; the API refuses a size whose disk is smaller than the droplet's (the
        disk never shrinks: API reference, "Resize a Droplet", `disk`: "this is a permanent change
        and cannot be reversed as a Droplet's disk size cannot be decreased")."""
        if old == new:
            return
        if disk_gib(new) < self.disk_gib:
            raise DoRuleError(f"{name}: 422 this size's disk ({disk_gib(new)} GiB) is smaller than the "
                              f"droplet's ({self.disk_gib} GiB): a resized disk cannot shrink")
        self.events.append(("power-off", f"resize {old} -> {new}"))
        self.size = new
        if resize_disk:
            self.disk_gib = disk_gib(new)


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
    # region -> the id of its default VPC; VPC id -> its region (every VPC in the account)
    default_vpcs: dict[str, str] = field(default_factory=dict)
    vpcs: dict[str, str] = field(default_factory=dict)
    # the live droplets: id -> what the API knows of it; and which droplet each resource made
    droplets: dict[int, "LiveDroplet"] = field(default_factory=dict)
    droplet_of: dict[str, int] = field(default_factory=dict)
    ip_assigned_to: dict[str, int] = field(default_factory=dict)   # reserved IP -> droplet id
    next_droplet_id: int = 424242
    registered: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # resource -> (type, inputs)

    def create(self, typ: str, name: str, inputs: Mapping[str, Any]) -> None:
        """Raises DoRuleError as the API would answer this registration (a create, or an update or
        replacement of what the same resource made before); records what it made."""
        given = {k: _plain(v) for k, v in inputs.items()}
        previous = self.registered.get(name)
        self.registered[name] = (typ, given)
        if typ == DROPLET:
            self._droplet(name, previous[1] if previous and previous[0] == typ else None, given)
        elif typ == VOLUME and previous is not None and _known(given.get("size")) and _known(previous[1].get("size")) \
                and float(given["size"]) < float(previous[1]["size"]):
            # provider digitalocean/volume/resource_volume.go, CustomizeDiff
            raise DoRuleError(f"{name}: volumes `size` can only be expanded and not shrunk")
        elif typ == VPC and previous is None:
            self._new_vpc(f"vpc-{name}", str(given.get("region")))
        elif typ == IP_ASSIGNMENT and _known(given.get("dropletId")):
            self.assign_ip(name, given)
        label = given.get("name")
        if _known(label):
            problem = _name_rules(typ, str(label))
            if problem:
                raise DoRuleError(f"{name}: 422 {problem}")
        if typ == SSH_KEY:
            self._ssh_key(name, given)
        elif typ == BUCKET and _known(label):
            _lifecycle_rules(name, given.get("lifecycleRules") or [])
            _claim_bucket(name, str(label))
        elif typ == VOLUME and _known(label):
            self._claim(self.volumes, (str(given.get("region")), str(label)), name,
                        f"a volume named {label} already exists in {given.get('region')}")
        elif typ in _UNIQUE_PER_ACCOUNT and _known(label):
            self._claim(self.names, (typ, str(label)), name, f"name {label} is already in use")

    # --- VPCs ------------------------------------------------------------------------------------

    # DigitalOcean's VPC docs: the first VPC made in a region (by you, or the one DigitalOcean makes
    # for the first resource you create there without naming a VPC) becomes the region's default,
    # and a default VPC cannot be deleted (the API answers 403). Resources made without a VPC land
    # in the region's default (provider digitalocean/droplet/resource_droplet.go, `vpc_uuid`: "If
    # no vpc_uuid is provided, the Droplet will be placed in your account's default VPC").
    def _new_vpc(self, vpc_id: str, region: str) -> str:
        self.vpcs[vpc_id] = region
        self.default_vpcs.setdefault(region, vpc_id)
        return vpc_id

    def default_vpc(self, region: str) -> str:
        """The region's default VPC, made on first use as DigitalOcean makes it."""
        return self.default_vpcs.get(region) or self._new_vpc(f"default-vpc-{region}", region)

    # --- droplets ----------------------------------------------------------------------------------

    def _droplet(self, name: str, before: Optional[dict[str, Any]], given: dict[str, Any]) -> None:
        current = self.droplet_of.get(name)
        alive = current is not None and current in self.droplets
        if before is None or not alive or _force_new_changes(DROPLET, before, given):
            # a create (first, or replacing, or after the old one was deleted by hand): the old one,
            # if any, stays until the lifecycle deletes it (delete-before-replace orders that)
            region = str(given.get("region"))
            vpc = str(given.get("vpcUuid") or self.default_vpc(region))
            if _known(given.get("vpcUuid")) and vpc not in self.vpcs:
                raise DoRuleError(f"{name}: 422 VPC {vpc} not found")
            size = str(given.get("size"))
            new_id = self.next_droplet_id
            self.next_droplet_id += 1
            self.droplets[new_id] = LiveDroplet(new_id, region, vpc, size, disk_gib(size))
            self.droplet_of[name] = new_id
            return
        assert current is not None
        self.droplets[current].resize(name, str(before.get("size")), str(given.get("size")),
                                      resize_disk=given.get("resizeDisk", True) is not False)

    def droplet_id(self, name: str) -> int:
        return self.droplet_of[name]

    def delete_by_hand(self, droplet_id: int) -> None:
        """Someone deleted the droplet in the control panel: DigitalOcean unassigns its reserved IP
        and detaches its volumes."""
        self.droplets.pop(droplet_id)
        self.ip_assigned_to = {ip: d for ip, d in self.ip_assigned_to.items() if d != droplet_id}

    # --- deletes -----------------------------------------------------------------------------------

    def delete(self, typ: str, name: str, state: Mapping[str, Any], droplet_id: Optional[int] = None) -> None:
        """Raises DoRuleError as the provider's delete would fail; forgets what it deleted."""
        given = {k: _plain(v) for k, v in state.items()}
        if typ == VPC:
            vpc_id = f"vpc-{name}"
            region = self.vpcs.get(vpc_id)
            if region is not None and self.default_vpcs.get(region) == vpc_id:
                # provider digitalocean/vpc/resource_vpc.go, resourceDigitalOceanVPCDelete: a 403 is
                # retried (taken for "still has members") until the 2-minute delete timeout
                raise DoRuleError(f"{name}: 403 the default VPC of {region} cannot be deleted "
                                  "(retried for 2m, then: Error deleting VPC)")
            self.vpcs.pop(vpc_id, None)
        elif typ == IP_ASSIGNMENT:
            # provider digitalocean/reservedip/resource_reserved_ip_assignment.go, Delete: reads the
            # IP and compares `reservedIP.Droplet.ID` with no nil check: a panic once the droplet
            # is gone (Read, i.e. a refresh, does check: it drops the assignment from the state)
            ip = str(given.get("ipAddress"))
            if ip not in self.ip_assigned_to:
                raise DoRuleError(f"{name}: panic: runtime error: invalid memory address or nil pointer "
                                  "dereference (the reserved IP has no droplet)")
            if self.ip_assigned_to[ip] == given.get("dropletId"):
                del self.ip_assigned_to[ip]
        elif typ == VOLUME_ATTACHMENT:
            # provider digitalocean/volume/resource_volume_attachment.go, Delete: DetachByDropletID;
            # only 422 "pending event" is retried, a gone droplet fails the delete
            if given.get("dropletId") not in self.droplets:
                raise DoRuleError(f"{name}: Error detaching volume from droplet {given.get('dropletId')}: 404 not found")
        elif typ == DROPLET and droplet_id in self.droplets:
            assert droplet_id is not None
            self.delete_by_hand(droplet_id)   # DigitalOcean detaches and unassigns as it deletes

    def assign_ip(self, name: str, given: Mapping[str, Any]) -> None:
        droplet = _plain(given.get("dropletId"))
        if droplet not in self.droplets:
            raise DoRuleError(f"{name}: 422 the droplet {droplet} does not exist")
        self.ip_assigned_to[str(_plain(given.get("ipAddress")))] = int(droplet)

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


# Lifecycle rules of the shapes Spaces is known to take: each is one a lifecycle rule of the
# provider's acceptance tests sends to Spaces (ams3) and reads back (terraform-provider-digitalocean,
# digitalocean/spaces/resource_spaces_bucket_test.go: TestAccDigitalOceanSpacesBucket_LifecycleBasic,
# _LifecycleExpireMarkerOnly). Spaces' own S3-compatibility page lists only time-based expiration and
# incomplete uploads; a rule that joins several actions is in no test, so it counts as refused: the
# bucket's first `up` must not rest on what nobody has seen Spaces accept.
LIFECYCLE_SHAPES = (
    {"abortIncompleteMultipartUploadDays"},
    {"expiration.days"}, {"expiration.date"}, {"expiration.expiredObjectDeleteMarker"},
    {"noncurrentVersionExpiration.days"},
)


def _lifecycle_rules(name: str, rules: Any) -> None:
    for rule in rules:
        rule = _normal(rule)
        actions = set()
        for key, value in rule.items():
            if key in ("expiration", "noncurrentVersionExpiration") and isinstance(value, dict):
                actions |= {f"{key}.{k}" for k, v in value.items() if v not in (None, "", False)}
            elif key == "abortIncompleteMultipartUploadDays" and value:
                actions.add(key)
        if actions not in LIFECYCLE_SHAPES:
            raise DoRuleError(f"{name}: lifecycle rule {rule.get('id')!r} joins {sorted(actions)}: no shape "
                              "Spaces is known to accept (one action a rule)")


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


def _force_new_changes(typ: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    # a ForceNew field left out keeps what the API chose when Computed (vpcUuid): no change
    return {f for f in FORCE_NEW.get(typ, ())
            if _normal(before.get(f)) != _normal(after.get(f)) and not (f in COMPUTED.get(typ, ()) and after.get(f) is None)}


# ForceNew fields that are also Computed: left out of the program, they keep the API's value
COMPUTED: dict[str, frozenset[str]] = {DROPLET: frozenset({"vpcUuid"})}


def replaced(before: Iterable[Any], after: Iterable[Any]) -> dict[str, set[str]]:
    """{resource name: the ForceNew fields whose value differs} between two runs' registrations
    (mock resources of the same program): what `pulumi up` would replace."""
    old = {r.name: r for r in before}
    out: dict[str, set[str]] = {}
    for r in after:
        prev = old.get(r.name)
        if prev is None or prev.typ != r.typ:
            continue
        fields = _force_new_changes(r.typ, prev.inputs, r.inputs)
        if fields:
            out[r.name] = fields
    return out


# --- the state backend's lock ------------------------------------------------------------------

LOCKED = ("the stack is currently locked by {n} lock(s). Either wait for the other process(es) to end "
          "or delete the lock file with `pulumi cancel`.")


@dataclass
class Backend:
    """The diy (file or bucket) state backend of pulumi/pulumi, pkg/backend/diy/lock.go: an update,
    refresh or destroy writes a lock file under .pulumi/locks/<org>/<project>/<stack>/ and removes it
    when it ends; a process that is killed leaves it, and every later operation on the stack is refused
    with LOCKED until `pulumi cancel` removes it (nothing expires it)."""
    locks: dict[str, int] = field(default_factory=dict)   # stack -> lock files

    def begin(self, stack: str) -> None:
        held = self.locks.get(stack, 0)
        if held:
            raise DoRuleError(f"{stack}: " + LOCKED.format(n=held))
        self.locks[stack] = 1

    def end(self, stack: str) -> None:
        self.locks.pop(stack, None)

    def killed(self, stack: str) -> None:
        """The process was killed mid-operation: its lock file stays."""

    def cancel(self, stack: str) -> None:
        self.locks.pop(stack, None)
