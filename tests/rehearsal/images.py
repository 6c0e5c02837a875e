"""Builds the TEST-ONLY stand-ins for the public images the stack uses (no registry can be reached).

    botstack-test/debian:<suite>   debootstrap --variant=minbase <suite>, `docker import`ed
    botstack-test/python:3         tests/images/python    (stand-in for python:3.x-slim; bookworm)
    botstack-test/postgres:<N>     tests/images/postgres  (stand-in for postgres:N: 15 on bookworm
                                   for the rehearsal, 17 on trixie for the stand-in droplet)
    botstack-test/moto:<version>   tests/images/moto      (moto's S3 server, the offsite double)
    botstack-test/prometheus:trixie     tests/images/prometheus     (stand-ins for prom/prometheus and
    botstack-test/node-exporter:trixie  tests/images/node-exporter   prom/node-exporter: Debian trixie's
                                   packages; the stand-in droplet's `observability` profile)
    botstack-test/droplet:trixie   the stand-in droplet (rootfs + tests/images/droplet; below)

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
PYTHON = "botstack-test/python:3"
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


def debian_mirror(suite: str = SUITE, default: str = "http://deb.debian.org/debian") -> str:
    """The first mirror of this machine's apt sources that serves `suite` (else `default`)."""
    for name, content in host_apt_sources():
        text = content.decode(errors="replace")
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and suite in suites.group(1).split():
                    return uris.group(1)
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and m.group(2) == suite:
                    return m.group(1)
    return default


def debian_sources(suite: str) -> str:
    """deb822 sources of `suite`, its updates and its security suite, from the mirrors this
    machine's apt uses for its own Debian (another suite of the same archive)."""
    archive = debian_mirror()
    security = debian_mirror(f"{SUITE}-security", "http://deb.debian.org/debian-security")
    key = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    return (f"Types: deb\nURIs: {archive}\nSuites: {suite} {suite}-updates\n"
            f"Components: main\n{key}\n\nTypes: deb\nURIs: {security}\n"
            f"Suites: {suite}-security\nComponents: main\n{key}\n")


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


