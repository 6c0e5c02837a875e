"""The command line: `botstack STACK COMMAND ...` (and `botstack local up|down`)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import CliError, dashboard, outputs, report
from .remote import Remote

REPO = Path(__file__).resolve().parents[2]
LOCAL = "local"
LOCAL_DIR = Path(os.environ.get("BOTSTACK_LOCAL_DIR") or REPO / ".botstack" / "local")
LOCAL_OUTPUTS = LOCAL_DIR / "outputs.json"
LOCAL_KEY = LOCAL_DIR / "admin_ed25519"
LOCAL_ONLY = ("up", "down", "chat")

DESCRIPTION = """\
Day-2 operations of a deployed botstack stack, from your machine. STACK is a Pulumi stack (dev,
prod, ...): its outputs say where the droplet is and which SSH host key it must present (read with
`pulumi stack output --json`, or from --outputs FILE). Every command logs in as the admin user over
SSH, verifying the host key against the stack's knownHostsLine, and runs the stack's compose project
as the deploy user."""

EPILOG = """\
examples:
  botstack dev status
  botstack dev logs bot --since 1h --grep error
  botstack dev ssh -- df -h /
  botstack prod backup && botstack prod backups
  botstack prod restore latest
  botstack prod rollback
  botstack prod maintenance on --message "Back at 18:00"
  botstack prod dashboard            # graphs: SSH tunnel to Prometheus, Grafana on this machine

