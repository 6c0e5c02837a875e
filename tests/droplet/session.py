"""One stand-in run: the program under the mocks, the booted stand-in, the deploy over SSH, the chat.

`Session.boot()` runs the program (stack `dev`, `telegramApiBaseUrl` = the Bot API double), boots
its user-data, waits for cloud-init and loads the stand-in images; `deploy(run)` executes the remote
steps of a program run (all of them, or those a second `pulumi up` would re-run) over SSH; `chat`
talks to the bot through the double's control API; `compose(...)` runs compose as the deploy user
on the stand-in, on the current release.
"""
from __future__ import annotations

import json
import re
import shlex
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

from infra.teardown import DROPLET_ID
from tests.droplet import remote
from tests.droplet.standin import Droplet
from tests.infra.harness import TEST_TOKEN, make_repo, run_program, unwrap

STACK = "dev"
DROPLET = "digitalocean:index/droplet:Droplet"
METADATA = "169.254.169.254"
VOLUME = "digitalocean:index/volume:Volume"


def program_user_id() -> int:
    from tests.infra.harness import stack_config
    return int(stack_config(STACK)["allowedUserIds"][0])


def spaces_endpoint_substitution(env_text: str, url: str) -> str:
    """SUBSTITUTION spaces-endpoint: the program derives SPACES_ENDPOINT from the region (a real
    Spaces host); on the stand-in it names moto's S3 server. Only that line changes, and a set
    RESTORE_FROM_ENDPOINT (restoreFromEndpoint: another store, e.g. the old region's Spaces; one S3
    double plays both)."""
    out, n = re.subn(r"(?m)^SPACES_ENDPOINT=.*$", f"SPACES_ENDPOINT={url}", env_text)
    assert n == 1, "the rendered .env has no SPACES_ENDPOINT line"
    return re.sub(r"(?m)^RESTORE_FROM_ENDPOINT=.+$", f"RESTORE_FROM_ENDPOINT={url}", out)


