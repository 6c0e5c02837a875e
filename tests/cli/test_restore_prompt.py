"""What `botstack STACK restore` shows before asking: which backup, how old, where it is kept, and a
newer one it would not take; from the droplet's `botstack-backup list --json`, read fail-closed."""
from __future__ import annotations

import datetime as dt

import pytest

from botstack_cli import report

AT = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.timezone.utc)


def _row(name, created, local=True, offsite=True):
    return {"name": name, "created_at": created, "key": f"2026/11/{name}.dump.gpg", "size": 1234,
            "local": local, "offsite": offsite, "offsite_complete": offsite}


def test_latest_names_the_newest_backup_in_the_bucket_its_age_and_where_it_is():
    listing = {"backups": [_row("botstack-20261108-0300", "2026-11-08T03:00:00+00:00"),
                           _row("botstack-20261110-0300", "2026-11-10T03:00:00+00:00")], "offsite_error": None}
    line = report.backup_to_restore(listing, "latest", AT)
    assert line.startswith("backup botstack-20261110-0300, made 2026-11-10 03:00 UTC (9h 0m ago)")
    assert "in the bucket and on the droplet's volume" in line and "NEWER" not in line


def test_a_newer_local_only_copy_is_named_beside_the_latest_in_the_bucket():
    # after a storage outage the newest backup is only on the droplet: "latest" would silently be older
    listing = {"backups": [_row("botstack-20261109-0300", "2026-11-09T03:00:00+00:00"),
                           _row("botstack-20261110-0300", "2026-11-10T03:00:00+00:00", offsite=False)]}
    line = report.backup_to_restore(listing, "latest", AT)
    assert line.startswith("backup botstack-20261109-0300, made 2026-11-09 03:00 UTC")
    assert "NEWER: botstack-20261110-0300" in line and "only on the droplet's volume" in line


def test_a_named_backup_is_shown_by_its_name():
    listing = {"backups": [_row("botstack-20261108-0300", "2026-11-08T03:00:00+00:00", local=False)]}
    line = report.backup_to_restore(listing, "botstack-20261108-0300", AT)
    assert line.startswith("backup botstack-20261108-0300, made 2026-11-08 03:00 UTC (2d 9h ago)")
    assert line.endswith("in the bucket")


@pytest.mark.parametrize("listing", [
    None, [], "backups", {"backups": "x"}, {"backups": [None, 3, {"name": 1}]},
    {"backups": [{"name": "b", "created_at": "yesterday", "local": True}]},
    {"backups": [{"name": "b", "created_at": "2026-11-08T03:00:00", "local": "yes", "offsite_complete": 1}]},
])
def test_a_listing_that_cannot_be_read_is_said_never_guessed(listing):
    line = report.backup_to_restore(listing, "latest", AT)
    assert line.startswith("which backup:"), line


def test_the_droplet_side_passes_on_only_the_restore_options_it_knows():
    # the flags reach `botstack-backup restore`'s command line: anything else is refused before the
    # bot is taken down
    from botstack_cli import agent
    with pytest.raises(agent.Fail, match="unknown option --target-url"):
        agent.cmd_restore(["latest", "", "--from-local", "--target-url"])
    assert agent.RESTORE_FLAGS == ("--from-local", "--accept-older")


def test_the_restore_command_takes_the_backup_tools_choices():
    from botstack_cli.commands import build_parser
    args = build_parser().parse_args(["dev", "restore", "botstack-20261110-0300", "--from-local", "--accept-older"])
    assert (args.which, args.from_local, args.accept_older) == ("botstack-20261110-0300", True, True)
