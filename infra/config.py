"""The stack's configuration: every `botstack:<key>` read and validated once, into `StackConfig`.

Bad config raises `ConfigError` whose message is one line, `botstack:<key>: <problem>`, before the
program registers any resource. The keys (all camelCase, as in Pulumi.<stack>.yaml):

| key | type, default | meaning |
| --- | --- | --- |
| region | str, required | DO region slug; must offer Spaces (the backup bucket sits beside the droplet), unless the backups go to your own store (backupStore*) |
| dropletSize | str, `s-1vcpu-1gb` | droplet size slug; must hold the compose stack's memory limits (rule below) |
| image | str, `ubuntu-24-04-x64` | droplet image slug; one the cloud-init is written for |
| sshPublicKeys | list[str], required | your SSH public keys (OpenSSH one-line format), for the `botadmin` user |
| adminCidrs | list[str], required | CIDRs allowed to reach TCP 22; nothing else is open inbound |
| dangerouslyAllowSshFromAnywhere | bool, false | the only way to put 0.0.0.0/0 or ::/0 in adminCidrs on a prod stack |
| telegramBotToken | secret str, required | the bot's token from @BotFather |
| allowedUserIds | list[int], [] | Telegram user ids allowed to use the bot besides the admins (the .env gets the union) |
| adminUserIds | list[int], required | Telegram user ids of the admins (alerts, /status) |
| defaultTimezone | str, `UTC` | IANA time zone for reminders without an explicit zone |
| telegramApiBaseUrl | str, `https://api.telegram.org` | Bot API root |
| volumeSizeGib | int, 2 | size of the block volume holding all persistent data (1..16384): a personal bot's database is megabytes; it grows in place, online |
| backupIntervalHours | int, 24 | hours between database backups (>= 1) |
| backupLocalRetentionDays | int, 7 | days local backup copies are kept on the volume (>= 1) |
| backupOffsiteRetentionDays | int, 30 | days offsite backups are kept unless a kept generation below (>= 1; the backup tool prunes) |
| backupOffsiteKeepLast | int, 3 | offsite: the newest N backups are always kept (>= 1) |
| backupOffsiteKeepDaily | int, 7 | offsite: the newest backup of each of the last N days is kept (>= 0) |
| backupOffsiteKeepWeekly | int, 4 | offsite: the newest backup of each of the last N weeks is kept (>= 0) |
| backupOffsiteKeepMonthly | int, 6 | offsite: the newest backup of each of the last N months is kept (>= 0) |
| healthcheckPingUrl | secret str, unset | healthchecks.io-compatible ping base URL with a project ping key (`https://hc-ping.com/<ping-key>`); unset: no pings |
| backupPassphrase | secret str, required | encrypts every backup (32-256 of `A-Za-z0-9._~+/=-`); scripts/deploy sets it on a stack's first deploy (or moves the old generated one here), so it outlives `pulumi destroy`; unset: refused (a passphrase kept in the state only would go with `pulumi destroy`, the bucket and its backups would not) |
| ciRunnerCidrs | list[str], [] | extra /32 or /128 hosts admitted to TCP 22 for one CI job (set and cleared by the deploy workflow only) |
| backupDrillIntervalDays | int, 7 | days between automatic restore drills (>= 1) |
| enableDropletBackups | bool, false | DigitalOcean droplet backups (+20% weekly / +30% daily of the droplet price) |
| dropletBackupPlan | `weekly` or `daily`, `weekly` | droplet backup plan |
| dropletBackupWeekday | `SUN`..`SAT`, `SUN` | weekday of weekly droplet backups |
| dropletBackupHour | 0,4,8,12,16,20, 4 | UTC hour the backup window starts |
| alertEmails | list[str], [] | e-mails for CPU/memory/disk monitoring alerts; none: no alerts |
| protectData | bool, false | Pulumi `protect` on data resources (volume, bucket, reserved IP, database) |
| database | `container` or `managed`, `container` | PostgreSQL in the compose stack, or DO Managed PostgreSQL |
| managedDatabaseSize | str, `db-s-1vcpu-1gb` | managed cluster size (managed mode only) |
| managedDatabaseVersion | str, `17` | managed PostgreSQL major version (managed mode only): one DigitalOcean offers (14..17) |
| observability | bool, false | the compose profile `observability`: Prometheus + node-exporter on the droplet (container mode only; docs/observability.md); their memory limits count in the rule below |
| backupStoreEndpoint | str, unset | your own S3-compatible store for the backups, its `https://` endpoint; with the bucket and both keys set, no Spaces bucket or key is made and the region need not offer Spaces (infra/backup_store.py) |
| backupStoreRegion | str, `us-east-1` | that store's region |
| backupStoreBucket | str, unset | that store's bucket |
| backupStoreAccessKeyId | secret str, unset | that store's key id (read and write on the bucket) |
| backupStoreSecretAccessKey | secret str, unset | that store's key secret |
| restoreFrom | str, unset | `s3://BUCKET[/PREFIX]`: the first deploy restores the newest authenticated backup there into the empty database before the bot starts (container mode only) |
| restoreFromEndpoint | str, unset | the endpoint of restoreFrom's store when it is not the stack's |
| restoreFromPassphrase | secret str, unset | the passphrase restoreFrom's backups were made with, when not backupPassphrase |
| restoreFromAccessKeyId | secret str, unset | a key that can read restoreFrom's bucket, when the store's key cannot (another stack's Spaces bucket) |
| restoreFromSecretAccessKey | secret str, unset | that key's secret |

A stack whose name starts with `prod` is a production stack (the SSH-from-anywhere rule). The stack
name goes into resource names, so it may hold only lowercase letters, digits and inner hyphens, at
most 37 characters (the bucket name's limit).
An unknown `botstack:` key is refused (a misspelt key would otherwise fall back to its default): the
keys set are those of the stack file `Pulumi.<stack>.yaml` and of the config the engine hands the
program (the PULUMI_CONFIG environment variable, read through pulumi.runtime.get_config_env).
Lists may be given as YAML lists (Pulumi passes them as JSON strings) or comma-separated strings.
"""
from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from infra import backup_store, prices
from infra.backup_store import OwnStore, RestoreFrom
from infra.errors import NAMESPACE, ConfigError, StackNameError
from infra.memory import compose_memory_mib, memory_fits, parse_memory  # noqa: F401 - this module's API


