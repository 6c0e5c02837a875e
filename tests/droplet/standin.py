"""The stand-in droplet: a container booted with systemd as PID 1 from the Debian trixie image that
`tests.rehearsal.images.ensure_droplet_base` builds, cloud-init reading the program's rendered
user-data from a NoCloud seed, a loop-device ext4 volume carrying the program's volume label that is
attached once the stand-in is up (as DigitalOcean attaches it), its own dockerd, and the rehearsal's
doubles (Bot API, moto's S3) beside it on a network of its own.

Every way in which it differs from an Ubuntu 24.04 droplet is a named substitution (SUBSTITUTIONS
below, and docs/rehearsal.md): the user-data itself is never edited.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from tests.rehearsal.images import DROPLET_SUITE
from tests.support.docker_engine import REPO, cache_dir, docker, docker_env
from tests.support.docker_frame import OWNER_LABEL, owner, remove_labelled

PREFIX = os.environ.get("BOTSTACK_STANDIN_PREFIX", "botstack-standin")
VOLUME_SIZE = "2G"
DOCKER_DATA = "/var/lib/docker"

# the pinned public images of compose.yml and the Dockerfiles, and the stand-in each is loaded as
PINNED_AS = {"python": "python:3.12-slim-bookworm", "postgres": "postgres:17.6-bookworm"}
# those of the `observability` profile, loaded when the run's images include them: as compose.yml
# names them (read from it, so a bumped pin is followed)
PROFILE_IMAGES = {"prometheus": "prometheus", "node-exporter": "node-exporter"}  # image key: service


def compose_image(service: str) -> str:
    """The `image:` compose.yml gives `service`."""
    import yaml
    doc = yaml.safe_load((REPO / "compose" / "compose.yml").read_text())
    return str(doc["services"][service]["image"])


def pinned_names(images: dict[str, str]) -> dict[str, str]:
    """{image key: the public name it is loaded as} for the images of a run."""
    out = dict(PINNED_AS)
    out.update({key: compose_image(service) for key, service in PROFILE_IMAGES.items() if key in images})
    return out

SUBSTITUTIONS = {
    "distribution": "Debian trixie, the release closest to Ubuntu 24.04 reachable here",
    "metadata-service": "NoCloud seed instead of DigitalOcean's datasource (base image config)",
    "udev": "a boot unit and a path unit link /dev/disk/by-label/<label> (no udev in a container)",
    "volume-attach": "the volume's device node appears in a bind-mounted /dev/botstack-test-disks",
    "device-unit": "a service waits for the by-label link as long as x-systemd.device-timeout",
    "proc-sys-net": "/proc/sys/net remounted writable at boot (Docker mounts /proc/sys read-only)",
    "fail2ban-banaction": "fail2ban bans with iptables-multiport, Ubuntu's default (Debian's is nftables)",
    "boot-id": "the test machine's boot id: a reboot's journal is read by cursor and time, not -b -1",
    "cgroup-v1": "systemd 257 is told to run on this machine's cgroup v1 (its command line)",
    "docker-compose-v2": "an empty package of that name depends on Debian's docker-compose (local apt repository)",
    "docker-data-root": f"{DOCKER_DATA} on a Docker volume (overlay2 cannot stack on the root overlay)",
    "apt-archives": "/var/cache/apt/archives kept in the test cache dir (speed only)",
    "registry": "the stand-in base images loaded into the inner engine under the pinned names",
    "spaces-endpoint": "SPACES_ENDPOINT (and a set RESTORE_FROM_ENDPOINT) of the rendered .env point at moto's S3 server",
    "swap": "swapon -a skips a swap file on the container's overlay root (the kernel refuses it)",
    "fstab-in-a-container": "a generator writes the volume's mount unit (systemd skips it in a container)",
    "locale": "the base generates en_US.UTF-8, as Ubuntu cloud images ship it",
    "bucket": "the harness creates the bucket on the S3 double (pulumi creates the real one)",
    "snapshot": "the volume snapshot between write-env and activate is not a command: not run",
    "address": "local delete commands get the stand-in's address for the program's SSH host",
}


def _run(*cmd: str, check: bool = True, timeout: float = 120, input: bytes | None = None
         ) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc


class Droplet:
    """One stand-in droplet and its doubles. `boot(user_data)` starts it; `teardown()` removes all."""

    def __init__(self, work: Path, images: dict[str, str]):
        self.work = Path(work)
        self.images = images
        self.name = f"{PREFIX}-droplet"
        self.network = f"{PREFIX}-net"
        self.docker_volume = f"{PREFIX}-docker"
        self.loop: str | None = None
        self.label = owner(PREFIX)  # on everything made here: teardown removes by this label
        # (kind, name) of what was made, for `botstack local`'s state file (scripts/botstack_cli/local.py)
        self.created: list[tuple[str, str]] = []

    # -- the network and the doubles ---------------------------------------------------------
    def start_doubles(self, token: str) -> None:
        docker("network", "create", *self.label, self.network)
        self.created.append(("network", self.network))
        docker("run", "-d", "--name", f"{PREFIX}-botapi", *self.label, "--network", self.network,
               "-v", f"{REPO}/tests:/app/tests:ro", "-w", "/app", "-e", "PYTHONDONTWRITEBYTECODE=1",
               self.images["python"], "python", "-m", "tests.support.botapi_double",
               "--host", "0.0.0.0", "--port", "8081", "--token", token)
        self.created.append(("container", f"{PREFIX}-botapi"))
        docker("run", "-d", "--name", f"{PREFIX}-s3", *self.label, "--network", self.network,
               self.images["moto"])
        self.created.append(("container", f"{PREFIX}-s3"))
        self.botapi_url = f"http://{self.address_of(f'{PREFIX}-botapi')}:8081"
        self.s3_url = f"http://{self.address_of(f'{PREFIX}-s3')}:5000"
        _wait_http(f"{self.botapi_url}/_control/health")
        _wait_http(f"{self.s3_url}/moto-api/")

    def adopt_doubles(self, earlier: "Droplet") -> None:
        """The network and doubles of an earlier stand-in (removed by `remove()`), kept: a second
        droplet of the same stack after the first is gone, with the store that outlived it
        (bench/droplet_restore.py)."""
        self.botapi_url, self.s3_url = earlier.botapi_url, earlier.s3_url

    def address_of(self, container: str) -> str:
        out = docker("inspect", "--format",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container).stdout
        return out.split()[0]

    @property
    def address(self) -> str:
        return self.address_of(self.name)

    # -- the volume --------------------------------------------------------------------------
    def make_volume(self, label: str) -> str:
        """A sparse file on a loop device, formatted ext4 with the program's label, as DigitalOcean
        formats a volume created with initial_filesystem_type/label."""
        img = self.work / "volume.img"
        _run("truncate", "-s", VOLUME_SIZE, str(img))
        self.loop = _run("losetup", "-f", "--show", str(img)).stdout.decode().strip()
        _run("mkfs.ext4", "-q", "-L", label, self.loop)
        return self.loop

    @property
    def disks(self) -> Path:
        """The stand-in's /dev/botstack-test-disks: where an attached volume's device node appears."""
        return self.work / "disks"

    def attach_volume(self) -> str:
        """SUBSTITUTION volume-attach: DigitalOcean attaches the volume to the running droplet (the
        kernel adds its block device, udev links it by label). Here its device node appears in the
        stand-in's /dev/botstack-test-disks (a directory of this machine, bind-mounted; the
        container's device cgroup admits this one device from the start), and the image's path
        unit links it by label. The node stays there, so the volume is attached at every later
        boot, as on DigitalOcean. Returns the device's path in the stand-in."""
        assert self.loop is not None, "make_volume() comes first"
        rdev = os.stat(self.loop).st_rdev
        node = self.disks / Path(self.loop).name
        os.mknod(node, 0o660 | stat.S_IFBLK, rdev)
        return f"/dev/botstack-test-disks/{node.name}"

    # -- boot ----------------------------------------------------------------------------------
    def boot(self, user_data: str, hostname: str) -> None:
        """Start the stand-in with no volume attached (attach_volume() comes later, as on
        DigitalOcean, where the volume attachment is made once the droplet is up)."""
        assert self.loop is not None, "make_volume() comes first"
        rdev = os.stat(self.loop).st_rdev
        self.disks.mkdir(exist_ok=True)
        seed = self.work / "seed"
        seed.mkdir(parents=True, exist_ok=True)
        (seed / "user-data").write_text(user_data)
        (seed / "user-data").chmod(0o600)
        (seed / "meta-data").write_text(f"instance-id: {self.name}\nlocal-hostname: {hostname}\n")
        archives = cache_dir() / f"droplet-apt-archives-{DROPLET_SUITE}"
        archives.mkdir(parents=True, exist_ok=True)
        docker("volume", "create", *self.label, self.docker_volume)
        self.created.append(("volume", self.docker_volume))
        # what systemd as PID 1 needs here (machine-facts): every capability but SYS_RESOURCE (not
        # in this machine's bounding set, so --privileged fails), no seccomp/apparmor filter, the
        # host's cgroup tree, tmpfs /run; ip_forward for the inner engine (/proc/sys stays read-only)
        docker("run", "-d", "--name", self.name, *self.label, "--hostname", hostname, "--network", self.network,
               "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
               "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
               "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
               "--tmpfs", "/run", "--tmpfs", "/run/lock", "--sysctl", "net.ipv4.ip_forward=1",
               "--device-cgroup-rule", f"b {os.major(rdev)}:{os.minor(rdev)} rwm",
               "-v", f"{self.disks}:/dev/botstack-test-disks",
               "--stop-signal", "SIGRTMIN+3", "--stop-timeout", "90",
               "-v", f"{seed}:/var/lib/cloud/seed/nocloud:ro",
               "-v", f"{self.docker_volume}:{DOCKER_DATA}",
               "-v", f"{archives}:/var/cache/apt/archives",
               # systemd 257 refuses this machine's cgroup v1 unless told; in a container it reads
               # its "kernel command line" from its own
               self.images["droplet"], "/sbin/init", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1")
        self.created.append(("container", self.name))

    def exec(self, *cmd: str, check: bool = True, timeout: float = 300, input: str | None = None,
             user: str | None = None) -> subprocess.CompletedProcess:
        args = ["exec", "-i"] + (["-u", user] if user else []) + [self.name, *cmd]
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                              input=input, env=docker_env())
        if check and proc.returncode != 0:
            raise AssertionError(f"in the stand-in, `{' '.join(cmd)[:200]}` exited {proc.returncode}:"
                                 f"\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def sh(self, script: str, **kw) -> str:
        return self.exec("sh", "-c", script, **kw).stdout

    def wait_booted(self, timeout: float = 900) -> str:
        """Wait for systemd to finish booting (running or degraded); return its state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            p = self.exec("systemctl", "is-system-running", check=False, timeout=30)
            state = p.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(1)
        raise AssertionError(f"the stand-in did not finish booting in {timeout:.0f}s ({state!r}):\n"
                             + self.sh("systemctl list-jobs --no-pager; systemctl --failed --no-pager",
                                       check=False))

    def wait_until_the_volume_is_awaited(self, label: str, timeout: float = 900) -> dict:
        """Hold the volume back until something on the stand-in waits for it: a start job of
        docker.service queued behind the volume's mount (Docker's install meeting the mount its
        drop-in requires), or a process polling for /dev/disk/by-label/<label> (the user-data's
        wait). Returns which one, and the jobs then queued. Should cloud-init finish first, nothing
        waited ("awaited_by": None)."""
        deadline = time.monotonic() + timeout
        waiter = f"botstack-test-device-{label}.service"
        while time.monotonic() < deadline:
            # the separator is written so that ps's line of this very command does not hold it
            out = self.sh("systemctl list-jobs --no-legend --no-pager; echo @''@; ps -eo args; echo @''@; "
                          "ls /var/lib/cloud/instance/boot-finished 2>/dev/null", check=False)
            jobs, procs, finished = (out.split("@@") + ["", ""])[:3]
            job_units = {line.split()[1] for line in jobs.splitlines() if len(line.split()) > 2}
            if "docker.service" in job_units and waiter in job_units:
                return {"awaited_by": "docker.service", "jobs": jobs.strip()}
            polls = [p for p in procs.splitlines() if f"by-label/{label}" in p and "until [ -b" not in p]
            if polls:
                return {"awaited_by": "a process", "process": polls[0], "jobs": jobs.strip()}
            if finished.strip():  # cloud-init's last stage is over
                return {"awaited_by": None, "jobs": jobs.strip()}
            time.sleep(1)
        raise AssertionError(f"nothing on the stand-in waited for the volume within {timeout:.0f}s")

    def journal_cursor(self) -> str:
        """The cursor of the journal's newest entry (to read what is logged after it)."""
        out = self.exec("journalctl", "-n", "0", "--show-cursor", "--no-pager").stdout
        cursor = out.strip().rpartition("-- cursor: ")[2]
        assert cursor.startswith("s="), out
        return cursor

    def unit_time(self, unit: str, prop: str) -> int:
        """A monotonic timestamp property of a unit (µs; 0 when it never happened this boot)."""
        return int(self.exec("systemctl", "show", "-P", prop, unit).stdout.strip() or 0)

    def cloud_init_status(self, timeout: float = 1200) -> dict:
        p = self.exec("cloud-init", "status", "--wait", check=False, timeout=timeout)
        long = self.exec("cloud-init", "status", "--format", "json", check=False).stdout
        try:
            doc = json.loads(long)
        except ValueError:
            doc = {"raw": long}
        doc["exit"] = p.returncode
        return doc

    def load_images(self) -> None:
        """SUBSTITUTION registry: the inner engine cannot pull; the stand-ins go in through
        `docker save | docker load` and are tagged with the pinned public names (the profile's
        images too when the run has them)."""
        pinned = pinned_names(self.images)
        refs = [self.images[key] for key in pinned]
        save = subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE, env=docker_env())
        assert save.stdout is not None  # stdout=PIPE
        load = subprocess.run(["docker", "exec", "-i", self.name, "docker", "load", "-q"],
                              stdin=save.stdout, capture_output=True, timeout=900)
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"loading the stand-in images failed: {load.stderr[-2000:]!r}")
        for key, name in pinned.items():
            self.exec("docker", "tag", self.images[key], name)

    def attacker(self) -> str:
        """A second machine on the stand-in's network (for fail2ban to ban), with an SSH client."""
        name = f"{PREFIX}-attacker"
        docker("run", "-d", "--name", name, *self.label, "--network", self.network, "--entrypoint", "sleep",
               self.images["droplet"], "600")
        self.created.append(("container", name))
        return name

    def outer_exec(self, container: str, script: str, timeout: float = 120) -> str:
        p = docker("exec", container, "sh", "-c", script, check=False, timeout=timeout)
        return p.stdout + p.stderr

    def exec_state(self) -> str:
        return docker("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()

    def stop(self) -> None:
        docker("stop", self.name, timeout=180)

    def start(self) -> None:
        docker("start", self.name)

    # -- teardown ------------------------------------------------------------------------------
    def remove(self) -> None:
        """The droplet gone, as when DigitalOcean deletes it: the container, its Docker data and
        the volume's loop device; the network and the doubles stay (the store outlives it)."""
        docker("rm", "-f", "-v", self.name, timeout=180)
        docker("volume", "rm", self.docker_volume)
        if self.loop:
            _run("losetup", "-d", self.loop)
            self.loop = None

    def teardown(self) -> list[str]:
        """Remove every container, network and volume labelled with PREFIX, detach the loop device;
        return what is left."""
        left = remove_labelled(f"{OWNER_LABEL}={PREFIX}")
        if self.loop and _run("losetup", "-d", self.loop, check=False).returncode != 0:
            left.append(f"loop device {self.loop}")
        return left


def _wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout:.0f}s") from exc
            time.sleep(0.5)
