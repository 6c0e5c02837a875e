"""Offsite retention: which backups in the bucket the tool keeps, and deleting the others.

The bucket's lifecycle rule never expires a current object (it only removes noncurrent versions and
incomplete uploads): this is the only thing that deletes backups, and only while the droplet runs.
The rule (docs/backups.md, "Offsite retention"): a backup is kept if any of these keeps it
- it is younger than BACKUP_OFFSITE_RETENTION_DAYS (by the time in its name);
- it is one of the newest BACKUP_OFFSITE_KEEP_LAST good backups;
- it is the newest good backup of one of the newest BACKUP_OFFSITE_KEEP_DAILY / _WEEKLY / _MONTHLY
  UTC days / ISO weeks / months that have a good backup;
- it is a good final backup (deploy/final-backup.sh: `run --final`).
"Good" is complete and provably the tool's: dump and manifest both listed, the manifest verified
(MAC, names: integrity.verify) and the dump's listed size the one it records. A failed, truncated
or forged backup never fills a generation; it goes once it is older than the retention days.
Deleting is an S3 DELETE without a version id: the versioned bucket keeps a noncurrent copy, which
its lifecycle rule removes 7 days later.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from . import integrity
from .errors import BackupError, NotFound, OffsiteError
from .offsite import Offsite
from .store import DUMP_SUFFIX, backup_file
from .config import Policy
from .context import Context

log = logging.getLogger("botstack_backup")

FINAL_MARK = "-final"  # `<BACKUP_NAME>-final-<time>`: the name says which manifests to check for "final"


@dataclass
class OffsiteBackup:
    name: str
    created_at: dt.datetime
    dump_key: Optional[str] = None
    manifest_key: Optional[str] = None
    dump_size: Optional[int] = None

    @property
    def keys(self) -> List[str]:
        # the manifest first: no manifest ever points at a deleted dump
        return [k for k in (self.manifest_key, self.dump_key) if k]


def group(listing: Dict[str, dict]) -> List[OffsiteBackup]:
    """The listed objects that are backups by their names, newest first (others are left alone)."""
    found: Dict[str, OffsiteBackup] = {}
    for key, info in listing.items():
        parsed = backup_file(key)
        if parsed is None:
            continue
        base, created = parsed
        b = found.setdefault(key.rsplit("/", 1)[0] + "/" + base, OffsiteBackup(base, created))
        if key.endswith(DUMP_SUFFIX):
            b.dump_key, b.dump_size = key, info.get("size")
        else:
            b.manifest_key = key
    return sorted(found.values(), key=lambda b: (b.created_at, b.name), reverse=True)


def _periods(t: dt.datetime) -> Tuple[dt.date, Tuple[int, int], Tuple[int, int]]:
    iso = t.isocalendar()
    return t.date(), (iso[0], iso[1]), (t.year, t.month)


@dataclass
class Selection:
    kept: Dict[str, List[str]] = field(default_factory=dict)   # backup name -> the rules keeping it
    invalid: Dict[str, str] = field(default_factory=dict)      # backup name -> why it is not good

    def keep(self, b: OffsiteBackup, why: str) -> None:
        self.kept.setdefault(b.name, []).append(why)


def select(backups: List[OffsiteBackup], policy: Policy, now: dt.datetime,
           good: Callable[[OffsiteBackup], Optional[dict]]) -> Selection:
    """Apply the rule to `backups` (newest first). `good(b)` returns b's verified manifest, or None
    when b is not good; it is asked only about backups a generation or the final rule could keep."""
    sel = Selection()
    cutoff = now - dt.timedelta(days=policy.retention_days)
    last: List[str] = []
    seen: List[Set] = [set(), set(), set()]
    limits = (policy.keep_daily, policy.keep_weekly, policy.keep_monthly)
    for b in backups:
        if b.created_at >= cutoff:
            sel.keep(b, "age")
        periods = _periods(b.created_at)
        wanted = [i for i in range(3) if periods[i] not in seen[i] and len(seen[i]) < limits[i]]
        final_name = FINAL_MARK + "-" in b.name
        if not wanted and len(last) >= policy.keep_last and not final_name:
            continue
        manifest = good(b)
        if manifest is None:
            continue
        if final_name and manifest.get("final") is True:
            sel.keep(b, "final")
        if len(last) < policy.keep_last:
            last.append(b.name)
            sel.keep(b, "last")
        for i in wanted:
            seen[i].add(periods[i])
            sel.keep(b, ("daily", "weekly", "monthly")[i])
    return sel


class Verifier:
    """`good(b)`: b's manifest when b is complete and provably the tool's, else None (the reason in
    `reasons`). Verified manifests are remembered by key (a MAC costs a slow key derivation)."""

    def __init__(self, offsite: Offsite, passphrase: str, cache: Dict[str, dict]):
        self.offsite = offsite
        self.passphrase = passphrase
        self.cache = cache
        self.reasons: Dict[str, str] = {}

    def __call__(self, b: OffsiteBackup) -> Optional[dict]:
        if not b.manifest_key or not b.dump_key:
            self.reasons[b.name] = "incomplete (dump or manifest missing)"
            return None
        manifest = self.cache.get(b.manifest_key)
        if manifest is None:
            try:
                raw = self.offsite.get_json(b.manifest_key)
                manifest = integrity.verify(raw, self.passphrase, b.manifest_key)
            except NotFound:
                self.reasons[b.name] = "its manifest vanished"
                return None
            except OffsiteError as exc:
                if "not valid JSON" not in str(exc):
                    raise  # Spaces trouble is no verdict on the backup: prune nothing this time
                self.reasons[b.name] = str(exc)
                return None
            except BackupError as exc:  # refused: forged, altered, another passphrase
                self.reasons[b.name] = str(exc)
                return None
            self.cache[b.manifest_key] = manifest
        if manifest.get("key") != b.dump_key or manifest.get("size_encrypted") != b.dump_size:
            self.reasons[b.name] = (f"its dump is {b.dump_size} bytes at {b.dump_key}, the manifest records "
                                    f"{manifest.get('size_encrypted')} at {manifest.get('key')}")
            return None
        return manifest


def prune_offsite_locked(tool: Context, offsite: Offsite) -> List[str]:
    """Delete the bucket's backups the rule does not keep; returns their names."""
    now = tool.now()
    policy = tool.cfg.offsite_policy()
    backups = group(offsite.list())
    verifier = Verifier(offsite, tool.cfg.passphrase, tool.verified_manifests)
    sel = select(backups, policy, now, verifier)
    doomed = [b for b in backups if b.name not in sel.kept]
    for b in doomed:
        why = verifier.reasons.get(b.name)
        if why:
            log.warning("offsite prune: %s is not a good backup (%s)", b.name, why)
        for key in b.keys:
            offsite.delete(key)
            tool.verified_manifests.pop(key, None)
    deleted = [b.name for b in doomed]
    if deleted:
        log.info("offsite prune: deleted %d backup(s): %s", len(deleted), ", ".join(reversed(deleted)))
        tool.recorder.record("prune", now, True, detail=(
            f"offsite: deleted {len(deleted)} backup(s) older than {policy.retention_days} days; "
            f"kept {len(backups) - len(deleted)}"))
    return deleted