DEFAULTS: dict[str, Any] = {
    "dropletSize": "s-1vcpu-1gb",
    "image": "ubuntu-24-04-x64",
    "dangerouslyAllowSshFromAnywhere": False,
    "allowedUserIds": [],
    "defaultTimezone": "UTC",
    "telegramApiBaseUrl": "https://api.telegram.org",
    "volumeSizeGib": 2,  # the database is megabytes; a volume grows in place (docs/infra.md)
    "backupIntervalHours": 24,
    "backupLocalRetentionDays": 7,
    "backupOffsiteRetentionDays": 30,
    "backupOffsiteKeepLast": 3,
    "backupOffsiteKeepDaily": 7,
    "backupOffsiteKeepWeekly": 4,
    "backupOffsiteKeepMonthly": 6,
    "healthcheckPingUrl": "",
    "backupPassphrase": "",
    "ciRunnerCidrs": [],
    "backupDrillIntervalDays": 7,
    "enableDropletBackups": False,
    "dropletBackupPlan": "weekly",
    "dropletBackupWeekday": "SUN",
    "dropletBackupHour": 4,
    "alertEmails": [],
    "protectData": False,
    "database": "container",
    "managedDatabaseSize": "db-s-1vcpu-1gb",
    "managedDatabaseVersion": "17",
    "observability": False,
    **backup_store.DEFAULTS,  # the own store and restoreFrom (infra/backup_store.py)
}
# The stack name is part of resource names (infra/*.py: `botstack-<stack>...`); DigitalOcean's rules
# on them (tests/infra/do_rules.py names each source) leave lowercase letters, digits and inner
# hyphens (volumes and buckets take no uppercase, volumes, tags and hostnames no '_'). The longest
# name is the bucket's, `botstack-<stack>-backups-<8 hex>`, which Spaces caps at 63 characters;
# volume snapshots `botstack-<stack>-pre-<12 hex>` (64) come next.
STACK_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
STACK_NAME_MAX = min(63 - len("botstack--backups-") - 8, 64 - len("botstack--pre-") - 12)

# The PostgreSQL majors DigitalOcean Managed Databases create clusters of, as of 2025-11 (its
# PostgreSQL docs: 13 reached end of life on 2025-11-13 and was withdrawn). `doctl databases options
# versions` or GET /v2/databases/options shows today's list; update this with it.
MANAGED_PG_VERSIONS = ("14", "15", "16", "17")

