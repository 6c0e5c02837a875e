"""The release: which files make one deployable version of the stack, and its id.

Pure Python (no pulumi import): the Pulumi program and the local dress rehearsal both use it.

A release is every file under `compose/`, `bot/` and `deploy/` (see docs/contracts.md), minus
`__pycache__/` directories, `*.pyc` files and `.env` files (`.env`, `*.env`; `.env.example` stays).

`release_id(repo_root)`: the first 12 hex digits of a sha256 over, for each file in sorted order of
its repo-relative POSIX path: the path, a NUL byte, the content's length in decimal, a NUL byte,
and the content. The same hash per directory (`component_hashes`) lets the program's triggers and
`pulumi preview` say which part changed.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

RELEASE_DIRS = ("compose", "bot", "deploy")


def _excluded(rel: Path) -> bool:
    if any(part in ("__pycache__", ".pytest_cache", ".mypy_cache") for part in rel.parts):
        return True
    name = rel.name
    return name.endswith((".pyc", ".pyo")) or name == ".env" or name.endswith(".env")


def release_files(repo_root: Path, dirs: tuple[str, ...] = RELEASE_DIRS) -> list[str]:
    """Repo-relative POSIX paths of the release's regular files, sorted. Missing dirs are empty."""
    repo_root = Path(repo_root)
    found: list[str] = []
    for top in dirs:
        base = repo_root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not _excluded(Path(d))]
            for fn in filenames:
                full = Path(dirpath) / fn
                rel = full.relative_to(repo_root)
                if full.is_file() and not full.is_symlink() and not _excluded(rel):
                    found.append(rel.as_posix())
    return sorted(found)


def tree_hash(repo_root: Path, dirs: tuple[str, ...] = RELEASE_DIRS) -> str:
    """Full sha256 hex digest over the paths and contents of the files under `dirs`."""
    h = hashlib.sha256()
    for rel in release_files(repo_root, dirs):
        data = (Path(repo_root) / rel).read_bytes()
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def release_id(repo_root: Path) -> str:
    """The release id: 12 hex digits naming /opt/botstack/releases/<release-id>/."""
    return tree_hash(repo_root)[:12]


def component_hashes(repo_root: Path) -> dict[str, str]:
    """{dir: sha256 of that dir's files} for each release directory."""
    return {d: tree_hash(repo_root, (d,)) for d in RELEASE_DIRS}


def build_archive(repo_root: Path, dest_dir: Path) -> Path:
    """Writes `<dest_dir>/release-<id>.tar.gz`, byte-for-byte reproducible (sorted entries, mtime 0,
    owner 0:0, mode 0755 for executables and 0644 otherwise), and returns its path."""
    repo_root = Path(repo_root)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"release-{release_id(repo_root)}.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in release_files(repo_root):
            full = repo_root / rel
            data = full.read_bytes()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0) as z:
        z.write(buf.getvalue())
    # two builds may run at once (a `pulumi preview` beside a test run): each writes a temporary
    # file of its own, and an old archive the other one removed first is no error
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it 0600; an archive is no secret
            f.write(gz.getvalue())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for old in dest_dir.glob("release-*.tar.gz"):  # only the current release's archive is kept
        if old != out:
            old.unlink(missing_ok=True)
    return out
