"""What runs on the droplet when it goes (`pulumi destroy`, or a replacement): the final backup,
then stopping the stack and flushing the volume before DigitalOcean detaches it (pure Python).

These run as the *delete* of `command.local.Command` resources, through the `ssh` client of the
machine running pulumi, not as pulumi-command remote commands: a remote command's delete dials
the host stored in its state and fails after its dial retries when that host is gone, and nothing
in the program can catch that, so a droplet deleted by hand would block every later `up` and
`destroy`.

Each step was made for one droplet (its id, from the state) and acts on that droplet only:
- on the host, before anything else, the droplet reads its own id from DigitalOcean's metadata
  service; another droplet at the same address (a re-created one after a droplet was deleted by
  hand: same user-data, so the same host key, deploy key and reserved IP) is left alone;
- when nothing answers SSH, or another droplet answers, the step asks DigitalOcean's API whether
  its droplet still exists (GET /v2/droplets/{id}). Only a 404 `not_found` means it is gone, and
  only then is the step skipped with a warning. A droplet that exists but does not answer (a
  firewall that does not admit this machine) fails the step, so the volume is never detached
  under a running PostgreSQL; so does any answer that is not clearly one or the other.
A wrong host key, a refused login or a failing command fails the step as before.

The private key goes through stdin (a secret input); the host, user, pinned host key and droplet
id through the environment. The API token is read from the environment the DigitalOcean provider
already uses (DIGITALOCEAN_TOKEN, else DIGITALOCEAN_ACCESS_TOKEN; DIGITALOCEAN_API_URL for another
endpoint) by the check itself: nothing secret is on a command line.
"""
from __future__ import annotations

import shlex

from infra import facts

# env the guarded command reads (the key itself arrives on stdin)
HOST, PORT, USER, HOST_KEY = "BOTSTACK_SSH_HOST", "BOTSTACK_SSH_PORT", "BOTSTACK_SSH_USER", "BOTSTACK_SSH_HOST_KEY"
DROPLET_ID = "BOTSTACK_DROPLET_ID"
# how long a silent host is given; the environment may shorten it (the tests do)
CONNECT_TIMEOUT, CONNECTION_ATTEMPTS = "BOTSTACK_SSH_CONNECT_TIMEOUT", "BOTSTACK_SSH_CONNECTION_ATTEMPTS"
CONNECT_TIMEOUT_SECONDS = 15
CONNECTION_ATTEMPTS_DEFAULT = 4

METADATA_ID_URL = "http://169.254.169.254/metadata/v1/id"
DEFAULT_API_URL = "https://api.digitalocean.com"
OTHER_DROPLET_EXIT = 86  # the identity check's status when another droplet answers

ENV_PREFIX = f"BOTSTACK_ROOT={facts.BOTSTACK_ROOT} DATA_DIR={facts.DATA_DIR}"
FINAL_BACKUP = f"{ENV_PREFIX} bash {facts.BOTSTACK_ROOT}/current/deploy/final-backup.sh"
# every container of the compose project, whatever profiles it ran with (docker stop honours each
# service's stop_grace_period), then the page cache onto the volume
# (the deploy user's login shell is bash: cloud-init/user-data.yaml)
STOP_STACK = (f"set -eo pipefail; docker ps -q --filter label=com.docker.compose.project={facts.COMPOSE_PROJECT} "
              f"| xargs -r docker stop >/dev/null; sync; echo 'stack stopped, {facts.DATA_DIR} flushed'")

# Runs on the host first, with `want` set to the step's droplet id. The host itself reads the
# metadata service (only containers are blocked from it: cloud-init/user-data.yaml), with python3,
# which every droplet has (cloud-init runs on it).
READ_METADATA_ID = ("import urllib.request; "
                    f"print(urllib.request.urlopen('{METADATA_ID_URL}', timeout=10).read(64).decode().strip())")
IDENTITY_CHECK = (
    # an HTTP error or no answer fails; an answer that is not this id is another droplet
    f'have=$(python3 -c "{READ_METADATA_ID}" 2>/dev/null) || '
    "{ echo \"botstack-teardown: cannot read this droplet's id from its metadata service\" >&2; exit 1; }; "
    'if [ "$have" != "$want" ]; then '
    f'echo "botstack-teardown: this is droplet $have, not droplet $want" >&2; exit {OTHER_DROPLET_EXIT}; fi; ')

# what ssh prints when nothing answers: the host is gone or behind a firewall (the API tells which)
UNREACHABLE = (r"^ssh: connect to host .* port [0-9]+: (Connection timed out|Connection refused|"
               r"No route to host|Network is unreachable)|^ssh: Could not resolve hostname")

