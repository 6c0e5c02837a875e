"""The dump pipeline: pg_dump -Fc | sha256 | gpg | (sha256, local file, streaming upload).

Every stage streams in fixed-size chunks, so memory stays flat whatever the database size."""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Optional, TypeVar

from . import gpg, pg
from .config import Config
from .errors import BackupError, ConfigError
from .offsite import FollowReader, Offsite
from .store import CHUNK

log = logging.getLogger("botstack_backup")

T = TypeVar("T")


class Background(threading.Thread, Generic[T]):
    """Runs `fn` in a daemon thread and keeps its result or the exception it raised."""

    def __init__(self, fn: Callable[[], T], name: str):
        super().__init__(name=name, daemon=True)
        self._fn = fn
        self.result: Optional[T] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.result = self._fn()
        except Exception as exc:  # the owner reports it
            self.error = exc


@dataclass
class DumpResult:
    sha256_plain: str
    size_plain: int
    sha256_encrypted: str
    size_encrypted: int
    offsite: Optional[Offsite]      # None when Spaces is not configured
    upload_error: Optional[str]     # None when the dump reached Spaces

    @property
    def uploaded(self) -> bool:
        return self.upload_error is None


def _chunks(src) -> Iterator[memoryview]:
    """What `src` yields, in slices of ONE reused buffer: each is valid until the next one."""
    buf = bytearray(CHUNK)
    with memoryview(buf) as view:
        while True:
            n = src.readinto(buf)
            if not n:
                return
            yield view[:n]


def _offsite_or_none(cfg: Config):
    try:
        return Offsite(cfg), None
    except ConfigError as exc:
        return None, str(exc)


class DumpPipeline:
    """One dump of one snapshot into `partial` (and Spaces at `key`, while it is written)."""

    def __init__(self, cfg: Config, snapshot: str, partial: str, key: str):
        self.cfg, self.snapshot, self.partial, self.key = cfg, snapshot, partial, key
        self.sha_plain, self.sha_enc = hashlib.sha256(), hashlib.sha256()
        self.size_plain = self.size_enc = 0
        self.offsite: Optional[Offsite] = None
        self.follower: Optional[FollowReader] = None
        self.uploader: Optional[Background[None]] = None
        self.pump_error: Optional[BaseException] = None

    def run(self, alongside: threading.Thread) -> DumpResult:
        """Dump, encrypt, write and upload; `alongside` starts once pg_dump holds the snapshot."""
        url_nopw, pgenv = pg.split_url(self.cfg.database_url)
        dump_err = tempfile.TemporaryFile()
        dump = subprocess.Popen(
            [pg.tool_path("pg_dump"), "--format=custom", f"--snapshot={self.snapshot}", "--no-password",
             "--lock-wait-timeout=120000",  # ms: give up instead of hanging behind an exclusive lock
             f"--dbname={url_nopw}"],
            stdout=subprocess.PIPE, stderr=dump_err, env=pg.child_env(pgenv))
        self.offsite, offsite_problem = _offsite_or_none(self.cfg)
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        out = os.fdopen(fd, "wb", buffering=0)
        try:
            self._encrypt(dump, out, alongside)
            self._check_dump(dump, dump_err)
            os.fsync(out.fileno())
        except BaseException:
            self._abort(dump)
            raise
        finally:
            out.close()
            dump_err.close()
            if dump.stdout:
                dump.stdout.close()
        upload_error = offsite_problem and f"Spaces not configured ({offsite_problem})"
        return DumpResult(self.sha_plain.hexdigest(), self.size_plain, self.sha_enc.hexdigest(),
                          self.size_enc, self.offsite, self._finish_upload() or upload_error)

    def _encrypt(self, dump: subprocess.Popen, out, alongside: threading.Thread) -> None:
        t0 = time.monotonic()
        with gpg.encryptor(self.cfg.passphrase, subprocess.PIPE, subprocess.PIPE) as enc:
            pumper = Background(lambda: self._pump(dump.stdout, enc.proc.stdin), "dump-pump")
            pumper.start()
            alongside.start()
            self._start_upload()
            self._write_ciphertext(enc.proc.stdout, out)
            pumper.join()
            enc.finish()
        self.pump_error = pumper.error
        log.debug("dump+encrypt %.2f s", time.monotonic() - t0)

    def _pump(self, src, dst) -> None:
        """pg_dump's output -> sha256 -> gpg's input."""
        try:
            for chunk in _chunks(src):
                self.sha_plain.update(chunk)
                self.size_plain += len(chunk)
                dst.write(chunk)
        finally:
            try:
                dst.close()
            except OSError:
                pass

    def _start_upload(self) -> None:
        if self.offsite is None:
            return
        self.follower = FollowReader(self.partial)
        offsite, follower = self.offsite, self.follower
        self.uploader = Background(lambda: offsite.upload_stream(follower, self.key), "upload")
        self.uploader.start()

    def _write_ciphertext(self, src, out) -> None:
        """gpg's output -> sha256 -> the local file (which the upload follows)."""
        for chunk in _chunks(src):
            self.sha_enc.update(chunk)
            done = 0
            while done < len(chunk):
                done += out.write(chunk[done:])
            self.size_enc += len(chunk)
            if self.follower is not None:
                self.follower.advance(len(chunk))

    def _check_dump(self, dump: subprocess.Popen, dump_err) -> None:
        rc = dump.wait()
        if rc != 0:
            dump_err.seek(0)
            msg = dump_err.read().decode("utf-8", "replace").strip().splitlines()
            raise BackupError("pg_dump failed: " + (msg[-1] if msg else f"exit {rc}"))
        if self.pump_error is not None:
            raise BackupError(f"streaming the dump failed: {self.pump_error}")
        if self.size_plain == 0:
            raise BackupError("pg_dump produced no output")

    def _abort(self, dump: subprocess.Popen) -> None:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
        if self.follower is not None:
            self.follower.finish(aborted=True)
        if self.uploader is not None:
            self.uploader.join(60)

    def _finish_upload(self) -> Optional[str]:
        """Wait for the streaming upload to take the last part; its error, if any."""
        if self.follower is None or self.uploader is None:
            return None
        t0 = time.monotonic()
        self.follower.finish()
        self.uploader.join()
        self.follower.close()
        log.debug("waited %.2f s for the upload to finish", time.monotonic() - t0)
        exc = self.uploader.error
        if exc is None:
            return None
        return str(exc) if isinstance(exc, BackupError) else f"upload failed: {exc}"
