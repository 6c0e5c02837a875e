"""End to end with a real Prometheus (Debian's 2.42) running the project's prometheus.yml and alert
rules, scraping the real `python -m bot` (serving a user through the Bot API double, a 429 included),
the backup job's metrics server after a real scheduled backup and drill, and Debian's node_exporter:
- every query of every dashboard panel (compose/observability/grafana) returns data;
- every metric the alert rules name exists;
- an alert Prometheus fires reaches the admins through the backup job;
- Prometheus' own graph page renders in headless Chromium (Grafana cannot be installed here).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse

import pytest
import yaml

from botstack_backup import metrics as backup_metrics  # noqa: E402 - on sys.path via the backup fixtures
from botstack_backup.schedule import Scheduler  # noqa: E402
from tests.backup.conftest import ADMINS
from tests.bot.conftest import USER, q
from tests.observability.conftest import free_port
from tests.observability.realstack import RULES, NodeExporter, Prometheus, config, rss_mib, screenshot

DASHBOARD = RULES.parents[1] / "grafana" / "dashboards" / "botstack.json"

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-node-exporter")),
    reason="Debian's prometheus and prometheus-node-exporter are not installed (scripts/install-test-deps)")


def panel_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in doc["panels"] if p["type"] != "row" for t in p["targets"]]


@pytest.fixture
def bot_db(pg_server):
    """The bot's own database (the backup fixtures seed `database_url` their way)."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def stack(tmp_path, api, bot_db, spawn_bot, make_tool, clock):
    """The bot process, a backup job that has run, node_exporter and Prometheus over them."""
    ports = {name: free_port() for name in ("bot", "backup", "node", "prometheus")}
    bot = spawn_bot(bot_db, BOT_METRICS_PORT=ports["bot"])
    bot.wait_started(api)
    sched = Scheduler(make_tool(), now=clock, sleep=clock.sleep)
    sched.tick()                                       # a real backup and the first drill
    server = backup_metrics.serve(sched.metrics, ports["backup"], "127.0.0.1")
    node = NodeExporter(ports["node"])
    always = tmp_path / "test-alert.yml"
    always.write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": [
        {"alert": "ObservabilityTest", "expr": "vector(1)", "labels": {"severity": "info"},
         "annotations": {"summary": "a test alert from the real Prometheus"}}]}]}))
    cfg = config({"bot": f"127.0.0.1:{ports['bot']}", "backup": f"127.0.0.1:{ports['backup']}",
                  "node": f"127.0.0.1:{ports['node']}", "prometheus": f"127.0.0.1:{ports['prometheus']}"},
                 alert_target=f"127.0.0.1:{ports['backup']}", extra_rules=[str(always)])
    prom = Prometheus(tmp_path, ports["prometheus"], cfg)
    try:
        prom.wait_ready()
        yield prom, bot, sched
    finally:
        prom.stop()
        node.stop()
        server.shutdown()
        server.server_close()


def test_every_panel_query_and_rule_metric_has_data_and_alerts_reach_the_admins(
        stack, api, bot_db, botapi, tmp_path, capsys):
    prom, bot, _ = stack
    # Prometheus hands its scrapers their targets a few seconds after start: wait for every job
    for job in ("bot", "backup", "node", "prometheus"):
        assert prom.wait_for(f'up{{job="{job}"}} == 1', timeout=60), f"{job} not scraped"
    # a user talks to the bot; a reminder two minutes overdue goes out after one 429
    api.push_message(USER, "/start")
    api.wait_for_messages(USER, 1, timeout=20)
    api.push_message(USER, "remind me in 2 hours to water the plants")
    api.wait_for_messages(USER, 2, timeout=20)
    api.fail_next("sendMessage", status=429, retry_after=1, count=1, chat_id=USER)
    q(bot_db, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'late one', 'UTC', now() - interval '2 minutes')", USER, USER)
    api.wait_for(lambda: any(m.get("text", "").startswith("⏰") for m in api.sent_messages(USER)), timeout=30)

    # enough samples for the rates (windows of 5 minutes hold a dozen by now)
    assert prom.wait_for('increase(botstack_reminders_delivered_total[5m]) > 0', timeout=60)
    assert prom.wait_for('count_over_time(up{job="bot"}[5m]) > 8', timeout=60)

    missing = [(title, expr) for title, expr in panel_queries() if not prom.query(expr)]
    assert missing == [], "panels without data: " + json.dumps(missing, indent=1)
    # the figures are the bot's: the 429, the late reminder
    assert float(prom.query("sum(increase(botstack_telegram_429_total[24h]))")[0]["value"][1]) >= 1
    assert float(prom.query("sum(increase(botstack_reminders_delivered_total[1h]))")[0]["value"][1]) >= 1

    names = set(re.findall(r"\b((?:botstack|node)_[a-z0-9_]+|up)\b", RULES.read_text()))
    absent = [n for n in sorted(names) if not prom.query(f'count({{__name__="{n}"}})')]
    assert absent == [], f"metrics the alert rules name but nobody exports: {absent}"

    # Prometheus -> the backup job's Alertmanager endpoint -> Telegram, to every admin
    botapi.wait_for(lambda: [m for m in botapi.sent_messages(ADMINS[0])
                             if m["text"].startswith("\U0001f525 botstack alert: ObservabilityTest")], timeout=60)

    png = screenshot(prom.url + "/graph?" + urllib.parse.urlencode({
        "g0.expr": "botstack_telegram_requests_total", "g0.tab": "0", "g0.range_input": "5m"}),
        tmp_path / "prometheus-graph.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("BOTSTACK_OBS_SCREENSHOT"):  # where docs/observability.md's picture came from
        shutil.copy(png, os.environ["BOTSTACK_OBS_SCREENSHOT"])

    with capsys.disabled():
        print(f"\nprometheus RSS {rss_mib(prom.proc.pid):.1f} MiB, "
              f"series {prom.query('prometheus_tsdb_head_series')[0]['value'][1]}")
