"""The backup operations: run, upload backlog, list, restore, prune, drill."""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import __version__, gpg, pg
from .config import Config
from .errors import (EXIT_LOCAL_ONLY, EXIT_OK, BackupError, BusyError, ChecksumError, ConfigError,
                     DrillMismatch, NotFound, OffsiteError, RefusedError, VersionMismatch)
from .notify import Alerter, Recorder
from .offsite import FollowReader, Offsite

log = logging.getLogger("botstack_backup")

CHUNK = 1024 * 1024
DUMP_SUFFIX = ".dump.gpg"
MANIFEST_SUFFIX = ".manifest.json"
_NAME_RE = re.compile(r"^(?P<name>.+-(?P<ts>\d{8}T\d{6}Z))$")
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
        if not self.manifest or not self.dump_path:
            return False
        try:
            return os.path.getsize(self.dump_path) == int(self.manifest.get("size_encrypted", -1))
        except OSError:
            return False

    @property
    def key(self) -> Optional[str]:
        return self.manifest.get("key") if self.manifest else None

    @property
    def manifest_key(self) -> Optional[str]:
        return self.manifest.get("manifest_key") if self.manifest else None

    def paths(self) -> List[str]:
        return [p for p in (self.dump_path, self.manifest_path) if p]


@dataclass
class RunResult:
    name: str
    key: str
    size: int
    uploaded: bool
    manifest: dict
    upload_error: Optional[str] = None
    backlog_uploaded: List[str] = field(default_factory=list)
    pruned: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.uploaded else EXIT_LOCAL_ONLY


