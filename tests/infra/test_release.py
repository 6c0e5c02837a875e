"""infra/release.py: the file list, the release id, the reproducible archive."""
from __future__ import annotations

import hashlib
import os
import tarfile

import pytest

from infra import release
from tests.infra.harness import REPO


def _tree(root):
    (root / "bot" / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "bot" / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"x")
    (root / "bot" / "pkg" / "m.py").write_text("print('hi')\n")
    (root / "bot" / "pkg" / "old.pyc").write_bytes(b"x")
    (root / "compose").mkdir()
    (root / "compose" / "compose.yml").write_text("services: {}\n")
    (root / "compose" / ".env").write_text("SECRET=1\n")
    (root / "compose" / "local.env").write_text("SECRET=1\n")
    (root / "compose" / ".env.example").write_text("KEY=\n")
    (root / "deploy").mkdir()
    (root / "deploy" / "activate.sh").write_text("#!/bin/sh\n")
    (root / "deploy" / "activate.sh").chmod(0o755)
    (root / "README.md").write_text("not part of a release\n")
    return root


def test_files_exclude_caches_and_env_files(tmp_path):
    root = _tree(tmp_path)
    assert release.release_files(root) == [
        "bot/pkg/m.py", "compose/.env.example", "compose/compose.yml", "deploy/activate.sh"]


def test_release_id_is_a_hash_over_paths_and_contents(tmp_path):
    root = _tree(tmp_path)
    h = hashlib.sha256()
    for rel in release.release_files(root):
        data = (root / rel).read_bytes()
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    assert release.release_id(root) == h.hexdigest()[:12]
    before = release.release_id(root)
    (root / "compose" / ".env").write_text("SECRET=2\n")       # excluded: no change
    (root / "bot" / "pkg" / "__pycache__" / "n.pyc").write_bytes(b"y")
    assert release.release_id(root) == before
    (root / "bot" / "pkg" / "m.py").rename(root / "bot" / "pkg" / "n.py")  # a rename is a change
    assert release.release_id(root) != before


def test_component_hashes_name_the_changed_directory(tmp_path):
    root = _tree(tmp_path)
    a = release.component_hashes(root)
    (root / "deploy" / "activate.sh").write_text("#!/bin/sh\necho\n")
    b = release.component_hashes(root)
    assert a["bot"] == b["bot"] and a["compose"] == b["compose"] and a["deploy"] != b["deploy"]


def test_archive_is_reproducible_and_complete(tmp_path):
    root = _tree(tmp_path / "src")
    one = release.build_archive(root, tmp_path / "out1")
    two = release.build_archive(root, tmp_path / "out2")
    assert one.name == f"release-{release.release_id(root)}.tar.gz"
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(one) as t:
        members = {m.name: m for m in t.getmembers()}
        assert sorted(members) == release.release_files(root)
        assert members["deploy/activate.sh"].mode == 0o755
        assert members["bot/pkg/m.py"].mode == 0o644
        assert t.extractfile("bot/pkg/m.py").read() == b"print('hi')\n"


def test_the_real_tree_has_an_id():
    assert len(release.release_id(REPO)) == 12
    assert all(not f.endswith(".pyc") and "/__pycache__/" not in f for f in release.release_files(REPO))


@pytest.mark.parametrize("step", ["replace", "unlink"])
def test_two_builds_into_one_directory_at_once_both_succeed(tmp_path, monkeypatch, step):
    """Every program run builds into .botstack/build: two at once (a `pulumi preview` beside the
    tests, or two test workers) must not take each other's temporary file or trip over the old
    archive the other one already removed. The second build runs whole while the first is at
    `step`: between writing its archive and moving it into place, or removing an old one."""
    root = _tree(tmp_path / "src")
    dest = tmp_path / "build"
    dest.mkdir()
    (dest / "release-000000000000.tar.gz").write_bytes(b"an older release")
    real = {"replace": os.replace, "unlink": os.unlink}
    interleaved: list = []

    def at_step(*args, **kw):
        if not interleaved:
            interleaved.append(None)  # the second build's own steps go straight through
            interleaved[0] = release.build_archive(root, dest)
        return real[step](*args, **kw)

    monkeypatch.setattr(os, step, at_step)
    first = release.build_archive(root, dest)
    monkeypatch.undo()
    assert interleaved == [first]
    assert sorted(p.name for p in dest.iterdir()) == [first.name]  # no temporary file, no old archive
    reference = release.build_archive(root, tmp_path / "reference")
    assert first.read_bytes() == reference.read_bytes()
