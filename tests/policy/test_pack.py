"""The pack as the Pulumi CLI starts it: pulumi-analyzer-policy-python runs
`python -u -m pulumi.policy <engine> .` in the pack's directory, the pack prints its gRPC port, and
the engine asks it over gRPC for its policies and analyses."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from tests.infra.harness import REPO
from tests.policy.analyzer import _struct

PACK = REPO / "policy"


@pytest.fixture(scope="module")
def analyzer():
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], cwd=PACK,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the pack did not start: {port!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_pack_lists_every_policy_with_its_enforcement_level(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert info.name == "botstack"
    assert levels.pop("droplet-backups-on-in-prod") == proto.ADVISORY
    assert set(levels) == {"ssh-only-from-admins", "backup-bucket-private-versioned", "spaces-key-one-bucket",
                           "droplet-monitoring-on", "data-protected-on-prod", "droplet-fits-compose-limits",
                           "no-secret-in-stack-outputs"}
    assert set(levels.values()) == {proto.MANDATORY}


def test_the_running_pack_refuses_ssh_from_anywhere_on_prod(analyzer):
    request = proto.AnalyzeRequest(
        type="digitalocean:index/firewall:Firewall", name="network-firewall",
        urn="urn:pulumi:prod::botstack::botstack:infra:Network$digitalocean:index/firewall:Firewall::network-firewall",
        properties=_struct({"inboundRules": [{"protocol": "tcp", "portRange": "22", "sourceAddresses": ["0.0.0.0/0"]}]}))
    [d] = analyzer.Analyze(request, timeout=30).diagnostics
    assert d.policyName == "ssh-only-from-admins" and d.enforcementLevel == proto.MANDATORY
    assert "0.0.0.0/0" in d.message


def test_the_project_file_asks_the_cli_for_a_python_venv_with_the_pinned_sdk():
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    pins = dict(line.split("#")[0].strip().split("==") for line in (PACK / "requirements.txt").read_text().splitlines()
                if "==" in line.split("#")[0])
    dev = (REPO / "requirements-dev.txt").read_text() + (REPO / "requirements.txt").read_text()
    for name in ("pulumi-policy", "pulumi", "PyYAML"):
        assert f"{name}=={pins[name]}" in dev, f"{name} is pinned differently for the tests"
