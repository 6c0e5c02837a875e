"""The stack's `.env`: the values of every key of infra/contract.py for one stack."""
from __future__ import annotations

from typing import Mapping

import pulumi

from infra import contract, facts
from infra.config import StackConfig
from infra.database import DB_NAME, DB_USER, DatabaseAccess
from infra.storage import BackupCredentials


def ping_url(cfg: StackConfig, check: str) -> str:
    """The healthchecks.io-compatible ping URL of one check (`bot`, `backup`), or empty: with
    `?create=1` the first ping creates the check in the project the ping key belongs to."""
    if not cfg.healthcheck_ping_url:
        return ""
    return f"{cfg.healthcheck_ping_url}/botstack-{cfg.stack}-{check}?create=1"


def env_values(cfg: StackConfig, release_id: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """Every key's value. `secrets` holds what only exists as Outputs: DATABASE_URL,
    BACKUP_DATABASE_URL, POSTGRES_PASSWORD, APP_DB_PASSWORD, BACKUP_DB_PASSWORD,
    BACKUP_PASSPHRASE, SPACES_BUCKET, SPACES_ACCESS_KEY_ID, SPACES_SECRET_ACCESS_KEY, and
    SPACES_ENDPOINT, SPACES_REGION (the backup store's: infra/backup_store.py) and COMPOSE_PROFILES."""
    ids = lambda xs: ",".join(str(x) for x in xs)  # noqa: E731
    values = {
        "TELEGRAM_BOT_TOKEN": cfg.telegram_bot_token,
        "TELEGRAM_API_BASE_URL": cfg.telegram_api_base_url,
        "ALLOWED_USER_IDS": ids(cfg.users),
        "ADMIN_USER_IDS": ids(cfg.admin_user_ids),
        "DEFAULT_TIMEZONE": cfg.default_timezone,
        "BOTSTACK_RELEASE": release_id,
        "HEALTHCHECK_BOT_URL": ping_url(cfg, "bot"),
        "POSTGRES_USER": DB_USER,
        "POSTGRES_DB": DB_NAME,
        "DATA_DIR": facts.DATA_DIR,
        "BACKUP_INTERVAL_HOURS": str(cfg.backup_interval_hours),
        "BACKUP_LOCAL_RETENTION_DAYS": str(cfg.backup_local_retention_days),
        "BACKUP_DRILL_INTERVAL_DAYS": str(cfg.backup_drill_interval_days),
        "BACKUP_OFFSITE_RETENTION_DAYS": str(cfg.backup_offsite_retention_days),
        "BACKUP_OFFSITE_KEEP_LAST": str(cfg.backup_offsite_keep_last),
        "BACKUP_OFFSITE_KEEP_DAILY": str(cfg.backup_offsite_keep_daily),
        "BACKUP_OFFSITE_KEEP_WEEKLY": str(cfg.backup_offsite_keep_weekly),
        "BACKUP_OFFSITE_KEEP_MONTHLY": str(cfg.backup_offsite_keep_monthly),
        "HEALTHCHECK_BACKUP_URL": ping_url(cfg, "backup"),
        "RESTORE_FROM": cfg.restore_from.uri if cfg.restore_from else "",
        "RESTORE_FROM_ENDPOINT": cfg.restore_from.endpoint if cfg.restore_from else "",
        "RESTORE_FROM_PASSPHRASE": cfg.restore_from.passphrase if cfg.restore_from else "",
        "RESTORE_FROM_ACCESS_KEY_ID": cfg.restore_from.access_key_id if cfg.restore_from else "",
        "RESTORE_FROM_SECRET_ACCESS_KEY": cfg.restore_from.secret_access_key if cfg.restore_from else "",
    }
    values.update(secrets)
    if cfg.observability and "COMPOSE_PROFILES" in values:
        values["COMPOSE_PROFILES"] = ",".join(p for p in (values["COMPOSE_PROFILES"], facts.OBSERVABILITY_PROFILE) if p)
    return values


def render(cfg: StackConfig, release_id: str, db: DatabaseAccess, creds: BackupCredentials) -> pulumi.Output[str]:
    """The `.env` text, a secret Output (contract.render refuses a missing key or a line break)."""
    names = ("DATABASE_URL", "BACKUP_DATABASE_URL", "POSTGRES_PASSWORD", "APP_DB_PASSWORD",
             "BACKUP_DB_PASSWORD", "BACKUP_PASSPHRASE", "SPACES_BUCKET", "SPACES_ACCESS_KEY_ID",
             "SPACES_SECRET_ACCESS_KEY")
    outputs = (db.database_url, db.backup_database_url, db.postgres_password, db.app_password,
               db.backup_password, creds.passphrase, creds.bucket, creds.access_key_id, creds.secret_access_key)
    text = pulumi.Output.all(*outputs).apply(lambda v: contract.render(env_values(cfg, release_id, {
        **dict(zip(names, v, strict=True)), "SPACES_ENDPOINT": creds.endpoint, "SPACES_REGION": creds.region,
        "COMPOSE_PROFILES": db.compose_profiles})))
    return pulumi.Output.secret(text)