KNOWN_KEYS = set(DEFAULTS) | {"region", "sshPublicKeys", "adminCidrs", "telegramBotToken", "adminUserIds"}
SECRET_KEYS = {"telegramBotToken", "healthcheckPingUrl", "backupPassphrase"} | backup_store.SECRET_KEYS


@dataclass(frozen=True)
class StackConfig:
    stack: str
    production: bool
    region: str
    droplet_size: str
    image: str
    ssh_public_keys: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    ci_runner_cidrs: tuple[str, ...]
    telegram_bot_token: str = field(repr=False)  # plaintext only inside the program; wrap in Output.secret
    allowed_user_ids: tuple[int, ...]
    admin_user_ids: tuple[int, ...]
    default_timezone: str
    telegram_api_base_url: str
    volume_size_gib: int
    backup_interval_hours: int
    backup_local_retention_days: int
    backup_offsite_retention_days: int
    backup_offsite_keep_last: int
    backup_offsite_keep_daily: int
    backup_offsite_keep_weekly: int
    backup_offsite_keep_monthly: int
    healthcheck_ping_url: str = field(repr=False)  # holds the ping key: a secret like the token
    backup_passphrase: str = field(repr=False)     # from the stack file, where it outlives a destroy
    backup_drill_interval_days: int
    enable_droplet_backups: bool
    droplet_backup_plan: str
    droplet_backup_weekday: str
    droplet_backup_hour: int
    alert_emails: tuple[str, ...]
    protect_data: bool
    database: str
    managed_database_size: str
    managed_database_version: str
    compose_memory_mib: int
    observability: bool = False
    backup_store: Optional[OwnStore] = None   # None: the program's Spaces bucket
    restore_from: Optional[RestoreFrom] = None

    @property
    def managed_db(self) -> bool:
        return self.database == "managed"

    @property
    def users(self) -> tuple[int, ...]:
        """Who may use the bot: allowedUserIds and the admins, sorted, each once (never empty)."""
        return tuple(sorted(set(self.allowed_user_ids) | set(self.admin_user_ids)))

    @property
    def ssh_sources(self) -> tuple[str, ...]:
        """Everyone the firewall admits to TCP 22: adminCidrs, then the CI job's hosts."""
        return self.admin_cidrs + tuple(c for c in self.ci_runner_cidrs if c not in self.admin_cidrs)


# --- parsing helpers -------------------------------------------------------------------------

def _list(key: str, raw: Any) -> list:
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return list(raw)
    if isinstance(raw, str):
        s = raw.strip()
        if s.startswith("["):
            try:
                value = json.loads(s)
            except json.JSONDecodeError:
                raise ConfigError(key, "is not a valid list") from None
            if not isinstance(value, list):
                raise ConfigError(key, "must be a list")
            return value
        return [p.strip() for p in s.split(",") if p.strip()]
    raise ConfigError(key, "must be a list")


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(key, f"must be true or false, not {raw!r}")


