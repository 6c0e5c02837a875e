"""`run`: one backup (a snapshot dumped, encrypted, kept locally and uploaded), then the backlog."""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from . import __version__, integrity, offsite_retention, pg, store_check
from .dump import Background, DumpPipeline, DumpResult
from .errors import EXIT_LOCAL_ONLY, EXIT_OK, BackupError, ForgedError, OffsiteError
from .offsite import Offsite
from .retention import prune_locked
from .store import DUMP_SUFFIX, MANIFEST_SUFFIX, UTC, human_size
from .context import Context

log = logging.getLogger("botstack_backup")


@dataclass
class RunResult:
    name: str
    key: str
    size: int
    uploaded: bool
    manifest: dict
    upload_error: Optional[str] = None
    backlog_uploaded: List[str] = field(default_factory=list)
    pruned: List[str] = field(default_factory=list)
    pruned_offsite: List[str] = field(default_factory=list)
    store: str = ""  # what the store cannot guarantee (store_check.py), one line

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.uploaded else EXIT_LOCAL_ONLY


@dataclass
class Target:
    """Where one backup goes: its name, its object keys, its local files."""
    name: str
    created: dt.datetime
    key: str
    manifest_key: str
    final: str
    manifest_path: str

    @property
    def partial(self) -> str:
        return self.final + ".partial"


def _target(tool: Context, started: dt.datetime, final: bool) -> Target:
    stem = tool.cfg.name + (offsite_retention.FINAL_MARK if final else "")
    name, created = tool.store.free_name(stem, started.astimezone(UTC).replace(microsecond=0))
    base = f"{tool.cfg.prefix}{created:%Y/%m/%d}/{name}"
    return Target(name, created, base + DUMP_SUFFIX, base + MANIFEST_SUFFIX,
                  tool.store.path(name + DUMP_SUFFIX), tool.store.path(name + MANIFEST_SUFFIX))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Snapshot:
    """What the dump and the manifest share: one snapshot's row counts and the versions."""
    dump: DumpResult
    counts: Dict[str, int]
    dump_version: str
    server_version: str
    server_version_num: int
    schema_version: Optional[str]   # the bot's newest migration in that snapshot (None: no such table)


def _dump_snapshot(tool: Context, target: Target) -> Snapshot:
    try:
        conn = pg.connect(tool.cfg.database_url, autocommit=True)
    except Exception as exc:
        raise BackupError(f"cannot connect to the database: {_first_line(exc)}") from None
    try:
        dump_text, server_text, server_num = tool.check_versions(conn)
        # One snapshot for both the row counts and pg_dump, so the manifest matches the dump.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = str(pg.one(conn, "SELECT pg_export_snapshot()"))
        counter = Background(lambda: (pg.row_counts(conn), pg.schema_version(conn)), "row-counts")
        result = DumpPipeline(tool.cfg, snapshot, target.partial, target.key).run(alongside=counter)
        counter.join()
        if counter.error is not None:
            raise BackupError(f"counting rows failed: {counter.error}")
        conn.execute("ROLLBACK")
    except BaseException:
        try:
            os.unlink(target.partial)
        except OSError:
            pass
        raise
    finally:
        conn.close()
    os.replace(target.partial, target.final)
    counts, schema = counter.result or ({}, None)
    return Snapshot(result, counts, dump_text, server_text, server_num, schema)


def _manifest(tool: Context, target: Target, snap: Snapshot, seconds: float, final: bool) -> dict:
    extra: Dict[str, object] = {"final": True} if final else {}  # under the MAC: only the passphrase holder can mark one
    if snap.schema_version is not None:  # restoring it then says which migrations the bot's start applies
        extra["schema_version"] = snap.schema_version
    return {**extra,
        "format": 2,  # 2: authenticated (the "mac" field, see integrity.py)
        "tool": f"botstack-backup {__version__}",
        "name": target.name,
        "key": target.key,
        "manifest_key": target.manifest_key,
        "created_at": target.created.isoformat().replace("+00:00", "Z"),
        "database": pg.dbname(tool.cfg.database_url),
        "server_version": snap.server_version,
        "server_version_num": snap.server_version_num,
        "pg_dump_version": snap.dump_version,
        "dump_format": "pg_dump custom (-Fc)",
        "encryption": "OpenPGP symmetric (gpg), AES-256",
        "sha256_plain": snap.dump.sha256_plain,
        "size_plain": snap.dump.size_plain,
        "sha256_encrypted": snap.dump.sha256_encrypted,
        "size_encrypted": snap.dump.size_encrypted,
        "duration_seconds": round(seconds, 3),
        "tables": snap.counts,
    }


