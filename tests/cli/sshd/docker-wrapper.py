#!/usr/bin/python3
"""TEST-ONLY `docker` of the SSH stand-in: it shares the test machine's engine with other test
runs, so a compose call for project `botstack` (what the deploy scripts and the CLI always use)
becomes project BOTSTACK_TEST_PROJECT, with the rehearsal's doubles (Bot API, S3) added after the
release's compose files, as deploy/lib.sh's BOTSTACK_COMPOSE_EXTRA hook adds them in the rehearsal.
Everything else goes to the real CLI unchanged. Settings: /etc/botstack-test.env (KEY=VALUE)."""
import os
import sys

REAL = "/usr/libexec/botstack-test/docker"
# compose's global options that take a value (before the subcommand)
VALUED = {"-p", "--project-name", "-f", "--file", "--env-file", "--profile", "--project-directory",
          "--ansi", "--progress", "--parallel"}


def settings():
    out = {}
    with open("/etc/botstack-test.env") as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                out[k] = v
    return out


def rewrite(args, env, cfg):
    out, i, files, project = [], 0, False, False
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            break
        name, eq, val = a.partition("=")
        if name in VALUED and not eq:
            val, i = args[i + 1], i + 1
        if name in ("-p", "--project-name") and val == "botstack":
            val = cfg["BOTSTACK_TEST_PROJECT"]
        files = files or name in ("-f", "--file")
        project = project or name in ("-p", "--project-name")
        out += [name, val] if name in VALUED else [a]
        i += 1
    rest = args[i:]
    if files:
        out += ["-f", cfg["BOTSTACK_TEST_EXTRA"]]
    elif env.get("COMPOSE_FILE"):
        env["COMPOSE_FILE"] += env.get("COMPOSE_PATH_SEPARATOR", ":") + cfg["BOTSTACK_TEST_EXTRA"]
    if not project:  # compose.yml's own `name: botstack`
        out = ["-p", cfg["BOTSTACK_TEST_PROJECT"]] + out
    return out + rest


def main():
    args, env = sys.argv[1:], dict(os.environ)
    if args[:1] == ["compose"]:
        cfg = settings()
        env.update({k: v for k, v in cfg.items() if k.startswith("BOTSTACK_TEST_")})
        args = ["compose"] + rewrite(args[1:], env, cfg)
    os.execve(REAL, [REAL] + args, env)


main()
