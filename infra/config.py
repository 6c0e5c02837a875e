"""The stack's configuration: every `botstack:<key>` read and validated once, into `StackConfig`.

Bad config raises `ConfigError` whose message is one line, `botstack:<key>: <problem>`, before the
program registers any resource. The keys (all camelCase, as in Pulumi.<stack>.yaml):

| key | type, default | meaning |
| --- | --- | --- |
| region | str, required | DO region slug; must offer Spaces (the backup bucket sits beside the droplet) |
| dropletSize | str, `s-1vcpu-1gb` | droplet size slug; must hold the compose stack's memory limits (rule below) |
| image | str, `ubuntu-24-04-x64` | droplet image slug; one the cloud-init is written for |
| sshPublicKeys | list[str], required | your SSH public keys (OpenSSH one-line format), for the `botadmin` user |
| adminCidrs | list[str], required | CIDRs allowed to reach TCP 22; nothing else is open inbound |
| dangerouslyAllowSshFromAnywhere | bool, false | the only way to put 0.0.0.0/0 or ::/0 in adminCidrs on a prod stack |
| telegramBotToken | secret str, required | the bot's token from @BotFather |
| allowedUserIds | list[int], [] | Telegram user ids allowed to use the bot (admins always are) |
| adminUserIds | list[int], required | Telegram user ids of the admins (alerts, /status) |
| defaultTimezone | str, `UTC` | IANA time zone for reminders without an explicit zone |
| telegramApiBaseUrl | str, `https://api.telegram.org` | Bot API root |
| volumeSizeGib | int, 10 | size of the block volume holding all persistent data (1..16384) |
| backupIntervalHours | int, 24 | hours between database backups (>= 1) |
| backupLocalRetentionDays | int, 7 | days local backup copies are kept on the volume (>= 1) |
| backupOffsiteRetentionDays | int, 30 | days backups are kept in Spaces (lifecycle rule) (>= 1) |
| backupDrillIntervalDays | int, 7 | days between automatic restore drills (>= 1) |
| enableDropletBackups | bool, false | DigitalOcean droplet backups (+20% weekly / +30% daily of the droplet price) |
| dropletBackupPlan | `weekly` or `daily`, `weekly` | droplet backup plan |
| dropletBackupWeekday | `SUN`..`SAT`, `SUN` | weekday of weekly droplet backups |
| dropletBackupHour | 0,4,8,12,16,20, 4 | UTC hour the backup window starts |
| alertEmails | list[str], [] | e-mails for CPU/memory/disk monitoring alerts; none: no alerts |
| protectData | bool, false | Pulumi `protect` on data resources (volume, bucket, reserved IP, database) |
| database | `container` or `managed`, `container` | PostgreSQL in the compose stack, or DO Managed PostgreSQL |
| managedDatabaseSize | str, `db-s-1vcpu-1gb` | managed cluster size (managed mode only) |
| managedDatabaseVersion | str, `17` | managed PostgreSQL major version (managed mode only) |

A stack whose name starts with `prod` is a production stack (the SSH-from-anywhere rule).
An unknown `botstack:` key is refused (a misspelt key would otherwise fall back to its default).
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

from infra import prices

NAMESPACE = "botstack"

# Memory rule for dropletSize: the sum of the compose services' memory limits plus OS_RESERVE_MIB
# (kernel, systemd, sshd, dockerd, fail2ban) must fit in the droplet's RAM plus a quarter of the
# 1 GiB swap file cloud-init adds (swap absorbs bursts such as image builds; counting more of it
# would let the database live in swap). s-1vcpu-1gb: 1024 + 256 - 256 = 1024 MiB for the stack;
# s-1vcpu-512mb-10gb: 512 MiB.
OS_RESERVE_MIB = 256
SWAP_MIB = 1024
SWAP_COUNTED_MIB = SWAP_MIB // 4

DEFAULTS: dict[str, Any] = {
    "dropletSize": "s-1vcpu-1gb",
    "image": "ubuntu-24-04-x64",
    "dangerouslyAllowSshFromAnywhere": False,
    "allowedUserIds": [],
    "defaultTimezone": "UTC",
    "telegramApiBaseUrl": "https://api.telegram.org",
    "volumeSizeGib": 10,
    "backupIntervalHours": 24,
    "backupLocalRetentionDays": 7,
    "backupOffsiteRetentionDays": 30,
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
}
KNOWN_KEYS = set(DEFAULTS) | {"region", "sshPublicKeys", "adminCidrs", "telegramBotToken", "adminUserIds"}
SECRET_KEYS = {"telegramBotToken"}


class ConfigError(Exception):
    """A bad stack configuration. str(error) is one line: `botstack:<key>: <problem>`."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{NAMESPACE}:{key}: {problem}")