class BackupTool:
    def __init__(self, cfg: Config, now: Callable[[], dt.datetime] = utcnow,
                 alerter: Optional[Alerter] = None, recorder: Optional[Recorder] = None):
        self.cfg = cfg
        self.now = now
        self.alerter = alerter or Alerter(cfg)
        self.recorder = recorder or Recorder(cfg.database_url)
        # seconds to wait for the lock when another operation holds it (0: fail at once with
        # BusyError, what the scheduler wants; the CLI waits, see --wait)
        self.lock_wait = 0.0

    # ------------------------------------------------------------------------------------------
    # local directory
    # ------------------------------------------------------------------------------------------
    @property
    def dir(self) -> str:
        return self.cfg.backup_dir

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot create the backup directory {self.dir}: {exc.strerror}") from exc
        if not os.access(self.dir, os.W_OK):
            raise BackupError(f"the backup directory {self.dir} is not writable")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One backup operation at a time (dump, restore, drill, prune), across processes."""
        self._ensure_dir()
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + max(0.0, self.lock_wait)
            announced = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise BusyError("another backup operation is running (lock held); not starting a second one")
                if not announced:
                    log.info("another backup operation is running; waiting up to %.0f s for it", self.lock_wait)
                    announced = True
                time.sleep(0.5)
            yield
        finally:
            os.close(fd)

    def local_backups(self) -> List[LocalBackup]:
        """Local backups, oldest first (complete or not; `.partial` files are not listed)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        found: Dict[str, LocalBackup] = {}
        for fn in names:
            if fn.endswith(DUMP_SUFFIX):
                base, kind = fn[: -len(DUMP_SUFFIX)], "dump"
            elif fn.endswith(MANIFEST_SUFFIX):
                base, kind = fn[: -len(MANIFEST_SUFFIX)], "manifest"
            else:
                continue
            m = _NAME_RE.match(base)
            if not m:
                continue
            try:
                created = parse_ts(m.group("ts"))
            except ValueError:
                continue
            b = found.setdefault(base, LocalBackup(base, created, None, None))
            path = os.path.join(self.dir, fn)
            if kind == "dump":
                b.dump_path = path
            else:
                b.manifest_path = path
                try:
                    with open(path) as f:
                        b.manifest = json.load(f)
                except (OSError, ValueError):
                    b.manifest = None
        return sorted(found.values(), key=lambda b: (b.created_at, b.name))

    def newest_good_local(self) -> Optional[LocalBackup]:
        good = [b for b in self.local_backups() if b.good]
        return good[-1] if good else None

    def _keys_for(self, created: dt.datetime) -> Tuple[str, str, str]:
        name = f"{self.cfg.name}-{fmt_ts(created)}"
        base = f"{self.cfg.prefix}{created:%Y/%m/%d}/{name}"
        return name, base + DUMP_SUFFIX, base + MANIFEST_SUFFIX

    # ------------------------------------------------------------------------------------------
    # reporting
    # ------------------------------------------------------------------------------------------
    def _fail(self, kind: str, started: dt.datetime, exc: BaseException, **record) -> None:
        detail = str(exc) or type(exc).__name__
        log.error("%s failed: %s", kind, detail)
        self.recorder.record(kind, started, False, detail=detail, **record)
        self.alerter.send(f"\u26a0\ufe0f botstack {kind} FAILED\n{detail}")

    # ------------------------------------------------------------------------------------------
    # versions
    # ------------------------------------------------------------------------------------------
    def check_versions(self, conn) -> Tuple[str, str, int]:
        dump_major, dump_text = pg.tool_version("pg_dump")
        server_major, server_num, server_text = pg.server_version(conn)
        if dump_major != server_major:
            raise VersionMismatch(
                f"version mismatch: {dump_text} (major {dump_major}) but the server is "
                f"PostgreSQL {server_text} (major {server_major}); the backup image must be built "
                f"from the same POSTGRES_IMAGE as the database")
        return dump_text, server_text, server_num

    # ------------------------------------------------------------------------------------------
    # run
    # ------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        started = self.now()
        try:
            self.cfg.require_database()
            self.cfg.require_passphrase()
            with self.lock():
                result = self._run_locked(started)
        except BusyError:
            raise
        except BackupError as exc:
            self._fail("backup", started, exc)
            raise
        except Exception as exc:  # unexpected: still loud
            self._fail("backup", started, BackupError(f"unexpected error: {type(exc).__name__}: {exc}"))
            raise
        return result

    def _offsite_or_none(self) -> Tuple[Optional[Offsite], Optional[str]]:
        try:
            return Offsite(self.cfg), None
        except ConfigError as exc:
            return None, str(exc)

    def _run_locked(self, started: dt.datetime) -> RunResult:
        created = started.astimezone(UTC).replace(microsecond=0)
        while True:  # names are timestamps: a second backup within the same second takes the next one
            name, key, manifest_key = self._keys_for(created)
            final = os.path.join(self.dir, name + DUMP_SUFFIX)
            if not os.path.exists(final) and not os.path.exists(os.path.join(self.dir, name + MANIFEST_SUFFIX)):
                break
            created += dt.timedelta(seconds=1)
        partial = final + ".partial"
        url_nopw, pgenv = pg.split_url(self.cfg.database_url)
        try:
            conn = pg.connect(self.cfg.database_url, autocommit=True)
        except Exception as exc:
            raise BackupError(f"cannot connect to the database: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
        t0 = time.monotonic()
        try:
            dump_text, server_text, server_num = self.check_versions(conn)
            # One snapshot for both the row counts and pg_dump, so the manifest matches the dump.
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            counts_box: dict = {}

            def count() -> None:
                try:
                    counts_box["counts"] = pg.row_counts(conn)
                except Exception as exc:  # reported below
                    counts_box["error"] = exc

            counter = threading.Thread(target=count, name="row-counts", daemon=True)
            stream = self._dump_encrypt(url_nopw, pgenv, snapshot, partial, key, counter)
            counter.join()
            if "error" in counts_box:
                raise BackupError(f"counting rows failed: {counts_box['error']}")
            conn.execute("ROLLBACK")
        except BaseException:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise
        finally:
            conn.close()
        os.replace(partial, final)
        manifest = {
            "format": 1,
            "tool": f"botstack-backup {__version__}",
            "name": name,
            "key": key,
            "manifest_key": manifest_key,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "database": pg.dbname(self.cfg.database_url),
            "server_version": server_text,
            "server_version_num": server_num,
            "pg_dump_version": dump_text,
            "dump_format": "pg_dump custom (-Fc)",
            "encryption": "OpenPGP symmetric (gpg), AES-256",
            "sha256_plain": stream["sha_plain"],
            "size_plain": stream["size_plain"],
            "sha256_encrypted": stream["sha_enc"],
            "size_encrypted": stream["size_enc"],
            "duration_seconds": round(time.monotonic() - t0, 3),
            "tables": counts_box["counts"],
        }
        self._write_json(os.path.join(self.dir, name + MANIFEST_SUFFIX), manifest)
        upload_error = stream["upload_error"]
        offsite: Optional[Offsite] = stream["offsite"]
        if upload_error is None and offsite is not None:
            try:
                offsite.put_json(manifest_key, manifest)
            except OffsiteError as exc:
                upload_error = str(exc)
        uploaded = upload_error is None
        result = RunResult(name, key, stream["size_enc"], uploaded, manifest, upload_error)
        rows = sum(manifest["tables"].values())
        if uploaded:
            log.info("backup %s: %s, %d tables, %d rows, uploaded to %s", name,
                     human_size(stream["size_enc"]), len(manifest["tables"]), rows, key)
            self.recorder.record("backup", started, True, object_key=key, size_bytes=stream["size_enc"],
                                 uploaded=True, detail=f"{len(manifest['tables'])} tables, {rows} rows")
        else:
            detail = f"backup {name} kept locally only: {upload_error}"
            log.error("%s", detail)
            self.recorder.record("backup", started, True, object_key=key, size_bytes=stream["size_enc"],
                                 uploaded=False, detail=detail)
            self.alerter.send(f"\u26a0\ufe0f botstack backup NOT UPLOADED\n{detail}\n"
                              "The local copy is kept; the next run uploads it.")
        # Whatever earlier runs could not upload, and local retention.
        listing = None
        if offsite is not None and uploaded:
            try:
                listing = set(offsite.list())
                result.backlog_uploaded = self._upload_backlog(offsite, listing, skip=name)
                listing.update(b.manifest_key for b in self.local_backups() if b.name in result.backlog_uploaded)
            except OffsiteError as exc:
                listing = None
                log.error("uploading the backlog failed: %s", exc)
        result.pruned = self._prune_locked(listing)
        return result

    def _dump_encrypt(self, url_nopw: str, pgenv: dict, snapshot: str, partial: str, key: str,
                      counter: threading.Thread) -> dict:
        """pg_dump -Fc | sha256 | gpg | (sha256, local file, streaming upload)."""
        self._ensure_dir()
        t_start = time.monotonic()
        sha_plain, sha_enc = hashlib.sha256(), hashlib.sha256()
        sizes = {"plain": 0, "enc": 0}
        errors: dict = {}
        dump_err = tempfile.TemporaryFile()
        dump = subprocess.Popen(
            [pg.tool_path("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-password",
             "--lock-wait-timeout=120000",  # ms: give up instead of hanging behind an exclusive lock
             f"--dbname={url_nopw}"],
            stdout=subprocess.PIPE, stderr=dump_err, env=pg.child_env(pgenv))
        offsite, offsite_problem = self._offsite_or_none()
        follower: Optional[FollowReader] = None
        uploader: Optional[threading.Thread] = None
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        out = os.fdopen(fd, "wb", buffering=0)
        try:
            with gpg.encryptor(self.cfg.passphrase, subprocess.PIPE, subprocess.PIPE) as enc:
                def pump() -> None:
                    try:
                        while True:
                            chunk = dump.stdout.read(CHUNK)
                            if not chunk:
                                break
                            sha_plain.update(chunk)
                            sizes["plain"] += len(chunk)
                            enc.proc.stdin.write(chunk)
                    except Exception as exc:
                        errors["pump"] = exc
                    finally:
                        try:
                            enc.proc.stdin.close()
                        except OSError:
                            pass

                pumper = threading.Thread(target=pump, name="dump-pump", daemon=True)
                pumper.start()
                counter.start()
                if offsite is not None:
                    follower = FollowReader(partial)

                    def upload() -> None:
                        try:
                            offsite.upload_stream(follower, key)
                        except Exception as exc:
                            errors["upload"] = exc

                    uploader = threading.Thread(target=upload, name="upload", daemon=True)
                    uploader.start()
                while True:
                    chunk = enc.proc.stdout.read(CHUNK)
                    if not chunk:
                        break
                    sha_enc.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        n = out.write(view)
                        view = view[n:]
                    sizes["enc"] += len(chunk)
                    if follower is not None:
                        follower.advance(len(chunk))
                pumper.join()
                enc.finish()
            rc = dump.wait()
            if rc != 0:
                dump_err.seek(0)
                msg = dump_err.read().decode("utf-8", "replace").strip().splitlines()
                raise BackupError("pg_dump failed: " + (msg[-1] if msg else f"exit {rc}"))
            if "pump" in errors:
                raise BackupError(f"streaming the dump failed: {errors['pump']}")
            if sizes["plain"] == 0:
                raise BackupError("pg_dump produced no output")
            t_dumped = time.monotonic()
            os.fsync(out.fileno())
            log.debug("dump+encrypt %.2f s, fsync %.2f s", t_dumped - t_start, time.monotonic() - t_dumped)
        except BaseException:
            if dump.poll() is None:
                dump.kill()
                dump.wait()
            if follower is not None:
                follower.finish(aborted=True)
            if uploader is not None:
                uploader.join(60)
            raise
        finally:
            out.close()
            dump_err.close()
            if dump.stdout:
                dump.stdout.close()
        upload_error = offsite_problem and f"Spaces not configured ({offsite_problem})"
        if follower is not None:
            t_wait = time.monotonic()
            follower.finish()
            uploader.join()
            follower.close()
            log.debug("waited %.2f s for the upload to finish", time.monotonic() - t_wait)
            if "upload" in errors:
                exc = errors["upload"]
                upload_error = str(exc) if isinstance(exc, BackupError) else f"upload failed: {exc}"
        return {"sha_plain": sha_plain.hexdigest(), "size_plain": sizes["plain"],
                "sha_enc": sha_enc.hexdigest(), "size_enc": sizes["enc"],
                "upload_error": upload_error, "offsite": offsite}

    @staticmethod
    def _write_json(path: str, data: dict) -> None:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _upload_backlog(self, offsite: Offsite, listing: Set[str], skip: str = "") -> List[str]:
        """Upload every complete local backup whose manifest is not in the bucket yet."""
        done = []
        for b in self.local_backups():
            if b.name == skip or not b.good or not b.manifest_key or b.manifest_key in listing:
                continue
            started = self.now()
            try:
                offsite.upload_file(b.dump_path, b.key)
                offsite.put_json(b.manifest_key, b.manifest)
            except OffsiteError as exc:
                self._fail("upload", started, exc, object_key=b.key, uploaded=False)
                raise
            log.info("uploaded the backlog backup %s", b.name)
            self.recorder.record("upload", started, True, object_key=b.key,
                                 size_bytes=b.manifest.get("size_encrypted"), uploaded=True,
                                 detail=f"backlog: {b.name} uploaded after an earlier failure")
            done.append(b.name)
        return done

    def upload_backlog(self) -> List[str]:
        with self.lock():
            offsite = Offsite(self.cfg)
            return self._upload_backlog(offsite, set(offsite.list()))

    # ------------------------------------------------------------------------------------------
    # prune (local retention)
    # ------------------------------------------------------------------------------------------
    def prune(self, offsite_keys: Optional[Set[str]] = None) -> List[str]:
        started = self.now()
        try:
            with self.lock():
                return self._prune_locked(offsite_keys)
        except BusyError:
            raise
        except BackupError as exc:
            self._fail("prune", started, exc)
            raise

    def _prune_locked(self, offsite_keys: Optional[Set[str]]) -> List[str]:
        """Delete local copies older than the retention; NEVER the newest good backup.

        A complete backup that is known not to be offsite yet is kept up to twice the retention."""
        now = self.now()
        started = now
        keep_days = self.cfg.local_retention_days
        cutoff = now - dt.timedelta(days=keep_days)
        backups = self.local_backups()
        good = [b for b in backups if b.good]
        newest_good = good[-1] if good else None
        deleted: List[str] = []
        for b in backups:
            if newest_good is not None and b.name == newest_good.name:
                continue
            if b.created_at >= cutoff:
                continue
            if (b.good and offsite_keys is not None and b.manifest_key not in offsite_keys
                    and b.created_at >= now - dt.timedelta(days=2 * keep_days)):
                log.warning("prune: keeping %s, it is not in Spaces yet", b.name)
                continue
            for p in b.paths():
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            deleted.append(b.name)
        # leftovers of interrupted runs
        for fn in os.listdir(self.dir) if os.path.isdir(self.dir) else []:
            if fn.endswith((".partial", ".tmp")) or fn.startswith("restore-"):
                p = os.path.join(self.dir, fn)
                try:
                    if time.time() - os.path.getmtime(p) > 86400:
                        shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
                except OSError:
                    pass
        if deleted:
            log.info("prune: deleted %d local backup(s) older than %d days: %s", len(deleted), keep_days,
                     ", ".join(deleted))
            self.recorder.record("prune", started, True,
                                 detail=f"deleted {len(deleted)} local backup(s) older than {keep_days} days; "
                                        f"kept {len(backups) - len(deleted)}")
        return deleted

    # ------------------------------------------------------------------------------------------
    # list
    # ------------------------------------------------------------------------------------------
    def list(self, offsite: bool = True) -> dict:
        """{"backups": [{"name", "created_at", "size", "local", "offsite", "complete"}...], "offsite_error"}"""
        rows: Dict[str, dict] = {}
        for b in self.local_backups():
            rows[b.name] = {"name": b.name, "created_at": b.created_at.isoformat(), "key": b.key,
                            "size": b.manifest.get("size_encrypted") if b.manifest else None,
                            "local": b.good, "offsite": False, "offsite_complete": False}
        offsite_error = None
        if offsite:
            try:
                listing = Offsite(self.cfg).list()
                for key, info in listing.items():
                    base = key.rsplit("/", 1)[-1]
                    for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
                        if base.endswith(suffix):
                            base = base[: -len(suffix)]
                            break
                    else:
                        continue
                    m = _NAME_RE.match(base)
                    if not m:
                        continue
                    row = rows.setdefault(base, {"name": base, "created_at": parse_ts(m.group("ts")).isoformat(),
                                                 "key": None, "size": None, "local": False,
                                                 "offsite": False, "offsite_complete": False})
                    if key.endswith(DUMP_SUFFIX):
                        row["key"], row["offsite"] = key, True
                        row["size"] = row["size"] or info["size"]
                    else:
                        row["offsite_complete"] = True
            except (OffsiteError, ConfigError) as exc:
                offsite_error = str(exc)
        ordered = sorted(rows.values(), key=lambda r: r["created_at"])
        for r in ordered:
            r["offsite_complete"] = r["offsite_complete"] and r["offsite"]
        return {"backups": ordered, "offsite_error": offsite_error}

    # ------------------------------------------------------------------------------------------
    # fetching a backup (offsite or local) and restoring it
    # ------------------------------------------------------------------------------------------
    def _resolve_offsite(self, offsite: Offsite, which: str) -> Tuple[str, dict]:
        listing = offsite.list()
        manifests = sorted(k for k in listing if k.endswith(MANIFEST_SUFFIX))
        if which in ("latest", "", None):
            for mkey in reversed(manifests):
                manifest = offsite.get_json(mkey)
                if manifest.get("key") in listing:
                    return mkey, manifest
            raise NotFound("no complete backup in the bucket")
        base = which
        for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        base = base.rsplit("/", 1)[-1]
        for mkey in manifests:
            if mkey.rsplit("/", 1)[-1] == base + MANIFEST_SUFFIX:
                return mkey, offsite.get_json(mkey)
        raise NotFound(f"no backup {which!r} in the bucket (see `botstack-backup list`)")

    def _fetch(self, which: str, workdir: str, from_local: bool) -> Tuple[str, dict]:
        """Get the encrypted dump into workdir (or point at the local copy); verify its checksum."""
        if from_local:
            backups = [b for b in self.local_backups() if b.good]
            if which in ("latest", "", None):
                if not backups:
                    raise NotFound(f"no complete local backup in {self.dir}")
                b = backups[-1]
            else:
                base = which.rsplit("/", 1)[-1]
                for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
                    if base.endswith(suffix):
                        base = base[: -len(suffix)]
                match = [x for x in backups if x.name == base]
                if not match:
                    raise NotFound(f"no complete local backup {which!r} in {self.dir}")
                b = match[0]
            path, manifest = b.dump_path, b.manifest
        else:
            offsite = Offsite(self.cfg)
            _, manifest = self._resolve_offsite(offsite, which)
            path = os.path.join(workdir, manifest["name"] + DUMP_SUFFIX)
            with open(path, "wb") as f:
                offsite.download(manifest["key"], f)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        if digest.hexdigest() != manifest.get("sha256_encrypted"):
            raise ChecksumError(f"checksum mismatch for {manifest.get('name')}: the encrypted file's sha256 "
                                f"is {digest.hexdigest()[:16]}..., the manifest says "
                                f"{str(manifest.get('sha256_encrypted'))[:16]}...; not restoring it")
        return path, manifest

    def _decrypt_verified(self, path: str, manifest: dict, workdir: str) -> str:
        plain = os.path.join(workdir, manifest["name"] + ".dump")
        digest = hashlib.sha256()
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            with gpg.decryptor(self.cfg.passphrase, src, subprocess.PIPE) as dec:
                for chunk in iter(lambda: dec.proc.stdout.read(CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                dec.finish()
        if digest.hexdigest() != manifest.get("sha256_plain"):
            raise ChecksumError(f"checksum mismatch after decryption of {manifest.get('name')}; not restoring it")
        return plain

    def _pg_restore(self, plain: str, target_url: str) -> None:
        url_nopw, pgenv = pg.split_url(target_url)
        proc = subprocess.run(
            [pg.tool_path("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
             "--single-transaction", "--exit-on-error", "--no-password", f"--dbname={url_nopw}", plain],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=pg.child_env(pgenv))
        if proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise BackupError("pg_restore failed: " + (msg[-1] if msg else f"exit {proc.returncode}"))

    @contextmanager
    def _workdir(self) -> Iterator[str]:
        self._ensure_dir()
        d = tempfile.mkdtemp(prefix="restore-", dir=self.dir)
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def restore(self, which: str = "latest", target_url: Optional[str] = None, force: bool = False,
                from_local: bool = False) -> dict:
        started = self.now()
        target = target_url or self.cfg.database_url
        manifest: dict = {}
        try:
            if not target:
                raise ConfigError("no target database (DATABASE_URL or --target-url)")
            self.cfg.require_passphrase()
            with self.lock():
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
                with self._workdir() as work:
                    path, manifest = self._fetch(which, work, from_local)
                    plain = self._decrypt_verified(path, manifest, work)
                    self._pg_restore(plain, target)
        except BusyError:
            raise
        except OffsiteError as exc:
            hint = OffsiteError(f"{exc} (Spaces unreachable? `restore --from-local` uses the copy on the volume)")
            self._fail("restore", started, hint, object_key=manifest.get("key"))
            raise hint from exc
        except BackupError as exc:
            self._fail("restore", started, exc, object_key=manifest.get("key"))
            raise
        detail = f"restored {manifest['name']} into {pg.dbname(target)!r}"
        log.info("%s", detail)
        self.recorder.record("restore", started, True, object_key=manifest.get("key"),
                             size_bytes=manifest.get("size_encrypted"), detail=detail)
        return manifest

    # ------------------------------------------------------------------------------------------
    # drill
    # ------------------------------------------------------------------------------------------
    def drill(self) -> dict:
        """Restore the latest offsite backup into a scratch database and compare row counts."""
        started = self.now()
        t0 = time.monotonic()
        manifest: dict = {}
        try:
            self.cfg.require_database()
            self.cfg.require_passphrase()
            with self.lock(), self._workdir() as work:
                path, manifest = self._fetch("latest", work, from_local=False)
                plain = self._decrypt_verified(path, manifest, work)
                scratch = f"botstack_drill_{fmt_ts(self.now()).lower()}"
                try:
                    pg.create_database(self.cfg.database_url, scratch)
                except Exception as exc:
                    raise BackupError(f"cannot create the scratch database {scratch}: {exc}") from None
                try:
                    scratch_url = pg.with_dbname(self.cfg.database_url, scratch)
                    self._pg_restore(plain, scratch_url)
                    with pg.connect(scratch_url) as conn:
                        counts = pg.row_counts(conn)
                finally:
                    try:
                        pg.drop_database(self.cfg.database_url, scratch)
                    except Exception as exc:
                        log.error("drill: could not drop the scratch database %s: %s", scratch, exc)
                expected = manifest.get("tables") or {}
                diffs = [f"{t}: backup {expected.get(t)} rows, restored {counts.get(t)}"
                         for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)]
                if diffs:
                    raise DrillMismatch(f"drill of {manifest['name']}: row counts differ: " + "; ".join(diffs[:10]))
        except BusyError:
            raise
        except BackupError as exc:
            self._fail("drill", started, exc, object_key=manifest.get("key"))
            raise
        secs = time.monotonic() - t0
        rows = sum(counts.values())
        age = started - dt.datetime.fromisoformat(manifest["created_at"].replace("Z", "+00:00"))
        detail = (f"drill OK: {manifest['name']} ({human_size(manifest.get('size_encrypted'))}, "
                  f"{age.total_seconds() / 3600:.1f} h old) restored into a scratch database in {secs:.1f} s; "
                  f"{len(counts)} tables, {rows} rows match the manifest")
        log.info("%s", detail)
        self.recorder.record("drill", started, True, object_key=manifest.get("key"),
                             size_bytes=manifest.get("size_encrypted"), detail=detail)
        self.alerter.send(f"\u2705 botstack backup {detail}")
        return {"manifest": manifest, "counts": counts, "seconds": secs}
