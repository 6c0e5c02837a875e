"""`restore-into-empty`: a new stack's first start from existing backups (docs/backups.md, "A new
stack from existing backups").

The newest authenticated backup of a store and prefix (by default the stack's own) is restored into
the stack's database, which must be EMPTY: the check comes before anything is downloaded, and
pg_restore runs without --clean in one transaction, so even a table created meanwhile makes it fail
and change nothing. Never over existing data.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Mapping, Optional

from . import pg
from .config import Config
from .context import Context
from .errors import BackupError, BusyError, ConfigError, NotFound, RefusedError
from .restore import Attempt, fetch, report_skipped, restore_stream, workdir

log = logging.getLogger("botstack_backup")

# S3's bucket names (and B2's, R2's, Scaleway's): letters, digits, '.', '-'
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{1,61}[A-Za-z0-9]$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class Source:
    """Where the backups are: a bucket and a key prefix (and the settings to read it with)."""
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_source(uri: str) -> Source:
    """`s3://BUCKET[/PREFIX]` (PREFIX: the tool's `backups/` when absent)."""
    text = uri.strip()
    if not text.startswith("s3://"):
        raise ConfigError(f"RESTORE_FROM must be s3://BUCKET/PREFIX, got {text[:80]!r}")
    bucket, _, prefix = text[len("s3://"):].partition("/")
    if not _BUCKET_RE.match(bucket):
        raise ConfigError(f"RESTORE_FROM: {bucket[:80]!r} is not a bucket name")
    prefix = prefix.strip("/")
    if not _PREFIX_RE.match(prefix) or ".." in prefix.split("/") or "//" in prefix:
        raise ConfigError(f"RESTORE_FROM: {prefix[:80]!r} is not a key prefix (letters, digits, '.', '_', '-', '/')")
    return Source(bucket, (prefix + "/") if prefix else "backups/")


def source_config(cfg: Config, env: Mapping[str, str], uri: Optional[str] = None) -> Config:
    """The settings to read the source with: RESTORE_FROM (or `uri`) and RESTORE_FROM_ENDPOINT,
    _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _PASSPHRASE, each defaulting to the stack's own
    store and passphrase (unset RESTORE_FROM: the stack's own bucket and prefix)."""
    def get(key: str, own: str) -> str:
        return (env.get(f"RESTORE_FROM_{key}") or "").strip() or own

    raw = uri if uri is not None else (env.get("RESTORE_FROM") or "").strip()
    source = parse_source(raw) if raw else Source(cfg.spaces_bucket, cfg.prefix)
    passphrase = env.get("RESTORE_FROM_PASSPHRASE") or cfg.passphrase
    return dataclasses.replace(
        cfg, spaces_bucket=source.bucket, prefix=source.prefix, passphrase=passphrase,
        spaces_endpoint=get("ENDPOINT", cfg.spaces_endpoint), spaces_region=get("REGION", cfg.spaces_region),
        spaces_access_key_id=get("ACCESS_KEY_ID", cfg.spaces_access_key_id),
        spaces_secret_access_key=get("SECRET_ACCESS_KEY", cfg.spaces_secret_access_key))


@dataclass
class Outcome:
    restored: bool
    source: Source
    manifest: Optional[dict] = None
    objects: int = 0  # the database's tables, views and sequences when it was not empty


def _objects(url: str) -> int:
    try:
        return pg.user_object_count(url)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"cannot connect to the database: {first}") from None


def restore_into_empty(tool: Context, source_cfg: Config, skip_if_data: bool = False) -> Outcome:
    """Restore the newest authenticated backup of `source_cfg`'s store into tool.cfg's (empty)
    database. A database with data is refused (RefusedError), or with `skip_if_data` left alone
    (Outcome.restored False: what the deploy runs at every start after the first)."""
    started = tool.now()
    source = Source(source_cfg.spaces_bucket, source_cfg.prefix)
    target = tool.cfg.database_url
    attempt = Attempt()
    # reads the source with its own settings; tells, records, works and locks as the stack's tool
    reader = type(tool)(source_cfg, now=tool.now, alerter=tool.alerter, recorder=tool.recorder, pinger=tool.pinger)
    reader.store = tool.store
    try:
        tool.cfg.require_database()
        source_cfg.require_passphrase()
        source_cfg.require_spaces()
        with tool.lock():
            objects = _objects(target)
            if objects:
                if skip_if_data:
                    log.info("restore-into-empty: the database %r has data (%d tables, views or sequences): "
                             "nothing restored", pg.dbname(target), objects)
                    return Outcome(False, source, objects=objects)
                raise RefusedError(
                    f"the database {pg.dbname(target)!r} is not empty ({objects} tables, views or sequences): "
                    "restore-into-empty never restores over data (`restore --force` replaces it)")
            with workdir(tool.store) as work:
                try:
                    got = fetch(reader, "latest", work, from_local=False)
                except NotFound:
                    raise NotFound(f"nothing to restore: no complete backup under {source}") from None
                attempt.object_key = got.manifest.get("key")
                note = report_skipped(tool, "restore", got)
                restore_stream(reader, got, target, clean=False)
    except BusyError:
        raise
    except BackupError as exc:
        tool.fail("restore", started, exc, object_key=attempt.object_key)
        raise
    manifest = got.manifest
    rows = sum((manifest.get("tables") or {}).values())
    detail = (f"restored {manifest['name']} (made {manifest.get('created_at')}, {rows} rows) from {source} "
              f"into the empty database {pg.dbname(target)!r}{note}")
    log.info("%s", detail)
    tool.recorder.record("restore", started, True, object_key=manifest.get("key"),
                         size_bytes=manifest.get("size_encrypted"), detail=detail)
    tool.alerter.send(f"\u2705 botstack {detail}")
    return Outcome(True, source, manifest)