@dataclass(frozen=True)
class StackConfig:
    stack: str
    production: bool
    region: str
    droplet_size: str
    image: str
    ssh_public_keys: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    telegram_bot_token: str = field(repr=False)  # plaintext only inside the program; wrap in Output.secret
    allowed_user_ids: tuple[int, ...]
    admin_user_ids: tuple[int, ...]
    default_timezone: str
    telegram_api_base_url: str
    volume_size_gib: int
    backup_interval_hours: int
    backup_local_retention_days: int
    backup_offsite_retention_days: int
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

    @property
    def managed_db(self) -> bool:
        return self.database == "managed"


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


def _ssh_key(key: str, value: Any) -> str:
    parts = str(value).strip().split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        raise ConfigError(key, "each entry must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ConfigError(key, f"the {parts[0]} key's base64 part is invalid") from None
    if not blob[4:4 + len(parts[0])].decode(errors="replace") == parts[0]:
        raise ConfigError(key, f"the {parts[0]} key's data does not match its type")
    return " ".join(parts)


_MEM_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_MEM_UNIT = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse_memory(value: Any) -> int:
    """Docker/compose byte values (`256m`, `1g`, `512MiB`, `1073741824`) to bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _MEM_RE.match(str(value))
    if not m:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(m.group(1)) * _MEM_UNIT[m.group(2).lower()])


def compose_memory_mib(compose_file: Path, managed_db: bool) -> int:
    """Sum of `deploy.resources.limits.memory` (MiB) over the services that run in this mode: in
    managed mode the services of the `localdb` profile (postgres, backup) do not run."""
    try:
        doc = yaml.safe_load(Path(compose_file).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError("dropletSize", f"cannot check memory: {compose_file} not found") from None
    total = 0
    for name, svc in (doc.get("services") or {}).items():
        svc = svc or {}
        if managed_db and "localdb" in (svc.get("profiles") or []):
            continue
        limit = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None:
            raise ConfigError("dropletSize", f"cannot check memory: service {name} in {compose_file} "
                                             "has no deploy.resources.limits.memory")
        try:
            total += parse_memory(limit)
        except ValueError:
            raise ConfigError("dropletSize", f"cannot check memory: service {name} has limit {limit!r}") from None
    return -(-total // (1024 * 1024))


# --- the loader --------------------------------------------------------------------------------

Getter = Callable[[str], Any]


def check_known(keys: "list[str] | set[str]") -> None:
    """A misspelt key would silently fall back to its default: refuse unknown keys."""
    for key in sorted(keys):
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(key, f"unknown key ({hint}the keys are documented in infra/config.py)")


def load(get: Getter, stack: str, compose_file: Path) -> StackConfig:
    """Reads every key through `get(key)` (None when unset) and validates it."""

    def val(key: str) -> Any:
        raw = get(key)
        if raw is None or (isinstance(raw, str) and raw == ""):
            return DEFAULTS.get(key)
        return raw

    production = stack.startswith("prod")

    region = val("region")
    if not region:
        raise ConfigError("region", "is required (a DigitalOcean region with Spaces, e.g. ams3)")
    region = str(region).strip()
    if region not in prices.REGIONS:
        raise ConfigError("region", f"unknown region {region!r}; known: {', '.join(sorted(prices.REGIONS))}")
    if not prices.REGIONS[region]:
        with_spaces = ", ".join(sorted(r for r, s in prices.REGIONS.items() if s))
        raise ConfigError("region", f"{region} has no Spaces (the backup bucket needs it); use one of {with_spaces}")

    image = str(val("image")).strip()
    if image not in prices.IMAGES:
        raise ConfigError("image", f"{image!r} is not supported; use one of {', '.join(prices.IMAGES)}")

    keys = tuple(_ssh_key("sshPublicKeys", k) for k in _list("sshPublicKeys", val("sshPublicKeys")))
    if not keys:
        raise ConfigError("sshPublicKeys", "at least one SSH public key is required (key-only login)")

    allow_anywhere = _bool("dangerouslyAllowSshFromAnywhere", val("dangerouslyAllowSshFromAnywhere"))
    cidrs = []
    for item in _list("adminCidrs", val("adminCidrs")):
        try:
            net = ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError:
            raise ConfigError("adminCidrs", f"{item!r} is not a valid CIDR") from None
        if net.prefixlen == 0 and production and not allow_anywhere:
            raise ConfigError("adminCidrs", f"{net} opens SSH to the whole internet on a prod stack; "
                                            "set dangerouslyAllowSshFromAnywhere: true to allow it")
        cidrs.append(str(net))
    if not cidrs:
        raise ConfigError("adminCidrs", "at least one CIDR is required (who may reach SSH)")

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

    volume = _int("volumeSizeGib", val("volumeSizeGib"), 1, 16384)
    interval = _int("backupIntervalHours", val("backupIntervalHours"), 1)
    local_days = _int("backupLocalRetentionDays", val("backupLocalRetentionDays"), 1)
    offsite_days = _int("backupOffsiteRetentionDays", val("backupOffsiteRetentionDays"), 1)
    drill_days = _int("backupDrillIntervalDays", val("backupDrillIntervalDays"), 1)

    enable_backups = _bool("enableDropletBackups", val("enableDropletBackups"))
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

    protect = _bool("protectData", val("protectData"))

    database = str(val("database")).strip().lower()
    if database not in ("container", "managed"):
        raise ConfigError("database", f"must be container or managed, not {database!r}")
    db_size = str(val("managedDatabaseSize")).strip()
    if db_size not in prices.MANAGED_DB_SIZES:
        raise ConfigError("managedDatabaseSize", f"unknown size {db_size!r}; known: {', '.join(prices.MANAGED_DB_SIZES)}")
    db_version = str(val("managedDatabaseVersion")).strip()
    if not re.fullmatch(r"1[4-9]", db_version):
        raise ConfigError("managedDatabaseVersion", f"must be a PostgreSQL major version 14..19, not {db_version!r}")

    size = str(val("dropletSize")).strip()
    if size not in prices.DROPLET_SIZES:
        raise ConfigError("dropletSize", f"unknown size {size!r}; known: {', '.join(prices.DROPLET_SIZES)}")
    need = compose_memory_mib(compose_file, database == "managed")
    ram = prices.DROPLET_SIZES[size].memory_mib
    usable = ram + SWAP_COUNTED_MIB - OS_RESERVE_MIB
    if need > usable:
        raise ConfigError("dropletSize", f"{size} ({ram} MiB RAM) is too small: the stack's memory limits "
                                         f"sum to {need} MiB, over the {usable} MiB usable (RAM + {SWAP_COUNTED_MIB} MiB "
                                         f"of swap - {OS_RESERVE_MIB} MiB for the system)")

    return StackConfig(
        stack=stack, production=production, region=region, droplet_size=size, image=image,
        ssh_public_keys=keys, admin_cidrs=tuple(cidrs), telegram_bot_token=token,
        allowed_user_ids=allowed, admin_user_ids=admins, default_timezone=tz,
        telegram_api_base_url=api, volume_size_gib=volume, backup_interval_hours=interval,
        backup_local_retention_days=local_days, backup_offsite_retention_days=offsite_days,
        backup_drill_interval_days=drill_days, enable_droplet_backups=enable_backups,
        droplet_backup_plan=plan, droplet_backup_weekday=weekday, droplet_backup_hour=hour,
        alert_emails=emails, protect_data=protect, database=database,
        managed_database_size=db_size, managed_database_version=db_version, compose_memory_mib=need,
    )


def from_pulumi(stack: str, compose_file: Path) -> StackConfig:
    """Loads the running stack's `botstack:*` config (secrets are read in plaintext here only to
    validate them; the program wraps them in Output.secret before any resource sees them)."""
    from pulumi.runtime import get_config
    from pulumi.runtime.config import CONFIG, get_config_env

    present = set(CONFIG.get()) | set(get_config_env() or {})
    check_known({k.split(":", 1)[1] for k in present if k.startswith(f"{NAMESPACE}:")})
    return load(lambda key: get_config(f"{NAMESPACE}:{key}"), stack, compose_file)