exit status: 0 ok; 1 failed (or, for status, a service is not healthy); 2 usage or configuration
(unknown stack, no outputs); 3 host key mismatch; 4 SSH refused or unreachable."""


def _common(p: argparse.ArgumentParser) -> None:
    # accepted before STACK and after the command alike
    p.add_argument("--outputs", metavar="FILE", type=Path, default=argparse.SUPPRESS,
                   help="the stack's outputs as saved by `pulumi stack output --json --stack STACK > FILE` "
                        "(instead of running the pulumi CLI)")
    p.add_argument("-i", "--identity", metavar="KEY", default=argparse.SUPPRESS,
                   help="SSH private key to log in with (default: your ssh-agent and ~/.ssh keys)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="botstack", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("stack", metavar="STACK", help="the Pulumi stack (dev, prod, ...), or `local`")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help: str, description: str = "") -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=description or help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(c)
        return c

    c = cmd("status", "release, uptime and health of each service, last backup and drill, disk, "
            "memory, pending reminders",
            "Release, uptime and health of each service, maintenance mode, last backup and drill, "
            "disk and memory of the droplet, pending reminders. Exits 1 when a service is not "
            "running or not healthy.")
    c.add_argument("--json", action="store_true", help="one JSON document instead of the table")

    c = cmd("logs", "the services' logs (all of them, or one)")
    c.add_argument("service", nargs="?", metavar="SERVICE", help="bot, postgres or backup (default: all)")
    c.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    c.add_argument("--since", metavar="WHEN", help="only lines since WHEN: 10m, 1h, 2d or an RFC 3339 time")
    c.add_argument("-n", "--lines", metavar="N", type=int,
                   help="the last N lines of each service (default 100; all lines with --since)")
    c.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT (case-insensitive)")

    c = cmd("ssh", "log in as the admin user (host key verified), or run one command",
            "Log in to the droplet as the admin user (passwordless sudo, docker group), with the "
            "host key verified against the stack's knownHostsLine. After `--`, one command to run "
            "instead of a shell; each word is passed as is (for a pipeline: -- sh -c 'a | b').")
    c.add_argument("words", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="a command to run")

    cmd("backup", "take a backup now (dump, encrypt, upload to Spaces)",
        "Run `botstack-backup run` in the backup container now: pg_dump, gpg, local copy and "
        "upload to Spaces. Exit 3: kept locally only (Spaces unreachable).")
    c = cmd("backups", "list the backups (Spaces and the volume)")
    c.add_argument("--json", action="store_true", help="the backup tool's JSON listing")

    c = cmd("restore", "restore a backup over the database (maintenance mode meanwhile)",
            "Restore a backup over the stack's database: asks for confirmation (or --yes), puts the "
            "bot into maintenance mode (its users get the maintenance message, nothing is delivered "
            "meanwhile), restores in one transaction (a failed restore changes nothing), brings "
            "the bot back and reports the row count of every table.")
    c.add_argument("which", nargs="?", default="latest", metavar="NAME|latest",
                   help="a backup name from `botstack STACK backups` (default: latest)")
    c.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    c.add_argument("--message", metavar="TEXT", help="the maintenance message the bot's users get meanwhile")
    c.add_argument("--from-local", action="store_true",
                   help="restore the copy on the droplet's volume (a backup newer than the bucket's, "
                        "or the bucket unreachable)")
    c.add_argument("--accept-older", action="store_true",
                   help="restore it although the backup tool knows a newer backup (it refuses otherwise)")

    cmd("rollback", "go back to the previous release (health-gated)",
        "Make the previous release (the droplet's /opt/botstack/previous) the running one again, "
        "health-gated the way a deploy is (deploy/activate.sh: if it does not come up healthy the "
        "current release is brought back). Running it twice returns to where you started.")

    c = cmd("maintenance", "maintenance mode on or off (or its status)",
            "While on, the bot answers every allowed user with the maintenance message (both "
            "languages, or --message as given) and delivers nothing; reminders that fall due "
            "meanwhile are delivered, flagged late, when it is turned off.")
    c.add_argument("state", choices=("on", "off", "status"), help="on, off or status")
    c.add_argument("--message", metavar="TEXT", help="with on: the message instead of the default")
    c.add_argument("--json", action="store_true", help="with status: JSON")

    dashboard.add_arguments(cmd("dashboard", dashboard.HELP, dashboard.DESCRIPTION))

    cmd("up", "local only: boot the stand-in droplet on your Docker and deploy the stack into it")
    cmd("down", "local only: remove the stand-in droplet and everything it created")
    cmd("chat", "local only: talk to the local bot from the terminal (through the Bot API double)")
    return p


# -- the stack ------------------------------------------------------------------------------------
def load_stack(args: argparse.Namespace) -> outputs.Stack:
    file = getattr(args, "outputs", None)
    if file is None and args.stack == LOCAL:
        if not LOCAL_OUTPUTS.exists():
            raise CliError("the local stack is not up: run `botstack local up` first", 2)
        file = LOCAL_OUTPUTS
    return outputs.load(args.stack, REPO, file)


def last_json(text: str) -> Optional[dict]:
    """The agent's result: the last line of its stdout, one JSON object."""
    lines = [x for x in text.splitlines() if x.strip()]
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def identity(args: argparse.Namespace) -> Optional[str]:
    chosen = getattr(args, "identity", None)
    if chosen is None and args.stack == LOCAL and LOCAL_KEY.exists():
        return str(LOCAL_KEY)  # the admin key `local up` generated
    return chosen


def remote(args: argparse.Namespace) -> Remote:
    return Remote(load_stack(args), identity=identity(args))


def run_status(args) -> int:
    stack = load_stack(args)
    with Remote(stack, identity=identity(args)) as r:
        rc, out = r.agent("status", capture=True)
    data = last_json(out)
    if data is None:  # the droplet side has said why
        return rc or 1
    data["stack"] = {"name": stack.name, "releaseId": stack.release_id, "host": stack.host,
                     "databaseMode": stack.database_mode}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(report.status_text(data))
    return 0 if report.healthy(data) else 1


def run_logs(args) -> int:
    if args.lines is not None and args.lines < 0:
        raise CliError("--lines must be 0 or more", 2)
    lines = args.lines if args.lines is not None else (None if args.since else 100)
    with remote(args) as r:
        rc, _ = r.agent("logs", args.service or "", "1" if args.follow else "0", args.since or "",
                        "" if lines is None else str(lines), args.grep or "", follow=args.follow)
    return rc


