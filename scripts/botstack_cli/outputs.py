"""The stack's outputs: `pulumi stack output --json --stack S` (never `--show-secrets`: nothing the
CLI needs is secret), or a JSON file saved from that command (`--outputs FILE`) on a machine without
the Pulumi CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import CliError

ADMIN_USER = "botadmin"
REQUIRED = ("reservedIp", "knownHostsLine")


@dataclass(frozen=True)
class Stack:
    name: str
    host: str                 # where to connect (reservedIp)
    user: str                 # the admin login
    known_hosts_line: str     # "<ip> ssh-ed25519 AAAA..." (the program's pinned host key)
    port: int = 22
    release_id: Optional[str] = None
    database_mode: Optional[str] = None
    raw: Optional[dict] = None


def pulumi_env(repo: Path) -> dict[str, str]:
    """The environment scripts/deploy uses: its local file backend unless PULUMI_BACKEND_URL names one."""
    env = dict(os.environ)
    state = repo / ".botstack" / "state"
    if not env.get("PULUMI_BACKEND_URL") and state.is_dir():
        env["PULUMI_BACKEND_URL"] = f"file://{state}"
    return env


def from_pulumi(stack: str, repo: Path, pulumi: str = "pulumi") -> dict[str, Any]:
    if shutil.which(pulumi) is None:
        raise CliError(f"the pulumi CLI is not installed: pass --outputs FILE (saved elsewhere with "
                       f"`pulumi stack output --json --stack {stack} > FILE`)", 2)
    try:
        proc = subprocess.run([pulumi, "stack", "output", "--json", "--stack", stack], cwd=repo,
                              env=pulumi_env(repo), capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CliError(f"`pulumi stack output --stack {stack}` did not answer within 120 s") from None
    if proc.returncode != 0:
        lines = [x.strip() for x in proc.stderr.splitlines() if x.strip()]
        text = " ".join(lines)
        if "no stack named" in text:
            raise CliError(f"unknown stack {stack!r} (pulumi: {lines[-1] if lines else 'not found'})", 2)
        if "passphrase" in text.lower():
            raise CliError(f"pulumi needs the stack's passphrase to read {stack!r}'s outputs: set "
                           "PULUMI_CONFIG_PASSPHRASE(_FILE), or pass --outputs FILE", 2)
        raise CliError(f"`pulumi stack output --stack {stack}` failed: "
                       f"{lines[-1] if lines else 'exit ' + str(proc.returncode)}")
    return parse(proc.stdout, f"pulumi stack output --stack {stack}")


def from_file(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read the outputs file {path}: {exc.strerror}", 2) from None
    except UnicodeDecodeError as exc:
        raise CliError(f"the outputs file {path} is not UTF-8 text (byte {exc.start})", 2) from None
    return parse(text, str(path))


def parse(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{origin}: not JSON ({exc.msg} at line {exc.lineno})", 2) from None
    except RecursionError:
        raise CliError(f"{origin}: not JSON outputs (nested too deeply)", 2) from None
    if not isinstance(data, dict):
        raise CliError(f"{origin}: not a JSON object of outputs", 2)
    return data


def to_stack(name: str, data: dict[str, Any], origin: str) -> Stack:
    if not data:
        raise CliError(f"stack {name!r} has no outputs ({origin}): deploy it first (`scripts/deploy {name}`)", 2)
    missing = [k for k in REQUIRED if not isinstance(data.get(k), str) or not data.get(k)
               or data.get(k) == "[secret]"]
    if missing:
        raise CliError(f"stack {name!r} has no output {', '.join(missing)} ({origin}): "
                       f"deploy it first (`scripts/deploy {name}`)", 2)
    line = data["knownHostsLine"].strip()
    if len(line.split()) < 3 or "\n" in line:
        raise CliError(f"stack {name!r}: knownHostsLine is not a known_hosts line: {line[:60]!r}", 2)
    user = ADMIN_USER
    ssh = data.get("ssh")
    if isinstance(ssh, str) and "@" in ssh:  # "ssh botadmin@<ip>"
        user = ssh.split()[-1].split("@", 1)[0] or ADMIN_USER
    try:
        port = int(data.get("sshPort") or 22)
    except (TypeError, ValueError):
        raise CliError(f"stack {name!r}: sshPort is not a port number", 2) from None
    return Stack(name=name, host=data["reservedIp"], user=user, known_hosts_line=line, port=port,
                 release_id=data.get("releaseId"), database_mode=data.get("databaseMode"), raw=data)


def load(name: str, repo: Path, outputs_file: Optional[Path] = None, pulumi: str = "pulumi") -> Stack:
    if outputs_file is not None:
        return to_stack(name, from_file(outputs_file), str(outputs_file))
    return to_stack(name, from_pulumi(name, repo, pulumi), "pulumi stack output")
