"""Fetching a backup (offsite or local), verifying and decrypting it, and `restore`."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from . import gpg, integrity, pg
from .errors import BackupError, BusyError, ChecksumError, ConfigError, NotFound, OffsiteError, RefusedError
from .offsite import Offsite
from .store import CHUNK, DUMP_SUFFIX, MANIFEST_SUFFIX, NAME_RE, LocalBackup, LocalStore, strip_suffix
from .context import Context

log = logging.getLogger("botstack_backup")


@dataclass
class Attempt:
    """What a failure report names: the backup's object, once it is known."""
    object_key: Optional[str] = None


@dataclass
class Fetched:
    """An encrypted dump on local disk whose sha256 matches its manifest."""
    path: str
    manifest: dict


def _time_then_key(key: str) -> tuple:
    m = NAME_RE.match(strip_suffix(key))
    return (m.group("ts") if m else "", key)


def _resolve_offsite(offsite: Offsite, which: Optional[str], passphrase: str) -> dict:
    """The manifest of the backup asked for, verified (see integrity.verify)."""
    listing = offsite.list()
    # by the time in the name, then the key: a final backup (`<name>-final-<time>`) is no "later"
    # than a regular one made after it the same day
    manifests = sorted((k for k in listing if k.endswith(MANIFEST_SUFFIX)), key=_time_then_key)
    if which in ("latest", "", None):
        for mkey in reversed(manifests):
            manifest = offsite.get_json(mkey)
            if isinstance(manifest, dict) and manifest.get("key") in listing:
                return integrity.verify(manifest, passphrase, mkey)
        raise NotFound("no complete backup in the bucket")
    base = strip_suffix(which)
    for mkey in manifests:
        if mkey.rsplit("/", 1)[-1] == base + MANIFEST_SUFFIX:
            return integrity.verify(offsite.get_json(mkey), passphrase, mkey)
    raise NotFound(f"no backup {which!r} in the bucket (see `botstack-backup list`)")


def _damaged(b: LocalBackup) -> ChecksumError:
    return ChecksumError(f"the local backup {b.name} is damaged: {b.damage}; not restoring it")


def _local(store: LocalStore, which: Optional[str], passphrase: str) -> Fetched:
    """The local copy asked for; a damaged one is reported as damaged, with the reason."""
    backups = [b for b in store.backups() if b.manifest_path or b.dump_path]
    good = [b for b in backups if b.good]
    if which in ("latest", "", None):
        if not good:
            if backups:
                raise _damaged(backups[-1])
            raise NotFound(f"no local backup in {store.dir}")
        b = good[-1]
        for newer in backups[backups.index(b) + 1:]:
            log.warning("restore: skipping the damaged local backup %s (%s)", newer.name, newer.damage)
    else:
        match = [x for x in backups if x.name == strip_suffix(which)]
        if not match:
            raise NotFound(f"no local backup {which!r} in {store.dir}")
        b = match[0]
        if not b.good:
            raise _damaged(b)
    if b.dump_path is None or b.manifest_path is None:  # b.good says both are there
        raise _damaged(b)
    return Fetched(b.dump_path, integrity.verify(b.manifest, passphrase, b.manifest_path))


def _download(tool: Context, which: Optional[str], workdir: str) -> Fetched:
    offsite = Offsite(tool.cfg)
    manifest = _resolve_offsite(offsite, which, tool.cfg.passphrase)
    path = os.path.join(workdir, manifest["name"] + DUMP_SUFFIX)
    with open(path, "wb") as f:
        offsite.download(manifest["key"], f)
    return Fetched(path, manifest)


