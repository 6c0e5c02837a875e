"""scripts/ci-ssh-access with a stand-in `pulumi` on PATH (tests/ci/fake_pulumi.py) and no network
beyond loopback: what it admits, what it refuses, and that `remove` closes the firewall."""
from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import socket
import threading

import pytest
from pulumi.runtime import settings

from tests.ci.fake_repo import Repo
from tests.infra.harness import REPO, run_program

SCRIPT = REPO / "scripts" / "ci-ssh-access"
PUBLIC_V4 = "20.42.0.7"
PUBLIC_V6 = "2606:4700:4700::1111"


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path, SCRIPT)


def serve_once(body: bytes) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/"


def test_admit_sets_the_runner_address_as_one_host(repo):
    result = repo.run("admit", "prod", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ci-ssh-access: {PUBLIC_V4}/32 admitted to SSH on stack prod for this job\n"
    assert repo.cidrs("prod") == [f"{PUBLIC_V4}/32"]
    assert repo.calls() == [["config", "set", "--stack", "prod", "--path", "botstack:ciRunnerCidrs[0]",
                             f"{PUBLIC_V4}/32", "--non-interactive"]]


def test_admit_takes_an_ipv6_runner_as_a_128(repo):
    assert repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V6).returncode == 0
    assert repo.cidrs("dev") == [f"{PUBLIC_V6}/128"]


@pytest.mark.parametrize("address", ["0.0.0.0/0", "::/0", "0.0.0.0", "::", "20.42.0.0/16", "10.0.0.5",
                                     "127.0.0.1", "192.168.1.2", "198.51.100.7", "not-an-address",
                                     f"{PUBLIC_V4} 10.0.0.1"])
def test_admit_refuses_anything_but_one_public_host(repo, address):
    before = (repo.root / "Pulumi.dev.yaml").read_text()
    result = repo.run("admit", "dev", CI_RUNNER_IP=address)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("ci-ssh-access: ")
    assert repo.calls() == []
    assert (repo.root / "Pulumi.dev.yaml").read_text() == before


def test_admit_looks_the_address_up_when_not_given(repo):
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=serve_once(f"{PUBLIC_V4}\n".encode()))
    assert result.returncode == 0, result.stderr
    assert repo.cidrs("dev") == [f"{PUBLIC_V4}/32"]


def test_admit_refuses_a_lookup_answer_that_is_not_an_address(repo):
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=serve_once(b"<html>rate limited</html>"))
    assert result.returncode == 1 and "is not a single IP address" in result.stderr
    assert repo.calls() == []


def test_admit_fails_in_one_line_naming_the_lookup_when_it_cannot_reach_it(repo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=url)
    assert result.returncode == 1 and url in result.stderr and result.stderr.count("\n") == 1
    assert repo.calls() == []


def test_admit_refuses_when_the_stack_file_already_admits_someone(repo):
    assert repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4).returncode == 0
    result = repo.run("admit", "dev", CI_RUNNER_IP="20.42.0.8")
    assert result.returncode == 1 and "already set in Pulumi.dev.yaml" in result.stderr
    assert repo.cidrs("dev") == [f"{PUBLIC_V4}/32"]


def test_admit_refuses_an_unknown_stack(repo):
    result = repo.run("admit", "staging", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 1 and "Pulumi.staging.yaml not found" in result.stderr


def test_remove_clears_the_address_then_updates_only_the_firewall(repo):
    assert repo.run("admit", "prod", CI_RUNNER_IP=PUBLIC_V4).returncode == 0
    result = repo.run("remove", "prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ci-ssh-access: SSH closed to CI runners on stack prod\n"
    assert repo.cidrs("prod") is None
    assert repo.calls()[1:] == [
        ["config", "rm", "--stack", "prod", "botstack:ciRunnerCidrs", "--non-interactive"],
        ["up", "--stack", "prod", "--yes", "--diff", "--target",
         "urn:pulumi:prod::botstack::botstack:infra:Network$digitalocean:index/firewall:Firewall::network-firewall",
         "--non-interactive"]]


def test_remove_without_an_admitted_address_still_updates_the_firewall(repo):
    assert repo.run("remove", "dev").returncode == 0
    assert [c[0] for c in repo.calls()] == ["up"]


def test_remove_fails_when_the_firewall_update_fails(repo):
    assert repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4).returncode == 0
    result = repo.run("remove", "dev", FAKE_PULUMI_UP_EXIT="255")
    assert result.returncode == 1
    assert result.stderr == "ci-ssh-access: `pulumi up --stack` failed (exit 255)\n"


def test_the_target_is_the_firewall_urn_the_program_registers():
    loader = importlib.machinery.SourceFileLoader("ci_ssh_access", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    for stack in ("dev", "prod"):
        run = run_program(stack, REPO)
        assert run.error is None
        registered = settings.SETTINGS.monitor.get_registered_resources()
        [urn] = [u for u in registered if u.endswith("::network-firewall")]
        assert module.firewall_urn(stack) == urn


def test_usage_is_refused_with_exit_2(repo):
    assert repo.run("open", "dev").returncode == 2