def _int(key: str, raw: Any, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    if isinstance(raw, bool):
        raise ConfigError(key, f"must be an integer, not {raw!r}")
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        raise ConfigError(key, f"must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(key, f"must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, f"must be at most {maximum}, not {value}")
    return value


def _user_ids(key: str, raw: Any) -> tuple[int, ...]:
    ids = []
    for item in _list(key, raw):
        if isinstance(item, bool) or not re.fullmatch(r"[0-9]+", str(item).strip()):
            raise ConfigError(key, f"{item!r} is not an integer Telegram user id")
        ids.append(int(str(item).strip()))
    return tuple(ids)


_SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                  "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


# The public key formats (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4, OpenSSH PROTOCOL.u2f): the
# fields after the type name, each a length-prefixed string, and what each must hold. A key cut
# short (a copy-paste that lost its end) fails here instead of locking you out of the droplet.
_ECDSA_POINT = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
RSA_MIN_BITS = 2048


def _ssh_fields(blob: bytes) -> list[bytes]:
    fields, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("a length is cut short")
        size = int.from_bytes(blob[at:at + 4], "big")
        if at + 4 + size > len(blob):
            raise ValueError("a field is cut short")
        fields.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return fields


def _ssh_key_problem(kind: str, fields: list[bytes]) -> Optional[str]:
    if not fields or fields[0].decode(errors="replace") != kind:
        return "data does not match its type"
    rest = fields[1:]
    if kind in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        want = 2 if kind.startswith("sk-") else 1
        if len(rest) != want or len(rest[0]) != 32:
            return "is not a whole ed25519 key (cut short?)"
    elif kind == "ssh-rsa":
        if len(rest) != 2 or not rest[0] or not rest[1]:
            return "is not a whole RSA key (cut short?)"
        bits = int.from_bytes(rest[1], "big").bit_length()
        if bits < RSA_MIN_BITS - 8:   # an mpint's leading zero byte aside
            return f"is a {bits}-bit RSA key, under {RSA_MIN_BITS} bits (cut short?)"
    else:  # ecdsa-sha2-<curve>, sk-ecdsa-sha2-nistp256@openssh.com
        curve = kind.split("-")[2].split("@")[0]
        want = 3 if kind.startswith("sk-") else 2
        if len(rest) != want or rest[0].decode(errors="replace") != curve or len(rest[1]) != _ECDSA_POINT[curve]:
            return f"is not a whole {curve} key (cut short?)"
    return None


def _ssh_key(key: str, value: Any) -> str:
    parts = str(value).strip().split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        raise ConfigError(key, "each entry must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        problem = _ssh_key_problem(parts[0], _ssh_fields(blob))
    except ValueError:
        problem = "base64 part is invalid or cut short"
    if problem:
        raise ConfigError(key, f"the {parts[0]} key {parts[1][:16]}... {problem}")
    return " ".join(parts)


# --- the loader --------------------------------------------------------------------------------

Getter = Callable[[str], Any]


def check_known(keys: "list[str] | set[str]") -> None:
    """A misspelt key would silently fall back to its default: refuse unknown keys."""
    for key in sorted(keys):
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(key, f"unknown key ({hint}the keys are documented in infra/config.py)")


def check_stack_name(stack: str) -> None:
    if len(stack) > STACK_NAME_MAX:
        raise StackNameError(stack, f"is {len(stack)} characters; at most {STACK_NAME_MAX} fit the bucket name "
                                    f"botstack-<stack>-backups-<8 hex> (63 characters at most)")
    if not STACK_NAME.fullmatch(stack):
        raise StackNameError(stack, "may hold only lowercase letters, digits and inner hyphens: DigitalOcean "
                                    "refuses anything else in volume, bucket and droplet names")


def load(get: Getter, stack: str, compose_file: Optional[Path]) -> StackConfig:
    """Reads every key through `get(key)` (None when unset) and validates it. Without a compose
    file (only `check_stack_file` in a tree without compose/) the memory rule is left to the program."""

    def val(key: str) -> Any:
        raw = get(key)
        if raw is None or (isinstance(raw, str) and raw == ""):
            return DEFAULTS.get(key)
        return raw

    check_stack_name(stack)
    production = stack.startswith("prod")
    fields: dict[str, Any] = {}
    store = backup_store.own_store(get)
    fields.update(_where(val, spaces=store is None))
    fields.update(_access(val, production))
    fields.update(_telegram(val, get))
    fields.update(_backups(val, get))
    fields.update(_droplet_backups(val))
    fields.update(_database(val))
    size = str(val("dropletSize")).strip()
    if compose_file is None:
        if size not in prices.DROPLET_SIZES:
            raise ConfigError("dropletSize", f"unknown size {size!r}; known: {', '.join(prices.DROPLET_SIZES)}")
        need = 0
    else:
        need = memory_fits(size, compose_file, fields["database"] == "managed", fields["observability"])
    return StackConfig(stack=stack, production=production, droplet_size=size, compose_memory_mib=need,
                       protect_data=_bool("protectData", val("protectData")), backup_store=store,
                       restore_from=backup_store.restore_from(get, fields["database"] == "managed"), **fields)


def _where(val: Getter, spaces: bool = True) -> dict[str, Any]:
    region = val("region")
    if not region:
        raise ConfigError("region", "is required (a DigitalOcean region with Spaces, e.g. ams3)")
    region = str(region).strip()
    if region not in prices.REGIONS:
        raise ConfigError("region", f"unknown region {region!r}; known: {', '.join(sorted(prices.REGIONS))}")
    if spaces and not prices.REGIONS[region]:  # the own store (backupStore*) needs no Spaces here
        with_spaces = ", ".join(sorted(r for r, s in prices.REGIONS.items() if s))
        raise ConfigError("region", f"{region} has no Spaces (the backup bucket needs it); use one of {with_spaces}")
    image = str(val("image")).strip()
    if image not in prices.IMAGES:
        raise ConfigError("image", f"{image!r} is not supported; use one of {', '.join(prices.IMAGES)}")
    return {"region": region, "image": image}


def _access(val: Getter, production: bool) -> dict[str, Any]:
    keys = tuple(_ssh_key("sshPublicKeys", k) for k in _list("sshPublicKeys", val("sshPublicKeys")))
    if not keys:
        raise ConfigError("sshPublicKeys", "at least one SSH public key is required (key-only login)")
    allow_anywhere = _bool("dangerouslyAllowSshFromAnywhere", val("dangerouslyAllowSshFromAnywhere"))
    cidrs = []
    for item in _list("adminCidrs", val("adminCidrs")):
        net = _network("adminCidrs", item)
        if net.prefixlen == 0 and production and not allow_anywhere:
            raise ConfigError("adminCidrs", f"{net} opens SSH to the whole internet on a prod stack; "
                                            "set dangerouslyAllowSshFromAnywhere: true to allow it")
        cidrs.append(str(net))
    if not cidrs:
        raise ConfigError("adminCidrs", "at least one CIDR is required (who may reach SSH)")
    runners = []
    for item in _list("ciRunnerCidrs", val("ciRunnerCidrs")):
        net = _network("ciRunnerCidrs", item)
        if net.prefixlen != net.max_prefixlen:
            raise ConfigError("ciRunnerCidrs", f"{net} is not a single host (/32 or /128): only the CI "
                                               "job's own address may be admitted")
        runners.append(str(net))
    return {"ssh_public_keys": keys, "admin_cidrs": tuple(cidrs), "ci_runner_cidrs": tuple(runners)}


def _network(key: str, item: Any) -> "ipaddress.IPv4Network | ipaddress.IPv6Network":
    text = str(item).strip()
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(key, f"{item!r} is not a valid CIDR") from None
    address = ipaddress.ip_interface(text).ip
    if address != loose.network_address:
        # 198.51.100.23/24 would admit the 256 addresses around yours
        raise ConfigError(key, f"{text} has host bits set: {address}/{address.max_prefixlen} is that one "
                               f"address, {loose} the {loose.num_addresses} around it; write the one you mean")
    return loose


def _telegram(val: Getter, get: Getter) -> dict[str, Any]:
    token = get("telegramBotToken")
    if not token:
        raise ConfigError("telegramBotToken", "is required: pulumi config set --secret botstack:telegramBotToken")
    token = str(token).strip()
    if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]{20,}", token):
        raise ConfigError("telegramBotToken", "does not look like a bot token (<digits>:<secret> from @BotFather)")
    allowed = _user_ids("allowedUserIds", val("allowedUserIds"))
    admins = _user_ids("adminUserIds", val("adminUserIds"))
    if not admins:
        raise ConfigError("adminUserIds", "at least one admin Telegram user id is required")
    tz = str(val("defaultTimezone")).strip()
    try:
        if not tz or tz.startswith("/") or ".." in tz:
            raise ZoneInfoNotFoundError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("defaultTimezone", f"{tz!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    api = str(val("telegramApiBaseUrl")).strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", api):
        raise ConfigError("telegramApiBaseUrl", f"{api!r} is not an http(s) URL")
    return {"telegram_bot_token": token, "allowed_user_ids": allowed, "admin_user_ids": admins,
            "default_timezone": tz, "telegram_api_base_url": api}


def _backups(val: Getter, get: Getter) -> dict[str, Any]:
    ping = str(get("healthcheckPingUrl") or "").strip().rstrip("/")
    # the URL holds the ping key: the message never repeats it
    if ping and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", ping):
        raise ConfigError("healthcheckPingUrl", "is not an http(s) ping base URL without query or fragment "
                                                "(e.g. https://hc-ping.com/<ping-key>)")
    passphrase = str(get("backupPassphrase") or "")
    if not passphrase:
        # only the stack file keeps it past `pulumi destroy`, which leaves the bucket and its backups:
        # one generated into the state would be deleted with it (issue 19)
        raise ConfigError("backupPassphrase", "is not set: run scripts/deploy <stack> once; it makes one, or "
                                              "moves the one this stack generated from its state, into the "
                                              "stack file, where it outlives `pulumi destroy`")
    # it goes into the line-based .env and gpg: a plain token (the message never repeats it)
    if not re.fullmatch(r"[A-Za-z0-9._~+/=-]{32,256}", passphrase):
        raise ConfigError("backupPassphrase", "must be 32-256 characters of letters, digits and ._~+/=- "
                                              "(scripts/deploy makes one)")
    return {
        "backup_passphrase": passphrase,
        "volume_size_gib": _int("volumeSizeGib", val("volumeSizeGib"), 1, 16384),
        "backup_interval_hours": _int("backupIntervalHours", val("backupIntervalHours"), 1),
        "backup_local_retention_days": _int("backupLocalRetentionDays", val("backupLocalRetentionDays"), 1),
        "backup_offsite_retention_days": _int("backupOffsiteRetentionDays", val("backupOffsiteRetentionDays"), 1),
        "backup_offsite_keep_last": _int("backupOffsiteKeepLast", val("backupOffsiteKeepLast"), 1),
        "backup_offsite_keep_daily": _int("backupOffsiteKeepDaily", val("backupOffsiteKeepDaily"), 0),
        "backup_offsite_keep_weekly": _int("backupOffsiteKeepWeekly", val("backupOffsiteKeepWeekly"), 0),
        "backup_offsite_keep_monthly": _int("backupOffsiteKeepMonthly", val("backupOffsiteKeepMonthly"), 0),
        "backup_drill_interval_days": _int("backupDrillIntervalDays", val("backupDrillIntervalDays"), 1),
        "healthcheck_ping_url": ping,
    }


def _droplet_backups(val: Getter) -> dict[str, Any]:
    plan = str(val("dropletBackupPlan")).strip().lower()
    if plan not in prices.DROPLET_BACKUP_SHARE:
        raise ConfigError("dropletBackupPlan", f"must be weekly or daily, not {plan!r}")
    weekday = str(val("dropletBackupWeekday")).strip().upper()
    if weekday not in ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"):
        raise ConfigError("dropletBackupWeekday", f"must be one of SUN..SAT, not {weekday!r}")
    hour = _int("dropletBackupHour", val("dropletBackupHour"))
    if hour not in (0, 4, 8, 12, 16, 20):
        raise ConfigError("dropletBackupHour", f"must be one of 0, 4, 8, 12, 16, 20, not {hour}")
    emails = tuple(str(e).strip() for e in _list("alertEmails", val("alertEmails")))
    for e in emails:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e):
            raise ConfigError("alertEmails", f"{e!r} is not an e-mail address")
    return {"enable_droplet_backups": _bool("enableDropletBackups", val("enableDropletBackups")),
            "droplet_backup_plan": plan, "droplet_backup_weekday": weekday, "droplet_backup_hour": hour,
            "alert_emails": emails}


