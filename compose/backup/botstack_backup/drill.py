"""`drill`: restore the latest offsite backup into a scratch database and compare row counts."""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Dict

from . import pg
from .errors import BackupError, BusyError, DrillMismatch
from .restore import Attempt, decrypt_verified, fetch, pg_restore, workdir
from .store import fmt_ts, human_size
from .context import Context

log = logging.getLogger("botstack_backup")


@dataclass
class DrillResult:
    manifest: dict
    counts: Dict[str, int]
    seconds: float


def _restore_and_count(tool: Context, plain: str) -> Dict[str, int]:
    """Restore into a fresh scratch database, count its rows, drop it whatever happens."""
    scratch = f"botstack_drill_{fmt_ts(tool.now()).lower()}"
    try:
        pg.create_database(tool.cfg.database_url, scratch)
    except Exception as exc:
        raise BackupError(f"cannot create the scratch database {scratch}: {exc}") from None
    try:
        scratch_url = pg.with_dbname(tool.cfg.database_url, scratch)
        pg_restore(plain, scratch_url)
        with pg.connect(scratch_url) as conn:
            return pg.row_counts(conn)
    finally:
        try:
            pg.drop_database(tool.cfg.database_url, scratch)
        except Exception as exc:
            log.error("drill: could not drop the scratch database %s: %s", scratch, exc)


def _compare(manifest: dict, counts: Dict[str, int]) -> None:
    expected = manifest.get("tables") or {}
    diffs = [f"{t}: backup {expected.get(t)} rows, restored {counts.get(t)}"
             for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)]
    if diffs:
        raise DrillMismatch(f"drill of {manifest['name']}: row counts differ: " + "; ".join(diffs[:10]))


def _drill_locked(tool: Context, attempt: Attempt) -> DrillResult:
    t0 = time.monotonic()
    with workdir(tool.store) as work:
        got = fetch(tool, "latest", work, from_local=False)
        attempt.object_key = got.manifest.get("key")
        plain = decrypt_verified(tool, got, work)
        counts = _restore_and_count(tool, plain)
        _compare(got.manifest, counts)
    return DrillResult(got.manifest, counts, time.monotonic() - t0)


def drill(tool: Context) -> DrillResult:
    started = tool.now()
    attempt = Attempt()
    try:
        tool.cfg.require_database()
        tool.cfg.require_passphrase()
        with tool.lock():
            res = _drill_locked(tool, attempt)
    except BusyError:
        raise
    except BackupError as exc:
        tool.fail("drill", started, exc, object_key=attempt.object_key)
        raise
    manifest = res.manifest
    age = started - dt.datetime.fromisoformat(manifest["created_at"].replace("Z", "+00:00"))
    detail = (f"drill OK: {manifest['name']} ({human_size(manifest.get('size_encrypted'))}, "
              f"{age.total_seconds() / 3600:.1f} h old) restored into a scratch database in {res.seconds:.1f} s; "
              f"{len(res.counts)} tables, {sum(res.counts.values())} rows match the manifest")
    log.info("%s", detail)
    tool.recorder.record("drill", started, True, object_key=manifest.get("key"),
                         size_bytes=manifest.get("size_encrypted"), detail=detail)
    tool.alerter.send(f"\u2705 botstack backup {detail}")
    return res