# Asks DigitalOcean whether droplet argv[1] exists. Exit 0: gone (404 not_found); 3: it exists;
# 4: cannot tell (no token, no answer, any other answer). Prints one line saying which.
# Redirects are not followed (the token must not travel to another host).
DROPLET_EXISTS_CHECK = r'''
import json, os, re, sys, urllib.error, urllib.request
droplet = sys.argv[1]
token = os.environ.get("DIGITALOCEAN_TOKEN") or os.environ.get("DIGITALOCEAN_ACCESS_TOKEN")
if not token:
    print("DIGITALOCEAN_TOKEN is not set, so DigitalOcean cannot be asked whether it still exists")
    sys.exit(4)
base = (os.environ.get("DIGITALOCEAN_API_URL") or "%(api)s").rstrip("/")
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
request = urllib.request.Request(f"{base}/v2/droplets/{droplet}",
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
try:
    with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
        status, body = response.status, response.read(1 << 20)
except urllib.error.HTTPError as e:
    status, body = e.code, e.read(1 << 20)
except (OSError, ValueError) as e:
    print(f"DigitalOcean's API at {base} did not answer ({type(e).__name__})")
    sys.exit(4)
try:
    doc = json.loads(body)
except ValueError:
    doc = None
def word(value):
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z_]{1,40}", value) else "?"
if status == 404 and isinstance(doc, dict) and doc.get("id") == "not_found":
    print("DigitalOcean answers 404 not_found")
    sys.exit(0)
found = doc.get("droplet") if isinstance(doc, dict) else None
if status == 200 and isinstance(found, dict) and str(found.get("id")) == droplet:
    print(f"it still exists (DigitalOcean: status {word(found.get('status'))})")
    sys.exit(3)
error = doc.get("id") if isinstance(doc, dict) else None
print(f"DigitalOcean's API answered HTTP {status} {word(error)}, which says neither that it exists nor that it is gone")
sys.exit(4)
''' % {"api": DEFAULT_API_URL}


def guarded_ssh(step: str, remote: str) -> str:
    """A bash script running `remote` on the step's droplet over ssh. Exits 0 with a warning only
    when DigitalOcean says that droplet is gone; with the failure's status otherwise."""
    ssh_opts = " ".join(f"-o {o}" for o in (
        "IdentitiesOnly=yes", "BatchMode=yes", "StrictHostKeyChecking=yes", 'UserKnownHostsFile="$tmp/known_hosts"',
        "GlobalKnownHostsFile=/dev/null", f'ConnectTimeout="${{{CONNECT_TIMEOUT}:-{CONNECT_TIMEOUT_SECONDS}}}"',
        f'ConnectionAttempts="${{{CONNECTION_ATTEMPTS}:-{CONNECTION_ATTEMPTS_DEFAULT}}}"',
        "ServerAliveInterval=15", "ServerAliveCountMax=8"))
    other = "^botstack-teardown: this is droplet [0-9]+, not droplet $droplet$"
    return "\n".join((
        "set -u",
        'tmp=$(mktemp -d) || exit 1',
        "trap 'rm -rf \"$tmp\"' EXIT",
        "umask 077",
        'cat >"$tmp/key"',
        f'droplet=${{{DROPLET_ID}:-}}',
        'case "$droplet" in',
        f'  ""|*[!0-9]*) echo "error: {step}: no droplet id in {DROPLET_ID}: cannot tell which droplet this step is for" >&2; exit 1;;',
        "esac",
        f'port=${{{PORT}:-22}}',
        f'if [ "$port" = 22 ]; then where=${HOST}; else where="[${HOST}]:$port"; fi',
        f'printf \'%s %s\\n\' "$where" "${HOST_KEY}" >"$tmp/known_hosts"',
        "# shellcheck disable=SC2016  # expanded on the host, not here",
        f"on_host={shlex.quote(IDENTITY_CHECK + remote)}",
        "rc=0",
        (f'ssh -F /dev/null -i "$tmp/key" -p "$port" {ssh_opts} "${USER}@${HOST}" "want=$droplet; $on_host" '
         '2>"$tmp/err" || rc=$?'),
        'cat "$tmp/err" >&2',
        f'if [ "$rc" -eq 255 ] && grep -Eq {shlex.quote(UNREACHABLE)} "$tmp/err"; then',
        f'  why="${HOST} does not answer SSH on port $port"',
        f'elif [ "$rc" -eq {OTHER_DROPLET_EXIT} ] && grep -Eq "{other}" "$tmp/err"; then',
        f'  why="${HOST} reaches another droplet ($(grep -Eo "{other}" "$tmp/err" | grep -Eo "[0-9]+" | head -n1)), left alone"',
        "else",
        '  exit "$rc"',
        "fi",
        ("command -v python3 >/dev/null || "
        f'{{ echo "error: {step}: $why, and python3 is missing to ask DigitalOcean about droplet $droplet" >&2; exit 1; }}'),
        "api_rc=0",
        f'verdict=$(python3 -c {shlex.quote(DROPLET_EXISTS_CHECK)} "$droplet") || api_rc=$?',
        'if [ "$api_rc" -eq 0 ]; then',
        f'  echo "warning: {step} skipped: droplet $droplet is gone ($verdict); $why" >&2',
        "  exit 0",
        'elif [ "$api_rc" -eq 3 ]; then',
        (f'  echo "error: {step}: droplet $droplet: $verdict, but $why. Nothing was done on it, so the volume '
        'must not be detached under a running stack: admit this machine to SSH (botstack:adminCidrs), or stop '
        'the stack on the droplet yourself, then retry" >&2'),
        "else",
        (f'  echo "error: {step}: $why, and droplet $droplet may still exist: $verdict. Retry with '
        'DIGITALOCEAN_TOKEN set, or check the droplet in DigitalOcean yourself" >&2'),
        "fi",
        "exit 1",
    ))
