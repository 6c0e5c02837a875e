"""Manifests in the bucket that failed verification, remembered by object key and ETag.

A forged manifest costs a slow key derivation (integrity.KDF_ITERATIONS) and a GET to refuse; without
memory, every object planted in the bucket would cost that again on every run. An object whose
ETag changes is judged again. The memory is a file in the backup directory, read with its types
checked: a planted or damaged file only makes the tool judge again, never trust."""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, Iterable, Optional, Tuple

from .errors import BackupError
from .store import LocalStore

log = logging.getLogger("botstack_backup")

FILE = ".refused.json"
MAX_FILE_BYTES = 16 * 1024 * 1024


class Verdicts:
    def __init__(self, store: LocalStore):
        self.store = store
        self.path = store.path(FILE)
        self._refused: Dict[str, Tuple[str, str]] = self._load()  # key -> (etag, reason)
        self._changed = False

    def _load(self) -> Dict[str, Tuple[str, str]]:
        try:
            if os.path.getsize(self.path) > MAX_FILE_BYTES:
                return {}
            with open(self.path, "rb") as f:
                raw = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(raw, dict):
            return {}
        out: Dict[str, Tuple[str, str]] = {}
        for key, v in raw.items():
            if isinstance(v, dict) and isinstance(v.get("etag"), str) and isinstance(v.get("reason"), str):
                out[key] = (v["etag"], v["reason"])
        return out

    def refused(self, key: str, etag: Optional[str]) -> Optional[str]:
        """Why this very object (same ETag) was refused before; None when it was not."""
        seen = self._refused.get(key)
        return seen[1] if seen and etag and seen[0] == etag else None

    def remember(self, key: str, etag: Optional[str], reason: str) -> None:
        if etag:
            self._refused[key] = (etag, reason[:300])
            self._changed = True

    def forget_all_but(self, keys: Iterable[str]) -> None:
        """Objects no longer in the bucket need no memory."""
        present = set(keys)
        gone = [k for k in self._refused if k not in present]
        for k in gone:
            del self._refused[k]
        self._changed = self._changed or bool(gone)

    def __len__(self) -> int:
        return len(self._refused)

    def save(self) -> None:
        if not self._changed:
            return
        try:
            self.store.ensure_dir()
            self.store.write_json(self.path, {k: {"etag": e, "reason": r} for k, (e, r) in self._refused.items()})
            self._changed = False
        except (OSError, BackupError) as exc:  # only costs time on the next run
            log.error("cannot save the refused manifests' memory: %s", exc)