def ensure_debian(suite: str = SUITE) -> str:
    """botstack-test/debian:<suite>: debootstrap minbase; apt sources: this machine's for its own
    suite, the same mirrors' for another one (`debian_sources`)."""
    ref = f"botstack-test/debian:{suite}"
    sources = host_apt_sources() if suite == SUITE else [("debian.sources", debian_sources(suite).encode())]
    mirror = debian_mirror()
    recipe = _sha("debian", DEBIAN_RECIPE_VERSION, suite, mirror, *[x for s in sources for x in s])
    if image_label(ref) == recipe:
        return ref
    tarball = cache_dir() / f"debian-{suite}-minbase-{recipe[:16]}.tar"
    if not tarball.exists():
        if os.geteuid() != 0:
            raise RuntimeError("building the Debian stand-in needs root (debootstrap): run the "
                               "rehearsal as root once, or `sudo .venv/bin/python -m "
                               "tests.rehearsal.images`; later runs reuse the images")
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (scripts/install-test-deps installs it)")
        t0 = time.monotonic()
        _log(f"debootstrap --variant=minbase {suite} from {mirror} (once per machine)")
        with tempfile.TemporaryDirectory(prefix="botstack-debootstrap-", dir=cache_dir()) as tmp:
            root = Path(tmp) / "rootfs"
            proc = subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"debootstrap failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                                   f"\n{proc.stderr[-3000:]}")
            # the machine's apt sources (test-only), no caches, no package lists
            (root / "etc/apt/sources.list").unlink(missing_ok=True)
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
        for old in cache_dir().glob(f"debian-{suite}-minbase-*.tar"):
            if old != tarball:
                old.unlink()
        _log(f"debootstrap done in {time.monotonic() - t0:.0f}s")
    _log(f"docker import {tarball.name} -> {ref}")
    with open(tarball, "rb") as f:
        proc = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={recipe}",
                               "--change", ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                               "/usr/bin:/sbin:/bin"), "--change", 'CMD ["bash"]', "-", ref],
                              stdin=f, capture_output=True, text=True, env=docker_env(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import failed: {proc.stderr}")
    return ref


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


# the PostgreSQL major of each Debian release the stand-ins are built from
POSTGRES_SUITES = {15: SUITE, 17: "trixie"}


def ensure_postgres(major: int = 15) -> str:
    """botstack-test/postgres:<major>, from the Debian release that ships it (the rehearsal's 15 on
    bookworm; the stand-in droplet's 17, the real image's major, on trixie)."""
    return _build(f"botstack-test/postgres:{major}", "postgres", ensure_debian(POSTGRES_SUITES[major]),
                  build_args={"PG_MAJOR": str(major)}, extra_files=machine_files())


def moto_ref() -> str:
    return f"botstack-test/moto:{moto_version()}"


def ensure_moto() -> str:
    return _build(moto_ref(), "moto", ensure_python(), build_args={"MOTO_VERSION": moto_version()})


# the `observability` profile's images (compose.yml: prom/prometheus, prom/node-exporter), from the
# Debian release of the stand-in droplet, whose versions are the nearest to the pinned ones here
OBSERVABILITY_SUITE = "trixie"


def ensure_prometheus() -> str:
    return _build(f"botstack-test/prometheus:{OBSERVABILITY_SUITE}", "prometheus",
                  ensure_debian(OBSERVABILITY_SUITE))


def ensure_node_exporter() -> str:
    return _build(f"botstack-test/node-exporter:{OBSERVABILITY_SUITE}", "node-exporter",
                  ensure_debian(OBSERVABILITY_SUITE))


def ensure_all() -> dict[str, str]:
    """Build (or reuse) every stand-in; return {name: ref}. Older builds of the stand-ins (untagged,
    carrying the recipe label) are removed."""
    refs = {"debian": ensure_debian(), "python": ensure_python(), "postgres": ensure_postgres(),
            "moto": ensure_moto()}
    docker("image", "prune", "-f", "--filter", f"label={LABEL}", check=False)
    return refs


def ensure_droplet_run(observability: bool = False) -> dict[str, str]:
    """The images one stand-in droplet run loads (tests/droplet, bench/droplet_*.py): the droplet's
    base, its doubles' images and the stack's, plus the observability profile's when it is on."""
    refs = {"python": ensure_python(), "postgres": ensure_postgres(17), "moto": ensure_moto(),
            "droplet": ensure_droplet_base()}
    if observability:
        refs |= {"prometheus": ensure_prometheus(), "node-exporter": ensure_node_exporter()}
    return refs


# -- the stand-in droplet's base (tests/droplet) -------------------------------------------------
# The release closest to the droplet's Ubuntu 24.04 that this machine reaches: Debian trixie
# (systemd 257, cloud-init 25, docker.io 26); see docs/rehearsal.md for what still differs.
DROPLET_SUITE = "trixie"
DROPLET_ROOTFS = f"botstack-test/droplet-rootfs:{DROPLET_SUITE}"
DROPLET = f"botstack-test/droplet:{DROPLET_SUITE}"
DROPLET_RECIPE_VERSION = "6"  # bump when the steps of _build_droplet_tarball change
# what an Ubuntu cloud image has before its user-data runs (cloud-init, sshd, sudo, ip, ps); the
# user-data's own packages (docker.io, fail2ban, ...) are installed by cloud-init at boot
DROPLET_PACKAGES = ("cloud-init", "openssh-server", "locales", "sudo", "iproute2", "procps",
                    "ca-certificates", "iptables", "kmod")




def ensure_droplet_rootfs() -> str:
    """debootstrap minbase trixie with systemd, then (chroot) cloud-init, sshd and what an Ubuntu
    cloud image has; no SSH host keys, no machine id, no cloud-init state. The tarball is cached in
    the cache dir (the slow part, once per machine); `docker import` makes it DROPLET_ROOTFS."""
    sources = debian_sources(DROPLET_SUITE)
    recipe = _sha("droplet-rootfs", DROPLET_RECIPE_VERSION, DROPLET_SUITE, sources, *DROPLET_PACKAGES)
    if image_label(DROPLET_ROOTFS) == recipe:
        return DROPLET_ROOTFS
    tarball = cache_dir() / f"droplet-{DROPLET_SUITE}-{recipe[:16]}.tar"
    if not tarball.exists():
        _build_droplet_tarball(tarball, sources)
        for old in cache_dir().glob(f"droplet-{DROPLET_SUITE}-*.tar"):
            if old != tarball:
                old.unlink()
    _log(f"docker import {tarball.name} -> {DROPLET_ROOTFS}")
    with open(tarball, "rb") as f:
        proc = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={recipe}",
                               "--change", "ENV container=docker", "--change",
                               'CMD ["/sbin/init"]', "-", DROPLET_ROOTFS],
                              stdin=f, capture_output=True, text=True, env=docker_env(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import failed: {proc.stderr}")
    return DROPLET_ROOTFS


def ensure_droplet_base() -> str:
    """The stand-in droplet's image: the rootfs with the files of tests/images/droplet (each one a
    substitution named in docs/rehearsal.md), run with /sbin/init."""
    return _build(DROPLET, "droplet", ensure_droplet_rootfs())


def _build_droplet_tarball(tarball: Path, sources: str) -> None:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise RuntimeError("building the stand-in droplet needs root and debootstrap "
                           "(scripts/install-test-deps installs it)")
    mirror = debian_mirror()
    t0 = time.monotonic()
    _log(f"debootstrap the stand-in droplet ({DROPLET_SUITE}, systemd, cloud-init) from {mirror}")
    with tempfile.TemporaryDirectory(prefix="botstack-droplet-", dir=cache_dir()) as tmp:
        root = Path(tmp) / "rootfs"

        def run(*cmd: str, timeout: float = 900) -> None:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

        # cloud-init cannot go into --include: debootstrap does not resolve virtual dependencies;
        # apt in the chroot does
        run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", DROPLET_SUITE,
            str(root), mirror)
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
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
        part = tarball.with_suffix(".tar.part")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], check=True)
        part.replace(tarball)
    _log(f"stand-in droplet rootfs built in {time.monotonic() - t0:.0f}s")

if __name__ == "__main__":
    from tests.support.docker_engine import Engine

    Engine(cache_dir() / "engine").ensure()  # a started engine is left running here
    t = time.monotonic()
    print(ensure_all())
    print(f"{time.monotonic() - t:.0f}s")