def _database(val: Getter) -> dict[str, Any]:
    database = str(val("database")).strip().lower()
    if database not in ("container", "managed"):
        raise ConfigError("database", f"must be container or managed, not {database!r}")
    db_size = str(val("managedDatabaseSize")).strip()
    if db_size not in prices.MANAGED_DB_SIZES:
        raise ConfigError("managedDatabaseSize", f"unknown size {db_size!r}; known: {', '.join(prices.MANAGED_DB_SIZES)}")
    db_version = str(val("managedDatabaseVersion")).strip()
    if db_version not in MANAGED_PG_VERSIONS:
        raise ConfigError("managedDatabaseVersion", f"DigitalOcean offers PostgreSQL {', '.join(MANAGED_PG_VERSIONS)}, "
                                                    f"not {db_version!r}")
    observability = _bool("observability", val("observability"))
    if observability and database == "managed":
        raise ConfigError("observability", "needs database: container (the profile watches the stack's own "
                                           "PostgreSQL and backup job)")
    return {"database": database, "managed_database_size": db_size, "managed_database_version": db_version,
            "observability": observability}


def keys_set(stack_file: Path, engine_config: dict[str, Any]) -> set[str]:
    """The `botstack:` keys a stack sets: those in its stack file plus those the engine passes."""
    present = set(engine_config)
    if Path(stack_file).is_file():
        doc = yaml.safe_load(Path(stack_file).read_text()) or {}
        present |= set((doc.get("config") or {}))
    return {k.split(":", 1)[1] for k in present if k.startswith(f"{NAMESPACE}:")}


