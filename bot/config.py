"""Configuration from the environment. A missing or malformed variable is a `ConfigError` whose
message names the variable (and never echoes a secret value)."""
from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass, field

DEFAULT_API_BASE = "https://api.telegram.org"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    token: str
    database_url: str
    allowed_user_ids: frozenset[int]
    admin_user_ids: frozenset[int]
    default_timezone: str
    api_base_url: str = DEFAULT_API_BASE
    release: str = "dev"
    heartbeat_file: str = "/tmp/botstack-bot.heartbeat"
    disk_path: str = "/"
    scheduler_tick: float = 1.0
    poll_timeout: int = 10
    healthcheck_url: str = ""          # empty: no heartbeat pings
    healthcheck_interval: float = 300.0
    send_deadline: float = 60.0
    drill_interval_days: int = 7       # the backup job's BACKUP_DRILL_INTERVAL_DAYS: /status flags a stale drill
    extra: dict = field(default_factory=dict)

    def is_allowed(self, user_id: int | None) -> bool:
        return user_id is not None and (user_id in self.allowed_user_ids or user_id in self.admin_user_ids)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_user_ids


def _ids(env, name: str, required_nonempty: bool) -> frozenset[int]:
    raw = env.get(name)
    if raw is None:
        raise ConfigError(f"{name} is missing (comma separated Telegram user ids)")
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if required_nonempty and not parts:
        raise ConfigError(f"{name} is empty (comma separated Telegram user ids)")
    out = set()
    for p in parts:
        if not re.fullmatch(r"\d{1,20}", p):
            raise ConfigError(f"{name} is malformed: {p[:20]!r} is not a Telegram user id")
        out.add(int(p))
    return frozenset(out)


def valid_timezone(name: str) -> bool:
    if not name or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name):
        return False
    return name in _zones()


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = set(zoneinfo.available_timezones())
    return _ZONES


def load(env=None) -> Config:
    env = os.environ if env is None else env
    token = env.get("TELEGRAM_BOT_TOKEN")
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is missing")
    if not re.fullmatch(r"\d{1,20}:[A-Za-z0-9_-]{1,200}", token.strip()):
        raise ConfigError("TELEGRAM_BOT_TOKEN is malformed (expected <digits>:<secret>)")
    token = token.strip()
    db = env.get("DATABASE_URL")
    if not db:
        raise ConfigError("DATABASE_URL is missing")
    if not re.match(r"postgres(ql)?://", db.strip()):
        raise ConfigError("DATABASE_URL is malformed (expected postgresql://...)")
    allowed = _ids(env, "ALLOWED_USER_IDS", True)
    admins = _ids(env, "ADMIN_USER_IDS", False)
    tz = env.get("DEFAULT_TIMEZONE")
    if tz is None or not tz.strip():
        raise ConfigError("DEFAULT_TIMEZONE is missing (an IANA zone such as Europe/Berlin)")
    if not valid_timezone(tz.strip()):
        raise ConfigError(f"DEFAULT_TIMEZONE is malformed: {tz.strip()[:40]!r} is not an IANA time zone")
    base = (env.get("TELEGRAM_API_BASE_URL") or DEFAULT_API_BASE).strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", base):
        raise ConfigError("TELEGRAM_API_BASE_URL is malformed (expected http(s)://host[:port])")
    if base.endswith("/bot"):
        base = base[:-4]

    def num(name, default, cast=float, lo=0.0):
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = cast(raw)
        except ValueError:
            raise ConfigError(f"{name} is malformed: expected a number") from None
        if v < lo:
            raise ConfigError(f"{name} is malformed: must be >= {lo}")
        return v

    hc_url = (env.get("HEALTHCHECK_BOT_URL") or "").strip()
    if hc_url and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", hc_url):
        # never echo the value: it holds the ping key
        raise ConfigError("HEALTHCHECK_BOT_URL is malformed (expected an http(s) URL, or empty)")

    return Config(
        token=token, database_url=db.strip(), allowed_user_ids=allowed, admin_user_ids=admins,
        default_timezone=tz.strip(), api_base_url=base,
        release=(env.get("BOTSTACK_RELEASE") or "dev").strip() or "dev",
        heartbeat_file=env.get("BOT_HEARTBEAT_FILE") or "/tmp/botstack-bot.heartbeat",
        disk_path=env.get("BOT_DISK_PATH") or "/",
        scheduler_tick=num("BOT_SCHEDULER_TICK_SECONDS", 1.0, float, 0.05),
        poll_timeout=num("BOT_POLL_TIMEOUT_SECONDS", 10, int, 0),
        healthcheck_url=hc_url,
        healthcheck_interval=num("BOT_HEALTHCHECK_INTERVAL_SECONDS", 300.0, float, 0.05),
        send_deadline=num("BOT_SEND_DEADLINE_SECONDS", 60.0, float, 0.1),
        drill_interval_days=num("BACKUP_DRILL_INTERVAL_DAYS", 7, int, 1),
    )