def fetch(tool: Context, which: Optional[str], workdir: str, from_local: bool) -> Fetched:
    """Get the encrypted dump into workdir (or point at the local copy); verify its checksum."""
    if from_local:
        got = _local(tool.store, which, tool.cfg.passphrase)
    else:
        got = _download(tool, which, workdir)
    digest = hashlib.sha256()
    with open(got.path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    expected = got.manifest.get("sha256_encrypted")
    if digest.hexdigest() != expected:
        raise ChecksumError(f"checksum mismatch for {got.manifest.get('name')}: the encrypted file's sha256 "
                            f"is {digest.hexdigest()[:16]}..., the manifest says "
                            f"{str(expected)[:16]}...; not restoring it")
    return got


def decrypt_verified(tool: Context, got: Fetched, workdir: str) -> str:
    """Decrypt into workdir; the plaintext's sha256 must match the manifest."""
    plain = os.path.join(workdir, got.manifest["name"] + ".dump")
    digest = hashlib.sha256()
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(got.path, "rb") as src:
        with gpg.decryptor(tool.cfg.passphrase, src, subprocess.PIPE) as dec:
            stdout = dec.stdout()
            for chunk in iter(lambda: stdout.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            dec.finish()
    if digest.hexdigest() != got.manifest.get("sha256_plain"):
        raise ChecksumError(f"checksum mismatch after decryption of {got.manifest.get('name')}; not restoring it")
    return plain


def pg_restore(plain: str, target_url: str, clean: bool = True) -> None:
    """`clean` False: objects that exist already make it fail (and, in one transaction, change nothing)."""
    url_nopw, pgenv = pg.split_url(target_url)
    try:
        role = pg.restore_role(target_url)
    except Exception as exc:
        raise BackupError(f"cannot connect to the target database: {exc}") from None
    proc = subprocess.run(
        [pg.tool_path("pg_restore"), *(["--clean", "--if-exists"] if clean else []), "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error", "--no-password", f"--dbname={url_nopw}",
         *([f"--role={role}"] if role else []), plain],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=pg.child_env(pgenv))
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupError("pg_restore failed: " + (msg[-1] if msg else f"exit {proc.returncode}"))


@contextmanager
def workdir(store: LocalStore) -> Iterator[str]:
    store.ensure_dir()
    d = tempfile.mkdtemp(prefix="restore-", dir=store.dir)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _refuse_non_empty(target: str, force: bool) -> None:
    try:
        objects = pg.user_object_count(target)
    except BackupError:
        raise
    except Exception as exc:
        raise BackupError(f"cannot connect to the target database: {exc}") from None
    if objects and not force:
        raise RefusedError(
            f"the target database {pg.dbname(target)!r} is not empty ({objects} tables, views "
            "or sequences); pass --force to replace its contents with the backup")


def _restore_locked(tool: Context, which: str, target: str, force: bool, from_local: bool,
                    attempt: Attempt) -> dict:
    _refuse_non_empty(target, force)
    with workdir(tool.store) as work:
        got = fetch(tool, which, work, from_local)
        attempt.object_key = got.manifest.get("key")
        plain = decrypt_verified(tool, got, work)
        pg_restore(plain, target)
    return got.manifest


def restore(tool: Context, which: str = "latest", target_url: Optional[str] = None,
            force: bool = False, from_local: bool = False) -> dict:
    started = tool.now()
    target = target_url or tool.cfg.database_url
    attempt = Attempt()
    try:
        if not target:
            raise ConfigError("no target database (DATABASE_URL or --target-url)")
        tool.cfg.require_passphrase()
        with tool.lock():
            manifest = _restore_locked(tool, which, target, force, from_local, attempt)
    except BusyError:
        raise
    except OffsiteError as exc:
        hint = OffsiteError(f"{exc} (Spaces unreachable? `restore --from-local` uses the copy on the volume)")
        tool.fail("restore", started, hint, object_key=attempt.object_key)
        raise hint from exc
    except BackupError as exc:
        tool.fail("restore", started, exc, object_key=attempt.object_key)
        raise
    detail = f"restored {manifest['name']} into {pg.dbname(target)!r}"
    log.info("%s", detail)
    tool.recorder.record("restore", started, True, object_key=manifest.get("key"),
                         size_bytes=manifest.get("size_encrypted"), detail=detail)
    return manifest
