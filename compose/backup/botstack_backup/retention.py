"""Local retention: delete copies older than BACKUP_LOCAL_RETENTION_DAYS, never the newest good one."""
from __future__ import annotations

import datetime as dt
import logging
import os
from typing import List, Optional, Set

from .store import LocalBackup
from .context import Context

log = logging.getLogger("botstack_backup")


def _keep(b: LocalBackup, newest_good: Optional[LocalBackup], now: dt.datetime, keep_days: int,
          offsite_keys: Optional[Set[str]]) -> bool:
    if newest_good is not None and b.name == newest_good.name:
        return True
    if b.created_at >= now - dt.timedelta(days=keep_days):
        return True
    if (b.good and offsite_keys is not None and b.manifest_key not in offsite_keys
            and b.created_at >= now - dt.timedelta(days=2 * keep_days)):
        log.warning("prune: keeping %s, it is not in Spaces yet", b.name)
        return True
    return False


def prune_locked(tool: Context, offsite_keys: Optional[Set[str]]) -> List[str]:
    """Delete local copies older than the retention; NEVER the newest good backup.

    A complete backup that is known not to be offsite yet is kept up to twice the retention."""
    now = tool.now()
    keep_days = tool.cfg.local_retention_days
    backups = tool.store.backups()
    good = [b for b in backups if b.good]
    newest_good = good[-1] if good else None
    deleted: List[str] = []
    for b in backups:
        if _keep(b, newest_good, now, keep_days, offsite_keys):
            continue
        for p in b.paths():
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        deleted.append(b.name)
    tool.store.remove_stale_leftovers()
    if deleted:
        log.info("prune: deleted %d local backup(s) older than %d days: %s", len(deleted), keep_days,
                 ", ".join(deleted))
        tool.recorder.record("prune", now, True,
                             detail=f"deleted {len(deleted)} local backup(s) older than {keep_days} days; "
                                    f"kept {len(backups) - len(deleted)}")
    return deleted
