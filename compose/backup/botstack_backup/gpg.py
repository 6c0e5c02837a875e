"""OpenPGP symmetric encryption with the standard `gpg` binary (AES-256, passphrase through a pipe).

The files are ordinary `gpg --symmetric` output: `gpg --decrypt FILE` with the passphrase decrypts
them without any of our code. The passphrase never appears on a command line or in a file: it is
written into a pipe whose read end gpg gets as `--passphrase-fd`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from typing import IO, Iterator, List, Optional

from .errors import BackupError, ForgedError

COMMON = ["--batch", "--yes", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--no-symkey-cache"]


class GpgProcess:
    """A running gpg with the passphrase already fed; use as a context manager."""

    def __init__(self, args: List[str], passphrase: str, stdin, stdout, status: bool = False):
        self.home = tempfile.mkdtemp(prefix="botstack-gnupg-")
        os.chmod(self.home, 0o700)
        # gpg's status lines come through a pipe as they happen: what kind of data it is decrypting
        # is known before its first byte of output (early_status), the verdict when it ends
        self._status_in: Optional[IO[str]] = None
        self._status_lines: List[str] = []
        gpg = shutil.which("gpg")
        if not gpg:
            shutil.rmtree(self.home, ignore_errors=True)
            raise BackupError("gpg is not on PATH")
        rfd, wfd = os.pipe()
        srfd, swfd = os.pipe() if status else (-1, -1)
        if status:
            args = ["--status-fd", str(swfd), *args]
        try:
            env = dict(os.environ, GNUPGHOME=self.home)
            self.proc = subprocess.Popen(
                [gpg, *COMMON, "--passphrase-fd", str(rfd), *args],
                stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                pass_fds=(rfd, swfd) if status else (rfd,), env=env,
            )
        except BaseException:
            os.close(wfd)
            if status:
                os.close(srfd)
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        finally:
            os.close(rfd)
            if status:
                os.close(swfd)
        if status:
            self._status_in = os.fdopen(srfd, "r", encoding="utf-8", errors="replace")
        with os.fdopen(wfd, "w") as w:
            w.write(passphrase)

    def early_status(self) -> List[List[str]]:
        """The status lines up to the first PLAINTEXT (what gpg says before it outputs anything), or
        all of them when gpg ends first."""
        while self._status_in is not None:
            line = self._status_in.readline()
            if not line:
                break
            self._status_lines.append(line)
            if line.startswith("[GNUPG:] PLAINTEXT"):
                break
        return self._parsed()

    def _parsed(self) -> List[List[str]]:
        return [line.split()[1:] for line in self._status_lines if line.startswith("[GNUPG:] ")]

    def stdout(self) -> IO[bytes]:
        """gpg's output (started with stdout=subprocess.PIPE)."""
        if self.proc.stdout is None:
            raise BackupError("gpg was started without an output pipe")
        return self.proc.stdout

    def finish(self) -> None:
        """Wait for gpg; raise with its message if it failed (or, when it reported its status, if
        what it decrypted was not passphrase-encrypted and integrity-protected)."""
        if self._status_in is not None:
            self._status_lines.extend(self._status_in.readlines())
        err = self.proc.stderr.read() if self.proc.stderr else b""
        rc = self.proc.wait()
        if self._status_in is not None:
            problem = not_sealed(self._status(), exited_ok=rc == 0)
            if problem:
                raise ForgedError(f"refused: the backup {problem}; not restoring it")
        if rc != 0:
            msg = err.decode("utf-8", "replace").strip().splitlines()
            raise BackupError("gpg failed: " + (msg[-1] if msg else f"exit {rc}"))

    def _status(self) -> List[List[str]]:
        return self._parsed()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._status_in is not None:
            self._status_in.close()
            self._status_in = None
        gpgconf = shutil.which("gpgconf")
        if gpgconf:  # gpg starts an agent in its home for symmetric encryption: stop it
            subprocess.run([gpgconf, "--homedir", self.home, "--kill", "gpg-agent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, GNUPGHOME=self.home))
        shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def encryptor(passphrase: str, stdin, stdout) -> Iterator[GpgProcess]:
    # An explicit (maximal) S2K count: stronger than the default, and it spares the fresh gpg-agent
    # its ~1 s calibration on every run.
    p = GpgProcess(["--symmetric", "--cipher-algo", "AES256", "--s2k-mode", "3", "--s2k-digest-algo",
                    "SHA512", "--s2k-count", "65011712", "--compress-algo", "none", "--output", "-"],
                   passphrase, stdin, stdout)
    try:
        yield p
    finally:
        p.close()


def not_sealed(status: List[List[str]], exited_ok: bool) -> Optional[str]:
    """Why gpg's status lines (doc/DETAILS in GnuPG) do not show one passphrase-encrypted,
    integrity-protected message; None when they do, or when gpg failed for an ordinary reason (a
    wrong passphrase, damaged data), which its exit code and message report.

    gpg's exit code alone is not enough: `gpg --decrypt` also "decrypts" a bare literal packet
    (`gpg --store`) and exits 0, and anyone can write one."""
    words = [s[0] for s in status if s]
    if "ENC_TO" in words or "DECRYPTION_KEY" in words:
        return "is encrypted to a public key, not with the backup passphrase"
    if "NEED_PASSPHRASE_SYM" not in words:
        return "is not passphrase-encrypted (plain or stored OpenPGP data)"
    info = next((s[1:] for s in status if s and s[0] == "DECRYPTION_INFO"), None)
    if info is not None and not _integrity_protected(info):
        return "is not integrity-protected (no MDC)"
    if not exited_ok:
        return None
    if info is None:
        return "is not integrity-protected (gpg reported no DECRYPTION_INFO)"
    if words.count("BEGIN_DECRYPTION") != 1 or words.count("PLAINTEXT") != 1:
        return "holds more than one message"
    end = words.index("END_DECRYPTION") if "END_DECRYPTION" in words else len(words)
    if not words.index("BEGIN_DECRYPTION") < words.index("PLAINTEXT") < end:
        return "holds data outside its encryption"
    if words.count("DECRYPTION_OKAY") != 1 or "DECRYPTION_FAILED" in words or "BADMDC" in words:
        return "was not confirmed by gpg (no DECRYPTION_OKAY)"
    return None


def _integrity_protected(info: List[str]) -> bool:
    """DECRYPTION_INFO <mdc_method> <sym_algo> [<aead_algo> ...]: an MDC or an AEAD mode."""
    try:
        mdc = int(info[0])
        aead = int(info[2]) if len(info) > 2 else 0
    except (IndexError, ValueError):
        return False
    return mdc != 0 or aead != 0


@contextmanager
def decryptor(passphrase: str, stdin, stdout) -> Iterator[GpgProcess]:
    p = GpgProcess(["--decrypt", "--output", "-"], passphrase, stdin, stdout, status=True)
    try:
        yield p
    finally:
        p.close()
