"""Fetching a backup (offsite or local), verifying and decrypting it, and `restore`."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

from . import freshness, gpg, integrity, pg
from .errors import BackupError, BusyError, ChecksumError, ConfigError, NotFound, OffsiteError, RefusedError
from .integrity import Manifest
from .resolve import Reader, resolve
from .store import CHUNK, DUMP_SUFFIX, LocalBackup, LocalStore, strip_suffix
from .context import Context

log = logging.getLogger("botstack_backup")

# A restore or drill may verify more manifests than a prune (resolve.MAX_VERIFICATIONS): it is what
# the operator is waiting for; refusals are remembered either way.
RESTORE_VERIFICATIONS = 200


@dataclass
class Attempt:
    """What a failure report names: the backup's object, once it is known (and what was skipped)."""
    object_key: Optional[str] = None
    note: str = ""


@dataclass
class Fetched:
    """An encrypted dump on local disk whose sha256 matches its manifest."""
    path: str
    manifest: Manifest
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # newer manifests that failed verification
    local: bool = False


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
    return Fetched(b.dump_path, integrity.verify(b.manifest, passphrase, b.manifest_path), local=True)


def _download(tool: Context, which: Optional[str], workdir: str) -> Fetched:
    offsite = tool.offsite()
    got = resolve(Reader(tool, offsite, budget=RESTORE_VERIFICATIONS), offsite.list(), which)
    path = os.path.join(workdir, got.manifest["name"] + DUMP_SUFFIX)
    with open(path, "wb") as f:
        offsite.download(got.manifest["key"], f)
    return Fetched(path, got.manifest, got.skipped)


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


def pg_restore(plain: str, target_url: str) -> None:
    url_nopw, pgenv = pg.split_url(target_url)
    try:
        role = pg.restore_role(target_url)
    except Exception as exc:
        raise BackupError(f"cannot connect to the target database: {exc}") from None
    proc = subprocess.run(
        [pg.tool_path("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
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


def report_skipped(tool: Context, kind: str, got: Fetched) -> str:
    """Manifests newer than the backup taken that failed verification: alerted, never chosen.
    Returns a note for the operation's record."""
    if not got.skipped:
        return ""
    names = ", ".join(strip_suffix(k) for k, _ in got.skipped[:5]) + (" ..." if len(got.skipped) > 5 else "")
    note = (f"{len(got.skipped)} newer manifest(s) in the bucket failed verification and were skipped "
            f"({names}): {got.skipped[0][1]}")
    log.warning("%s: %s", kind, note)
    tool.alerter.send(f"\u26a0\ufe0f botstack {kind}: planted or damaged objects in the bucket\n{note}")
    return "; " + note


def check_freshness(tool: Context, which: str, got: Fetched, accept_older: bool) -> None:
    """`latest` must be the newest backup the tool knows of (see freshness.py)."""
    if which not in ("latest", "", None) or accept_older:
        return
    what = "the newest complete local copy" if got.local else "the newest authenticated backup in the bucket"
    freshness.refuse_older(tool, got.manifest, what, local=not got.local,
                           hint="; `--accept-older` restores the older one anyway")


def _restore_locked(tool: Context, which: str, target: str, force: bool, from_local: bool,
                    attempt: Attempt, accept_older: bool) -> Tuple[Manifest, str]:
    _refuse_non_empty(target, force)
    with workdir(tool.store) as work:
        got = fetch(tool, which, work, from_local)
        attempt.object_key = got.manifest["key"]
        note = report_skipped(tool, "restore", got)
        check_freshness(tool, which, got, accept_older)
        plain = decrypt_verified(tool, got, work)
        pg_restore(plain, target)
    return got.manifest, note


def restore(tool: Context, which: str = "latest", target_url: Optional[str] = None,
            force: bool = False, from_local: bool = False, accept_older: bool = False) -> Manifest:
    started = tool.now()
    target = target_url or tool.cfg.database_url
    attempt = Attempt()
    try:
        if not target:
            raise ConfigError("no target database (DATABASE_URL or --target-url)")
        tool.cfg.require_passphrase()
        with tool.lock():
            manifest, note = _restore_locked(tool, which, target, force, from_local, attempt, accept_older)
    except BusyError:
        raise
    except OffsiteError as exc:
        hint = OffsiteError(f"{exc} (Spaces unreachable? `restore --from-local` uses the copy on the volume)")
        tool.fail("restore", started, hint, object_key=attempt.object_key)
        raise hint from exc
    except BackupError as exc:
        tool.fail("restore", started, exc, object_key=attempt.object_key)
        raise
    except Exception as exc:  # unexpected: still a refusal that is told, never a silent crash
        unexpected = BackupError(f"unexpected error: {type(exc).__name__}: {exc}")
        tool.fail("restore", started, unexpected, object_key=attempt.object_key)
        raise unexpected from exc
    schema = manifest.get("schema_version")
    detail = (f"restored {manifest['name']} into {pg.dbname(target)!r}"
              + (f" at schema {schema} (the bot's start applies any later migration)" if schema else "") + note)
    log.info("%s", detail)
    tool.recorder.record("restore", started, True, object_key=manifest["key"],
                         size_bytes=manifest["size_encrypted"], detail=detail)
    return manifest
