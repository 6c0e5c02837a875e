"""The droplet side of `botstack`: sent over SSH on stdin and run as the deploy user
(`sudo -n -H -u deploy python3 -c BOOTSTRAP LENGTH COMMAND ARGS...`), so nothing has to be
installed on the droplet and the client and this code always come from the same checkout.

Standard library only, Python 3.8+ (Ubuntu 24.04 has 3.12). It drives the stack the way the deploy
scripts do (docs/contracts.md): compose project `botstack`, `--env-file $ROOT/shared/.env`,
`-f $ROOT/current/compose/compose.yml`, `BOTSTACK_RELEASE` = the release `current` points to.
It reads only DATA_DIR and COMPOSE_PROFILES from the .env and never prints a value of it.
Machine-readable results go to stdout as one JSON document; everything else to stderr.
"""
import json
import os
import subprocess
import sys
import threading

ROOT = "/opt/botstack"
PROJECT = "botstack"
BOT = "bot"
BACKUP = "backup"
DEFAULT_DATA_DIR = "/mnt/botstack-data"
EXIT_FAIL = 1
EXIT_USAGE = 2

# run inside the bot container (psycopg and DATABASE_URL are there, in both database modes)
DB_FACTS = r"""
import json, os, psycopg
out = {}
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=10) as conn:
    cur = conn.cursor()
    def one(sql):
        try:
            cur.execute(sql)
            return cur.fetchone()
        except psycopg.Error as exc:
            conn.rollback()
            return None
    row = one("SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')), "
              "count(*) FILTER (WHERE status = 'pending' AND due_at <= now()) FROM reminders")
    out["reminders"] = {"pending": row[0], "overdue": row[1]} if row else None
    row = one("SELECT pg_database_size(current_database())")
    out["database_bytes"] = row[0] if row else None
    for kind in ("backup", "drill"):
        row = one("SELECT finished_at, ok, object_key, detail FROM backup_runs WHERE kind = '%s' "
                  "ORDER BY finished_at DESC LIMIT 1" % kind)
        out["last_" + kind] = None if not row else {
            "finished_at": row[0].isoformat(), "ok": row[1], "object": row[2], "detail": row[3]}
    row = one("SELECT (SELECT max(finished_at) FROM backup_runs WHERE kind = 'drill' AND ok), "
              "(SELECT min(finished_at) FROM backup_runs WHERE kind = 'backup')")
    out["last_ok_drill_at"] = row[0].isoformat() if row and row[0] else None
    out["first_backup_at"] = row[1].isoformat() if row and row[1] else None
print(json.dumps(out))
"""

# exact row count of every table of the public schema, after a restore
ROW_COUNTS = r"""
import json, os, psycopg
from psycopg import sql
counts = {}
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=10) as conn:
    tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                          "ORDER BY tablename").fetchall()
    for (name,) in tables:
        q = sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(name))
        counts[name] = conn.execute(q).fetchone()[0]
print(json.dumps(counts))
"""


class Fail(Exception):
    def __init__(self, message, code=EXIT_FAIL):
        super().__init__(message)
        self.code = code


def err(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# -- the stack's layout -------------------------------------------------------------------------
def release_of(name):
    path = os.path.join(ROOT, name)
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else None


def env_settings():
    """DATA_DIR, COMPOSE_PROFILES and BACKUP_DRILL_INTERVAL_DAYS from the stack's .env (nothing else is
    read)."""
    wanted = {"DATA_DIR": DEFAULT_DATA_DIR, "COMPOSE_PROFILES": "", "BACKUP_DRILL_INTERVAL_DAYS": "7"}
    try:
        with open(os.path.join(ROOT, "shared", ".env"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep and key in wanted:
                    wanted[key] = value
    except OSError as exc:
        raise Fail("cannot read %s/shared/.env: %s" % (ROOT, exc.strerror)) from exc
    return wanted


def require_current():
    cur = release_of("current")
    if not cur or not os.path.isfile(os.path.join(ROOT, "releases", cur, "compose", "compose.yml")):
        raise Fail("no release is deployed under %s (run `pulumi up` first)" % ROOT)
    return cur


def compose_argv(*args):
    return ["docker", "compose", "-p", PROJECT, "--env-file", os.path.join(ROOT, "shared", ".env"),
            "-f", os.path.join(ROOT, "current", "compose", "compose.yml")] + list(args)


def compose_env():
    env = dict(os.environ)
    env["BOTSTACK_RELEASE"] = require_current()
    return env


def compose(*args, capture=True, check=False, timeout=None, stdin=subprocess.DEVNULL):
    proc = subprocess.run(compose_argv(*args), env=compose_env(), stdin=stdin, timeout=timeout,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, universal_newlines=True)
    if check and proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines() if capture else []
        raise Fail("docker compose %s failed (exit %d)%s" % (args[0], proc.returncode,
                                                               ": " + last[-1] if last else ""))
    return proc


def services():
    """[{service, state, health, status, container}] of the project's containers (also stopped)."""
    out = compose("ps", "-a", "--format", "json", check=True).stdout.strip()
    rows = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines() if x.strip()]
    return [{"service": r.get("Service"), "state": r.get("State"), "health": r.get("Health") or "",
             "status": r.get("Status"), "container": r.get("ID"), "exit_code": r.get("ExitCode")}
            for r in rows]


def configured_services():
    return compose("config", "--services", check=True).stdout.split()


def running(service):
    return any(s["service"] == service and s["state"] == "running" for s in services())


def in_bot(*argv, timeout=120):
    return compose("exec", "-T", BOT, *argv, timeout=timeout)


# -- status -------------------------------------------------------------------------------------
def container_facts(ids):
    facts = {}  # type: dict
    if not ids:
        return facts
    fmt = "{{.Id}}\t{{.State.StartedAt}}\t{{.RestartCount}}"
    p = subprocess.run(["docker", "inspect", "--format", fmt] + ids, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, universal_newlines=True)
    for line in p.stdout.splitlines():
        cid, started, restarts = (line.split("\t") + ["", ""])[:3]
        facts[cid[:12]] = {"started_at": started, "restarts": int(restarts or 0)}
    p = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.MemUsage}}\t{{.CPUPerc}}"]
                       + ids, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
    for line in p.stdout.splitlines():
        cid, mem, cpu = (line.split("\t") + ["", ""])[:3]
        facts.setdefault(cid[:12], {}).update(memory=mem, cpu=cpu)
    return facts


