"""Fetching a backup (offsite or local), verifying and decrypting it, and `restore`."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile

import psycopg
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Tuple

from . import delivered, freshness, gpg, integrity, pg, safety
from .errors import (BackupError, BusyError, ChecksumError, ConfigError, ForgedError, NotFound, OffsiteError,
                     RefusedError)
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


def _pg_restore_argv(target_url: str, clean: bool = True) -> Tuple[List[str], dict]:
    url_nopw, pgenv = pg.split_url(target_url)
    try:
        role = pg.restore_role(target_url)
    except Exception as exc:
        raise BackupError(f"cannot connect to the target database: {exc}") from None
    # clean False: an object that exists already fails it (and, in one transaction, changes nothing)
    return ([pg.tool_path("pg_restore"), *(["--clean", "--if-exists"] if clean else []), "--no-owner", "--no-privileges",
             "--single-transaction", "--exit-on-error", "--no-password", f"--dbname={url_nopw}",
             *([f"--role={role}"] if role else [])], pg.child_env(pgenv))


class _Restorer:
    """pg_restore reading the dump from its stdin, in one transaction."""

    def __init__(self, target_url: str, clean: bool = True):
        argv, env = _pg_restore_argv(target_url, clean)
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.err, env=env)

    def feed(self, chunk: bytes) -> None:
        try:
            self.proc.stdin.write(chunk)  # type: ignore[union-attr]  # started with stdin=PIPE
        except BrokenPipeError:  # pg_restore stopped (--exit-on-error): its message says why
            self.proc.wait()
            raise self._failed() from None

    def commit(self) -> None:
        """End of input: pg_restore finishes the restore and commits."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            raise self._failed()

    def abort(self) -> None:
        """Never committed: the server rolls the whole restore back."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _failed(self) -> BackupError:
        self.err.seek(0)
        msg = self.err.read().decode("utf-8", "replace").strip().splitlines()
        return BackupError("pg_restore failed: " + (msg[-1] if msg else f"exit {self.proc.returncode}"))

    def close(self) -> None:
        self.abort()
        self.err.close()


def restore_stream(tool: Context, got: Fetched, target_url: str,
                   before_first_byte: Callable[[], None] = lambda: None, clean: bool = True) -> None:
    """Decrypt straight into pg_restore: no plaintext file, decryption and restore overlap.

    The ciphertext's sha256 was checked against the authenticated manifest before (fetch). gpg's
    status must show passphrase-encrypted, integrity-protected data before its first byte reaches
    the database (`before_first_byte` runs then: the drill makes its scratch database), and the last
    chunk is held back until gpg confirmed the message and the dump's sha256 and size match the
    manifest: without it pg_restore cannot finish, so any mismatch is rolled back, never committed."""
    with open(got.path, "rb") as src, gpg.decryptor(tool.cfg.passphrase, src, subprocess.PIPE) as dec:
        problem = gpg.not_sealed(dec.early_status(), exited_ok=False)
        if problem:
            raise ForgedError(f"refused: the backup {problem}; not restoring it")
        out = dec.stdout()
        digest, size = hashlib.sha256(), 0
        held: Optional[bytes] = None
        restorer: Optional[_Restorer] = None
        try:
            for chunk in iter(lambda: out.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                if held is not None:
                    if restorer is None:
                        before_first_byte()
                        restorer = _Restorer(target_url, clean)
                    restorer.feed(held)
                held = chunk
            dec.finish()
            if digest.hexdigest() != got.manifest["sha256_plain"] or size != got.manifest["size_plain"]:
                raise ChecksumError(f"checksum mismatch after decryption of {got.manifest['name']}; "
                                    "not restored (rolled back)")
            if held is None:
                raise BackupError(f"the backup {got.manifest['name']} decrypted to nothing")
            if restorer is None:
                before_first_byte()
                restorer = _Restorer(target_url, clean)
            restorer.feed(held)
            restorer.commit()
        finally:
            if restorer is not None:
                restorer.close()


@contextmanager
def workdir(store: LocalStore) -> Iterator[str]:
    store.ensure_dir()
    d = tempfile.mkdtemp(prefix="restore-", dir=store.dir)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _refuse_non_empty(target: str, force: bool) -> int:
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
    return int(objects)


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


def _drop_tables_the_backup_lacks(manifest: Manifest, target: str) -> str:
    """Tables made after the backup (a later migration): `pg_restore --clean` would leave them, and one
    with a foreign key to a table of the backup would stop the restore. They go first (their rows are
    in the safety dump); the bot's migrations make them again."""
    try:
        extra = sorted(set(pg.table_names(target)) - set(manifest["tables"]))
        if extra:
            pg.drop_tables(target, extra)
    except psycopg.Error as exc:
        raise BackupError(f"cannot drop the tables the backup lacks: {exc}") from None
    if not extra:
        return ""
    log.warning("restore: dropped %d table(s) the backup lacks: %s", len(extra), ", ".join(extra))
    return f"; dropped the tables the backup lacks: {', '.join(extra)}"


def _taken_back(tool: Context, manifest: Manifest, target: str) -> str:
    """What restoring this backup takes back, said before it happens (and recorded)."""
    created = integrity.created_at(manifest)
    age = tool.now() - created
    changes = pg.changes_since(target, created)
    text = (f"{manifest['name']} was made {created:%Y-%m-%d %H:%M} UTC, {age.total_seconds() / 3600:.1f} h ago"
            + (f"; since then {changes[0]} reminder(s) were created (gone after the restore) and "
               f"{changes[1]} delivered" if changes else ""))
    log.warning("restore: %s", text)
    return "; " + text


def _keep_delivered(target: str, sent: delivered.Delivered) -> str:
    """The reminders delivered after the backup stay delivered (not sent again as late)."""
    try:
        kept = delivered.keep(target, sent)
    except psycopg.Error as exc:
        # the restore itself is done: say what could not be kept rather than fail it
        log.warning("restore: could not keep the deliveries made since the backup: %s", exc)
        return (f"; the {len(sent.reminders)} reminder(s) delivered since could not be kept delivered "
                f"({str(exc).splitlines()[0][:120]}): they may be sent again, marked late")
    if kept:
        log.warning("restore: %d reminder(s) delivered after the backup kept delivered", kept)
    return f"; {kept} reminder(s) delivered after the backup kept delivered" if kept else ""


def _restore_locked(tool: Context, which: str, target: str, force: bool, from_local: bool,
                    attempt: Attempt, accept_older: bool) -> Tuple[Manifest, str]:
    objects = _refuse_non_empty(target, force)
    with workdir(tool.store) as work:
        got = fetch(tool, which, work, from_local)
        attempt.object_key = got.manifest["key"]
        note = report_skipped(tool, "restore", got)
        check_freshness(tool, which, got, accept_older)
        notes = [note]

        since: List[delivered.Delivered] = []

        def prepare() -> None:
            """Once gpg showed sealed data, before its first byte: what the restore replaces is kept."""
            if objects:
                notes.append(_taken_back(tool, got.manifest, target))
                sent = delivered.read_since(target, integrity.created_at(got.manifest))
                if sent is None:
                    notes.append("; what was delivered since could not be read: reminders delivered after "
                                 "the backup may be sent again, marked late")
                else:
                    since.append(sent)
                notes.append(f"; safety dump of the replaced database: {safety.safety_dump(tool, target)}")
                notes.append(_drop_tables_the_backup_lacks(got.manifest, target))
        restore_stream(tool, got, target, before_first_byte=prepare)
        for sent in since:
            notes.append(_keep_delivered(target, sent))
        note = "".join(notes)
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
