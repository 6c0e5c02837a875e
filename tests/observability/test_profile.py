"""The opt-in `observability` compose profile: the stack config key turns it on (container mode
only), the `.env` names the profile, the memory rule counts its limits only when it is on and the
1 GB droplet still holds the stack, the firewall is unchanged, and the compose services are pinned,
limited, locked down and reachable only from the stack's network and the host's 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from bot import metrics as bot_metrics
from infra import config, facts, memory
from infra.config import ConfigError
from tests.compose.test_compose_config import COMPOSE, config_json
from tests.infra.harness import make_repo, run_program, stack_config, unwrap

from botstack_backup import metrics as backup_metrics  # noqa: E402 - on sys.path via tests/observability/conftest.py

PROFILES = "localdb,observability"
PROMETHEUS_YML = os.path.join(os.path.dirname(COMPOSE), "observability", "prometheus.yml")


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


def env_of(run) -> dict:
    env = unwrap(run.by_name()["deploy-write-env"].inputs["stdin"])
    return dict(line.split("=", 1) for line in env.splitlines())


def test_the_stack_key_adds_the_profile_to_the_env_and_leaves_the_firewall_alone(repo):
    off, on = run_program("dev", repo), run_program("dev", repo, {"observability": True})
    assert off.error is None and on.error is None
    assert env_of(off)["COMPOSE_PROFILES"] == "localdb"
    assert env_of(on)["COMPOSE_PROFILES"] == PROFILES
    assert on.one("/firewall:Firewall").inputs == off.one("/firewall:Firewall").inputs


def test_observability_with_a_managed_database_is_refused_in_one_line(repo):
    run = run_program("dev", repo, {"observability": True, "database": "managed"})
    assert isinstance(run.error, ConfigError)
    assert str(run.error).startswith("botstack:observability: needs database: container")
    assert run.mocks.resources == []


def test_a_malformed_value_is_refused(repo):
    run = run_program("dev", repo, {"observability": "perhaps"})
    assert isinstance(run.error, ConfigError) and str(run.error).startswith("botstack:observability: ")


def test_the_memory_rule_counts_the_profile_only_when_it_is_on_and_it_still_fits_1gb():
    assert memory.compose_memory_mib(COMPOSE, managed_db=False) == 800
    assert memory.compose_memory_mib(COMPOSE, managed_db=False, observability=True) == 960
    assert memory.memory_fits("s-1vcpu-1gb", COMPOSE, False, True) == 960 <= memory.usable_mib("s-1vcpu-1gb")
    for stack in ("dev", "prod"):
        values = {**stack_config(stack), "observability": True}
        cfg = config.load(values.get, stack, COMPOSE)
        assert cfg.observability and cfg.compose_memory_mib == 960


def test_a_droplet_that_only_holds_the_stack_without_the_profile_is_refused(tmp_path):
    doc = yaml.safe_load(open(COMPOSE))
    doc["services"]["prometheus"]["deploy"]["resources"]["limits"]["memory"] = "400M"
    big = tmp_path / "compose.yml"
    big.write_text(yaml.safe_dump(doc))
    assert memory.memory_fits("s-1vcpu-1gb", big, False, False) == 800
    with pytest.raises(ConfigError, match="sum to 1232 MiB, over the 1024 MiB usable"):
        memory.memory_fits("s-1vcpu-1gb", big, False, True)


def test_the_profile_services_are_pinned_limited_and_locked_down():
    cfg = config_json(COMPOSE_PROFILES=PROFILES)
    prom, node = cfg["services"]["prometheus"], cfg["services"]["node-exporter"]
    assert prom["image"] == "prom/prometheus:v2.53.3" and node["image"] == "prom/node-exporter:v1.8.2"
    for svc in (prom, node):
        assert svc["profiles"] == [facts.OBSERVABILITY_PROFILE] and svc["restart"] == "unless-stopped"
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert svc["logging"]["options"] == {"max-size": "10m", "max-file": "3"}
    assert prom["deploy"]["resources"]["limits"]["memory"] == str(128 << 20)
    assert node["deploy"]["resources"]["limits"]["memory"] == str(32 << 20)
    # no value of the .env reaches them: nothing secret, nothing to keep in step
    assert prom["environment"] == {"GOMEMLIMIT": "96MiB"} and node["environment"] == {"GOMEMLIMIT": "24MiB"}
    # retention short and bounded
    assert "--storage.tsdb.retention.time=15d" in prom["command"]
    assert "--storage.tsdb.retention.size=256MB" in prom["command"]


def test_prometheus_listens_on_the_stack_network_and_the_hosts_loopback_only():
    cfg = config_json(COMPOSE_PROFILES=PROFILES)
    prom, node = cfg["services"]["prometheus"], cfg["services"]["node-exporter"]
    ports = prom["ports"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in ports] == [("127.0.0.1", "9090", 9090)]
    assert "internal" in prom["networks"]
    assert "ports" not in node and list(node["networks"]) == ["internal"]
    # no other service publishes anything with the profile on
    assert [n for n, s in cfg["services"].items() if s.get("ports") and n != "prometheus"] == []


def test_the_scrape_targets_are_the_services_and_their_metrics_ports():
    cfg = config_json(COMPOSE_PROFILES=PROFILES)
    prom = yaml.safe_load(open(PROMETHEUS_YML))
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    assert targets == {"bot": [f"bot:{bot_metrics.DEFAULT_PORT}"], "backup": [f"backup:{backup_metrics.DEFAULT_PORT}"],
                       "node": ["node-exporter:9100"], "prometheus": ["localhost:9090"]}
    for job in ("bot", "backup", "node-exporter"):
        assert job in cfg["services"]
    mounts = {v["target"]: v["source"] for v in cfg["services"]["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_YML
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert mounts["/etc/prometheus/rules"].endswith("/compose/observability/rules")


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian's prometheus) not installed")
def test_promtool_accepts_the_configuration():
    res = subprocess.run(["promtool", "check", "config", "--syntax-only", PROMETHEUS_YML],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
