"""The botstack policies (CrossGuard, pulumi-policy): the security invariants of the program,
checked on what `pulumi preview`/`pulumi up` is about to do, whoever edited the program.

Resource policies see a resource's inputs; stack policies see every resource's outputs at the end
of the run, the root `pulumi:pulumi:Stack` resource's outputs being the stack outputs. The
pulumi-policy SDK unwraps secrets before a policy sees them, so a policy cannot tell a secret
output from a plain one: `no-secret-in-stack-outputs` refuses secret material in any output.

A prod stack is one whose name starts with `prod` (the rule infra/config.py uses); the stack name
is read from the resource's URN (`urn:pulumi:<stack>::<project>::...`).
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, Iterator, Optional, Protocol

from pulumi_policy import (EnforcementLevel, ReportViolation, ResourceValidationArgs,
                           ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError

from infra import contract, facts, memory, prices
from infra.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "compose" / "compose.yml"

STACK = "pulumi:pulumi:Stack"
FIREWALL = "digitalocean:index/firewall:Firewall"
BUCKET = "digitalocean:index/spacesBucket:SpacesBucket"
SPACES_KEY = "digitalocean:index/spacesKey:SpacesKey"
DROPLET = "digitalocean:index/droplet:Droplet"
DATABASE_CLUSTER = "digitalocean:index/databaseCluster:DatabaseCluster"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"

# what holds the data: losing one of these loses the bot's data or the way to read its backups
DATA_TYPES = {
    "digitalocean:index/volume:Volume": "the data volume (PostgreSQL, local backups)",
    BUCKET: "the offsite backup bucket",
    "digitalocean:index/reservedIp:ReservedIp": "the stack's public address",
    DATABASE_CLUSTER: "the managed database",
}
# (the backup passphrase is config, botstack:backupPassphrase, never a resource)
DATA_PASSWORDS = {
    "database-postgres-password": "the password PGDATA was initialised with",
}

SSH_PORT = "22"
BACKUP_KEY_PERMISSIONS = ("read", "readwrite")  # "fullaccess" is every bucket in the account

# Secret material recognisable without knowing where it came from.
SECRET_PATTERNS = {
    "a Telegram bot token": re.compile(r"\b[0-9]{6,}:[A-Za-z0-9_-]{30,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a DigitalOcean API token": re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    "a database URL with a password": re.compile(r"\bpostgres(?:ql)?://[^:/@\s]+:[^@\s]+@"),
    # healthchecks.io-style ping URLs carry the project's ping key in their path
    "a health-check ping URL": re.compile(r"(?:hc-ping\.com|/ping)/[A-Za-z0-9_-]{16,}"),
}
# a field marked secret as a whole holds some plain values too (a command's connection has the
# host address, exported on purpose as reservedIp): only these parts of it are secret
SECRET_SUBFIELDS = {"connection": ("privateKey", "password", "privateKeyPassword")}
MIN_SECRET_LENGTH = 8  # shorter values (ports, user names) would match innocent outputs
ENV_SECRET_KEYS = {s.key for s in contract.SETTINGS if s.secret}

_UNKNOWN = object()


class Report(Protocol):
    """The callback pulumi-policy hands a validation: `report_violation(message, urn=None)` in its
    analyzer (pulumi_policy/policy.py, `_create_report_violation`). Its exported alias
    `ReportViolation = Callable[[str, Optional[str]], None]` cannot say that the urn may be left
    out; a resource policy leaves it out (the engine uses the validated resource's urn anyway).
    Stack policies always name the resource, so they take the SDK's alias."""

    def __call__(self, message: str, urn: Optional[str] = None) -> None: ...


def _get(props: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """props[key]; `_UNKNOWN` when the value is not known yet (a first preview)."""
    try:
        return props[key]
    except KeyError:
        return default
    except UnknownValueError:
        return _UNKNOWN


def _elements(seq: Any) -> Iterator[Any]:
    if seq is None or seq is _UNKNOWN:
        return
    for i in range(len(seq)):
        try:
            yield seq[i]
        except UnknownValueError:
            yield _UNKNOWN


def stack_of(urn: str) -> str:
    return urn.split("::", 1)[0].split(":", 2)[2]


def is_production(stack: str) -> bool:
    return stack.startswith("prod")


def _where(args: ResourceValidationArgs) -> str:
    return f"{args.name} ({args.resource_type})"


# --- resource policies -------------------------------------------------------------------------

def validate_firewall(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != FIREWALL:
        return
    stack = stack_of(args.urn)
    for i, rule in enumerate(_elements(_get(args.props, "inboundRules", []))):
        if rule is _UNKNOWN:
            continue
        protocol, ports = _get(rule, "protocol"), _get(rule, "portRange")
        if _UNKNOWN not in (protocol, ports) and (protocol != "tcp" or ports != SSH_PORT):
            report(f"{_where(args)}: inbound rule {i} opens {protocol} {ports or 'all ports'}; only TCP 22 "
                   "may be open inbound (the bot long-polls Telegram, nothing else listens). "
                   "Fix: remove the rule from infra/network.py.")
        if not is_production(stack):
            continue
        for source in _elements(_get(rule, "sourceAddresses", [])):
            if source is _UNKNOWN:
                continue
            try:
                everywhere = ipaddress.ip_network(str(source), strict=False).prefixlen == 0
            except ValueError:
                report(f"{_where(args)}: inbound rule {i} admits {source!r}, not a CIDR. "
                       "Fix: list addresses like 198.51.100.7/32 in botstack:adminCidrs.")
                continue
            if everywhere:
                report(f"{_where(args)}: inbound rule {i} admits {source} (the whole internet) to SSH on "
                       f"prod stack {stack}. Fix: put only your own addresses in botstack:adminCidrs "
                       f"(e.g. 198.51.100.7/32) in Pulumi.{stack}.yaml.")


def validate_bucket(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != BUCKET:
        return
    acl = _get(args.props, "acl")
    if acl is not _UNKNOWN and acl != "private":
        report(f"{_where(args)}: acl is {acl!r}; the backup bucket must be private. "
               "Fix: acl=\"private\" in infra/storage.py.")
    versioning = _get(args.props, "versioning") or {}
    if versioning is not _UNKNOWN and _get(versioning, "enabled") not in (True, _UNKNOWN):
        report(f"{_where(args)}: versioning is off; an overwritten or deleted backup could not be "
               "recovered. Fix: versioning=SpacesBucketVersioningArgs(enabled=True) in infra/storage.py.")


def validate_spaces_key(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SPACES_KEY:
        return
    grants = list(_elements(_get(args.props, "grants", [])))
    if len(grants) != 1:
        report(f"{_where(args)}: has {len(grants)} grants; a Spaces key must be granted on exactly "
               "one bucket. Fix: one SpacesKeyGrantArgs(bucket=<the stack's bucket>) in infra/storage.py.")
    for grant in grants:
        if grant is _UNKNOWN:
            continue
        bucket, permission = _get(grant, "bucket"), _get(grant, "permission")
        if permission is not _UNKNOWN and permission not in BACKUP_KEY_PERMISSIONS:
            report(f"{_where(args)}: permission {permission!r} reaches every bucket in the account. "
                   "Fix: permission=\"readwrite\" on the stack's bucket.")
        if bucket is not _UNKNOWN and not bucket:
            report(f"{_where(args)}: a grant without a bucket reaches every bucket in the account. "
                   "Fix: bucket=<the stack's bucket name>.")


def validate_droplet_monitoring(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == DROPLET and _get(args.props, "monitoring") not in (True, _UNKNOWN):
        report(f"{_where(args)}: monitoring is off, so the CPU/memory/disk alerts never fire. "
               "Fix: monitoring=True in infra/server.py.")


def validate_data_protected(args: ResourceValidationArgs, report: Report) -> None:
    stack = stack_of(args.urn)
    what = DATA_TYPES.get(args.resource_type)
    if args.resource_type == RANDOM_PASSWORD:
        what = DATA_PASSWORDS.get(args.name)
    if what is None or not is_production(stack) or args.opts.protect:
        return
    report(f"{_where(args)} holds {what} and is not protected on prod stack {stack}: a destroy or a "
           f"replacement would delete it. Fix: botstack:protectData: true in Pulumi.{stack}.yaml.")


def validate_droplet_backups(args: ResourceValidationArgs, report: Report) -> None:
    stack = stack_of(args.urn)
    if args.resource_type != DROPLET or not is_production(stack):
        return
    if _get(args.props, "backups") not in (True, _UNKNOWN):
        report(f"{_where(args)}: DigitalOcean droplet backups are off on prod stack {stack}. "
               f"Fix: botstack:enableDropletBackups: true in Pulumi.{stack}.yaml "
               "(+20% of the droplet price, weekly).")


# --- stack policies ----------------------------------------------------------------------------

def _fitting_sizes(need_mib: int) -> list[str]:
    fits = [(s.usd_month, name) for name, s in prices.DROPLET_SIZES.items() if memory.usable_mib(name) >= need_mib]
    return [name for _, name in sorted(fits)]


def _observability_on(resources) -> Optional[bool]:
    """Whether the deploy's `.env` (the write-env command's stdin) turns on the `observability`
    compose profile (its COMPOSE_PROFILES, as infra/envfile.py writes it); None when no `.env` is
    known (a preview before its values are)."""
    found: Optional[bool] = None
    for r in resources:
        text = _get(r.props, "stdin") if r.resource_type != STACK else None
        if isinstance(text, str) and "COMPOSE_PROFILES" in (env := contract.parse(text)):
            profiles = {p.strip() for p in env["COMPOSE_PROFILES"].split(",")}
            found = bool(found) or facts.OBSERVABILITY_PROFILE in profiles
    return found


def validate_droplet_size(args: StackValidationArgs, report: ReportViolation) -> None:
    managed = any(r.resource_type == DATABASE_CLUSTER for r in args.resources)
    # the profile's limits count when the .env turns it on, and while the .env is unknown (the
    # larger sum: a size is never let through on a guess) unless the database is managed, where the
    # program refuses the profile (infra/config.py)
    on = _observability_on(args.resources)
    observability = on is True or (on is None and not managed)
    counted = {True: " with the observability profile", None: " counting the observability profile "
               "(the .env is not known yet)", False: ""}[on] if observability else ""
    for r in args.resources:
        size = _get(r.props, "size") if r.resource_type == DROPLET else _UNKNOWN
        if size is _UNKNOWN:
            continue
        where = f"{r.name} ({r.resource_type})"
        if size not in prices.DROPLET_SIZES:
            report(f"{where}: size {size!r} is not in infra/prices.py, so its memory is unknown. "
                   f"Fix: one of {', '.join(prices.DROPLET_SIZES)}.", r.urn)
            continue
        try:
            need = memory.compose_memory_mib(COMPOSE_FILE, managed, observability)
        except ConfigError as e:
            report(f"{where}: {e}", r.urn)
            continue
        ram = prices.DROPLET_SIZES[size].memory_mib
        usable = memory.usable_mib(size)
        if need > usable:
            fits = _fitting_sizes(need)
            report(f"{where}: size {size} ({ram} MiB RAM) leaves {usable} MiB for the stack, but the compose "
                   f"services' memory limits sum to {need} MiB{counted}. Fix: botstack:dropletSize: "
                   f"{fits[0] if fits else 'a larger size'}.", r.urn)


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if value is _UNKNOWN:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key in list(value):
            yield from _strings(_get(value, key), f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence):
        for i, item in enumerate(_elements(value)):
            yield from _strings(item, f"{path}[{i}]")


def _secret_values(resources) -> dict[str, str]:
    """Secret value -> where it lives (`resource.field`), from every resource's secret outputs."""
    found: dict[str, str] = {}
    for r in resources:
        for field in (r.opts.additional_secret_outputs or []) if r.resource_type != STACK else []:
            value = _get(r.props, field)
            parts = SECRET_SUBFIELDS.get(field)
            if parts is not None and isinstance(value, Mapping):
                value = {p: _get(value, p) for p in parts}
            for _, s in _strings(value, field):
                if len(s) >= MIN_SECRET_LENGTH:
                    found.setdefault(s, f"{r.name}.{field}")
    return found


def _env_secret_values(resources) -> dict[str, str]:
    """Secret value -> where it lives, from the `.env` a command writes through its stdin (the
    deploy's write-env): what only the config holds, e.g. the own backup store's key
    (botstack:backupStore*), is in no resource's secret outputs."""
    found: dict[str, str] = {}
    for r in resources:
        text = _get(r.props, "stdin") if r.resource_type != STACK else None
        if not isinstance(text, str):
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key in ENV_SECRET_KEYS and len(value) >= MIN_SECRET_LENGTH:
                found.setdefault(value, f"{r.name}.stdin ({key})")
    return found


def validate_no_secret_outputs(args: StackValidationArgs, report: ReportViolation) -> None:
    secrets = _secret_values(args.resources)
    env_secrets = _env_secret_values(args.resources)
    for root in (r for r in args.resources if r.resource_type == STACK):
        for path, text in _strings(root.props):
            leaked = [where for secret, where in secrets.items() if secret in text]
            leaked += [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
            leaked += [where for secret, where in env_secrets.items() if secret in text]
            if leaked:
                report(f"stack output {path} carries {leaked[0]} in plain text. Fix: remove it from the "
                       "outputs in infra/program.py (read secrets with `pulumi stack export "
                       "--show-secrets` or `pulumi config get`).", root.urn)


def _resource_policy(name: str, description: str, validate, level=EnforcementLevel.MANDATORY):
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=level)


POLICIES = [
    _resource_policy("ssh-only-from-admins",
                     "Inbound firewall rules open only TCP 22, and never to 0.0.0.0/0 or ::/0 on a prod stack.",
                     validate_firewall),
    _resource_policy("backup-bucket-private-versioned",
                     "The backup bucket is private and versioned.", validate_bucket),
    _resource_policy("spaces-key-one-bucket",
                     "Every Spaces key is granted on one bucket only.", validate_spaces_key),
    _resource_policy("droplet-monitoring-on",
                     "The droplet runs the DigitalOcean monitoring agent.", validate_droplet_monitoring),
    _resource_policy("data-protected-on-prod",
                     "Resources holding data are protected on a prod stack.", validate_data_protected),
    _resource_policy("droplet-backups-on-in-prod",
                     "Droplet backups are on in a prod stack (advisory).", validate_droplet_backups,
                     EnforcementLevel.ADVISORY),
    StackValidationPolicy(name="droplet-fits-compose-limits",
                          description="The droplet size holds the compose stack's memory limits.",
                          validate=validate_droplet_size, enforcement_level=EnforcementLevel.MANDATORY),
    StackValidationPolicy(name="no-secret-in-stack-outputs",
                          description="No stack output carries a secret in plain text.",
                          validate=validate_no_secret_outputs, enforcement_level=EnforcementLevel.MANDATORY),
]

