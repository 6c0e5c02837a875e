"""Which backup in the bucket an operation takes: only authenticated ones, refusals remembered, the
work bounded.

- `latest` is the newest backup whose manifest verifies (integrity.verify) and whose dump sits beside
  it; manifests that fail are skipped and reported, never chosen.
- a NAME may be planted under another folder too: every manifest of that name is tried, the forged
  ones are skipped.
- each verification costs a GET and a slow key derivation: a refusal is remembered by the object's
  ETag (verdicts.py), and one operation verifies at most `budget` manifests.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import integrity
from .context import Context
from .errors import ForgedError, NotFound
from .integrity import Manifest
from .offsite import Offsite
from .store import DUMP_SUFFIX, MANIFEST_SUFFIX, NAME_RE, strip_suffix
from .verdicts import Verdicts

log = logging.getLogger("botstack_backup")

# Manifests one operation verifies at most (each ~0.3 s of key derivation and a GET): what planted
# objects can cost a run is bounded; the next run goes on where this one stopped (refusals are
# remembered).
MAX_VERIFICATIONS = 25


class Unjudged(Exception):
    """This operation's verification budget is spent: the object was not judged."""


def dump_beside(manifest_key: str) -> str:
    return manifest_key[: -len(MANIFEST_SUFFIX)] + DUMP_SUFFIX


def _time_then_key(key: str) -> tuple:
    m = NAME_RE.match(strip_suffix(key))
    return (m.group("ts") if m else "", key)


@dataclass
class Reader:
    """Reads and verifies manifests of one bucket for one operation."""
    ctx: Context
    offsite: Offsite
    budget: int = MAX_VERIFICATIONS
    refused: List[Tuple[str, str]] = field(default_factory=list)  # (key, why), this operation
    verdicts: Optional[Verdicts] = None

    def __post_init__(self) -> None:
        self.budget_total = self.budget
        if self.verdicts is None:
            self.verdicts = Verdicts(self.ctx.store)

    def _refuse(self, key: str, etag: Optional[str], why: str, remember: bool = True) -> ForgedError:
        self.refused.append((key, why))
        if remember and self.verdicts is not None:
            self.verdicts.remember(key, etag, why)
        return ForgedError(why)

    def manifest(self, key: str, etag: Optional[str]) -> Manifest:
        """The verified manifest at `key` (listed with `etag`); ForgedError, NotFound, OffsiteError or
        Unjudged otherwise."""
        cached = self.ctx.verified_manifests.get(f"{key}\0{etag}") if etag else None
        if cached is not None:
            return cached
        remembered = self.verdicts.refused(key, etag) if self.verdicts is not None else None
        if remembered is not None:
            raise self._refuse(key, etag, remembered, remember=False)
        if self.budget <= 0:
            raise Unjudged(key)
        self.budget -= 1
        data, got_etag = self.offsite.get_manifest(key, integrity.MAX_MANIFEST_BYTES)
        try:
            manifest = integrity.verify(integrity.load(data, key), self.ctx.cfg.passphrase, key)
            if manifest["key"] != dump_beside(key):
                raise ForgedError(f"refused: the manifest {key} records its dump at {manifest['key']}, "
                                  "not beside it")
        except ForgedError as exc:
            raise self._refuse(key, got_etag or etag, str(exc)) from None
        if got_etag:
            self.ctx.verified_manifests[f"{key}\0{got_etag}"] = manifest
        return manifest

    def save(self) -> None:
        if self.verdicts is not None:
            self.verdicts.save()


@dataclass
class Resolved:
    manifest: Manifest
    skipped: List[Tuple[str, str]]  # manifests tried before it that failed verification: (key, why)


def _summary(refused: List[Tuple[str, str]]) -> str:
    names = ", ".join(strip_suffix(k) for k, _ in refused[:5]) + (" ..." if len(refused) > 5 else "")
    return f"{len(refused)} manifest(s) failed verification ({names}); the newest: {refused[0][1]}"


def resolve(reader: Reader, listing: Dict[str, dict], which: Optional[str]) -> Resolved:
    """The manifest of the backup asked for ("latest", a name or an object key), verified."""
    # by the time in the name, then the key: a final backup (`<name>-final-<time>`) is no "later"
    # than a regular one made after it the same day
    manifests = sorted((k for k in listing if k.endswith(MANIFEST_SUFFIX)), key=_time_then_key, reverse=True)
    latest = which in ("latest", "", None)
    if not latest:
        base = strip_suffix(which or "")
        manifests = [k for k in manifests if k.rsplit("/", 1)[-1] == base + MANIFEST_SUFFIX]
        if not manifests:
            raise NotFound(f"no backup {which!r} in the bucket (see `botstack-backup list`)")
    try:
        for mkey in manifests:
            if dump_beside(mkey) not in listing:
                continue  # incomplete: an upload that failed or is still running
            try:
                manifest = reader.manifest(mkey, listing[mkey].get("etag"))
            except ForgedError:
                continue
            except NotFound:
                continue  # deleted since the listing
            except Unjudged:
                raise ForgedError(
                    f"refused: {_summary(reader.refused)}; no authenticated backup among the newest "
                    f"{MAX_VERIFICATIONS} (the next run goes on; prune deletes planted objects)") from None
            return Resolved(manifest, list(reader.refused))
    finally:
        reader.save()
    if reader.refused:
        raise ForgedError(f"refused: no authenticated backup {'in the bucket' if latest else repr(which)}: "
                          + _summary(reader.refused))
    raise NotFound("no complete backup in the bucket" if latest else
                   f"no complete backup {which!r} in the bucket (see `botstack-backup list`)")
