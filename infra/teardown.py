"""What runs on the droplet when it goes (`pulumi destroy`, or a replacement): the final backup,
then stopping the stack and flushing the volume before DigitalOcean detaches it (pure Python).

These run as the *delete* of `command.local.Command` resources, through the `ssh` client of the
machine running pulumi, not as pulumi-command remote commands: a remote command's delete dials
the host stored in its state and fails after its dial retries when that host is gone, and nothing
in the program can catch that, so a droplet deleted by hand would block every later `up` and
`destroy`. Here only a host that does not answer at all (connection refused or timed out, no
route) is a warning; a wrong host key, a refused login or a failing command still fails the step.

The private key goes through stdin (a secret input); the host, user and pinned host key through
the environment; nothing secret is on a command line.
"""
from __future__ import annotations

import shlex

from infra import facts

# env the guarded command reads (the key itself arrives on stdin)
HOST, PORT, USER, HOST_KEY = "BOTSTACK_SSH_HOST", "BOTSTACK_SSH_PORT", "BOTSTACK_SSH_USER", "BOTSTACK_SSH_HOST_KEY"
CONNECT_TIMEOUT_SECONDS = 15
CONNECTION_ATTEMPTS = 4

ENV_PREFIX = f"BOTSTACK_ROOT={facts.BOTSTACK_ROOT} DATA_DIR={facts.DATA_DIR}"
FINAL_BACKUP = f"{ENV_PREFIX} bash {facts.BOTSTACK_ROOT}/current/deploy/final-backup.sh"
# every container of the compose project, whatever profiles it ran with (docker stop honours each
# service's stop_grace_period), then the page cache onto the volume
# (the deploy user's login shell is bash: cloud-init/user-data.yaml)
STOP_STACK = (f"set -eo pipefail; docker ps -q --filter label=com.docker.compose.project={facts.COMPOSE_PROJECT} "
              f"| xargs -r docker stop >/dev/null; sync; echo 'stack stopped, {facts.DATA_DIR} flushed'")

# what ssh prints when nothing answers: the host is gone, not misbehaving
UNREACHABLE = (r"^ssh: connect to host .* port [0-9]+: (Connection timed out|Connection refused|"
               r"No route to host|Network is unreachable)|^ssh: Could not resolve hostname")


def guarded_ssh(step: str, remote: str) -> str:
    """A bash script running `remote` on the droplet over ssh; exits 0 with a warning when the host
    does not answer, and with the failure's status otherwise."""
    ssh_opts = " ".join(f"-o {o}" for o in (
        "IdentitiesOnly=yes", "BatchMode=yes", "StrictHostKeyChecking=yes", 'UserKnownHostsFile="$tmp/known_hosts"',
        "GlobalKnownHostsFile=/dev/null", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}",
        f"ConnectionAttempts={CONNECTION_ATTEMPTS}", "ServerAliveInterval=15", "ServerAliveCountMax=8"))
    return "\n".join((
        "set -u",
        'tmp=$(mktemp -d) || exit 1',
        "trap 'rm -rf \"$tmp\"' EXIT",
        "umask 077",
        'cat >"$tmp/key"',
        f'port=${{{PORT}:-22}}',
        f'if [ "$port" = 22 ]; then where=${HOST}; else where="[${HOST}]:$port"; fi',
        f'printf \'%s %s\\n\' "$where" "${HOST_KEY}" >"$tmp/known_hosts"',
        "rc=0",
        (f'ssh -F /dev/null -i "$tmp/key" -p "$port" {ssh_opts} "${USER}@${HOST}" {shlex.quote(remote)} '
        '2>"$tmp/err" || rc=$?'),
        'cat "$tmp/err" >&2',
        f'if [ "$rc" -eq 255 ] && grep -Eq {shlex.quote(UNREACHABLE)} "$tmp/err"; then',
        f'  echo "warning: {step} skipped: ${HOST} does not answer SSH on port $port (is the droplet gone?)" >&2',
        "  exit 0",
        "fi",
        'exit "$rc"',
    ))
