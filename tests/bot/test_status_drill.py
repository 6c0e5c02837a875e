"""/status flags a restore drill older than twice BACKUP_DRILL_INTERVAL_DAYS (issue 20): a planted
manifest used to switch the weekly drill off without a word."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.bot.conftest import ADMIN, q


def _runs(database_url, backup_ago: timedelta, drill_ago: timedelta | None):
    now = datetime.now(timezone.utc)
    q(database_url, "INSERT INTO backup_runs (kind, started_at, finished_at, ok, size_bytes, uploaded) "
      "VALUES ('backup', %s, %s, true, 1024, true)", now - backup_ago, now - backup_ago)
    if drill_ago is not None:
        q(database_url, "INSERT INTO backup_runs (kind, started_at, finished_at, ok) VALUES ('drill', %s, %s, true)",
          now - drill_ago, now - drill_ago)


async def test_a_drill_older_than_twice_its_interval_is_flagged(make_bot, database_url):
    b = await make_bot(BACKUP_DRILL_INTERVAL_DAYS="3")
    _runs(database_url, timedelta(hours=2), timedelta(days=7))
    (m,) = await b.say(ADMIN, "/status")
    assert "DRILL STALE: last good restore drill 7 d" in m["text"]


async def test_a_recent_drill_is_not_flagged(make_bot, database_url):
    b = await make_bot(BACKUP_DRILL_INTERVAL_DAYS="3")
    _runs(database_url, timedelta(hours=2), timedelta(days=5))
    (m,) = await b.say(ADMIN, "/status")
    assert "DRILL" not in m["text"]


async def test_backups_for_weeks_without_any_good_drill_are_flagged(make_bot, database_url):
    b = await make_bot()
    _runs(database_url, timedelta(days=15), None)
    _runs(database_url, timedelta(hours=3), None)  # backups every day, but not one drill passed
    (m,) = await b.say(ADMIN, "/status")
    assert "DRILL STALE: no good restore drill recorded" in m["text"]
