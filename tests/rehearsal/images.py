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

from tests.rehearsal.engine import REPO, cache_dir, docker, docker_env

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


def moto_version() -> str:
    text = (REPO / "requirements-dev.txt").read_text()
    m = re.search(r"^moto(?:\[[^\]]*\])?==(\S+)", text, re.M)
    if not m:
        raise RuntimeError("requirements-dev.txt pins no moto version")
    return m.group(1)


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
                               "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                               "/usr/bin:/sbin:/bin", "--change", 'CMD ["bash"]', "-", DEBIAN],
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


if __name__ == "__main__":
    from tests.rehearsal.engine import Engine

    Engine(cache_dir() / "engine").ensure()  # a started engine is left running here
    t = time.monotonic()
    print(ensure_all())
    print(f"{time.monotonic() - t:.0f}s")
