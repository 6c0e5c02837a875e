"""The stack's runtime contract: every key of the `.env` the program renders, in one table (pure
Python, no pulumi import).

From this table the program renders the `.env` (`render`), compose/.env.example and the table in
docs/contracts.md are generated (`env_example`, `markdown_table`; a test keeps both in step), and
a test checks that each compose service's `environment:` passes exactly the keys the table says it
reads. Each consumer (the bot, the backup tool) keeps its own loader; a test feeds the rendered
`.env` into both.

`services` names who reads a key: a compose service (`bot`, `postgres`, `backup`), `compose` (the
compose file itself interpolates it: paths, profiles, image tags), or nobody yet (`()`: rendered
for a later step). `inside` is the variable's name inside the container when it differs from the
`.env` key (the backup job reads its own connection as DATABASE_URL).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

BOT, POSTGRES, BACKUP, COMPOSE = "bot", "postgres", "backup", "compose"
SETUP = "db-setup"  # the one-shot role setup (container mode)
SERVICES = (BOT, POSTGRES, SETUP, BACKUP)


@dataclass(frozen=True)
class Setting:
    key: str
    source: str                 # the stack config key it comes from, or how the program makes it
    services: tuple[str, ...]
    doc: str
    example: str                # the .env.example placeholder (passes `docker compose config`)
    secret: bool = False
    default: Optional[str] = None  # what the program renders when its config key is unset
    inside: Optional[str] = None

    def name_in(self, service: str) -> str:
        return self.inside if (self.inside and service != COMPOSE) else self.key


def _s(key, source, services, doc, example, **kw) -> Setting:
    return Setting(key, source, tuple(services), doc, example, **kw)


SETTINGS: tuple[Setting, ...] = (
    # --- the bot
    _s("TELEGRAM_BOT_TOKEN", "telegramBotToken", (BOT, BACKUP),
       "BotFather token; the backup job uses it to alert the admins", "123456:replace-with-botfather-token",
       secret=True),
    _s("TELEGRAM_API_BASE_URL", "telegramApiBaseUrl", (BOT, BACKUP),
       "Bot API root; requests go to <root>/bot<token>/<method>", "https://api.telegram.org",
       default="https://api.telegram.org"),
    _s("ALLOWED_USER_IDS", "allowedUserIds + adminUserIds", (BOT,),
       "who may use the bot: the sorted union of allowedUserIds and adminUserIds (never empty)",
       "111111111"),
    _s("ADMIN_USER_IDS", "adminUserIds", (BOT, BACKUP),
       "admins: admin commands and alerts (comma-separated Telegram user ids)", "111111111"),
    _s("DEFAULT_TIMEZONE", "defaultTimezone", (BOT,),
       "IANA zone for users who have not set theirs", "UTC", default="UTC"),
    _s("BOTSTACK_RELEASE", "the release id", (BOT, COMPOSE),
       "release id (12 hex digits): /status shows it; images are tagged with it", "dev"),
    _s("HEALTHCHECK_BOT_URL", "healthcheckPingUrl", (BOT,),
       "dead-man's switch: <base>/botstack-<stack>-bot?create=1, pinged while the bot is healthy; "
       "empty: no pings", "", secret=True, default=""),
    # --- the database
    _s("DATABASE_URL", "database", (BOT,),
       "the bot's PostgreSQL connection (container mode: role botstack_app at the postgres service; "
       "managed: the cluster's user)",
       "postgresql://botstack_app:change-me-app-password@postgres:5432/botstack", secret=True),
    _s("BACKUP_DATABASE_URL", "database", (BACKUP,),
       "the backup job's PostgreSQL connection (container mode: role botstack_backup; managed: as "
       "DATABASE_URL; read as DATABASE_URL inside the backup container)",
       "postgresql://botstack_backup:change-me-backup-password@postgres:5432/botstack", secret=True,
       inside="DATABASE_URL"),
    _s("POSTGRES_USER", "fixed", (POSTGRES, SETUP),
       "the superuser: created at the postgres service's first start; only db-setup logs in as it",
       "botstack", default="botstack"),
    _s("POSTGRES_PASSWORD", "generated (database-postgres-password)", (POSTGRES, SETUP),
       "the superuser's password (set at the first start; db-setup logs in with it)",
       "change-me-db-password", secret=True),
    _s("POSTGRES_DB", "fixed", (POSTGRES, SETUP), "the database the postgres service creates",
       "botstack", default="botstack"),
    _s("APP_DB_PASSWORD", "generated (database-app-password)", (SETUP,),
       "password of the application role botstack_app (db-setup sets it; in DATABASE_URL)",
       "change-me-app-password", secret=True),
    _s("BACKUP_DB_PASSWORD", "generated (database-backup-password)", (SETUP,),
       "password of the backup role botstack_backup (db-setup sets it; in BACKUP_DATABASE_URL)",
       "change-me-backup-password", secret=True),
    _s("COMPOSE_PROFILES", "database, observability", (COMPOSE,),
       "localdb: PostgreSQL + backup job in containers; empty: managed database (bot only); "
       "backups: the backup job alone; observability (added when the stack turns it on): Prometheus "
       "+ node-exporter", "localdb"),
    _s("DATA_DIR", "fixed", (COMPOSE,),
       "the block volume: postgres/ (PGDATA) and backups/ (local backup copies)", "/mnt/botstack-data",
       default="/mnt/botstack-data"),
    # --- backups
    _s("BACKUP_PASSPHRASE", "backupPassphrase (required: scripts/deploy makes it)", (BACKUP,),
       "encryption passphrase; kept in the stack's config, where it outlives the droplet and the state",
       "change-me-long-random-passphrase", secret=True),
    # the SPACES_* keys carry the backup store: the program's Spaces bucket, or the user's own store
    _s("SPACES_ENDPOINT", "region, or backupStoreEndpoint", (BACKUP,), "the backup store's S3 API endpoint",
       "https://fra1.digitaloceanspaces.com"),
    _s("SPACES_REGION", "region, or backupStoreRegion", (BACKUP,), "the backup store's region", "fra1"),
    _s("SPACES_BUCKET", "generated (storage-bucket), or backupStoreBucket", (BACKUP,), "the backup bucket",
       "botstack-backups-example"),
    _s("SPACES_ACCESS_KEY_ID", "generated (storage-backup-key), or backupStoreAccessKeyId", (BACKUP,),
       "the bucket-scoped key's id", "replace-with-the-spaces-access-key-id"),
    _s("SPACES_SECRET_ACCESS_KEY", "generated (storage-backup-key), or backupStoreSecretAccessKey", (BACKUP,),
       "the bucket-scoped key's secret", "replace-with-the-spaces-secret-key", secret=True),
    _s("BACKUP_INTERVAL_HOURS", "backupIntervalHours", (BACKUP,), "a backup every N hours (>= 1)",
       "24", default="24"),
    _s("BACKUP_LOCAL_RETENTION_DAYS", "backupLocalRetentionDays", (BACKUP,),
       "local copies kept N days (the newest good one always)", "7", default="7"),
    _s("BACKUP_DRILL_INTERVAL_DAYS", "backupDrillIntervalDays", (BOT, BACKUP),
       "a restore drill every N days (the bot's /status flags a drill older than twice this)", "7", default="7"),
    _s("BACKUP_OFFSITE_RETENTION_DAYS", "backupOffsiteRetentionDays", (BACKUP,),
       "offsite backups older than N days may be pruned (the kept generations below never are)",
       "30", default="30"),
    _s("BACKUP_OFFSITE_KEEP_LAST", "backupOffsiteKeepLast", (BACKUP,),
       "offsite: always keep the newest N backups", "3", default="3"),
    _s("BACKUP_OFFSITE_KEEP_DAILY", "backupOffsiteKeepDaily", (BACKUP,),
       "offsite: keep the newest backup of each of the last N days", "7", default="7"),
    _s("BACKUP_OFFSITE_KEEP_WEEKLY", "backupOffsiteKeepWeekly", (BACKUP,),
       "offsite: keep the newest backup of each of the last N weeks", "4", default="4"),
    _s("BACKUP_OFFSITE_KEEP_MONTHLY", "backupOffsiteKeepMonthly", (BACKUP,),
       "offsite: keep the newest backup of each of the last N months", "6", default="6"),
    _s("RESTORE_FROM", "restoreFrom", (BACKUP,),
       "s3://BUCKET/PREFIX: deploy/activate.sh runs restore-into-empty from there before the bot starts "
       "(a database with data is left alone); empty: no restore", "", default=""),
    _s("RESTORE_FROM_ENDPOINT", "restoreFromEndpoint", (BACKUP,),
       "RESTORE_FROM's endpoint; empty: SPACES_ENDPOINT", "", default=""),
    _s("RESTORE_FROM_PASSPHRASE", "restoreFromPassphrase", (BACKUP,),
       "the passphrase RESTORE_FROM's backups were made with; empty: BACKUP_PASSPHRASE", "", secret=True,
       default=""),
    _s("RESTORE_FROM_ACCESS_KEY_ID", "restoreFromAccessKeyId", (BACKUP,),
       "a key that can read RESTORE_FROM's bucket; empty: SPACES_ACCESS_KEY_ID", "", default=""),
    _s("RESTORE_FROM_SECRET_ACCESS_KEY", "restoreFromSecretAccessKey", (BACKUP,),
       "its secret; empty: SPACES_SECRET_ACCESS_KEY", "", secret=True, default=""),
    _s("HEALTHCHECK_BACKUP_URL", "healthcheckPingUrl", (BACKUP,),
       "dead-man's switch: <base>/botstack-<stack>-backup?create=1, pinged on start, success and "
       "failure of every run; empty: no pings", "", secret=True, default=""),
)

# knobs the consumers read that the program never sets (their own defaults apply): documented in
# docs/contracts.md, not rendered. (key, service, default, doc)
TUNING: tuple[tuple[str, str, str, str], ...] = (
    ("BOT_HEARTBEAT_FILE", BOT, "/tmp/botstack-bot.heartbeat", "the liveness file the healthcheck reads"),
    ("BOT_HEARTBEAT_MAX_AGE", BOT, "90", "seconds after which the healthcheck calls the heartbeat stale"),
    ("BOT_DISK_PATH", BOT, "/", "the path whose free space /status reports"),
    ("BOT_SCHEDULER_TICK_SECONDS", BOT, "1.0", "the reminder scheduler's tick (>= 0.05)"),
    ("BOT_POLL_TIMEOUT_SECONDS", BOT, "10", "long-polling timeout of getUpdates"),
    ("BOT_DB_STARTUP_TIMEOUT", BOT, "60", "seconds to wait for the database at start"),
    ("BOT_CLOCK_OFFSET_SECONDS", BOT, "0", "test hook: shifts the bot's clock"),
    ("BOT_HEALTHCHECK_INTERVAL_SECONDS", BOT, "300", "seconds between heartbeat pings to HEALTHCHECK_BOT_URL"),
    ("BOT_SEND_DEADLINE_SECONDS", BOT, "60", "how long one reminder's send may take before it is retried later"),
    ("BOT_METRICS_PORT", BOT, "9101", "the bot's Prometheus /metrics port, on the stack's network only (0: off)"),
    ("BACKUP_DIR", BACKUP, "/backups", "local backup copies (compose mounts ${DATA_DIR}/backups there)"),
    ("BACKUP_PREFIX", BACKUP, "backups/", "object key prefix in the bucket"),
    ("BACKUP_NAME", BACKUP, "botstack", "the backups' file name stem"),
    ("BACKUP_METRICS_PORT", BACKUP, "9102", "the backup job's Prometheus /metrics port, on the stack's network only (0: off)"),
)

# fixed container settings compose sets itself (not from the .env): (service, key)
FIXED = {(POSTGRES, "PGDATA"), (BACKUP, "BACKUP_DIR"), (SETUP, "PGHOST")}

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


def keys() -> list[str]:
    return [s.key for s in SETTINGS]


def read_by(service: str) -> dict[str, str]:
    """{name inside the service: .env key} of what `service` reads."""
    return {s.name_in(service): s.key for s in SETTINGS if service in s.services}


def render(values: Mapping[str, str]) -> str:
    """The `.env` text: exactly the table's keys, in its order. Refuses a missing or unknown key and
    a line break in a value (the file is line-based), naming the key."""
    missing = [k for k in keys() if k not in values]
    unknown = sorted(set(values) - set(BY_KEY))
    if missing or unknown:
        raise ValueError(f".env does not match infra/contract.py: missing {missing}, unknown {unknown}")
    for key in keys():
        value = values[key]
        if not isinstance(value, str):
            raise ValueError(f".env value of {key} is not a string")
        if "\n" in value or "\r" in value:
            raise ValueError(f".env value of {key} has a line break")
    return "".join(f"{k}={values[k]}\n" for k in keys())


def parse(text: str) -> dict[str, str]:
    """The `.env` text back into a dict (the format `render` writes)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