def from_pulumi(stack: str, compose_file: Path, stack_file: Path) -> StackConfig:
    """Loads the running stack's `botstack:*` config (secrets are read in plaintext here only to
    validate them; the program wraps them in Output.secret before any resource sees them).

    Only public SDK functions: the engine hands a Python program its config in the PULUMI_CONFIG
    environment variable (`get_config_env` reads it; `get_config` also sees config set through
    `set_all_config`, as the automation API's inline programs do)."""
    from pulumi.runtime import get_config, get_config_env

    check_known(keys_set(stack_file, get_config_env() or {}))
    return load(lambda key: get_config(f"{NAMESPACE}:{key}"), stack, compose_file)


# --- `python -m infra.config check STACK`: the stack file checked before anything runs ------------

# Secure values can be read only with the stack's passphrase: the file check takes each as set and
# leaves its format to the program (`pulumi up` checks them before any resource).
_SECURE_STAND_INS = {
    "telegramBotToken": "0:secure-value-checked-by-the-program",
    "backupPassphrase": "secure-value-checked-by-the-program",
    "healthcheckPingUrl": "https://secure.invalid/checked-by-the-program",
    **{key: "secure-value-checked-by-the-program" for key in sorted(backup_store.SECRET_KEYS)},
}
# what scripts/deploy sets in the stack file itself, when missing, before its first `up`
DEPLOY_SETS = ("telegramBotToken", "backupPassphrase")
EXAMPLE_MARK = "REPLACE-ME"


