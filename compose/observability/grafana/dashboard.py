"""The botstack Grafana dashboard, as code (grafana-foundation-sdk): reminders and lateness, errors
and 429s, backups and drills, PostgreSQL, host memory and disk.

`python compose/observability/grafana/dashboard.py` writes dashboards/botstack.json, the file
`scripts/botstack STACK dashboard` provisions into Grafana; a test keeps the two in step and runs
every panel's query against a real Prometheus scraping the real bot (tests/observability).
Queries use fixed windows, not Grafana's `$__rate_interval`, so Prometheus alone can check them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

UID = "botstack"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="botstack-prometheus")  # provisioning/datasources
OUT = Path(__file__).with_name("dashboards") / "botstack.json"
DISKS = 'fstype!~"tmpfs|overlay|squashfs|ramfs|nsfs"'


def q(expr: str, legend: str = "") -> Dataquery:
    d = Dataquery().expr(expr).datasource(DATASOURCE)
    return d.legend_format(legend) if legend else d


def graph(title: str, unit: str, *queries: Dataquery, width: int = 12) -> Timeseries:
    p = Timeseries().title(title).unit(unit).datasource(DATASOURCE).height(8).span(width).fill_opacity(10)
    for i, query in enumerate(queries):
        p = p.with_target(query.ref_id(chr(ord("A") + i)))
    return p


def stat(title: str, unit: str, query: Dataquery, width: int = 6) -> Stat:
    return Stat().title(title).unit(unit).datasource(DATASOURCE).height(4).span(width).with_target(query.ref_id("A"))


def panels() -> Iterator[Row | Timeseries | Stat]:
    yield Row("Reminders")
    yield graph("Reminders per hour", "short",
                q("sum(increase(botstack_reminders_created_total[1h]))", "created"),
                q("sum(increase(botstack_reminders_delivered_total[1h]))", "delivered"),
                q("sum(increase(botstack_reminders_retried_total[1h]))", "retried"),
                q("sum(increase(botstack_reminders_failed_total[1h]))", "failed"))
    yield graph("Lateness of delivered reminders", "s",
                *(q(f"histogram_quantile({p}, sum by (le) (rate(botstack_reminder_lateness_seconds_bucket[1h])))",
                    f"p{int(p * 100)}") for p in (0.5, 0.95, 0.99)))
    yield graph("Reminders over 90 s late, per hour", "short",
                q("sum(increase(botstack_reminder_lateness_seconds_count[1h]))"
                  " - sum(increase(botstack_reminder_lateness_seconds_bucket{le=\"90.0\"}[1h]))", "late"))
    yield graph("Scheduler: lag and due queue", "s",
                q("botstack_scheduler_lag_seconds", "oldest due reminder overdue by"),
                q("botstack_scheduler_tick_age_seconds", "since the last tick"))
    yield graph("Due queue", "short", q("botstack_scheduler_due_queue", "due or in flight"))
    yield graph("Updates per minute, by kind", "short",
                q("sum by (kind) (rate(botstack_updates_total[5m])) * 60", "{{kind}}"))

    yield Row("Errors and Telegram")
    yield stat("Bot up", "none", q("up{job=\"bot\"}"))
    yield stat("429s in the last 24 h", "short", q("sum(increase(botstack_telegram_429_total[24h]))"))
    yield stat("Reminders failed in the last 24 h", "short", q("sum(increase(botstack_reminders_failed_total[24h]))"))
    yield stat("Database pool: waiting now", "short", q("sum(botstack_db_pool_waiting)"))
    yield graph("Bot API errors, by outcome (per 5 min)", "short",
                q("sum by (outcome) (increase(botstack_telegram_requests_total{outcome!=\"ok\"}[5m]))", "{{outcome}}"))
    yield graph("429s and their retry-after", "short",
                q("sum(increase(botstack_telegram_429_total[5m]))", "429s per 5 min"),
                q("sum(increase(botstack_telegram_retry_after_seconds_sum[5m]))", "seconds told to wait"))
    yield graph("Bot API latency, p95 by method", "s",
                q("histogram_quantile(0.95, sum by (le, method) (rate(botstack_telegram_request_seconds_bucket[5m])))",
                  "{{method}}"))
    yield graph("Database pool waits", "s",
                q("rate(botstack_db_pool_wait_seconds_total[5m])", "seconds waited per second"),
                q("rate(botstack_db_pool_queued_requests_total[5m])", "requests queued per second"))

    yield Row("Backups and drills")
    yield stat("Since the last good backup", "s", q("time() - botstack_backup_last_success_timestamp_seconds"))
    yield stat("Last backup run ok", "none", q("botstack_backup_last_run_ok"))
    yield stat("Last drill passed", "none", q("botstack_backup_drill_last_ok"))
    yield stat("Since the last good drill", "s", q("time() - botstack_backup_drill_last_success_timestamp_seconds"))
    yield graph("Backup duration", "s",
                q("botstack_backup_run_seconds", "whole run (upload, pruning)"),
                q("botstack_backup_last_dump_seconds", "dump + encryption"),
                q("botstack_backup_drill_seconds", "restore drill"))
    yield graph("Backup size and database size", "bytes",
                q("botstack_backup_last_size_bytes", "newest backup (encrypted)"),
                q("botstack_pg_database_size_bytes", "database"))
    yield graph("PostgreSQL connections, by state", "short",
                q("sum by (state) (botstack_pg_connections)", "{{state}}"),
                q("botstack_pg_max_connections", "max_connections"))
    yield graph("PostgreSQL transactions per second", "short",
                q("rate(botstack_pg_xact_commit_total[5m])", "commits"),
                q("rate(botstack_pg_xact_rollback_total[5m])", "rollbacks"))

    yield Row("Host")
    yield graph("Host memory", "bytes",
                q("node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", "used"),
                q("node_memory_SwapTotal_bytes - node_memory_SwapFree_bytes", "swap used"),
                q("node_memory_MemTotal_bytes", "total"))
    yield graph("Disk used", "percentunit",
                q(f"1 - node_filesystem_avail_bytes{{{DISKS}}} / node_filesystem_size_bytes{{{DISKS}}}",
                  "{{mountpoint}}"))
    yield graph("Disk filling, per day", "bytes",
                q(f"-deriv(node_filesystem_avail_bytes{{{DISKS}}}[1h]) * 86400", "{{mountpoint}}"))
    yield graph("CPU busy", "percentunit",
                q("1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))", "all cores"))
    yield graph("Memory of the bot, node_exporter and Prometheus", "bytes",
                q("process_resident_memory_bytes", "{{job}}"),
                q("prometheus_tsdb_head_series * 3000", "Prometheus' series at about 3 kB each"))


def build() -> dict:
    d = (Dashboard("botstack").uid(UID).tags(["botstack", "generated"]).refresh("1m")
         .time("now-24h", "now").timezone("browser"))
    for p in panels():
        d = d.with_row(p) if isinstance(p, Row) else d.with_panel(p)
    doc = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(d.build()))
    for panel in doc["panels"]:
        if panel.get("options") is None and panel["type"] != "row":
            panel["options"] = {}  # the SDK leaves unset options null; Grafana expects an object
    return doc


def render() -> str:
    return json.dumps(build(), sort_keys=True, indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.exit(0)
