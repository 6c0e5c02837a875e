"""A stand-in `pulumi` for the CI scripts' tests: records its arguments (one JSON line per call in
$FAKE_PULUMI_LOG) and does to Pulumi.<stack>.yaml what the real `pulumi config set --path K[0] V` and
`pulumi config rm K` do, and answers `pulumi config get K` as the real one does: secrets (from
$FAKE_PULUMI_SECRETS, a JSON object, as if decrypted) in plain text, lists as JSON, a missing key
with exit 255; `up` exits with $FAKE_PULUMI_UP_EXIT (default 0).

With $FAKE_PULUMI_STATE (a directory: the diy backend's root) it keeps stack locks as pulumi/pulumi's
diy backend does (pkg/backend/diy/lock.go): an operation that changes the state (`up`, `refresh`,
`destroy`, `import`, `stack import`, `state ...`) first refuses while any lock of the stack exists,
with the backend's own message, then writes `.pulumi/locks/organization/<project>/<stack>/<uuid>.json`
({pid, username, hostname, timestamp}) and deletes it when it ends, as the deferred unlock does;
`preview` takes no lock; `cancel` deletes every lock of the stack (CancelCurrentUpdate). With
$FAKE_PULUMI_UP_KILLED=1, `up` is killed (SIGKILL) while it holds its lock: the unlock never runs.
"""
import datetime
import getpass
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import yaml

LOCKING = (("up",), ("refresh",), ("destroy",), ("import",), ("stack", "import"), ("state",))


def stack_name(args):
    return args[args.index("--stack") + 1]


def stack_file(args):
    return Path.cwd() / f"Pulumi.{stack_name(args)}.yaml"


def lock_dir(args) -> Path:
    project = yaml.safe_load((Path.cwd() / "Pulumi.yaml").read_text())["name"]
    return Path(os.environ["FAKE_PULUMI_STATE"]) / ".pulumi" / "locks" / "organization" / project / stack_name(args)


def lock(args) -> "Path | None":
    """Takes the stack's lock, or returns None after printing the diy backend's refusal."""
    d = lock_dir(args)
    held = sorted(d.glob("*.json")) if d.is_dir() else []
    if held:
        lines = [(f"error: the stack is currently locked by {len(held)} lock(s). Either wait for the other "
                 "process(es) to end or delete the lock file with `pulumi cancel`.")]
        for path in held:
            c = json.loads(path.read_text())
            lines.append(f"  file://{path}: created by {c['username']}@{c['hostname']} (pid {c['pid']}) at "
                         f"{c['timestamp']}")
        print("\n".join(lines), file=sys.stderr)
        return None
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{uuid.uuid4()}.json"
    path.write_text(json.dumps({"pid": os.getpid(), "username": getpass.getuser(), "hostname": socket.gethostname(),
                                "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}))
    return path


def main(args):
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(args) + "\n")
    held = None
    if os.environ.get("FAKE_PULUMI_STATE") and "--stack" in args and \
            any(tuple(args[:len(op)]) == op for op in LOCKING):
        held = lock(args)
        if held is None:
            return 255
    try:
        return operate(args)
    finally:
        if held is not None:
            held.unlink()


def operate(args):
    if args[:2] == ["config", "set"]:
        path = stack_file(args)
        doc = yaml.safe_load(path.read_text()) or {}
        key = args[args.index("--path") + 1]
        value = [a for a in args[2:] if not a.startswith("-") and a not in (key, args[args.index("--stack") + 1])][0]
        name, _, index = key.partition("[")
        assert index == "0]", f"fake pulumi: only [0] paths are emulated, not {key}"
        doc.setdefault("config", {})[name] = [value]
        path.write_text(yaml.safe_dump(doc))
    elif args[:2] == ["config", "rm"]:
        path = stack_file(args)
        doc = yaml.safe_load(path.read_text()) or {}
        name = [a for a in args[2:] if not a.startswith("-") and a != args[args.index("--stack") + 1]][0]
        doc.get("config", {}).pop(name, None)
        path.write_text(yaml.safe_dump(doc))
    elif args[:2] == ["config", "get"]:
        key = args[-1]
        secrets = json.loads(os.environ.get("FAKE_PULUMI_SECRETS", "{}"))
        config = (yaml.safe_load(stack_file(args).read_text()) or {}).get("config") or {}
        if key in secrets:
            print(secrets[key])
        elif key in config:
            value = config[key]
            print(json.dumps(value) if isinstance(value, (list, dict)) else value)
        else:
            print(f"error: configuration key '{key}' not found", file=sys.stderr)
            return 255
    elif args[:1] == ["cancel"]:
        d = lock_dir(args)
        for path in d.glob("*.json") if d.is_dir() else []:
            path.unlink()
        print(f"The currently running update for '{stack_name(args)}' has been canceled!")
    elif args[:1] == ["up"]:
        if os.environ.get("FAKE_PULUMI_UP_KILLED") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return int(os.environ.get("FAKE_PULUMI_UP_EXIT", "0"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
