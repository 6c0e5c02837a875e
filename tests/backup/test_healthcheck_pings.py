"""Dead-man's switch pings of every backup run, against a local HTTP server."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from botstack_backup.errors import BackupError, BusyError, ConfigError, VersionMismatch
from botstack_backup.healthcheck import TIMEOUT, Pinger

from .conftest import closed_port_url

PING_KEY = "pk-0123456789abcdefghij"


class PingServer:
    """Records every ping: (method, path, query, body); answers 200 like healthchecks.io, or hangs."""

    def __init__(self, hang: float = 0.0):
        self.pings: list[tuple[str, str, str, str]] = []
        self.hang = hang
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                self._record("POST", body)

            def do_GET(self):
                self._record("GET", "")

            def _record(self, method, body):
                path, _, query = self.path.partition("?")
                outer.pings.append((method, path, query, body))
                time.sleep(outer.hang)
                if outer.hang:
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # a client that gave up on a hanging answer is what the timeout test wants, not an error
        self.httpd.handle_error = lambda request, client_address: None
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/ping/{PING_KEY}/botstack-dev-backup"

    def paths(self):
        return [(p, q) for _, p, q, _ in self.pings]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pings():
    with PingServer() as server:
        yield server


CHECK = f"/ping/{PING_KEY}/botstack-dev-backup"


def test_a_successful_backup_pings_start_then_success_keeping_the_query(make_tool, pings):
    tool = make_tool(HEALTHCHECK_BACKUP_URL=pings.base + "?create=1")
    tool.run()
    assert pings.paths() == [(CHECK + "/start", "create=1"), (CHECK, "create=1")]


def test_a_failed_backup_pings_its_exit_status(make_tool, pings, failing_pg_dump):
    tool = make_tool(HEALTHCHECK_BACKUP_URL=pings.base + "?create=1")
    with pytest.raises(BackupError):
        tool.run()
    assert pings.paths() == [(CHECK + "/start", "create=1"), (CHECK + "/1", "create=1")]
    assert "simulated failure" in pings.pings[-1][3]


def test_a_backup_kept_locally_only_pings_exit_status_3(make_tool, pings):
    tool = make_tool(endpoint=closed_port_url(), HEALTHCHECK_BACKUP_URL=pings.base)
    result = tool.run()
    assert result.exit_code == 3
    assert pings.paths() == [(CHECK + "/start", ""), (CHECK + "/3", "")]


def test_a_version_mismatch_pings_exit_status_6(make_tool, pings, old_pg_dump):
    tool = make_tool(HEALTHCHECK_BACKUP_URL=pings.base)
    with pytest.raises(VersionMismatch):
        tool.run()
    assert pings.paths()[-1] == (CHECK + "/6", "")


def test_a_configuration_error_pings_exit_status_2(make_tool, pings):
    tool = make_tool(BACKUP_PASSPHRASE="", HEALTHCHECK_BACKUP_URL=pings.base)
    with pytest.raises(ConfigError):
        tool.run()
    assert pings.paths() == [(CHECK + "/2", "")]


def test_a_run_skipped_as_busy_pings_nothing(make_tool, pings):
    tool = make_tool(HEALTHCHECK_BACKUP_URL=pings.base)
    with tool.lock():
        with pytest.raises(BusyError):
            tool.run()
    assert pings.pings == []


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_url_means_no_pings_at_all(make_tool, pings, value, monkeypatch):
    over = {} if value is None else {"HEALTHCHECK_BACKUP_URL": value}
    tool = make_tool(**over)
    tool.run()
    assert tool.pinger.url == ""
    assert pings.pings == []


def test_an_unreachable_ping_server_never_fails_the_backup_nor_logs_the_url(make_tool, caplog):
    url = closed_port_url() + f"/ping/{PING_KEY}/x"
    tool = make_tool(HEALTHCHECK_BACKUP_URL=url)
    result = tool.run()
    assert result.exit_code == 0
    assert "healthcheck ping (start) not delivered" in caplog.text
    assert "healthcheck ping (success) not delivered" in caplog.text
    assert PING_KEY not in caplog.text


def test_a_hanging_ping_server_is_given_up_on_after_the_timeout(make_tool, caplog):
    tool = make_tool()
    tool.run()  # warm: the timed run below is a second backup
    t0 = time.monotonic()
    tool.run()
    one_run = time.monotonic() - t0
    with PingServer(hang=20.0) as slow:
        tool = make_tool(HEALTHCHECK_BACKUP_URL=slow.base)
        tool.pinger.timeout = 0.3
        t0 = time.monotonic()
        assert tool.run().exit_code == 0
        assert time.monotonic() - t0 < one_run + 10   # two hung pings would add 40 s
        assert len(slow.pings) == 2
    assert "healthcheck ping (start) not delivered" in caplog.text
    assert PING_KEY not in caplog.text


def test_pings_wait_ten_seconds_at_most_by_default():
    assert Pinger("http://x.invalid/p").timeout == TIMEOUT == 10.0


def test_a_non_http_url_is_reported_without_echoing_it(caplog):
    pinger = Pinger(f"ftp://example.invalid/{PING_KEY}")
    assert pinger.start() is False
    assert "not an http(s) URL" in caplog.text and PING_KEY not in caplog.text


@pytest.mark.parametrize("base,suffix,expected", [
    ("https://hc-ping.com/KEY/botstack-dev-backup?create=1", "start",
     "https://hc-ping.com/KEY/botstack-dev-backup/start?create=1"),
    ("https://hc.example/ping/KEY/slug/", "3", "https://hc.example/ping/KEY/slug/3"),
    ("https://hc-ping.com/UUID", "", "https://hc-ping.com/UUID"),
])
def test_the_suffix_goes_on_the_path_and_the_query_stays(base, suffix, expected):
    assert Pinger(base).with_suffix(suffix) == expected