def run_ssh(args) -> int:
    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    with remote(args) as r:
        return r.interactive(words)


def run_backup(args) -> int:
    with remote(args) as r:
        rc, _ = r.agent("backup")
    return rc


def run_backups(args) -> int:
    with remote(args) as r:
        rc, _ = r.agent("backups", "json" if args.json else "")
    return rc


def confirm(question: str, answer: str, stdin=None, stdout=None) -> bool:
    stdin, stdout = stdin or sys.stdin, stdout or sys.stderr
    if not stdin.isatty():
        raise CliError("refusing to restore without confirmation: stdin is not a terminal (pass --yes)", 2)
    stdout.write(f"{question}\nType {answer!r} to go on: ")
    stdout.flush()
    return stdin.readline().strip() == answer


def listing_of(text: str) -> object:
    """`botstack-backup list --json`'s answer, or None when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def run_restore(args) -> int:
    stack = load_stack(args)
    if not args.yes and not sys.stdin.isatty():
        raise CliError("refusing to restore without confirmation: stdin is not a terminal (pass --yes)", 2)
    with Remote(stack, identity=identity(args)) as r:
        if not args.yes:
            _, listed = r.agent("backups", "json", capture=True)
            which = report.backup_to_restore(listing_of(listed), args.which)
            if not confirm(f"This replaces the database of stack {stack.name!r} ({stack.host}) with {which}.\n"
                           "A safety dump of the current database is taken first; reminders created since "
                           "the backup are lost, those delivered since stay delivered; the bot is in "
                           "maintenance mode meanwhile.", stack.name):
                raise CliError("restore cancelled", 1)
        flags = [f for f, on in (("--from-local", args.from_local), ("--accept-older", args.accept_older)) if on]
        rc, out = r.agent("restore", args.which, args.message or "", *flags, capture=True)
    if rc != 0:
        raise CliError(f"restore of {args.which!r} failed (exit {rc}); the bot is back", rc)
    print(report.restore_text(last_json(out) or {}))
    return 0


def run_rollback(args) -> int:
    stack = load_stack(args)
    with Remote(stack, identity=identity(args)) as r:
        rc, out = r.agent("rollback", capture=True)
    data = last_json(out)
    if data is None:  # refused before activate.sh ran; the droplet side has said why
        return rc or 1
    if rc != 0 or not data.get("ok"):
        raise CliError(f"rollback to {data.get('to')} failed: {data.get('current')} is the running release "
                       "(activate.sh brought it back; its output is above)", 1)
    print(report.rollback_text(stack, data))
    return 0


def run_maintenance(args) -> int:
    if args.message is not None and args.state != "on":
        raise CliError("--message goes with `maintenance on`", 2)
    argv = [args.state]
    if args.state == "on" and args.message:
        argv += ["--message", args.message]
    if args.state == "status" and args.json:
        argv.append("--json")
    with remote(args) as r:
        rc, _ = r.agent("maintenance", *argv)
    return rc


def run_dashboard(args) -> int:
    return dashboard.run(args, load_stack(args), identity(args))


def run_local(args) -> int:
    from . import local
    return local.main(args)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": run_status, "logs": run_logs, "ssh": run_ssh, "backup": run_backup,
    "backups": run_backups, "restore": run_restore, "rollback": run_rollback,
    "maintenance": run_maintenance, "up": run_local, "down": run_local, "chat": run_local,
    "dashboard": run_dashboard,
}


def _terminate(signum, frame):
    raise KeyboardInterrupt  # so the ssh child is ended too (and the droplet side with it)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command in LOCAL_ONLY and args.stack != LOCAL:
            raise CliError(f"`{args.command}` is for the local stack only (`botstack local {args.command}`)", 2)
        return HANDLERS[args.command](args)
    except CliError as exc:
        print(f"botstack: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `botstack dev logs | head`: the reader is gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
