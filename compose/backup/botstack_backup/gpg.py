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
from typing import Iterator, List

from .errors import BackupError

COMMON = ["--batch", "--yes", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--no-symkey-cache"]


class GpgProcess:
    """A running gpg with the passphrase already fed; use as a context manager."""

    def __init__(self, args: List[str], passphrase: str, stdin, stdout):
        self.home = tempfile.mkdtemp(prefix="botstack-gnupg-")
        os.chmod(self.home, 0o700)
        gpg = shutil.which("gpg")
        if not gpg:
            shutil.rmtree(self.home, ignore_errors=True)
            raise BackupError("gpg is not on PATH")
        rfd, wfd = os.pipe()
        try:
            env = dict(os.environ, GNUPGHOME=self.home)
            self.proc = subprocess.Popen(
                [gpg, *COMMON, "--passphrase-fd", str(rfd), *args],
                stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, pass_fds=(rfd,), env=env,
            )
        except BaseException:
            os.close(wfd)
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        finally:
            os.close(rfd)
        with os.fdopen(wfd, "w") as w:
            w.write(passphrase)

    def finish(self) -> None:
        """Wait for gpg; raise with its message if it failed."""
        err = self.proc.stderr.read() if self.proc.stderr else b""
        rc = self.proc.wait()
        if rc != 0:
            msg = err.decode("utf-8", "replace").strip().splitlines()
            raise BackupError("gpg failed: " + (msg[-1] if msg else f"exit {rc}"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
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


@contextmanager
def decryptor(passphrase: str, stdin, stdout) -> Iterator[GpgProcess]:
    p = GpgProcess(["--decrypt", "--output", "-"], passphrase, stdin, stdout)
    try:
        yield p
    finally:
        p.close()
