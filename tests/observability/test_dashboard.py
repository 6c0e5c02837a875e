"""The dashboard is code: compose/observability/grafana/dashboard.py (grafana-foundation-sdk)
generates dashboards/botstack.json, which must be what it generates now; every panel queries the
provisioned datasource and has a unique refId per query; the provisioning files point at both.
(test_real_prometheus.py runs every query against a real Prometheus.)"""
from __future__ import annotations

import importlib.util
import json

import yaml

from tests.observability.realstack import REPO

GRAFANA = REPO / "compose" / "observability" / "grafana"


def generator():
    spec = importlib.util.spec_from_file_location("botstack_dashboard", GRAFANA / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_dashboard_is_what_the_generator_makes():
    assert (GRAFANA / "dashboards" / "botstack.json").read_text() == generator().render(), \
        "run: .venv/bin/python compose/observability/grafana/dashboard.py"


def test_every_panel_queries_the_provisioned_datasource():
    doc = json.loads((GRAFANA / "dashboards" / "botstack.json").read_text())
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert doc["uid"] == "botstack" and ds["uid"] == "botstack-prometheus" and ds["url"] == "$PROMETHEUS_URL"
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": ds["uid"]}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs) and all(refs), p["title"]
        assert all(t["expr"].strip() and t["datasource"]["uid"] == ds["uid"] for t in p["targets"]), p["title"]
        assert isinstance(p["options"], dict) and p["gridPos"]["w"] > 0
    # what the issue asks to see: reminders and lateness, errors and 429s, backups and drills, host
    text = json.dumps(doc)
    for metric in ("botstack_reminder_lateness_seconds_bucket", "botstack_telegram_429_total",
                   "botstack_backup_last_success_timestamp_seconds", "botstack_backup_drill_last_ok",
                   "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes"):
        assert metric in text, metric


def test_the_dashboard_provider_reads_the_dashboards_directory():
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "botstack.yml").read_text())["providers"][0]
    assert prov["type"] == "file" and prov["options"]["path"] == "/var/lib/grafana/dashboards"
