"""The pre-resize step's script (pure Python): before the provider resizes the droplet, a final
backup (container mode) and the stack stopped and flushed over SSH.

A size change is no replacement: the provider powers the droplet off (PowerOff, not Shutdown) and
resizes it in place (terraform-provider-digitalocean, digitalocean/droplet/resource_droplet.go,
Update). This step's `update` runs first (the droplet depends on it). It dials the reserved IP, which
leads to the droplet being resized; it cannot name the droplet's id (the droplet depends on it, not
the other way round), so unlike the teardown steps (infra/teardown.py) it checks no id, and anything
but a clean stop fails it: no answer, a wrong host key, a refused login, a failing backup. The
droplet is then not resized.

The droplet's size is in the step's environment: a change runs `update`. pulumi-command hands
`update` the previous run's stdout, less its last newline, as PULUMI_COMMAND_STDOUT (pulumi-command
v1.2.1, provider/pkg/provider/local/commandOutputs.go): the size the stack was stopped for last. So
any other change of the step's inputs (a new script, say) stops nothing, and stdout carries that
size line alone (the remote output goes to stderr).
"""
from __future__ import annotations

import shlex

from infra import teardown

SIZE_ENV = "BOTSTACK_DROPLET_SIZE"


def create_script() -> str:
    """The first `up`: nothing to stop, the size to remember."""
    return f'echo "size ${SIZE_ENV}"'


def pre_resize_script(final_backup: bool) -> str:
    """`update`: when the size changed, the final backup (container mode) and the stack stopped and
    flushed; prints the size for the next run to compare."""
    remote = (f"{teardown.FINAL_BACKUP} && " if final_backup else "") + teardown.STOP_STACK
    ssh_opts = " ".join(f"-o {o}" for o in (
        "IdentitiesOnly=yes", "BatchMode=yes", "StrictHostKeyChecking=yes", 'UserKnownHostsFile="$tmp/known_hosts"',
        "GlobalKnownHostsFile=/dev/null", f"ConnectTimeout={teardown.CONNECT_TIMEOUT_SECONDS}",
        f"ConnectionAttempts={teardown.CONNECTION_ATTEMPTS_DEFAULT}", "ServerAliveInterval=15",
        "ServerAliveCountMax=8"))
    return "\n".join((
        "set -u",
        f'if [ "${{PULUMI_COMMAND_STDOUT:-}}" = "size ${SIZE_ENV}" ]; then echo "size ${SIZE_ENV}"; exit 0; fi',
        f'echo "resizing to ${SIZE_ENV}: final backup and graceful stop first" >&2',
        'tmp=$(mktemp -d) || exit 1',
        "trap 'rm -rf \"$tmp\"' EXIT",
        "umask 077",
        'cat >"$tmp/key"',
        f'printf \'%s %s\\n\' "${teardown.HOST}" "${teardown.HOST_KEY}" >"$tmp/known_hosts"',
        (f'ssh -F /dev/null -i "$tmp/key" {ssh_opts} "${teardown.USER}@${teardown.HOST}" {shlex.quote(remote)} >&2 '
         f'|| {{ rc=$?; echo "error: pre-resize: the stack on ${teardown.HOST} was not stopped (ssh exit $rc): '
         'the droplet is not resized" >&2; exit "$rc"; }'),
        f'echo "size ${SIZE_ENV}"',
    ))