class Session:
    def __init__(self, work: Path, images: dict[str, str], config: Optional[dict[str, Any]] = None,
                 doubles_of: Optional[Droplet] = None):
        self.work = Path(work)
        self.config = dict(config or {})  # stack config on top of Pulumi.dev.yaml, for every program run
        self.d = Droplet(self.work, images)
        # a second droplet after an earlier one was removed: its doubles (and the store's objects) kept
        self.doubles_of = doubles_of
        if doubles_of is not None:
            self.d.adopt_doubles(doubles_of)
        self.figures: dict[str, Any] = {}
        self.user_id = program_user_id()
        self.ran: list[str] = []  # names of the remote steps run, in order, across deploys
        self.logs: list[str] = []

    # -- the program ---------------------------------------------------------------------------
    def program(self, name: str, edit: Optional[Callable[[Path], None]] = None):
        repo = make_repo(self.work / name)
        if edit:
            edit(repo)
        run = run_program(STACK, repo, {**self.config, "telegramApiBaseUrl": self.d.botapi_url})
        assert run.error is None, f"the program failed: {run.error}"
        return run, repo

    @staticmethod
    def user_data(run) -> str:
        droplet = [r for r in run.mocks.resources if r.typ == DROPLET]
        assert len(droplet) == 1
        return unwrap(droplet[0].inputs)["userData"]

    # -- boot ----------------------------------------------------------------------------------
    def boot(self) -> None:
        if self.doubles_of is None:
            self.d.start_doubles(TEST_TOKEN)
        self.run1, self.repo1 = self.program("release-1")
        self.steps1 = remote.steps_of(self.run1, self.repo1)
        res = {r.typ: r for r in self.run1.mocks.resources}
        label = unwrap(res[VOLUME].inputs)["initialFilesystemLabel"]
        hostname = unwrap(res[DROPLET].inputs)["name"]
        self.d.make_volume(label)
        t0 = time.monotonic()
        self.d.boot(self.user_data(self.run1), hostname)
        # as on DigitalOcean, the volume comes once the droplet is up: here when something on the
        # stand-in waits for it (the first boot cannot finish without it: cloud-final waits)
        self.volume_awaited = self.d.wait_until_the_volume_is_awaited(label)
        self.figures["volume_awaited_by"] = self.volume_awaited["awaited_by"]
        self.figures["volume_attached_s"] = round(time.monotonic() - t0, 1)
        self.volume_device = self.d.attach_volume()
        self.boot_state = self.d.wait_booted()
        self.figures["boot_systemd_s"] = round(time.monotonic() - t0, 1)
        self.cloud_init = self.d.cloud_init_status()
        self.figures["boot_cloud_init_done_s"] = round(time.monotonic() - t0, 1)
        self.boot_started = t0
        t1 = time.monotonic()
        self.d.load_images()
        self.figures["load_images_s"] = round(time.monotonic() - t1, 1)
        self.ssh = remote.Ssh(self.work / "ssh", self.d.address, self.connection(),
                              self.run1.outputs["knownHostsLine"])
        self.make_bucket(self.run1.outputs["bucketName"])

    # -- the deploy ----------------------------------------------------------------------------
    def env_stdin(self, step: remote.Step) -> Optional[str]:
        if step.stdin and re.search(r"(?m)^SPACES_ENDPOINT=", step.stdin):
            return spaces_endpoint_substitution(step.stdin, self.d.s3_url)
        return None

    def deploy(self, steps: list[remote.Step]) -> dict[str, float]:
        """Run each step's create over SSH in order; fail on the first non-zero exit."""
        times: dict[str, float] = {}
        for step in steps:
            if step.typ != remote.COPY and step.create is None:
                continue  # a delete-only step: nothing runs on create
            proc = self.ssh.execute(step, stdin_override=self.env_stdin(step))
            self.ran.append(step.name)
            out = proc.stdout + proc.stderr
            self.logs.append(f"$ {step.name} (exit {proc.returncode}, {proc.seconds:.1f}s)\n{out}")
            times[step.name] = round(proc.seconds, 1)
            assert proc.returncode == 0, (f"remote step {step.name} exited {proc.returncode}:\n"
                                          f"{out[-6000:]}")
        return times

    def connection(self) -> dict:
        """The deploy connection, from the first remote step (a local step, such as the server's
        pre-resize step, may come first and has none)."""
        return next(s.connection for s in self.steps1 if s.connection)

    def address_substitution(self, step: remote.Step) -> dict[str, str]:
        """SUBSTITUTION address: a local command that dials the droplet itself gets the stand-in's
        address wherever its environment names the program's SSH host (the reserved IP)."""
        host = str(self.connection()["host"])
        return {k: self.d.address for k, v in step.environment.items() if str(v) == host}

    def serve_metadata(self, droplet_id: str = "") -> None:
        """SUBSTITUTION metadata-service: DigitalOcean's metadata service (169.254.169.254) stood in by a
        web server in a network namespace behind a veth pair on the stand-in, so the host reaches it
        routed out as on a droplet (and container traffic is forwarded, which the metadata block
        stops). It serves /metadata/v1/id: the id the program's run gave this droplet, which the
        teardown steps check before they act."""
        root = "/run/botstack-test-metadata"
        self.d.sh(f"mkdir -p {root}/metadata/v1 && printf %s {shlex.quote(droplet_id)} >{root}/metadata/v1/id")
        if self.d.exec("ip", "netns", "list", check=False).stdout.find("metadata") < 0:
            self.d.sh(
                "ip netns add metadata && ip link add md0 type veth peer name md1 && "
                "ip link set md1 netns metadata && ip addr add 169.254.255.1/30 dev md0 && ip link set md0 up && "
                "ip -n metadata addr add 169.254.255.2/30 dev md1 && "
                f"ip -n metadata addr add {METADATA}/32 dev lo && ip -n metadata link set lo up && "
                "ip -n metadata link set md1 up && ip -n metadata route add default via 169.254.255.1 && "
                f"ip route add {METADATA}/32 via 169.254.255.2")
            self.d.exec("sh", "-c", f"ip netns exec metadata python3 -m http.server --directory {root} --bind "
                        f"{METADATA} 80 >/dev/null 2>&1 &", check=True)
        probe = f"python3 -c \"import urllib.request; urllib.request.urlopen('http://{METADATA}/', timeout=5)\""
        for _ in range(50):
            if self.d.exec("sh", "-c", probe, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("the metadata listener does not answer on the stand-in itself")

    def destroy_step(self, step: remote.Step) -> str:
        if step.environment.get(DROPLET_ID):
            self.serve_metadata(str(step.environment[DROPLET_ID]))
        proc = self.ssh.execute(step, phase="delete", env_override=self.address_substitution(step))
        out = proc.stdout + proc.stderr
        self.logs.append(f"$ delete {step.name} (exit {proc.returncode})\n{out}")
        assert proc.returncode == 0, f"delete of {step.name} exited {proc.returncode}:\n{out[-6000:]}"
        return out

    # -- the stack on the stand-in ---------------------------------------------------------------
    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        root = "/opt/botstack"
        cmd = ("cd {r}/current/compose && BOTSTACK_RELEASE=$(basename $(readlink {r}/current)) "
               "docker compose -p botstack --env-file {r}/shared/.env -f compose.yml ").format(r=root)
        return self.d.exec("runuser", "-u", "deploy", "--", "sh", "-c",
                           cmd + " ".join(shlex.quote(a) for a in args), check=check, timeout=timeout).stdout

    def services(self) -> dict[str, dict]:
        out = self.compose("ps", "-a", "--format", "json").strip()
        rows = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines() if x]
        return {r["Service"]: r for r in rows}

    def psql(self, sql: str) -> str:
        return self.compose("exec", "-T", "postgres", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-U", "botstack", "-d", "botstack", "-At", "-c", sql).strip()

    # -- the doubles -----------------------------------------------------------------------------
    def api(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.d.botapi_url}/_control/{path}", data=data,
                                     method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def sent(self) -> list[dict]:
        return self.api(f"sent?chat_id={self.user_id}")["messages"]

    def wait_sent(self, pred: Callable[[str], bool], after: int, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        last: list[dict] = []
        while time.monotonic() < deadline:
            last = self.sent()
            for m in last[after:]:
                if pred(m.get("text") or m.get("caption") or ""):
                    return m
            time.sleep(0.3)
        raise AssertionError(f"the bot did not send {what} within {timeout:.0f}s; last: "
                             f"{[m.get('text') for m in last[-5:]]!r}")

    def ask(self, text: str, expect: str, timeout: float = 60) -> dict:
        n = len(self.sent())
        self.api("updates", {"message": {"from_id": self.user_id, "text": text}})
        return self.wait_sent(lambda t: expect in t, n, timeout, f"an answer to {text!r} with {expect!r}")

    def s3(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.d.s3_url, region_name="us-east-1",
                            aws_access_key_id="standin", aws_secret_access_key="standin-secret")

    def make_bucket(self, name: str) -> None:
        self.bucket = name  # pulumi creates the bucket; on the double the harness does
        s3 = self.s3()
        if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:  # kept from an earlier stand-in
            s3.create_bucket(Bucket=name)

    def bucket_keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.s3().list_objects_v2(Bucket=self.bucket).get("Contents", []))

    # -- diagnostics and teardown --------------------------------------------------------------
    def diagnostics(self) -> str:
        parts = [entry[-4000:] for entry in self.logs[-3:]]
        for cmd in ("cloud-init status --long", "systemctl --failed --no-pager",
                    "tail -n 40 /var/log/cloud-init-output.log",
                    "journalctl -u botstack.service -u docker.service --no-pager -n 40"):
            p = self.d.exec("sh", "-c", cmd, check=False)
            parts.append(f"# {cmd}\n{p.stdout[-4000:]}{p.stderr[-1000:]}")
        return "\n".join(parts)

    def teardown(self) -> list[str]:
        return self.d.teardown()
