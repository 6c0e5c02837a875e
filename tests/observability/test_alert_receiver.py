"""Prometheus' alerts reach the admins through the backup job (alert_receiver.py): posted the way
Prometheus posts to an Alertmanager, told once when firing and once when resolved, and a malformed
body refused as a whole with a one-line reason. (test_real_prometheus.py has a real Prometheus
deliver one.)"""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pytest

from botstack_backup.alert_receiver import AlertReceiver, BadAlerts, parse, parse_time  # noqa: E402
from botstack_backup import metrics  # noqa: E402
from botstack_backup.schedule import Scheduler  # noqa: E402
from tests.backup.conftest import ADMINS

NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.timezone.utc)


def alert(name="BotDown", resolved=False, **labels):
    ends = NOW - dt.timedelta(seconds=30) if resolved else NOW + dt.timedelta(minutes=4)
    return {"labels": {"alertname": name, "severity": "critical", **labels},
            "annotations": {"summary": f"{name} summary"},
            "startsAt": "2026-12-06T02:55:00.123456789Z",
            "endsAt": ends.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up"}


def post(url, body: bytes):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=10)


def test_told_once_when_firing_and_once_when_resolved():
    sent = []
    r = AlertReceiver(lambda text: sent.append(text) or 1, lambda: NOW)
    body = json.dumps([alert(), alert("DiskAlmostFull", mountpoint="/")]).encode()
    assert r.receive(body) == 2
    assert r.receive(body) == 0                       # Prometheus' re-send a minute later
    assert r.receive(json.dumps([alert(resolved=True)]).encode()) == 1
    assert r.receive(json.dumps([alert(resolved=True)]).encode()) == 0
    assert sent == ["\U0001f525 botstack alert: BotDown (critical)\nBotDown summary",
                    "\U0001f525 botstack alert: DiskAlmostFull (critical)\nDiskAlmostFull summary",
                    "\u2705 botstack alert resolved: BotDown\nBotDown summary"]


@pytest.mark.parametrize("body, words", [
    (b"not json", "not JSON"),
    (b'{"labels": {}}', "not a list"),
    (json.dumps([1]).encode(), "alert 0 is not an object"),
    (json.dumps([{"labels": {"severity": "x"}}]).encode(), "no alertname"),
    (json.dumps([{"labels": {"alertname": 5}}]).encode(), "labels is not an object of strings"),
    (json.dumps([dict(alert(), endsAt="yesterday")]).encode(), "endsAt is not an RFC 3339 time"),
    (json.dumps([alert()] * 201).encode(), "at most 200"),
])
def test_a_malformed_body_is_refused_as_a_whole(body, words):
    sent = []
    with pytest.raises(BadAlerts, match=words):
        AlertReceiver(sent.append, lambda: NOW).receive(body)
    assert sent == []


def test_go_times_with_nanoseconds_and_offsets_parse():
    assert parse_time("2026-12-06T02:55:00.123456789Z", "t") == dt.datetime(2026, 12, 6, 2, 55, 0, 123456,
                                                                             tzinfo=dt.timezone.utc)
    assert parse_time("2026-12-06T04:55:00+02:00", "t") == dt.datetime(2026, 12, 6, 2, 55, tzinfo=dt.timezone.utc)
    # an alert without endsAt is firing
    assert parse(json.dumps([dict(alert(), endsAt="")]).encode(), NOW)[0][3] is False


def test_the_backup_jobs_server_takes_alerts_to_the_admins(make_tool, clock, botapi, port):
    sched = Scheduler(make_tool(), now=clock, sleep=clock.sleep)
    server = metrics.serve(sched.metrics, port, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}/api/v2/alerts"
        assert post(url, json.dumps([alert(mountpoint="/")]).encode()).status == 200
        texts = [m["text"] for m in botapi.sent_messages(ADMINS[0])]
        assert texts == ["\U0001f525 botstack alert: BotDown (critical)\nBotDown summary"]
        assert [m["text"] for m in botapi.sent_messages(ADMINS[1])] == texts
        with pytest.raises(urllib.error.HTTPError) as err:
            post(url, b"[{]")
        assert err.value.code == 400
        with pytest.raises(urllib.error.HTTPError) as err:
            post(url, b"x" * (300 * 1024))
        assert err.value.code == 413
        assert len(botapi.sent_messages(ADMINS[0])) == 1
    finally:
        server.shutdown()
        server.server_close()