_EXAMPLE_HEAD = """\
# botstack: the stack's environment. GENERATED from infra/contract.py (python -m infra.contract
# --write); a test keeps it in step. The real .env is NEVER committed: on the droplet the deploy
# step writes it from Pulumi to /opt/botstack/shared/.env with mode 0600. For a laptop:
# cp compose/.env.example compose/.env. The values below are placeholders that pass
# `docker compose config`; replace every one of them. Keys marked (secret) come from Pulumi secrets.
"""

_EXAMPLE_TAIL = """
# --- not rendered by the program: build and laptop knobs (compose.yml / compose.dev.yml) ----------
# The database AND the backup job are built from this one image, so pg_dump matches the server.
POSTGRES_IMAGE=postgres:17.6-bookworm
PYTHON_IMAGE=python:3.12-slim-bookworm
# PostgreSQL published on 127.0.0.1 of the laptop (compose.dev.yml), for psql / debugging.
DEV_POSTGRES_PORT=55432
"""


def env_example() -> str:
    lines = [_EXAMPLE_HEAD]
    for s in SETTINGS:
        who = ", ".join(s.services) or "the role setup"
        lines.append(f"\n# {s.doc} ({'secret; ' if s.secret else ''}read by {who})\n{s.key}={s.example}\n")
    return "".join(lines) + _EXAMPLE_TAIL


