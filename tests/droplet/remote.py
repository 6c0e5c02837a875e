"""The program's deploy, executed as pulumi-command executes it: over real SSH (OpenSSH's client).

`steps_of(run, repo)` reads every `command:remote:Command`, `command:remote:CopyToRemote` and
`command:local:Command` of a mock run generically (by type, not by name), with the inputs
pulumi-command acts on (create, delete, stdin, triggers, source, remotePath, connection;
environment and interpreter of a local command) and its dependency order (`depends_on`, followed
through resources that are not commands, e.g. the volume snapshot). `changed(old, new)` says which
steps a second `pulumi up` would run again: pulumi-command re-runs `create` when the resource's own
inputs change (a trigger change replaces it; a create/stdin change updates it).

`Ssh` dials as the connection says: the user and private key of the connection, the host key pinned
by the program's `knownHostsLine` output (`StrictHostKeyChecking=yes`, `HostKeyAlias` = the line's
host, so the line is used verbatim while the stand-in has another address), the command run by the
login shell with stdin piped, and retries while the dial fails (the connection's dialErrorLimit).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tests.infra.harness import Run, unwrap

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
LOCAL = "command:local:Command"  # run on the machine running pulumi (e.g. ssh of its own)
TYPES = (COMMAND, COPY, LOCAL)


@dataclass
class Step:
    name: str
    typ: str
    create: Optional[str] = None
    delete: Optional[str] = None
    stdin: Optional[str] = None
    triggers: list = field(default_factory=list)
    source: Optional[Path] = None
    source_sha256: Optional[str] = None
    remote_path: Optional[str] = None
    connection: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    interpreter: list = field(default_factory=list)
    deps: list[str] = field(default_factory=list)

    def inputs(self) -> tuple:
        return (self.create, self.delete, self.stdin, tuple(map(str, self.triggers)),
                self.source_sha256, self.remote_path, tuple(sorted(self.environment.items())),
                tuple(self.interpreter))


def _dep_names(run: Run, name: str) -> list[str]:
    opts = run.options.get(name)
    # the mocks record the options as given: a resource or a list of them, never an Output here
    deps: Any = (opts.depends_on if opts is not None else None) or []
    if not isinstance(deps, list):
        deps = [deps]
    return [str(d._name) for d in deps]


def steps_of(run: Run, repo: Path) -> list[Step]:
    """The remote steps of a mock run in the order pulumi would run them (dependencies first)."""
    assert run.error is None, f"the program failed: {run.error}"
    commands = {r.name: r for r in run.mocks.resources if r.typ in TYPES}
    assert commands, "the program registers no command:remote resources"

    def command_deps(name: str, seen: set[str]) -> set[str]:
        out: set[str] = set()
        for dep in _dep_names(run, name):
            if dep in seen:
                continue
            seen.add(dep)
            if dep in commands:
                out.add(dep)
            else:  # e.g. the snapshot: follow it to the commands it waits for
                out |= command_deps(dep, seen)
        return out

    steps: dict[str, Step] = {}
    for name, res in commands.items():
        ins = unwrap(res.inputs)
        step = Step(name=name, typ=res.typ, create=ins.get("create"), delete=ins.get("delete"),
                    stdin=ins.get("stdin"), triggers=list(ins.get("triggers") or []),
                    remote_path=ins.get("remotePath"), connection=ins.get("connection") or {},
                    environment=dict(ins.get("environment") or {}),
                    interpreter=list(ins.get("interpreter") or ["/bin/sh", "-c"]),
                    deps=sorted(command_deps(name, set())))
        if res.typ == COPY:
            path = Path(ins["source"].path)
            step.source = path if path.is_absolute() else Path(repo) / path
            step.source_sha256 = hashlib.sha256(step.source.read_bytes()).hexdigest()
        steps[name] = step
    order: list[Step] = []
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        assert name not in stack, f"dependency cycle among commands: {stack + (name,)}"
        if name in done:
            return
        for dep in steps[name].deps:
            visit(dep, stack + (name,))
        done.add(name)
        order.append(steps[name])

    for name in commands:  # registration order breaks ties, as the engine would
        visit(name)
    return order


def changed(old: list[Step], new: list[Step]) -> list[Step]:
    """The steps of `new` that a `pulumi up` after `old` runs again (new, or their inputs differ)."""
    before = {s.name: s for s in old}
    return [s for s in new if s.name not in before or before[s.name].inputs() != s.inputs()]


@dataclass
class Outcome:
    """What one step's run gave, and how long it took."""
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Ssh:
    def __init__(self, work: Path, address: str, connection: dict, known_hosts_line: str):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.address = address
        self.user = connection["user"]
        self.port = int(connection.get("port") or 22)
        self.dial_limit = int(connection.get("dialErrorLimit") or 10)
        key = self.work / "deploy-key"
        key.write_text(connection["privateKey"])
        key.chmod(0o600)
        known = self.work / "known_hosts"
        known.write_text(known_hosts_line.strip() + "\n")
        alias = known_hosts_line.split()[0]
        # the pinned line's own host key must be the connection's (program consistency)
        assert known_hosts_line.split()[1:3] == connection["hostKey"].split()[:2], \
            "knownHostsLine and the connection's hostKey differ"
        self.options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                        "-o", f"HostKeyAlias={alias}", "-o", "IdentitiesOnly=yes", "-i", str(key),
                        "-o", f"ConnectTimeout={int(connection.get('perDialTimeout') or 15)}",
                        "-o", "LogLevel=ERROR"]

    def run(self, command: str, stdin: Optional[str] = None, timeout: float = 1200,
            user: Optional[str] = None, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`command` run by the remote login shell, as pulumi-command's session.Run does."""
        target = f"{user or self.user}@{self.address}"
        for _attempt in range(self.dial_limit):
            proc = subprocess.run(["ssh", *self.options, "-p", str(self.port), *extra, target, command],
                                  input=stdin, capture_output=True, text=True, timeout=timeout)
            # 255: ssh itself failed (dial, auth); pulumi-command retries only the dial
            if proc.returncode != 255 or "Connection refused" not in proc.stderr \
                    and "timed out" not in proc.stderr:
                return proc
            time.sleep(3)
        return proc

    def copy(self, source: Path, remote_path: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """CopyToRemote: the file over SFTP (OpenSSH's scp speaks SFTP), to the exact remote path."""
        return subprocess.run(["scp", "-q", *self.options, "-P", str(self.port), str(source),
                               f"{self.user}@{self.address}:{remote_path}"],
                              capture_output=True, text=True, timeout=timeout)

    def execute(self, step: Step, stdin_override: Optional[str] = None, phase: str = "create",
                env_override: Optional[dict] = None) -> Outcome:
        t0 = time.monotonic()
        cmd = step.create if phase == "create" else step.delete
        stdin = stdin_override if stdin_override is not None else step.stdin
        if step.typ == COPY:
            assert step.source is not None and step.remote_path is not None, step
            proc = self.copy(step.source, step.remote_path)
        elif step.typ == LOCAL:
            # pulumi-command's local Command: interpreter + [command], its environment added to
            # pulumi's own, stdin piped
            env = {**os.environ, **step.environment, **(env_override or {})}
            proc = subprocess.run([*step.interpreter, cmd], input=stdin, env=env, capture_output=True,
                                  text=True, timeout=1200)
        else:
            assert cmd is not None, f"{step.name} has no {phase} command"
            proc = self.run(cmd, stdin=stdin)
        return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
