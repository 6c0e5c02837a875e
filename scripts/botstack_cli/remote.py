"""SSH to a stack's droplet as the admin user, with its host key pinned.

Every connection uses a temporary known_hosts file holding only the key of the stack's
`knownHostsLine` output, `StrictHostKeyChecking=yes` (an unknown or different key is refused: never
trust-on-first-use) and no global known_hosts. ssh's own diagnostics go to a log file (`-E`), so a
failed connection becomes one line naming the cause, and the remote command's output stays untouched.
Commands for the droplet are always one shell-quoted string (shlex): the remote shell splits it
exactly into the words given here.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from . import CliError
from .outputs import Stack

SSH_FAILED = 255
AGENT = Path(__file__).with_name("agent.py")
# reads exactly LENGTH bytes of the agent's source from stdin; the rest of stdin stays the agent's
BOOTSTRAP = ("import sys; n = int(sys.argv[1]); "
             "exec(compile(sys.stdin.buffer.read(n), 'botstack-agent', 'exec'))")
DEPLOY_USER = "deploy"


class Remote:
    def __init__(self, stack: Stack, identity: Optional[str] = None, connect_timeout: int = 10,
                 ssh: str = "ssh"):
        self.stack = stack
        self.identity = identity
        self.connect_timeout = connect_timeout
        self.ssh = ssh
        self._dir: Optional[str] = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> "Remote":
        if shutil.which(self.ssh) is None:
            raise CliError("the OpenSSH client (ssh) is not installed", 2)
        self._dir = tempfile.mkdtemp(prefix="botstack-ssh-")
        key = self.stack.known_hosts_line.split(None, 1)[1]
        host = self.stack.host if self.stack.port == 22 else f"[{self.stack.host}]:{self.stack.port}"
        Path(self.known_hosts).write_text(f"{host} {key}\n")
        return self

    def __exit__(self, *exc) -> None:
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def known_hosts(self) -> str:
        assert self._dir, "use Remote as a context manager"
        return os.path.join(self._dir, "known_hosts")

    @property
    def log_file(self) -> str:
        assert self._dir, "use Remote as a context manager"
        return os.path.join(self._dir, "ssh.log")

    # -- argv -------------------------------------------------------------------------------------
    def argv(self, command: Optional[str] = None, tty: bool = False) -> list[str]:
        s = self.stack
        opts = {
            "UserKnownHostsFile": self.known_hosts, "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes", "CheckHostIP": "no", "UpdateHostKeys": "no",
            "ConnectTimeout": str(self.connect_timeout), "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no", "LogLevel": "ERROR",
            "ServerAliveInterval": "15", "ServerAliveCountMax": "4",
        }
        argv = [self.ssh, "-E", self.log_file, "-p", str(s.port), "-l", s.user]
        for k, v in opts.items():
            argv += ["-o", f"{k}={v}"]
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        argv.append("-t" if tty else "-T")
        argv.append(s.host)
        if command is not None:
            argv.append(command)
        return argv

    # -- errors -----------------------------------------------------------------------------------
    def failure(self) -> Optional[CliError]:
        """The one-line error for a failed connection, from ssh's log; None if ssh logged nothing
        (then 255 was the remote command's own exit status)."""
        try:
            log = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return None
        lines = [x.strip() for x in log.splitlines() if x.strip() and not x.strip().startswith("@")]
        if not lines:
            return None
        s, text = self.stack, log.lower()
        where = f"{s.user}@{s.host}" + (f":{s.port}" if s.port != 22 else "")
        if "remote host identification has changed" in text or "host key verification failed" in text:
            return CliError(f"host key mismatch: {s.host} did not present the host key of stack "
                            f"{s.name!r} (its knownHostsLine output); refusing to connect", 3)
        if "connection refused" in text:
            return CliError(f"SSH to {where} refused: connection refused (is sshd up? is the "
                            "droplet still booting?)", 4)
        if "timed out" in text:
            return CliError(f"SSH to {where} timed out (is your address in the stack's adminCidrs?)", 4)
        if "permission denied" in text:
            return CliError(f"SSH login to {where} refused: permission denied (is your key among the "
                            "stack's adminSshKeys, and loaded in your ssh-agent or given with -i?)", 4)
        if "closed by" in text or "reset by peer" in text:
            return CliError(f"SSH to {where} closed by the server before login (banned by fail2ban "
                            "after failed logins?)", 4)
        return CliError(f"SSH to {where} failed: {lines[-1]}", 4)

    def check(self, rc: int) -> int:
        if rc == SSH_FAILED:
            err = self.failure()
            if err is not None:
                raise err
        return rc

    # -- running ----------------------------------------------------------------------------------
    def interactive(self, words: Sequence[str] = ()) -> int:
        """`ssh` itself: a login shell, or one command (its words quoted for the remote shell)."""
        command = shlex.join(words) if words else None
        tty = sys.stdin.isatty()
        rc = subprocess.call(self.argv(command, tty=tty))
        return self.check(rc)

    def agent(self, *args: str, capture: bool = False, follow: bool = False) -> tuple[int, str]:
        """Run the agent (agent.py) on the droplet as the deploy user with ARGS. Its stdout is
        returned when `capture`, else passed through; its stderr always goes to ours. `follow`
        keeps our end of its stdin open until the command ends (closing it stops the agent)."""
        source = AGENT.read_bytes()
        words = ["sudo", "-n", "-H", "-u", DEPLOY_USER, "python3", "-c", BOOTSTRAP, str(len(source)),
                 *args]
        proc = subprocess.Popen(self.argv(shlex.join(words)), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE if capture else None)
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(source)
                proc.stdin.flush()
                if not follow:
                    proc.stdin.close()
            except BrokenPipeError:
                pass
            out = proc.stdout.read().decode("utf-8", "replace") if capture and proc.stdout else ""
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        return self.check(rc), out
