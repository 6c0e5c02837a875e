"""`drill`: restore the latest offsite backup into a scratch database and compare row counts."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Dict

from . import freshness, integrity, pg
from .errors import BackupError, BusyError, DrillMismatch
from .restore import Attempt, Fetched, fetch, report_skipped, restore_stream, workdir
from .store import fmt_ts, human_size
from .context import Context

log = logging.getLogger("botstack_backup")


@dataclass
class DrillResult:
    manifest: dict
    counts: Dict[str, int]
    seconds: float


def _restore_and_count(tool: Context, got: Fetched) -> Dict[str, int]:
    """Restore into a fresh scratch database (made only once gpg showed sealed data), count its rows,
    drop it whatever happens."""
    scratch = f"botstack_drill_{fmt_ts(tool.now()).lower()}"
    created = []

    def create() -> None:
        try:
            pg.create_database(tool.cfg.database_url, scratch)
        except Exception as exc:
            raise BackupError(f"cannot create the scratch database {scratch}: {exc}") from None
        created.append(scratch)

    scratch_url = pg.with_dbname(tool.cfg.database_url, scratch)
    try:
        restore_stream(tool, got, scratch_url, before_first_byte=create)
        with pg.connect(scratch_url) as conn:
            return pg.row_counts(conn)
    finally:
        if created:
            try:
                pg.drop_database(tool.cfg.database_url, scratch)
            except Exception as exc:
                log.error("drill: could not drop the scratch database %s: %s", scratch, exc)


def _compare(manifest: dict, counts: Dict[str, int]) -> None:
    expected = manifest["tables"]
    diffs = [f"{t}: backup {expected.get(t)} rows, restored {counts.get(t)}"
             for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)]
    if diffs:
        raise DrillMismatch(f"drill of {manifest['name']}: row counts differ: " + "; ".join(diffs[:10]))


def _drill_locked(tool: Context, attempt: Attempt) -> DrillResult:
    t0 = time.monotonic()
    with workdir(tool.store) as work:
        got = fetch(tool, "latest", work, from_local=False)
        attempt.object_key = got.manifest["key"]
        attempt.note = report_skipped(tool, "drill", got)
        # what the drill proves must be the newest backup: a rollback of the bucket fails it
        freshness.refuse_older(tool, got.manifest, "the newest authenticated backup in the bucket", local=False)
        counts = _restore_and_count(tool, got)
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
    except Exception as exc:  # unexpected: still a failed drill that is told, never a silent crash
        unexpected = BackupError(f"unexpected error: {type(exc).__name__}: {exc}")
        tool.fail("drill", started, unexpected, object_key=attempt.object_key)
        raise unexpected from exc
    manifest = res.manifest
    age = started - integrity.created_at(manifest)
    detail = (f"drill OK: {manifest['name']} ({human_size(manifest.get('size_encrypted'))}, "
              f"{age.total_seconds() / 3600:.1f} h old) restored into a scratch database in {res.seconds:.1f} s; "
              f"{len(res.counts)} tables, {sum(res.counts.values())} rows match the manifest{attempt.note}")
    log.info("%s", detail)
    tool.recorder.record("drill", started, True, object_key=manifest.get("key"),
                         size_bytes=manifest.get("size_encrypted"), detail=detail)
    tool.alerter.send(f"\u2705 botstack backup {detail}")
    return res
