"""`list`: every backup, local and offsite, and where each one is complete."""
from __future__ import annotations

from typing import Dict, Optional

from .errors import ConfigError, OffsiteError
from .offsite import Offsite
from .store import DUMP_SUFFIX, backup_file
from .context import Context


def _row(name: str, created_at: str) -> dict:
    return {"name": name, "created_at": created_at, "key": None, "size": None, "local": False,
            "offsite": False, "offsite_complete": False}


def _add_offsite(rows: Dict[str, dict], listing: Dict[str, dict]) -> None:
    for key, info in listing.items():
        parsed = backup_file(key)
        if parsed is None:
            continue
        base, created = parsed
        row = rows.setdefault(base, _row(base, created.isoformat()))
        if key.endswith(DUMP_SUFFIX):
            row["key"], row["offsite"] = key, True
            row["size"] = row["size"] or info["size"]
        else:
            row["offsite_complete"] = True


def list_backups(tool: Context, offsite: bool = True) -> dict:
    """{"backups": [{"name", "created_at", "size", "local", "offsite", "complete"}...], "offsite_error"}"""
    rows: Dict[str, dict] = {}
    for b in tool.store.backups():
        row = rows[b.name] = _row(b.name, b.created_at.isoformat())
        row.update(key=b.key, size=b.manifest.get("size_encrypted") if b.manifest else None, local=b.good)
    offsite_error: Optional[str] = None
    if offsite:
        try:
            _add_offsite(rows, Offsite(tool.cfg).list())
        except (OffsiteError, ConfigError) as exc:
            offsite_error = str(exc)
    ordered = sorted(rows.values(), key=lambda r: r["created_at"])
    for r in ordered:
        r["offsite_complete"] = r["offsite_complete"] and r["offsite"]
    return {"backups": ordered, "offsite_error": offsite_error}
