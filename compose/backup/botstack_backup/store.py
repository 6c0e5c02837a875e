"""The local backup directory (a bind mount of the block volume): names, the lock, the listing."""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from .errors import BackupError, BusyError

log = logging.getLogger("botstack_backup")

CHUNK = 1024 * 1024
DUMP_SUFFIX = ".dump.gpg"
MANIFEST_SUFFIX = ".manifest.json"
NAME_RE = re.compile(r"^(?P<name>.+-(?P<ts>\d{8}T\d{6}Z))$")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def fmt_ts(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def human_size(n: Optional[int]) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def strip_suffix(name: str) -> str:
    """`.../botstack-X.dump.gpg` or `botstack-X.manifest.json` -> `botstack-X`."""
    base = name.rsplit("/", 1)[-1]
    for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def backup_file(name: str) -> Optional[Tuple[str, dt.datetime]]:
    """(backup name, creation time) of a dump or manifest file or object key; None for anything else,
    including a name whose timestamp is not a real time (such files are left alone, never parsed)."""
    if not name.endswith((DUMP_SUFFIX, MANIFEST_SUFFIX)):
        return None
    base = strip_suffix(name)
    m = NAME_RE.match(base)
    if not m:
        return None
    try:
        return base, parse_ts(m.group("ts"))
    except ValueError:
        return None


@dataclass
class LocalBackup:
    name: str
    created_at: dt.datetime
    dump_path: Optional[str]
    manifest_path: Optional[str]
    manifest: Optional[dict] = None

    @property
    def good(self) -> bool:
        """Complete: manifest readable, dump present with the size the manifest records."""
        return self.damage is None

    @property
    def damage(self) -> Optional[str]:
        """Why this copy is not complete (None when it is)."""
        if not self.manifest_path:
            return "its manifest is missing"
        if not self.manifest:
            return "its manifest is unreadable"
        if not self.dump_path:
            return "its dump is missing"
        expected = self.manifest.get("size_encrypted", -1)
        try:
            actual = os.path.getsize(self.dump_path)
        except OSError as exc:
            return f"its dump cannot be read ({exc.strerror})"
        try:
            if actual == int(expected):
                return None
        except (TypeError, ValueError):
            return "its manifest records no size"
        return f"its dump is {actual} bytes, the manifest records {expected} (truncated or altered)"

    def _text(self, field: str) -> Optional[str]:
        value = self.manifest.get(field) if self.manifest else None
        return value if isinstance(value, str) else None

    @property
    def key(self) -> Optional[str]:
        """The object key its (unverified) manifest records, when that is a string."""
        return self._text("key")

    @property
    def manifest_key(self) -> Optional[str]:
        return self._text("manifest_key")

    def paths(self) -> List[str]:
        return [p for p in (self.dump_path, self.manifest_path) if p]


MAX_MANIFEST_BYTES = 1024 * 1024  # integrity.MAX_MANIFEST_BYTES


def _read_json(path: str) -> Optional[dict]:
    """A local manifest as a JSON object; None when it is anything else (not yet verified)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        data = json.loads(raw) if len(raw) <= MAX_MANIFEST_BYTES else None
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


class LocalStore:
    def __init__(self, directory: str):
        self.dir = directory

    def ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot create the backup directory {self.dir}: {exc.strerror}") from exc
        if not os.access(self.dir, os.W_OK):
            raise BackupError(f"the backup directory {self.dir} is not writable")

    @contextmanager
    def lock(self, wait: float) -> Iterator[None]:
        """One backup operation at a time (dump, restore, drill, prune), across processes."""
        self.ensure_dir()
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._acquire(fd, wait)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _acquire(fd: int, wait: float) -> None:
        deadline = time.monotonic() + max(0.0, wait)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise BusyError("another backup operation is running (lock held); not starting a second one")
            if not announced:
                log.info("another backup operation is running; waiting up to %.0f s for it", wait)
                announced = True
            time.sleep(0.5)

    def backups(self) -> List[LocalBackup]:
        """Local backups, oldest first (complete or not; `.partial` files are not listed)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        found: Dict[str, LocalBackup] = {}
        for fn in names:
            parsed = backup_file(fn)
            if parsed is None:
                continue
            base, created = parsed
            b = found.setdefault(base, LocalBackup(base, created, None, None))
            path = os.path.join(self.dir, fn)
            if fn.endswith(DUMP_SUFFIX):
                b.dump_path = path
            else:
                b.manifest_path, b.manifest = path, _read_json(path)
        return sorted(found.values(), key=lambda b: (b.created_at, b.name))

    def newest_good(self) -> Optional[LocalBackup]:
        good = [b for b in self.backups() if b.good]
        return good[-1] if good else None

    def free_name(self, name: str, created: dt.datetime) -> Tuple[str, dt.datetime]:
        """`<name>-<time>`, one second later while that name is taken (names are timestamps)."""
        while True:
            candidate = f"{name}-{fmt_ts(created)}"
            if not any(os.path.exists(os.path.join(self.dir, candidate + s))
                       for s in (DUMP_SUFFIX, MANIFEST_SUFFIX)):
                return candidate, created
            created += dt.timedelta(seconds=1)

    def path(self, filename: str) -> str:
        return os.path.join(self.dir, filename)

    def write_json(self, path: str, data: dict) -> None:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def remove_stale_leftovers(self, max_age_seconds: float = 86400) -> None:
        """Leftovers of interrupted runs: `.partial`, `.tmp`, `restore-*` work directories."""
        for fn in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            if fn.endswith((".partial", ".tmp")) or fn.startswith("restore-"):
                p = os.path.join(self.dir, fn)
                try:
                    if time.time() - os.path.getmtime(p) > max_age_seconds:
                        shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
                except OSError:
                    pass