def example_keys(stack_file: Path) -> list[str]:
    """The keys whose lines in the stack file carry the REPLACE-ME mark (example values)."""
    found: list[str] = []
    key = ""
    for line in Path(stack_file).read_text().splitlines():
        m = re.match(rf"^\s*{NAMESPACE}:([A-Za-z0-9]+):", line)
        if m:
            key = m.group(1)
        if EXAMPLE_MARK in line and key and key not in found and not line.lstrip().startswith("#"):
            found.append(key)
    return found


COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose" / "compose.yml"


def check_stack_file(stack: str, stack_file: Path, compose_file: Path = COMPOSE_FILE,
                     deploy: bool = True) -> StackConfig:
    """Every check the program makes that needs no secret, on the stack file alone, plus: no example
    value left. `deploy` (the default: scripts/deploy calls this before it stores them): the keys
    scripts/deploy sets itself (DEPLOY_SETS) may be missing; `python -m infra.config check` without
    `--deploy` requires them."""
    check_stack_name(stack)
    if not Path(stack_file).is_file():
        raise ConfigError("stack", f"{stack_file} does not exist (pulumi stack init {stack}, then fill it in)")
    try:
        doc = yaml.safe_load(Path(stack_file).read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError("stack", f"{stack_file} is not valid YAML ({str(error).splitlines()[0]})") from None
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError("stack", f"{stack_file}: `config` is not a mapping")
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if isinstance(k, str) and k.startswith(f"{NAMESPACE}:")}
    check_known(set(values))
    examples = example_keys(stack_file)
    if examples:
        raise ConfigError(examples[0], f"is an example value (marked {EXAMPLE_MARK} in {Path(stack_file).name}): "
                                       "put yours in and remove the mark")
    for key, value in list(values.items()):
        if isinstance(value, dict) and "secure" in value:
            values[key] = _SECURE_STAND_INS.get(key, "")
    if deploy:
        for key in DEPLOY_SETS:
            values.setdefault(key, _SECURE_STAND_INS[key])
        if values.get("backupStoreEndpoint"):  # its key comes from BACKUP_STORE_* (scripts/deploy checks)
            for key in ("backupStoreAccessKeyId", "backupStoreSecretAccessKey"):
                values.setdefault(key, _SECURE_STAND_INS[key])
    # a tree without compose/ (a copy of the deploy tooling): the memory rule waits for `pulumi up`
    compose = compose_file if Path(compose_file).is_file() else None
    return load(lambda key: _plain_value(values.get(key)), stack, compose)


def _plain_value(value: Any) -> Any:
    # as Pulumi hands a program its config: lists and maps as JSON text, scalars as text
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def main(argv: "list[str] | None" = None) -> int:
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    deploy = "--deploy" in args
    args = [a for a in args if a != "--deploy"]
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m infra.config check [--deploy] STACK", file=sys.stderr)
        return 2
    stack = args[1]
    root = Path(__file__).resolve().parent.parent
    try:
        check_stack_file(stack, root / f"Pulumi.{stack}.yaml", deploy=deploy)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Pulumi.{stack}.yaml: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
