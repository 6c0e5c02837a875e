"""Offsite retention: which backups in the bucket the tool keeps, and deleting the others.

The bucket's lifecycle rule never expires a current object (it only removes noncurrent versions and
incomplete uploads): this is the only thing that deletes backups, and only while the droplet runs.
The rule (docs/backups.md, "Offsite retention"): a backup is kept if any of these keeps it
- it is younger than BACKUP_OFFSITE_RETENTION_DAYS (by the time in its name; a time more than a day
  ahead is no youth: a planted future-dated backup is judged like any other);
- it is one of the newest BACKUP_OFFSITE_KEEP_LAST good backups;
- it is the newest good backup of one of the newest BACKUP_OFFSITE_KEEP_DAILY / _WEEKLY / _MONTHLY
  UTC days / ISO weeks / months that have a good backup;
- it is a good final backup (deploy/final-backup.sh: `run --final`).
"Good" is complete and provably the tool's: dump and manifest both listed, the manifest verified
(MAC, names: integrity.verify) and the dump's listed size the one it records. A failed, truncated
or forged backup never fills a generation; it goes once it is older than the retention days.
Manifests are read through resolve.Reader: a refusal is remembered by ETag and a run verifies at
most resolve.MAX_VERIFICATIONS manifests (the rest is kept, unjudged, until a later run).
Deleting is an S3 DELETE without a version id: the versioned bucket keeps a noncurrent copy, which
its lifecycle rule removes 7 days later.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from .errors import ForgedError, NotFound
from .offsite import Offsite
from .store import DUMP_SUFFIX, backup_file
from .config import Policy
from .context import Context
from .integrity import Manifest
from .resolve import Reader, Unjudged

log = logging.getLogger("botstack_backup")

FINAL_MARK = "-final"  # `<BACKUP_NAME>-final-<time>`: the name says which manifests to check for "final"


@dataclass
class OffsiteBackup:
    name: str
    created_at: dt.datetime
    where: str = ""                      # `<folder>/<name>`: a name may be planted in several folders
    dump_key: Optional[str] = None
    manifest_key: Optional[str] = None
    dump_size: Optional[int] = None
    manifest_etag: Optional[str] = None

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
        where = key.rsplit("/", 1)[0] + "/" + base
        b = found.setdefault(where, OffsiteBackup(base, created, where))
        if key.endswith(DUMP_SUFFIX):
            b.dump_key, b.dump_size = key, info.get("size")
        else:
            b.manifest_key, b.manifest_etag = key, info.get("etag")
    return sorted(found.values(), key=lambda b: (b.created_at, b.where), reverse=True)


def _periods(t: dt.datetime) -> Tuple[dt.date, Tuple[int, int], Tuple[int, int]]:
    iso = t.isocalendar()
    return t.date(), (iso[0], iso[1]), (t.year, t.month)


# A backup dated further ahead than this is not young, it is planted (or made under a broken clock):
# the age rule does not keep it, only a generation can (and only when it is good).
FUTURE_SLACK = dt.timedelta(days=1)


@dataclass
class Selection:
    kept: Dict[str, List[str]] = field(default_factory=dict)   # backup (`where`) -> the rules keeping it
    unjudged: List[str] = field(default_factory=list)           # not verified: this run's budget was spent

    def keep(self, b: OffsiteBackup, why: str) -> None:
        self.kept.setdefault(b.where, []).append(why)


def select(backups: List[OffsiteBackup], policy: Policy, now: dt.datetime,
           good: Callable[[OffsiteBackup], Optional[dict]]) -> Selection:
    """Apply the rule to `backups` (newest first). `good(b)` returns b's verified manifest, or None
    when b is not good, or raises Unjudged (kept this time, filling no generation); it is asked only
    about backups a generation or the final rule could keep."""
    sel = Selection()
    cutoff = now - dt.timedelta(days=policy.retention_days)
    last: List[str] = []
    seen: List[Set] = [set(), set(), set()]
    limits = (policy.keep_daily, policy.keep_weekly, policy.keep_monthly)
    for b in backups:
        if cutoff <= b.created_at <= now + FUTURE_SLACK:
            sel.keep(b, "age")
        periods = _periods(b.created_at)
        wanted = [i for i in range(3) if periods[i] not in seen[i] and len(seen[i]) < limits[i]]
        final_name = FINAL_MARK + "-" in b.name
        if not wanted and len(last) >= policy.keep_last and not final_name:
            continue
        try:
            manifest = good(b)
        except Unjudged:
            sel.keep(b, "unjudged")
            sel.unjudged.append(b.name)
            continue
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
    `reasons`). Manifests are read through a resolve.Reader: verified ones and refusals are
    remembered, and one run verifies at most its budget (Unjudged beyond it)."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self.reasons: Dict[str, str] = {}
        self.forged: Set[str] = set()

    def __call__(self, b: OffsiteBackup) -> Optional[Manifest]:
        if not b.manifest_key or not b.dump_key:
            self.reasons[b.where] = "incomplete (dump or manifest missing)"
            return None
        try:
            manifest = self.reader.manifest(b.manifest_key, b.manifest_etag)
        except NotFound:
            self.reasons[b.where] = "its manifest vanished"
            return None
        except ForgedError as exc:  # refused: forged, altered, another passphrase, not JSON
            self.reasons[b.where] = str(exc)
            self.forged.add(b.where)
            return None
        # OffsiteError (Spaces trouble is no verdict on the backup: prune nothing this time) and
        # Unjudged go to the caller
        if manifest["key"] != b.dump_key or manifest["size_encrypted"] != b.dump_size:
            self.reasons[b.where] = (f"its dump is {b.dump_size} bytes at {b.dump_key}, the manifest records "
                                     f"{manifest['size_encrypted']} at {manifest['key']}")
            return None
        return manifest


def prune_offsite_locked(tool: Context, offsite: Offsite) -> List[str]:
    """Delete the bucket's backups the rule does not keep; returns their names."""
    now = tool.now()
    policy = tool.cfg.offsite_policy()
    listing = offsite.list()
    backups = group(listing)
    reader = Reader(tool, offsite)
    verifier = Verifier(reader)
    try:
        sel = select(backups, policy, now, verifier)
    finally:
        reader.save()
    doomed = [b for b in backups if b.where not in sel.kept]
    for b in doomed:
        why = verifier.reasons.get(b.where)
        if why:
            log.warning("offsite prune: %s is not a good backup (%s)", b.where, why)
        for key in b.keys:
            offsite.delete(key)
            for cached in [k for k in tool.verified_manifests if k.startswith(key + "\0")]:
                del tool.verified_manifests[cached]
    if reader.verdicts is not None:
        reader.verdicts.forget_all_but(k for k in listing if not any(k in b.keys for b in doomed))
        reader.save()
    deleted = [b.name for b in doomed]
    forged = [b.where for b in doomed if b.where in verifier.forged]
    if forged:
        tool.alerter.send(f"\u26a0\ufe0f botstack prune: deleted {len(forged)} backup(s) from the bucket that "
                          f"failed verification (planted or altered): {', '.join(forged[:5])}"
                          + (" ..." if len(forged) > 5 else "") + f"\n{verifier.reasons[forged[0]]}")
    if sel.unjudged:
        log.warning("offsite prune: %d backup(s) not verified this run (at most %d per run), kept for now: %s",
                    len(sel.unjudged), reader.budget_total, ", ".join(sel.unjudged[:5]))
    if deleted or sel.unjudged:
        log.info("offsite prune: deleted %d backup(s): %s", len(deleted), ", ".join(reversed(deleted)))
        tool.recorder.record("prune", now, True, detail=(
            f"offsite: deleted {len(deleted)} backup(s) older than {policy.retention_days} days"
            + (f" ({len(forged)} failed verification)" if forged else "")
            + f"; kept {len(backups) - len(deleted)}"
            + (f"; {len(sel.unjudged)} not verified yet (at most {reader.budget_total} per run)"
               if sel.unjudged else "")))
    return deleted
