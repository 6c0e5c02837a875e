"""`botstack-backup COMMAND`: run | schedule | list | restore | prune | drill | upload-backlog | check."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Callable, Dict, List, Optional

from . import __version__, metrics, pg, restore_empty, store_check
from .config import Config
from .errors import EXIT_OK, EXIT_USAGE, BackupError
from .offsite import Offsite
from .tool import BackupTool, human_size

log = logging.getLogger("botstack_backup")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botstack-backup",
        description="Encrypted, offsite, verified PostgreSQL backups for botstack. Settings come from "
                    "the environment (DATABASE_URL, BACKUP_PASSPHRASE, SPACES_*, BACKUP_*, TELEGRAM_*, "
                    "ADMIN_USER_IDS).",
        epilog="exit codes: 0 ok, 1 failed, 2 usage/config, 3 kept locally only (upload failed), "
               "4 checksum mismatch, 5 target not empty, 6 version mismatch, 7 busy, "
               "8 drill row counts differ, 9 backup not found, 10 refused (not provably ours), "
               "11 refused (older than the newest backup known)")
    p.add_argument("--version", action="version", version=f"botstack-backup {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--wait", type=float, default=900, metavar="SECONDS",
                   help="when another backup operation is running, wait up to this long for it "
                        "(default 900; 0 = exit 7 at once)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser("run", help="back up now: pg_dump -> sha256 -> gpg -> Spaces + local copy; "
                                     "then upload the backlog and prune (local and offsite)")
    run.add_argument("--final", action="store_true",
                     help="the last backup before the server goes (deploy/final-backup.sh): marked, "
                          "never deleted by the offsite retention")
    sub.add_parser("schedule", help="long-running: a backup every BACKUP_INTERVAL_HOURS, a drill every "
                                    "BACKUP_DRILL_INTERVAL_DAYS")
    ls = sub.add_parser("list", help="backups in Spaces and on the local volume")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--local", action="store_true", help="only the local copies (no Spaces access)")
    r = sub.add_parser("restore", help="restore a backup into the database (refuses a non-empty one "
                                       "without --force)")
    r.add_argument("which", nargs="?", default="latest", help="latest (default), a name or an object key")
    r.add_argument("--target-url", help="restore into this database instead of DATABASE_URL")
    r.add_argument("--force", action="store_true",
                   help="replace the contents of a non-empty target database")
    r.add_argument("--from-local", action="store_true",
                   help="use the local copy on the volume instead of downloading from Spaces")
    r.add_argument("--accept-older", action="store_true",
                   help="restore `latest` even when the tool knows of a newer backup (its local copies, "
                        "its records) than the one it found (exit 11 otherwise)")
    sub.add_parser("prune", help="apply the local retention (never deletes the newest good backup), then "
                                 "the offsite one when Spaces is configured")
    sub.add_parser("drill", help="restore the latest offsite backup into a scratch database, compare "
                                 "row counts with its manifest, drop it, report to the admins")
    rie = sub.add_parser(
        "restore-into-empty",
        help="a new stack's first start: restore the newest authenticated backup of a store into the "
             "EMPTY database (refuses one with data, exit 5; nothing in the store: exit 9)")
    rie.add_argument("--from", dest="source", metavar="s3://BUCKET/PREFIX",
                     help="the backups' bucket and prefix (default RESTORE_FROM, else the stack's own); "
                          "RESTORE_FROM_ENDPOINT, _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _PASSPHRASE "
                          "default to the stack's SPACES_* and BACKUP_PASSPHRASE")
    rie.add_argument("--skip-if-data", action="store_true",
                     help="leave a database with data alone and exit 0 (what the deploy runs at every start)")
    sub.add_parser("upload-backlog", help="upload local backups that are not in Spaces yet")
    sub.add_parser("check", help="check the configuration and that pg_dump matches the server")
    return p


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s botstack-backup %(levelname)s %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%SZ")
    logging.Formatter.converter = __import__("time").gmtime
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Optional[List[str]] = None, tool: Optional[BackupTool] = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if tool is None:
            tool = BackupTool(Config.from_env())
        tool.lock_wait = 0.0 if args.command == "schedule" else args.wait
        return _dispatch(args, tool)
    except BackupError as exc:
        print(f"botstack-backup {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # unexpected; `run`, `restore`, `drill` have already alerted and recorded
        log.debug("unexpected error", exc_info=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"botstack-backup {args.command}: unexpected error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, tool: BackupTool) -> int:
    result = tool.run(final=args.final)
    print(f"{result.name}: {human_size(result.size)}, "
          + ("uploaded to " + result.key if result.uploaded else "LOCAL ONLY: " + str(result.upload_error)))
    for name in result.backlog_uploaded:
        print(f"{name}: uploaded (backlog)")
    for name in result.pruned:
        print(f"{name}: pruned (local retention)")
    for name in result.pruned_offsite:
        print(f"{name}: pruned (offsite retention)")
    return result.exit_code


def _schedule(args: argparse.Namespace, tool: BackupTool) -> int:
    from .schedule import Scheduler

    port = metrics.port_from_env()  # a malformed one is refused before anything starts

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    sched = Scheduler(tool)
    metrics.serve(sched.metrics, port)
    try:
        sched.run_forever()
    except KeyboardInterrupt:
        log.info("schedule: stopping")
    return EXIT_OK


def _where(b: dict) -> str:
    where = ", ".join(w for w, on in (("local", b["local"]), ("spaces", b["offsite_complete"])) if on)
    if b["offsite"] and not b["offsite_complete"]:
        where = ", ".join(filter(None, [where, "spaces (incomplete: no manifest)"]))
    return where or "incomplete"


def _list(args: argparse.Namespace, tool: BackupTool) -> int:
    data = tool.list(offsite=not args.local)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    if not data["backups"]:
        print("no backups")
    for b in data["backups"]:
        print(f"{b['name']}  {human_size(b['size']):>10}  {_where(b)}")
    if data["offsite_error"]:
        print(f"(Spaces not listed: {data['offsite_error']})", file=sys.stderr)
    return EXIT_OK


def _restore(args: argparse.Namespace, tool: BackupTool) -> int:
    manifest = tool.restore(args.which, target_url=args.target_url, force=args.force,
                            from_local=args.from_local, accept_older=args.accept_older)
    print(f"restored {manifest['name']} ({sum(manifest['tables'].values())} rows)")
    return EXIT_OK


def _prune(args: argparse.Namespace, tool: BackupTool) -> int:
    for name in tool.prune():
        print(f"{name}: pruned")
    if tool.cfg.spaces_bucket:
        for name in tool.prune_offsite():
            print(f"{name}: pruned (offsite)")
    return EXIT_OK


def _drill(args: argparse.Namespace, tool: BackupTool) -> int:
    res = tool.drill()
    print(f"drill OK: {res.manifest['name']}, {len(res.counts)} tables, "
          f"{sum(res.counts.values())} rows match, {res.seconds:.1f} s")
    return EXIT_OK


def _restore_into_empty(args: argparse.Namespace, tool: BackupTool) -> int:
    source_cfg = restore_empty.source_config(tool.cfg, os.environ, args.source)
    out = restore_empty.restore_into_empty(tool, source_cfg, skip_if_data=args.skip_if_data)
    if out.restored and out.manifest is not None:
        rows = sum((out.manifest.get("tables") or {}).values())
        print(f"restored {out.manifest['name']} (made {out.manifest.get('created_at')}, {rows} rows) from {out.source}")
    else:
        print(f"nothing restored: the database has data ({out.objects} tables, views or sequences)")
    return EXIT_OK


def _upload_backlog(args: argparse.Namespace, tool: BackupTool) -> int:
    for name in tool.upload_backlog():
        print(f"{name}: uploaded")
    return EXIT_OK


def _check(args: argparse.Namespace, tool: BackupTool) -> int:
    tool.cfg.require_database()
    tool.cfg.require_passphrase()
    with pg.connect(tool.cfg.database_url) as conn:
        dump_text, server_text, _ = tool.check_versions(conn)
    print(f"ok: {dump_text}; server {server_text}")
    if tool.cfg.spaces_bucket:  # what the store cannot guarantee (store_check.py)
        offsite = Offsite(tool.cfg)
        for f in store_check.check(offsite.client, offsite.bucket, offsite.prefix).findings:
            print(f"store {f.level}: {f.line()}")
    return EXIT_OK


COMMANDS: Dict[str, Callable[[argparse.Namespace, BackupTool], int]] = {
    "run": _run, "schedule": _schedule, "list": _list, "restore": _restore, "prune": _prune,
    "drill": _drill, "upload-backlog": _upload_backlog, "check": _check,
    "restore-into-empty": _restore_into_empty,
}


def _dispatch(args: argparse.Namespace, tool: BackupTool) -> int:
    handler = COMMANDS.get(args.command)
    return handler(args, tool) if handler else EXIT_USAGE
