"""The backup job's /metrics (compose/backup/botstack_backup/metrics.py), served the way
`botstack-backup schedule` serves it and scraped over HTTP, around real scheduled backups and
drills (real pg_dump, gpg, moto as Spaces): last success, size, durations, drill result; a failed
run turns `last_run_ok` to 0 while the last success stays where it was."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.observability.conftest import scrape, value

from botstack_backup import metrics  # noqa: E402 - tests.backup.conftest puts it on sys.path
from botstack_backup.errors import ConfigError  # noqa: E402
from botstack_backup.schedule import Scheduler  # noqa: E402


@pytest.fixture
def served(port):
    servers = []

    def serve(sched: Scheduler) -> str:
        server = metrics.serve(sched.metrics, port, "127.0.0.1")
        assert server is not None
        servers.append(server)
        return f"http://127.0.0.1:{port}/metrics"

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


def test_before_any_backup_the_last_success_is_zero(make_tool, clock, served):
    sched = Scheduler(make_tool(), now=clock, sleep=clock.sleep)
    page = scrape(served(sched))
    assert value(page, "botstack_backup_last_success_timestamp_seconds") == 0
    assert value(page, "botstack_backup_drill_last_success_timestamp_seconds") == 0
    assert ("botstack_backup_last_run_ok", ()) not in page


def test_a_scheduled_backup_and_drill_show_in_the_metrics(make_tool, clock, served, tmp_path, monkeypatch):
    sched = Scheduler(make_tool(BACKUP_INTERVAL_HOURS=6), now=clock, sleep=clock.sleep)
    url = served(sched)
    start = clock()
    sched.tick()                                    # a backup, then the first drill
    page = scrape(url)
    assert value(page, "botstack_backup_last_success_timestamp_seconds") == start.timestamp()
    assert value(page, "botstack_backup_last_attempt_timestamp_seconds") == start.timestamp()
    assert value(page, "botstack_backup_last_run_ok") == 1
    newest = sched.tool.newest_good_local()
    assert value(page, "botstack_backup_last_size_bytes") == newest.manifest["size_encrypted"] > 0
    assert value(page, "botstack_backup_last_dump_seconds") == newest.manifest["duration_seconds"]
    assert value(page, "botstack_backup_run_seconds") >= value(page, "botstack_backup_last_dump_seconds") > 0
    assert value(page, "botstack_backup_local_copies") == 1
    assert value(page, "botstack_backup_drill_last_ok") == 1
    assert value(page, "botstack_backup_drill_last_success_timestamp_seconds") == start.timestamp()
    assert value(page, "botstack_backup_drill_seconds") > 0

    # six hours later pg_dump is gone: the run fails, the last success stays where it was
    clock.advance(hours=6)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    sched.tick()
    page = scrape(url)
    assert value(page, "botstack_backup_last_run_ok") == 0
    assert value(page, "botstack_backup_last_attempt_timestamp_seconds") == clock().timestamp()
    assert value(page, "botstack_backup_last_success_timestamp_seconds") == start.timestamp()


def test_a_failed_drill_reads_zero(make_tool, clock, served):
    sched = Scheduler(make_tool(), now=clock, sleep=clock.sleep)
    sched._save({"last_drill_ok": clock() - dt.timedelta(days=8), "last_drill_attempt": clock()})
    page = scrape(served(sched))
    assert value(page, "botstack_backup_drill_last_ok") == 0
    assert value(page, "botstack_backup_drill_last_success_timestamp_seconds") == \
        (clock() - dt.timedelta(days=8)).timestamp()


def test_only_metrics_is_served(make_tool, clock, served):
    import urllib.error
    import urllib.request
    url = served(Scheduler(make_tool(), now=clock, sleep=clock.sleep))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("/metrics", "/"), timeout=5)
    assert err.value.code == 404


@pytest.mark.parametrize("raw", ["x", "65536", "-5"])
def test_a_malformed_port_is_refused_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="BACKUP_METRICS_PORT"):
        metrics.port_from_env({"BACKUP_METRICS_PORT": raw})


def test_the_port_defaults_and_turns_off():
    assert metrics.port_from_env({}) == 9102
    assert metrics.port_from_env({"BACKUP_METRICS_PORT": "0"}) == 0


def test_postgresql_figures_come_from_the_backup_jobs_connection(make_tool, clock, served, seeded_db):
    import psycopg
    sched = Scheduler(make_tool(), now=clock, sleep=clock.sleep)
    url = served(sched)
    before = scrape(url)
    with psycopg.connect(seeded_db, autocommit=True) as conn:   # a session left idle in a transaction
        conn.execute("BEGIN")
        conn.execute("SELECT 1")
        page = scrape(url)
    assert value(page, "botstack_pg_up") == 1
    assert value(page, "botstack_pg_database_size_bytes") > 1_000_000
    assert value(page, "botstack_pg_max_connections") > 0
    assert value(page, "botstack_pg_connections", state="idle in transaction") >= 1
    assert value(page, "botstack_pg_connections", state="active") >= 1      # the scrape's own query
    assert value(page, "botstack_pg_xact_commit_total") > value(before, "botstack_pg_xact_commit_total") > 0
    assert {labels for name, labels in page if name == "botstack_pg_connections"} == {
        (("state", s),) for s in ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "other")}


def test_an_unreachable_database_reads_pg_up_zero_and_the_rest_still_answers(make_tool, clock, served):
    from tests.backup.conftest import closed_port_url
    tool = make_tool()
    tool.cfg.database_url = closed_port_url()
    page = scrape(served(Scheduler(tool, now=clock, sleep=clock.sleep)))
    assert value(page, "botstack_pg_up") == 0
    assert ("botstack_pg_database_size_bytes", ()) not in page
    assert ("botstack_backup_last_success_timestamp_seconds", ()) in page


def test_schedule_refuses_a_malformed_port_in_one_line_before_any_backup(make_tool, monkeypatch, capsys):
    from botstack_backup import cli
    tool = make_tool()
    monkeypatch.setenv("BACKUP_METRICS_PORT", "ninety")
    assert cli.main(["schedule"], tool=tool) == 2
    err = capsys.readouterr().err
    assert err == "botstack-backup schedule: BACKUP_METRICS_PORT must be a port number (0: off)\n"
    assert tool.local_backups() == []
