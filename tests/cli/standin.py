"""An SSH stand-in for the droplet, for the `botstack` CLI tests.

A container of the test machine's engine (image tests/cli/sshd on the rehearsal's Debian python
stand-in) running a real sshd with a host key generated here, the users `botadmin` (sudo without a
password, docker group) and `deploy` (docker group), and the layout of docs/contracts.md. Its
`docker` talks to the test machine's engine through the bind-mounted socket; because other test
runs share that engine, its `docker` wrapper turns compose project `botstack` into this run's own
project (PROJECT) and adds the rehearsal's Bot API and S3 doubles (sshd/docker-wrapper.py).

The stack is deployed into it the way the Pulumi program does it: over real SSH as the deploy user
with the host key pinned, the release archive of infra/release.py unpacked by the program's own
command shape, `deploy/write-env.sh` fed the .env on stdin, `deploy/activate.sh <release-id>`.
The outputs file it writes has the keys the program exports (reservedIp, ssh, knownHostsLine,
releaseId, databaseMode) with this container's address and host key.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from tests.rehearsal import images
from tests.support.docker_engine import REPO, compose_binary, docker
from tests.support.docker_frame import OWNER_LABEL, owner, remove_labelled
from tests.rehearsal.stack import (BUCKET, DB_NAME, DB_USER, EXTRA_COMPOSE, RELEASE_DIRS, USER_ID, Rehearsal,
                                   build_archive, release_id)

NAME = "botstack-f-cli"                  # every container, network, volume and image made here
PROJECT = f"{NAME}-stack"                # the compose project `botstack` becomes in the stand-in
IMAGE = f"{NAME}/sshd:test"
SSHD_DIR = Path(__file__).resolve().parent / "sshd"
ROOT = "/opt/botstack"


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)
    return (path.with_suffix(".pub") if path.suffix else Path(f"{path}.pub")).read_text().strip()


def ensure_image(python_image: str) -> str:
    recipe = images._sha("cli-sshd", images._tree_hash(SSHD_DIR), images.image_id(python_image))
    if images.image_label(IMAGE) != recipe:
        docker("build", "-q", "--label", f"{images.LABEL}={recipe}", "--build-arg",
               f"BASE_IMAGE={python_image}", "-t", IMAGE, str(SSHD_DIR), timeout=900,
               env=dict(images.docker_env({"DOCKER_BUILDKIT": "0"})))
    return IMAGE


class StandIn:
    def __init__(self, work: Path, built: dict[str, str]):
        self.work = Path(work)
        self.images = built
        self.keys = self.work / "keys"
        self.keys.mkdir(parents=True, exist_ok=True)
        self.container = f"{NAME}-sshd-{os.getpid()}"
        self.data_dir = self.work / "data"          # DATA_DIR in the .env: a path of the engine's host
        self.data_dir.mkdir(exist_ok=True)
        self.release_ids: list[str] = []
        self._rehearsal: Optional[Rehearsal] = None
        self.ip = ""
        self.host_pub = keygen(self.keys / "ssh_host_ed25519_key")
        client = self.work / "client"          # the private keys stay out of the container
        client.mkdir(exist_ok=True)
        self.admin_key = client / "admin"
        self.deploy_key = client / "deploy"
        for user, key in (("botadmin", self.admin_key), ("deploy", self.deploy_key)):
            keygen(key)
            shutil.copy(f"{key}.pub", self.keys / f"{user}.pub")
        self.other_host_pub = keygen(self.work / "other_host_key")

    # -- the container ----------------------------------------------------------------------------
    def start(self) -> None:
        image = ensure_image(self.images["python"])
        settings = self.work / "botstack-test.env"
        settings.write_text(
            f"BOTSTACK_TEST_PROJECT={PROJECT}\nBOTSTACK_TEST_EXTRA={EXTRA_COMPOSE}\n"
            f"BOTSTACK_TEST_REPO={REPO}\nBOTSTACK_TEST_PYTHON_IMAGE={self.images['python']}\n"
            f"BOTSTACK_TEST_MOTO_IMAGE={self.images['moto']}\n")
        docker_cli = shutil.which("docker")
        if docker_cli is None:
            raise RuntimeError("no docker CLI on PATH (scripts/install-test-deps installs docker.io)")
        docker("run", "-d", "--name", self.container, *owner(NAME),
               "-v", f"{self.keys}:/botstack-test:ro", "-v", "/var/run/docker.sock:/var/run/docker.sock",
               "-v", f"{os.path.realpath(docker_cli)}:/usr/libexec/botstack-test/docker:ro",
               "-v", f"{compose_binary()}:/usr/libexec/docker/cli-plugins/docker-compose:ro",
               "-v", f"{settings}:/etc/botstack-test.env:ro",
               "-v", f"{EXTRA_COMPOSE}:{EXTRA_COMPOSE}:ro",
               "-v", f"{self.data_dir}:{self.data_dir}", image)
        self.ip = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}",
                         self.container).stdout.strip()
        deadline = time.monotonic() + 60
        while True:
            p = self.ssh("deploy", "true", check=False)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd of {self.container} does not answer: {p.stderr[-2000:]}\n"
                                   f"{docker('logs', self.container, check=False).stderr[-2000:]}")
            time.sleep(0.5)

    def outputs(self, **change) -> dict:
        out = {"reservedIp": self.ip, "ssh": f"ssh botadmin@{self.ip}",
               "knownHostsLine": f"{self.ip} {self.host_pub}",
               "releaseId": self.release_ids[-1] if self.release_ids else None,
               "databaseMode": "container", "bucketName": "botstack-rehearsal"}
        out.update(change)
        return out

    def write_outputs(self, name: str = "outputs.json", **change) -> Path:
        path = self.work / name
        path.write_text(json.dumps(self.outputs(**change)))
        return path

    def known_hosts(self) -> Path:
        path = self.work / "known_hosts.pinned"
        path.write_text(f"{self.ip} {self.host_pub}\n")
        return path

    def ssh(self, user: str, command: str, input: Optional[bytes | str] = None, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """The deploy connection of the program: key auth, host key pinned, one command string."""
        key = self.admin_key if user == "botadmin" else self.deploy_key
        argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts()}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                "-o", "LogLevel=ERROR", f"{user}@{self.ip}", command]
        text = not isinstance(input, bytes)
        p = subprocess.run(argv, input=input, capture_output=True, text=text, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"ssh {user} {command[:120]!r} exited {p.returncode}:\n"
                                 f"{str(p.stdout)[-3000:]}\n{str(p.stderr)[-6000:]}")
        return p

    # -- deploying, as the Pulumi program does ----------------------------------------------------
    def tree(self, name: str, edit: Optional[Callable[[Path], None]] = None) -> Path:
        dest = self.work / "trees" / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        for d in RELEASE_DIRS:
            shutil.copytree(REPO / d, dest / d, ignore=ignore, symlinks=True)
        # a release id of this run's own, so its image tags never collide with another run's
        (dest / "compose" / "TEST-ONLY-cli-run").write_text(f"{NAME} {name}\n")
        if edit:
            edit(dest)
        return dest

    def deploy(self, tree: Path) -> str:
        """The program's commands (infra/deploy.py), with one substitution: DATA_DIR in its
        ENV_PREFIX is this run's data dir, since compose's bind mounts are the shared engine's paths."""
        from infra import deploy as program
        rid = release_id(tree)
        archive = build_archive(tree, self.work / "build")
        prefix = f"BOTSTACK_ROOT={ROOT} DATA_DIR={self.data_dir}"
        d = f"{ROOT}/releases/{rid}"

        def cmd(text: str) -> str:
            assert program.ENV_PREFIX in text
            return text.replace(program.ENV_PREFIX, prefix)
        # CopyToRemote's part: the archive at its remote path
        self.ssh("deploy", f"cat > {ROOT}/incoming/release-{rid}.tar.gz", input=archive.read_bytes())
        self.ssh("deploy", cmd(program.unpack_command(rid)))
        self.ssh("deploy", cmd(f"{program.ENV_PREFIX} bash {d}/deploy/write-env.sh"), input=self.env_content(rid))
        self.ssh("deploy", cmd(f"{program.ENV_PREFIX} bash {d}/deploy/activate.sh {rid}"))
        self.release_ids.append(rid)
        return rid

    def rehearsal(self) -> Rehearsal:
        """The rehearsal's stack settings (the .env the program renders, with the doubles' endpoints),
        with this run's data dir."""
        if self._rehearsal is None:
            self._rehearsal = Rehearsal(self.work / "rehearsal", self.images)
            self._rehearsal.data_dir = self.data_dir
        return self._rehearsal

    def env_content(self, rid: str) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.rehearsal().env_values(rid).items())

    def secrets(self) -> list[str]:
        return self.rehearsal().secrets()

    # -- the stack's doubles and database, straight through the engine ----------------------------
    def service_container(self, service: str) -> str:
        return f"{PROJECT}-{service}-1"

    def port(self, service: str, port: int) -> int:
        out = docker("port", self.service_container(service), str(port)).stdout.split()[0]
        return int(out.rsplit(":", 1)[1])

    def create_bucket(self) -> None:
        import boto3  # made by the Pulumi program on DigitalOcean
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port('s3', 5000)}", region_name="us-east-1",
                     aws_access_key_id="rehearsal", aws_secret_access_key="rehearsal-secret",
                     ).create_bucket(Bucket=BUCKET)

    def api(self, path: str, body=None):
        url = f"http://127.0.0.1:{self.port('botapi', 8081)}/_control/{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def ask(self, text: str, expect: str, timeout: float = 30) -> str:
        """Send `text` as the rehearsal's user; the bot's first later message containing `expect`."""
        n = len(self.api(f"sent?chat_id={USER_ID}")["messages"])
        self.api("updates", {"message": {"from_id": USER_ID, "text": text}})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.api(f"sent?chat_id={USER_ID}")["messages"][n:]:
                if expect in (m.get("text") or ""):
                    return m["text"]
            time.sleep(0.3)
        raise AssertionError(f"the bot did not answer {text!r} with {expect!r} within {timeout}s")

    def psql(self, sql: str) -> str:
        return docker("exec", self.service_container("postgres"), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                      "-U", DB_USER, "-d", DB_NAME, "-At", "-c", sql).stdout.strip()

    def remote_processes(self) -> str:
        return docker("exec", self.container, "ps", "-eo", "user,args").stdout

    # -- teardown ---------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """The stack's containers, networks and volumes (its compose project's label), the stand-in
        itself (labelled as made by NAME), the run's release images; what is left."""
        left = remove_labelled(f"com.docker.compose.project={PROJECT}") + remove_labelled(f"{OWNER_LABEL}={NAME}")
        refs = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [r for r in refs if r.startswith("botstack-") and r.rsplit(":", 1)[1] in self.release_ids]
        if mine:
            docker("image", "rm", *mine, check=False)
        return left