def meminfo():
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
    return {"total": info.get("MemTotal"), "available": info.get("MemAvailable"),
            "swap_total": info.get("SwapTotal"), "swap_free": info.get("SwapFree")}


def disk(path):
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"path": path, "total": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}


def json_of(proc):
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def cmd_status(args):
    settings = env_settings()
    out = {"release": {"current": require_current(), "previous": release_of("previous")},  # type: dict
           "host": {"uptime_s": int(float(open("/proc/uptime").read().split()[0])),
                    "memory": meminfo(),
                    "disks": [d for d in (disk("/"), disk(settings["DATA_DIR"])) if d]}}
    rows = services()
    facts = container_facts([r["container"] for r in rows if r["container"]])
    for r in rows:
        r.update(facts.get((r["container"] or "")[:12], {}))
    out["services"] = rows
    bot_up = any(r["service"] == BOT and r["state"] == "running" for r in rows)
    out["database"] = json_of(in_bot("python3", "-c", DB_FACTS)) if bot_up else None
    out["maintenance"] = json_of(in_bot("python3", "-m", "bot.maintenance", "status", "--json")) if bot_up else None
    interval = settings["BACKUP_DRILL_INTERVAL_DAYS"].strip()
    out["drill_interval_days"] = int(interval) if interval.isdigit() and int(interval) > 0 else 7
    print(json.dumps(out))
    return 0


# -- logs ---------------------------------------------------------------------------------------
def watch_stdin_then(kill):
    """The client closes our stdin when it goes (Ctrl-C, lost connection): stop following then."""
    def run():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        kill()
    threading.Thread(target=run, daemon=True).start()


def cmd_logs(args):
    service, follow, since, lines, grep = args[0] or None, args[1] == "1", args[2], args[3], args[4]
    argv = ["logs", "--no-color", "--timestamps"]
    if follow:
        argv.append("--follow")
    if since:
        argv += ["--since", since]
    if lines:
        argv += ["--tail", lines]
    if service:
        if service not in configured_services():
            raise Fail("no service %r in this stack (services: %s)" % (service, ", ".join(configured_services())),
                       EXIT_USAGE)
        argv.append(service)
    proc = subprocess.Popen(compose_argv(*argv), env=compose_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, universal_newlines=True, errors="replace")
    if follow:
        watch_stdin_then(proc.terminate)
    needle = grep.lower() if grep else None
    try:
        for line in proc.stdout or ():
            if needle is None or needle in line.lower():
                sys.stdout.write(line)
                sys.stdout.flush()
    except BrokenPipeError:
        proc.terminate()
    rc = proc.wait()
    return 0 if follow else rc


# -- backups ------------------------------------------------------------------------------------
def require_backup_service():
    if BACKUP not in configured_services():
        raise Fail("this stack runs no backup service (managed database mode: DigitalOcean backs the "
                   "cluster up)", EXIT_USAGE)
    if not running(BACKUP):
        raise Fail("the backup service is not running (see `botstack STACK status` and `logs backup`)")


def cmd_backup(args):
    require_backup_service()
    return compose("exec", "-T", BACKUP, "botstack-backup", "run", capture=False).returncode


