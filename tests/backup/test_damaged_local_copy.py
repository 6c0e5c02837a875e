"""`restore --from-local` tells a damaged local copy (and why) from a missing one."""
from __future__ import annotations

import os

import pytest

from botstack_backup.errors import ChecksumError, NotFound

from .conftest import ADMINS, closed_port_url, table_counts


def truncate(path, keep):
    with open(path, "r+b") as f:
        f.truncate(keep)


@pytest.fixture
def offline(make_tool):
    """The tool with Spaces unreachable: the local copy is all there is."""
    return make_tool(endpoint=closed_port_url())


def test_a_truncated_only_copy_is_reported_as_damaged_with_its_sizes(offline, pg_server, botapi):
    made = offline.run()
    dump = os.path.join(offline.dir, made.name + ".dump.gpg")
    truncate(dump, 1000)
    target = pg_server.create_database()
    with pytest.raises(ChecksumError) as ei:
        offline.restore("latest", target_url=target, from_local=True)
    msg = str(ei.value)
    assert f"the local backup {made.name} is damaged" in msg
    assert f"its dump is 1000 bytes, the manifest records {made.size}" in msg and "truncated" in msg
    assert "no complete local backup" not in msg
    assert table_counts(target) == {}
    assert any("restore FAILED" in m["text"] and "damaged" in m["text"] for m in botapi.sent_messages(ADMINS[0]))


def test_a_truncated_copy_asked_for_by_name_is_reported_as_damaged(offline, pg_server):
    made = offline.run()
    truncate(os.path.join(offline.dir, made.name + ".dump.gpg"), 10)
    with pytest.raises(ChecksumError, match="is damaged: its dump is 10 bytes"):
        offline.restore(made.name, target_url=pg_server.create_database(), from_local=True)


def test_a_copy_without_its_manifest_is_reported_as_damaged(offline, pg_server):
    made = offline.run()
    os.unlink(os.path.join(offline.dir, made.name + ".manifest.json"))
    with pytest.raises(ChecksumError, match="is damaged: its manifest is missing"):
        offline.restore("latest", target_url=pg_server.create_database(), from_local=True)


def test_latest_skips_a_damaged_newer_copy_and_says_so(offline, pg_server, clock, caplog):
    first = offline.run()
    clock.advance(hours=6)
    second = offline.run()
    truncate(os.path.join(offline.dir, second.name + ".dump.gpg"), 10)
    target = pg_server.create_database()
    manifest = offline.restore("latest", target_url=target, from_local=True)
    assert manifest["name"] == first.name
    assert table_counts(target) == first.manifest["tables"]
    assert f"skipping the damaged local backup {second.name}" in caplog.text


def test_no_local_copy_at_all_is_reported_as_missing(offline, pg_server):
    with pytest.raises(NotFound, match="no local backup in"):
        offline.restore("latest", target_url=pg_server.create_database(), from_local=True)
