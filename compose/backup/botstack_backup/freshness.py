"""Rollback: is the backup an operation is about to take older than the newest one the tool knows of?

Deleting the newest backups from the bucket needs no passphrase; `latest` would then quietly be an
older backup. The tool knows better from two places: its records (`backup_runs`: every backup and
backlog upload that reached the bucket) and its local copies (verified like the bucket's)."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import List, Optional

from . import integrity
from .context import Context
from .errors import ForgedError, RollbackError
from .integrity import Manifest
from .store import backup_file, human_size

log = logging.getLogger("botstack_backup")

LOCAL_TRIES = 3  # newest local copies verified at most (a key derivation each)


@dataclass
class Known:
    name: str
    created: dt.datetime
    origin: str             # what says it exists
    local: bool = False     # a verified local copy (restorable with --from-local)


def _recorded(ctx: Context) -> Optional[Known]:
    best: Optional[Known] = None
    for key in ctx.recorder.uploaded_keys():
        parsed = backup_file(key)
        if parsed and (best is None or parsed[1] > best.created):
            best = Known(parsed[0], parsed[1], "recorded in backup_runs as uploaded to the bucket")
    return best


def newest_local(ctx: Context, newer_than: dt.datetime) -> Optional[Known]:
    """The newest local copy newer than `newer_than` that is complete and verifies (only those are
    verified: a key derivation each)."""
    tries = 0
    for b in reversed(ctx.store.backups()):
        if b.created_at <= newer_than:
            return None
        if not b.good:
            continue
        tries += 1
        try:
            integrity.verify(b.manifest, ctx.cfg.passphrase, b.manifest_path or b.name)
        except ForgedError as exc:
            log.warning("the local copy %s does not verify: %s", b.name, exc)
            if tries >= LOCAL_TRIES:
                return None
            continue
        return Known(b.name, b.created_at, f"a local copy in {ctx.dir}", local=True)
    return None


def newest_known(ctx: Context, local: bool, newer_than: dt.datetime) -> Optional[Known]:
    found: List[Known] = [k for k in (_recorded(ctx), newest_local(ctx, newer_than) if local else None) if k]
    return max(found, key=lambda k: (k.created, k.local)) if found else None


def refuse_older(ctx: Context, manifest: Manifest, what: str, local: bool, hint: str = "") -> None:
    """RollbackError when a newer backup than `manifest` is known (local copies too when `local`)."""
    chosen = integrity.created_at(manifest)
    known = newest_known(ctx, local, chosen)
    if known is None or known.created <= chosen or known.name == manifest["name"]:
        return
    older = known.created - chosen
    how = (f"`restore {known.name} --from-local` restores it" if known.local else
           "newer backups were deleted from the bucket or fail verification")
    raise RollbackError(
        f"refused: {what} is {manifest['name']} ({human_size(manifest.get('size_encrypted'))}), but a newer "
        f"backup is known: {known.name}, {older.total_seconds() / 3600:.1f} h newer ({known.origin}); "
        f"{how}{hint}")