def run_locked(tool: Context, started: dt.datetime, final: bool = False) -> RunResult:
    target = _target(tool, started, final)
    t0 = time.monotonic()
    snap = _dump_snapshot(tool, target)
    manifest = integrity.sign(_manifest(tool, target, snap, time.monotonic() - t0, final), tool.cfg.passphrase)
    tool.store.write_json(target.manifest_path, manifest)
    upload_error = snap.dump.upload_error
    if upload_error is None and snap.dump.offsite is not None:
        try:
            snap.dump.offsite.put_json(target.manifest_key, manifest)
        except OffsiteError as exc:
            upload_error = str(exc)
    result = RunResult(target.name, target.key, snap.dump.size_encrypted, upload_error is None, manifest,
                       upload_error)
    if snap.dump.offsite is not None and result.uploaded:
        result.store = store_check.at_run(snap.dump.offsite, tool.dir, tool.alerter.send)
    _report(tool, started, result)
    listing = None
    offsite = snap.dump.offsite
    if offsite is not None and result.uploaded:
        listing = _backlog_after_run(tool, offsite, result)
    result.pruned = prune_locked(tool, listing)
    if offsite is not None and listing is not None:
        result.pruned_offsite = _prune_offsite(tool, offsite, started)
    return result


def _prune_offsite(tool: Context, offsite: Offsite, started: dt.datetime) -> List[str]:
    """Offsite retention after a backup that reached the bucket; its failure is alerted, but the
    backup itself stands."""
    try:
        return offsite_retention.prune_offsite_locked(tool, offsite)
    except BackupError as exc:
        tool.fail("prune", started, exc)
        return []


def _report(tool: Context, started: dt.datetime, result: RunResult) -> None:
    tables = result.manifest["tables"]
    rows = sum(tables.values())
    if result.uploaded:
        log.info("backup %s: %s, %d tables, %d rows, uploaded to %s", result.name,
                 human_size(result.size), len(tables), rows, result.key)
        tool.recorder.record("backup", started, True, object_key=result.key, size_bytes=result.size,
                             uploaded=True, detail=f"{len(tables)} tables, {rows} rows"
                             + (f"; store: {result.store}" if result.store else ""))
        return
    detail = f"backup {result.name} kept locally only: {result.upload_error}"
    log.error("%s", detail)
    tool.recorder.record("backup", started, True, object_key=result.key, size_bytes=result.size,
                         uploaded=False, detail=detail)
    tool.alerter.send(f"\u26a0\ufe0f botstack backup NOT UPLOADED\n{detail}\n"
                      "The local copy is kept; the next run uploads it.")


def _backlog_after_run(tool: Context, offsite: Offsite, result: RunResult) -> Optional[Set[str]]:
    """Upload whatever earlier runs could not; the bucket's keys for the retention (None: unknown)."""
    try:
        listing = set(offsite.list())
        result.backlog_uploaded = upload_backlog(tool, offsite, listing, skip=result.name)
    except OffsiteError as exc:
        log.error("uploading the backlog failed: %s", exc)
        return None
    listing.update(b.manifest_key for b in tool.store.backups()
                   if b.name in result.backlog_uploaded and b.manifest_key)
    return listing


def upload_backlog(tool: Context, offsite: Offsite, listing: Set[str], skip: str = "") -> List[str]:
    """Upload every complete local backup whose manifest is not in the bucket yet. Its manifest is
    verified first (the backup directory is no more trusted than the bucket): a refused one is
    reported and left where it is."""
    done = []
    for b in tool.store.backups():
        if b.name == skip or not b.good or not b.manifest_key or b.manifest_key in listing:
            continue
        started = tool.now()
        try:
            manifest = integrity.verify(b.manifest, tool.cfg.passphrase, b.manifest_path or b.name)
        except ForgedError as exc:
            tool.fail("upload", started, exc, uploaded=False)
            continue
        key, dump_path = manifest["key"], b.dump_path or ""
        try:
            offsite.upload_file(dump_path, key)
            offsite.put_json(manifest["manifest_key"], manifest)
        except OffsiteError as exc:
            tool.fail("upload", started, exc, object_key=key, uploaded=False)
            raise
        log.info("uploaded the backlog backup %s", b.name)
        tool.recorder.record("upload", started, True, object_key=key,
                             size_bytes=manifest.get("size_encrypted"), uploaded=True,
                             detail=f"backlog: {b.name} uploaded after an earlier failure")
        done.append(b.name)
    return done