def cmd_backups(args):
    require_backup_service()
    extra = ["--json"] if args and args[0] == "json" else []
    return compose("exec", "-T", BACKUP, "botstack-backup", "list", *extra, capture=False).returncode


def maintenance(*argv):
    """Run the bot's maintenance command; None when this release's bot has none."""
    p = in_bot("python3", "-m", "bot.maintenance", *argv)
    if p.returncode != 0 and "No module named" in (p.stderr or ""):
        return None
    if p.returncode != 0:
        last = (p.stderr or p.stdout or "").strip().splitlines()
        raise Fail("bot.maintenance %s failed (exit %d)%s" % (argv[0], p.returncode,
                                                            ": " + last[-1] if last else ""))
    return p


def bot_down_for_restore(message):
    """Maintenance mode when the bot has it (users get the message), else stop the bot.
    Returns how to bring it back: "maintenance" or "start"."""
    argv = ["on"] + (["--message", message] if message else [])
    if running(BOT) and maintenance(*argv) is not None:
        err("bot: maintenance mode on")
        return "maintenance"
    err("bot: stopping it for the restore (this release's bot has no maintenance mode)")
    compose("stop", BOT, check=True)
    return "start"


def bot_back(how):
    if how == "maintenance":
        maintenance("off")
        err("bot: maintenance mode off")
    else:
        compose("start", BOT, check=True)
        err("bot: started")


RESTORE_FLAGS = ("--from-local", "--accept-older")  # passed on to `botstack-backup restore`


def cmd_restore(args):
    which, message, flags = args[0], args[1], list(args[2:])
    unknown = [f for f in flags if f not in RESTORE_FLAGS]
    if unknown:  # before the bot goes down: nothing else reaches the backup tool's command line
        raise Fail("restore: unknown option %s (known: %s)" % (unknown[0], ", ".join(RESTORE_FLAGS)))
    require_backup_service()
    how = bot_down_for_restore(message)
    try:
        p = compose("exec", "-T", BACKUP, "botstack-backup", "restore", which, "--force", *flags)
        sys.stderr.write(p.stderr or "")
    finally:
        bot_back(how)
    if p.returncode != 0:  # the backup tool has said why
        return p.returncode
    counts = json_of(in_bot("python3", "-c", ROW_COUNTS)) if running(BOT) else None
    print(json.dumps({"restored": p.stdout.strip(), "tables": counts}))
    return 0


# -- rollback -----------------------------------------------------------------------------------
def cmd_rollback(args):
    cur, prev = require_current(), release_of("previous")
    if not prev or prev == cur:
        raise Fail("no previous release to roll back to (current is %s)" % cur)
    script = os.path.join(ROOT, "releases", prev, "deploy", "activate.sh")
    if not os.path.isfile(script):
        raise Fail("the previous release %s is not on the droplet any more (%s missing)" % (prev, script))
    err("rolling back from %s to %s (health-gated)" % (cur, prev))
    env = dict(os.environ, BOTSTACK_ROOT=ROOT, DATA_DIR=env_settings()["DATA_DIR"])
    # its progress goes to our stderr: stdout carries only the result
    rc = subprocess.run(["bash", script, prev], env=env, stdin=subprocess.DEVNULL,
                        stdout=sys.stderr.fileno()).returncode
    now = release_of("current")
    print(json.dumps({"from": cur, "to": prev, "ok": rc == 0 and now == prev, "current": now,
                      "previous": release_of("previous")}))
    return 0 if rc == 0 and now == prev else EXIT_FAIL


# -- maintenance --------------------------------------------------------------------------------
def cmd_maintenance(args):
    if not running(BOT):
        raise Fail("the bot is not running (see `botstack STACK status`)")
    argv = list(args)
    p = maintenance(*argv)
    if p is None:
        raise Fail("this release's bot has no maintenance mode (python3 -m bot.maintenance): deploy a "
                   "newer release first")
    sys.stdout.write(p.stdout)
    return 0


def cmd_release(args):
    print(json.dumps({"current": release_of("current"), "previous": release_of("previous")}))
    return 0


COMMANDS = {"status": cmd_status, "logs": cmd_logs, "backup": cmd_backup, "backups": cmd_backups,
            "restore": cmd_restore, "rollback": cmd_rollback, "maintenance": cmd_maintenance,
            "release": cmd_release}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        err("botstack agent: unknown command %r" % (argv[:1],))
        return EXIT_USAGE
    try:
        return COMMANDS[argv[0]](argv[1:])
    except Fail as exc:
        err("botstack: %s" % exc)
        return exc.code
    except subprocess.TimeoutExpired as exc:
        err("botstack: timed out after %ss: %s" % (exc.timeout, " ".join(exc.cmd[:6])))
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # argv: -c LENGTH COMMAND ARGS... (the bootstrap read LENGTH bytes of this source from stdin)
    sys.exit(main(sys.argv[2:]))