def markdown_table() -> str:
    rows = ["| key | secret | from | default | read by | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = "required" if s.default is None else (s.default or "empty")
        who = ", ".join(f"{x} (as `{s.inside}`)" if s.inside and x != COMPOSE else x for x in s.services) or "none yet"
        rows.append(f"| `{s.key}` | {'yes' if s.secret else 'no'} | {s.source} | {default} | {who} | {s.doc} |")
    return "\n".join(rows) + "\n"


def tuning_table() -> str:
    rows = ["| key | read by | default | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{k}` | {svc} | `{d}` | {doc} |" for k, svc, d, doc in TUNING]
    return "\n".join(rows) + "\n"


def _marks(name: str) -> tuple[str, str]:
    return f"<!-- {name}: generated from infra/contract.py -->", f"<!-- end of {name} -->"


def with_tables(doc: str) -> str:
    """docs/contracts.md with its generated tables replaced by the current ones."""
    for name, table in (("contract table", markdown_table()), ("tuning table", tuning_table())):
        begin, end = _marks(name)
        head, found, rest = doc.partition(begin)
        if not found:
            raise ValueError(f"docs/contracts.md has no {begin}")
        _, _, tail = rest.partition(end)
        doc = f"{head}{begin}\n{table}{end}{tail}"
    return doc


def _main(argv: list[str]) -> int:
    """`python -m infra.contract --write` regenerates compose/.env.example and the table in
    docs/contracts.md."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if argv != ["--write"]:
        print("usage: python -m infra.contract --write")
        return 2
    (root / "compose" / ".env.example").write_text(env_example())
    doc = root / "docs" / "contracts.md"
    doc.write_text(with_tables(doc.read_text()))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
