"""The dress rehearsal's driver: a fake droplet directory tree, the real deploy steps, the stack.

`Rehearsal` plays the Pulumi program's part on this machine:
- `tree(name, edit)` copies the release directories (compose/, bot/, deploy/) of this repository,
  optionally edited (a code change, a broken release), and `stage(tree)` packs it with
  `infra.release.build_archive` and unpacks it into `$BOTSTACK_ROOT/releases/<release-id>/` exactly
  as the program's `unpack-release` command does, then runs that release's `deploy/wait-ready.sh`;
- `write_env()` and `activate(id)` run the release's `deploy/write-env.sh` (the .env on stdin) and
  `deploy/activate.sh <id>` with `BOTSTACK_ROOT`/`DATA_DIR` pointing into a temp dir and
  `BOTSTACK_COMPOSE_EXTRA` adding the Bot API double and moto's S3 server (compose.rehearsal.yml);
- helpers talk to the double's control API and moto on their 127.0.0.1-published ports and run SQL
  through `docker compose exec postgres psql`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from tests.support.docker_engine import REPO, docker, docker_env
from tests.support.docker_frame import remove_labelled

PROJECT = "botstack"
PROJECT_LABEL = f"com.docker.compose.project={PROJECT}"  # on everything compose makes for it
EXTRA_COMPOSE = Path(__file__).resolve().parent / "compose.rehearsal.yml"
RELEASE_DIRS = ("compose", "bot", "deploy")

# the rehearsal's chat: one user who is also the admin
USER_ID = 424242
TOKEN = "123456:REHEARSAL-not-a-real-token"
DB_USER = "botstack"
DB_NAME = "botstack"
BUCKET = "botstack-rehearsal"
# the rehearsal's stack config over Pulumi.dev.yaml: its chat (the user is the admin, allowedUserIds
# left empty as a new user would) and the Bot API double as the API root
REHEARSAL_CONFIG = {"telegramBotToken": TOKEN, "adminUserIds": [USER_ID], "allowedUserIds": [],
                    "defaultTimezone": "UTC", "telegramApiBaseUrl": "http://botapi:8081"}
# the only keys whose rendered value the rehearsal replaces (env_values says why for each)
SUBSTITUTED = {"DATA_DIR", "BOTSTACK_RELEASE", "SPACES_ENDPOINT", "SPACES_REGION", "SPACES_BUCKET"}


def release_id(tree: Path) -> str:
    try:
        from infra.release import release_id as rid
    except ImportError:  # the same hash as docs/contracts.md defines it
        import hashlib
        h = hashlib.sha256()
        files = sorted(p.relative_to(tree).as_posix() for d in RELEASE_DIRS if (tree / d).is_dir()
                       for p in (tree / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix != ".pyc" and not p.name.endswith(".env"))
        for rel in files:
            data = (tree / rel).read_bytes()
            h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
            h.update(data)
        return h.hexdigest()[:12]
    return rid(tree)


def build_archive(tree: Path, dest: Path) -> Path:
    from infra.release import build_archive as ba
    return ba(tree, dest)


class Rehearsal:
    def __init__(self, work: Path, images: dict[str, str]):
        self.work = Path(work)
        self.root = self.work / "opt-botstack"          # BOTSTACK_ROOT
        self.data_dir = self.work / "mnt-botstack-data"  # DATA_DIR
        self.images = images
        self.figures: dict[str, Any] = {}
        self.log_lines: list[str] = []
        for d in (self.root / "releases", self.root / "incoming", self.root / "shared",
                  self.data_dir / "backups"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "shared", 0o700)
        self._ports: dict[tuple[str, int], int] = {}
        self._rendered: dict[str, str] | None = None
        self.release_ids: list[str] = []
        # anonymous volumes that exist before the run (a reused engine's), never touched
        self.volumes_before = set(docker("volume", "ls", "-q", check=False).stdout.split())

    # -- environment ---------------------------------------------------------------------------
    def rendered_env(self) -> dict[str, str]:
        """The .env the Pulumi program renders (a mock run of the program for a dev stack with the
        rehearsal's chat), as the deploy step would write it on the droplet."""
        if self._rendered is None:
            from infra import contract
            from tests.infra.harness import make_repo, run_program, unwrap

            run = run_program("dev", make_repo(self.work / "program-repo"), REHEARSAL_CONFIG)
            if run.error is not None:
                raise run.error
            self._rendered = contract.parse(unwrap(run.by_name()["deploy-write-env"].inputs["stdin"]))
        return dict(self._rendered)

    def env_values(self, rid: str = "dev") -> dict[str, str]:
        """The program's .env with only the substitutions the rehearsal needs (each named in
        SUBSTITUTED) and the stand-in images added."""
        values = self.rendered_env()
        values.update({
            # the fake droplet's data volume is a temp dir
            "DATA_DIR": str(self.data_dir),
            # the staged tree's own release id (activate.sh exports it too)
            "BOTSTACK_RELEASE": rid,
            # moto's S3 server stands in for Spaces; the rehearsal made the bucket in its region
            "SPACES_ENDPOINT": "http://s3:5000",
            "SPACES_REGION": "us-east-1",
            "SPACES_BUCKET": BUCKET,
        })
        assert set(values) - set(self.rendered_env()) == set() and \
            {k for k in values if values[k] != self.rendered_env()[k]} <= SUBSTITUTED
        # the stand-ins, through the image variables of compose.yml (build knobs, not in the contract)
        values.update(POSTGRES_IMAGE=self.images["postgres"], PYTHON_IMAGE=self.images["python"])
        return values

    def secrets(self) -> list[str]:
        v = self.env_values()
        return [v["TELEGRAM_BOT_TOKEN"], v["POSTGRES_PASSWORD"], v["BACKUP_PASSPHRASE"],
                v["SPACES_SECRET_ACCESS_KEY"], v["APP_DB_PASSWORD"], v["BACKUP_DB_PASSWORD"],
                TOKEN.split(":", 1)[1]]

    def env(self) -> dict[str, str]:
        """The environment of the deploy scripts: what pulumi-command's ENV_PREFIX sets, plus the
        rehearsal's compose hook and the docker config with the compose plugin."""
        return docker_env({
            "BOTSTACK_ROOT": str(self.root),
            "DATA_DIR": str(self.data_dir),
            "BOTSTACK_COMPOSE_EXTRA": str(EXTRA_COMPOSE),
            "BOTSTACK_TEST_REPO": str(REPO),
            "BOTSTACK_TEST_PYTHON_IMAGE": self.images["python"],
            "BOTSTACK_TEST_MOTO_IMAGE": self.images["moto"],
        })

    # -- releases ------------------------------------------------------------------------------
    def tree(self, name: str, edit: Callable[[Path], None] | None = None) -> Path:
        """A copy of this repository's release directories under work/trees/<name>, then `edit`."""
        dest = self.work / "trees" / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        for d in RELEASE_DIRS:
            if (REPO / d).is_dir():
                shutil.copytree(REPO / d, dest / d, ignore=ignore, symlinks=True)
        if edit:
            edit(dest)
        return dest

    def stage(self, tree: Path) -> str:
        """Pack the tree like the Pulumi program, unpack it like its `unpack-release` command and
        run the release's wait-ready.sh. Returns the release id."""
        rid = release_id(tree)
        self.release_ids.append(rid)
        archive = build_archive(tree, self.root / "incoming")
        d = self.root / "releases" / rid
        tmp = d.with_name(d.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp)], check=True)  # as infra/deploy.py
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
        for old in (self.root / "incoming").glob("release-*.tar.gz"):
            if old != archive:
                old.unlink()
        self.script(rid, "wait-ready.sh")
        return rid

    def script(self, rid: str, name: str, *args: str, input: str | None = None, check: bool = True,
               timeout: float = 900) -> subprocess.CompletedProcess:
        """Run `bash $BOTSTACK_ROOT/releases/<rid>/deploy/<name> ARGS` as pulumi-command would."""
        path = self.root / "releases" / rid / "deploy" / name
        t0 = time.monotonic()
        proc = subprocess.run(["bash", str(path), *args], input=input, capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        out = (f"$ {name} {' '.join(args)}  (exit {proc.returncode}, {time.monotonic() - t0:.1f}s)\n"
               f"{proc.stdout}{proc.stderr}")
        self.log_lines.append(out)
        if check and proc.returncode != 0:
            raise AssertionError(f"deploy/{name} {' '.join(args)} failed (exit {proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return proc

    def write_env(self, rid: str) -> None:
        content = "".join(f"{k}={v}\n" for k, v in self.env_values(rid).items())
        self.script(rid, "write-env.sh", input=content)

    def activate(self, rid: str, check: bool = True, **env) -> subprocess.CompletedProcess:
        return self.script(rid, "activate.sh", rid, check=check)

    def link(self, name: str) -> str | None:
        p = self.root / name
        return os.path.basename(os.readlink(p)) if p.is_symlink() else None

    # -- compose on the current release --------------------------------------------------------
    def compose(self, *args: str, check: bool = True, timeout: float = 600,
                input: str | None = None) -> subprocess.CompletedProcess:
        cur = self.root / "current"
        files = f"{cur}/compose/compose.yml:{EXTRA_COMPOSE}"
        env = self.env()
        env.update(COMPOSE_FILE=files, COMPOSE_PATH_SEPARATOR=":", BOTSTACK_RELEASE=self.link("current") or "")
        proc = subprocess.run(["docker", "compose", "-p", PROJECT, "--env-file",
                               str(self.root / "shared" / ".env"), *args], capture_output=True,
                              text=True, env=env, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def services(self) -> dict[str, dict]:
        """{service: {"State":..., "Health":..., "ID":...}} of the project's containers."""
        out = self.compose("ps", "-a", "--format", "json").stdout.strip()
        rows = []
        if out.startswith("["):
            rows = json.loads(out)
        else:
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["Service"]: r for r in rows}

    def container(self, service: str) -> str:
        cid = self.compose("ps", "-q", service).stdout.strip()
        assert cid, f"no running container for service {service}"
        return cid.splitlines()[0]

    def inspect(self, cid: str) -> dict:
        return json.loads(docker("inspect", cid).stdout)[0]

    def port(self, service: str, port: int) -> int:
        key = (service, port)
        if key not in self._ports:
            out = self.compose("port", service, str(port)).stdout.strip()
            m = re.search(r":(\d+)$", out)
            assert m, f"service {service} publishes no port {port}: {out!r}"
            self._ports[key] = int(m.group(1))
        return self._ports[key]

    def forget_ports(self) -> None:
        self._ports.clear()

    def logs(self, service: str, tail: int = 80) -> str:
        p = self.compose("logs", "--no-color", "--tail", str(tail), service, check=False)
        return p.stdout + p.stderr

    def psql(self, sql: str) -> str:
        p = self.compose("exec", "-T", "postgres", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                         "-U", DB_USER, "-d", DB_NAME, "-At", "-F", "|", "-c", sql)
        return p.stdout.strip()

    # -- the Bot API double --------------------------------------------------------------------
    def api(self, path: str, body: Any = None, timeout: float = 10) -> Any:
        url = f"http://127.0.0.1:{self.port('botapi', 8081)}/_control/{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def sent(self) -> list[dict]:
        return self.api(f"sent?chat_id={USER_ID}")["messages"]

    def say(self, text: str) -> dict:
        return self.api("updates", {"message": {"from_id": USER_ID, "text": text}})["update"]

    def press(self, data: str, message_id: int) -> dict:
        return self.api("updates", {"callback": {"from_id": USER_ID, "data": data,
                                                 "message_id": message_id}})["update"]

    def wait_sent(self, pred: Callable[[dict], bool], after: int = 0, timeout: float = 30,
                  what: str = "a message") -> dict:
        """Wait for a message to the user, among those sent after the first `after`, matching `pred`."""
        deadline = time.monotonic() + timeout
        last: list[dict] = []
        while time.monotonic() < deadline:
            try:
                last = self.sent()
            except OSError:
                last = last
            for m in last[after:]:
                if pred(m):
                    return m
            time.sleep(0.3)
        texts = [m.get("text") or m.get("caption") for m in last[-8:]]
        raise AssertionError(f"the bot did not send {what} within {timeout:.0f}s; last messages: "
                             f"{texts!r}\n--- bot logs\n{self.logs('bot', 40)}")

    def ask(self, text: str, expect: str | Callable[[str], bool], timeout: float = 30) -> dict:
        """Send `text` as the user; return the bot's first following message whose text matches."""
        n = len(self.sent())
        self.say(text)
        check = (lambda t: expect in t) if isinstance(expect, str) else expect
        return self.wait_sent(lambda m: check(m.get("text") or m.get("caption") or ""), after=n,
                              timeout=timeout, what=f"an answer to {text!r} matching {expect!r}")

    # -- S3 double (moto) ----------------------------------------------------------------------
    def s3(self):
        import boto3
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port('s3', 5000)}",
                            region_name="us-east-1", aws_access_key_id="rehearsal",
                            aws_secret_access_key="rehearsal-secret")

    def bucket_keys(self) -> list[str]:
        out = self.s3().list_objects_v2(Bucket=BUCKET)
        return sorted(o["Key"] for o in out.get("Contents", []))

    # -- teardown ------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Remove the project's containers, networks and volumes; return what is still there."""
        env = self.env()
        env.pop("COMPOSE_FILE", None)
        cur = self.root / "current"
        args = ["docker", "compose", "-p", PROJECT]
        if (cur / "compose" / "compose.yml").exists() and (self.root / "shared" / ".env").exists():
            env.update(COMPOSE_FILE=f"{cur}/compose/compose.yml:{EXTRA_COMPOSE}",
                       COMPOSE_PATH_SEPARATOR=":")
            args += ["--env-file", str(self.root / "shared" / ".env")]
        subprocess.run(args + ["down", "-v", "--remove-orphans", "--timeout", "10"],
                       capture_output=True, text=True, env=env, timeout=300)
        left = remove_labelled(PROJECT_LABEL)
        # anonymous volumes the run created and no container uses any more: none are expected (the
        # backup service covers the VOLUME its postgres base image declares with a tmpfs); removed
        # anyway so a failing run leaves nothing, and recorded so the teardown step can fail on them
        dangling = set(docker("volume", "ls", "-q", "--filter", "dangling=true", check=False).stdout.split())
        orphans = sorted(v for v in dangling - self.volumes_before if re.fullmatch(r"[0-9a-f]{64}", v))
        self.orphan_volumes = orphans
        if orphans:
            docker("volume", "rm", *orphans, check=False)
        # the images of the rehearsal's releases (the engine's build cache stays, for the next run)
        refs = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [ref for ref in refs if re.fullmatch(r"botstack-[a-z0-9_-]+:(.+)", ref)
                and ref.rsplit(":", 1)[1] in self.release_ids]
        if mine:
            docker("image", "rm", *mine, check=False)
        return left
