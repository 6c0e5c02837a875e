"""The backup tool's settings, read from the environment (see compose/.env.example)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

from .errors import ConfigError

MIN_RETENTION_DAYS = 1
# The Pulumi program renders BACKUP_INTERVAL_HOURS; this default (the same as infra's) only serves a
# hand-written .env without it.
DEFAULT_INTERVAL_HOURS = 24
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def _backup_name(env: Mapping[str, str]) -> str:
    """BACKUP_NAME starts every backup's name: what restores accept (see integrity.check_name)."""
    name = (env.get("BACKUP_NAME") or "botstack").strip()
    if not _NAME_RE.match(name) or ".." in name:
        raise ConfigError(f"BACKUP_NAME must be letters, digits, '.', '_' or '-' (at most 101), got {name!r}")
    return name


def _int(env: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def parse_ids(raw: str) -> list[int]:
    ids = []
    for part in raw.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise ConfigError(f"ADMIN_USER_IDS: {part!r} is not a Telegram user id") from None
    return ids


@dataclass(frozen=True)
class Policy:
    """The offsite retention rule's numbers (offsite_retention.py applies it)."""
    retention_days: int
    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int


@dataclass
class Config:
    database_url: str = ""
    passphrase: str = ""
    backup_dir: str = "/backups"
    spaces_endpoint: str = ""
    spaces_region: str = "us-east-1"
    spaces_bucket: str = ""
    spaces_access_key_id: str = ""
    spaces_secret_access_key: str = ""
    prefix: str = "backups/"
    name: str = "botstack"
    interval_hours: int = DEFAULT_INTERVAL_HOURS
    local_retention_days: int = 7
    drill_interval_days: int = 7
    offsite_retention_days: int = 30
    offsite_keep_last: int = 3
    offsite_keep_daily: int = 7
    offsite_keep_weekly: int = 4
    offsite_keep_monthly: int = 6
    telegram_token: str = ""
    telegram_api_base_url: str = "https://api.telegram.org"
    admin_ids: list[int] = field(default_factory=list)
    healthcheck_url: str = ""

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Config":
        env = os.environ if env is None else env
        prefix = (env.get("BACKUP_PREFIX") or "backups/").strip().lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(
            # the backup job's own role when the stack gives it one, else the application's URL
            database_url=(env.get("BACKUP_DATABASE_URL") or "").strip() or (env.get("DATABASE_URL") or "").strip(),
            passphrase=env.get("BACKUP_PASSPHRASE") or "",
            backup_dir=(env.get("BACKUP_DIR") or "/backups").strip(),
            spaces_endpoint=(env.get("SPACES_ENDPOINT") or "").strip(),
            spaces_region=(env.get("SPACES_REGION") or "us-east-1").strip(),
            spaces_bucket=(env.get("SPACES_BUCKET") or "").strip(),
            spaces_access_key_id=(env.get("SPACES_ACCESS_KEY_ID") or "").strip(),
            spaces_secret_access_key=(env.get("SPACES_SECRET_ACCESS_KEY") or "").strip(),
            prefix=prefix,
            name=_backup_name(env),
            interval_hours=_int(env, "BACKUP_INTERVAL_HOURS", DEFAULT_INTERVAL_HOURS, 1),
            local_retention_days=_int(env, "BACKUP_LOCAL_RETENTION_DAYS", 7, MIN_RETENTION_DAYS),
            drill_interval_days=_int(env, "BACKUP_DRILL_INTERVAL_DAYS", 7, 1),
            # the same defaults and minimums as the stack's config keys (infra/config.py)
            offsite_retention_days=_int(env, "BACKUP_OFFSITE_RETENTION_DAYS", 30, MIN_RETENTION_DAYS),
            offsite_keep_last=_int(env, "BACKUP_OFFSITE_KEEP_LAST", 3, 1),
            offsite_keep_daily=_int(env, "BACKUP_OFFSITE_KEEP_DAILY", 7, 0),
            offsite_keep_weekly=_int(env, "BACKUP_OFFSITE_KEEP_WEEKLY", 4, 0),
            offsite_keep_monthly=_int(env, "BACKUP_OFFSITE_KEEP_MONTHLY", 6, 0),
            telegram_token=(env.get("TELEGRAM_BOT_TOKEN") or "").strip(),
            telegram_api_base_url=(env.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org").strip(),
            admin_ids=parse_ids(env.get("ADMIN_USER_IDS") or ""),
            healthcheck_url=(env.get("HEALTHCHECK_BACKUP_URL") or "").strip(),
        )

    def offsite_policy(self) -> Policy:
        return Policy(self.offsite_retention_days, self.offsite_keep_last, self.offsite_keep_daily,
                      self.offsite_keep_weekly, self.offsite_keep_monthly)

    # -- checks used by the commands that need them ------------------------------------------------
    def require_database(self) -> None:
        if not self.database_url:
            raise ConfigError("BACKUP_DATABASE_URL (or DATABASE_URL) is not set")

    def require_passphrase(self) -> None:
        if not self.passphrase:
            raise ConfigError("BACKUP_PASSPHRASE is not set (the backups' encryption passphrase)")
        if len(self.passphrase) < 12:
            raise ConfigError("BACKUP_PASSPHRASE is too short (at least 12 characters)")

    def require_spaces(self) -> None:
        missing = [k for k, v in (("SPACES_ENDPOINT", self.spaces_endpoint),
                                  ("SPACES_BUCKET", self.spaces_bucket),
                                  ("SPACES_ACCESS_KEY_ID", self.spaces_access_key_id),
                                  ("SPACES_SECRET_ACCESS_KEY", self.spaces_secret_access_key)) if not v]
        if missing:
            raise ConfigError("not set: " + ", ".join(missing))
