"""scripts/ci-ssh-access against an HTTP double of DigitalOcean's API (tests/infra/do_api_double.py)
and a stand-in `pulumi` that keeps the diy backend's locks (tests/ci/fake_pulumi.py), no network
beyond loopback: what it admits, what it refuses, and that closing needs neither pulumi nor the
stack's lock."""
from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import socket
import threading

import pytest

from tests.ci.do_api import TOKEN, DoApi
from tests.ci.fake_repo import Repo
from tests.infra.harness import REPO, run_program, unwrap

SCRIPT = REPO / "scripts" / "ci-ssh-access"
PUBLIC_V4 = "20.42.0.7"
PUBLIC_V6 = "2606:4700:4700::1111"
RUN = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1", "CI_SSH_POLL_SECONDS": "0"}


@pytest.fixture
def api(tmp_path):
    double = DoApi(tmp_path)
    yield double
    double.close()


@pytest.fixture
def repo(tmp_path, api):
    r = Repo(tmp_path, SCRIPT)
    r.env.update(api.env)
    r.env.update(RUN)
    return r


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


def _created(api):
    return [r["body"] for r in api.requests() if r["method"] == "POST"]


def test_admit_makes_a_firewall_of_its_own_for_the_runner_and_waits_until_it_applies(repo, api):
    api.update(apply_after=3)
    result = repo.run("admit", "prod", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"ci-ssh-access: {PUBLIC_V4}/32 admitted to SSH on stack prod for this job "
                             "(firewall botstack-prod-ci-4242-1)\n")
    assert _created(api) == [{"name": "botstack-prod-ci-4242-1", "tags": ["botstack-prod"],
                              "inbound_rules": [{"protocol": "tcp", "ports": "22",
                                                 "sources": {"addresses": [f"{PUBLIC_V4}/32"]}}],
                              "outbound_rules": []}]
    [fw] = api.state()["firewalls"]
    assert fw["status"] == "succeeded" and fw["polls"] == 3
    assert all(r["authorised"] for r in api.requests())
    # neither the stack's config nor its state is touched
    assert repo.calls() == []
    assert (repo.root / "Pulumi.prod.yaml").read_text() == (REPO / "Pulumi.prod.yaml").read_text()


def test_admit_takes_an_ipv6_runner_as_a_128(repo, api):
    assert repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V6).returncode == 0
    assert _created(api)[0]["inbound_rules"][0]["sources"] == {"addresses": [f"{PUBLIC_V6}/128"]}


@pytest.mark.parametrize("address", ["0.0.0.0/0", "::/0", "0.0.0.0", "::", "20.42.0.0/16", "10.0.0.5",
                                     "127.0.0.1", "192.168.1.2", "198.51.100.7", "not-an-address",
                                     f"{PUBLIC_V4} 10.0.0.1"])
def test_admit_refuses_anything_but_one_public_host(repo, api, address):
    result = repo.run("admit", "dev", CI_RUNNER_IP=address)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("ci-ssh-access: ")
    assert api.requests() == []


def test_admit_looks_the_address_up_when_not_given(repo, api):
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=serve_once(f"{PUBLIC_V4}\n".encode()))
    assert result.returncode == 0, result.stderr
    assert _created(api)[0]["inbound_rules"][0]["sources"] == {"addresses": [f"{PUBLIC_V4}/32"]}


def test_admit_refuses_a_lookup_answer_that_is_not_an_address(repo, api):
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=serve_once(b"<html>rate limited</html>"))
    assert result.returncode == 1 and "is not a single IP address" in result.stderr
    assert api.requests() == []


def test_admit_fails_in_one_line_naming_the_lookup_when_it_cannot_reach_it(repo, api):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    result = repo.run("admit", "dev", CI_RUNNER_IP_URL=url)
    assert result.returncode == 1 and url in result.stderr and result.stderr.count("\n") == 1
    assert api.requests() == []


def test_admit_outside_a_ci_job_is_refused(repo, api):
    result = repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4, GITHUB_RUN_ID="")
    assert result.returncode == 1 and "GITHUB_RUN_ID is not set" in result.stderr
    assert api.requests() == []


def test_admit_first_deletes_what_a_killed_job_left_and_nothing_else(repo, api):
    for name in ("botstack-dev-ci-4100-1", "botstack-dev-fw", "botstack-prod-ci-4100-1", "botstack-dev-ci-ci-4100-1",
                 "somebody-else"):
        api.add_firewall(name)
    result = repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 0, result.stderr
    assert "deleted botstack-dev-ci-4100-1, left by an earlier job" in result.stderr
    assert api.firewall_names() == ["botstack-dev-fw", "botstack-prod-ci-4100-1", "botstack-dev-ci-ci-4100-1",
                                    "somebody-else", "botstack-dev-ci-4242-1"]


def test_a_firewall_digitalocean_does_not_apply_is_deleted_and_fails_the_step(repo, api):
    api.update(apply_after=1, apply_to="failed")
    result = repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 1
    assert result.stderr == ("ci-ssh-access: DigitalOcean did not apply firewall botstack-dev-ci-4242-1 "
                             "(status failed); deleted it again\n")
    assert api.firewall_names() == []


def test_a_refused_token_is_one_line(repo, api):
    result = repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4, DIGITALOCEAN_TOKEN="TESTSECRET-revoked")
    assert result.returncode == 1
    assert result.stderr == ("ci-ssh-access: DigitalOcean refused to list the firewalls "
                             "(HTTP 401: Unable to authenticate you)\n")
    assert TOKEN not in result.stderr


def test_an_answer_that_is_not_the_api_is_refused(repo, api):
    api.update(answer=[502, "<html>Bad Gateway</html>"])
    result = repo.run("remove", "dev")
    assert result.returncode == 1
    assert result.stderr == ("ci-ssh-access: DigitalOcean's API answered GET /v2/firewalls?per_page=200 "
                             "with HTTP 502 and no JSON\n")


def test_admit_refuses_an_unknown_stack(repo, api):
    result = repo.run("admit", "staging", CI_RUNNER_IP=PUBLIC_V4)
    assert result.returncode == 1 and "Pulumi.staging.yaml not found" in result.stderr


def test_remove_deletes_every_ci_admission_of_the_stack_across_pages(repo, api):
    api.update(page_size=2)
    for name in ("botstack-prod-ci-1-1", "botstack-prod-fw", "botstack-prod-ci-2-1", "botstack-dev-ci-3-1",
                 "botstack-prod-ci-4-2"):
        api.add_firewall(name)
    result = repo.run("remove", "prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("ci-ssh-access: SSH closed to CI runners on stack prod (botstack-prod-ci-1-1, "
                             "botstack-prod-ci-2-1, botstack-prod-ci-4-2)\n")
    assert api.firewall_names() == ["botstack-prod-fw", "botstack-dev-ci-3-1"]


def test_remove_with_nothing_open_succeeds(repo, api):
    result = repo.run("remove", "dev")
    assert result.returncode == 0
    assert result.stdout == "ci-ssh-access: SSH closed to CI runners on stack dev (none was open)\n"


def test_ssh_closes_even_when_a_killed_pulumi_up_left_the_stack_locked(repo, api, tmp_path):
    # issue 19 item 6: GitHub ends a cancelled job's `pulumi up` with SIGINT, SIGTERM, then a kill;
    # the diy backend's lock stays, and any later state-changing pulumi command is refused
    repo.env["FAKE_PULUMI_STATE"] = str(tmp_path / "state")
    assert repo.run("admit", "dev", CI_RUNNER_IP=PUBLIC_V4).returncode == 0
    up = repo.pulumi("up", "--stack", "dev", "--yes", FAKE_PULUMI_UP_KILLED="1")
    assert up.returncode == -9
    assert repo.pulumi("up", "--stack", "dev", "--yes").stderr.startswith(
        "error: the stack is currently locked by 1 lock(s).")
    result = repo.run("remove", "dev")
    assert result.returncode == 0, result.stderr
    assert api.firewall_names() == []


def test_check_fails_while_an_admission_is_left(repo, api):
    assert repo.run("check", "dev").returncode == 0
    api.add_firewall("botstack-dev-ci-4100-1")
    result = repo.run("check", "dev")
    assert result.returncode == 1
    assert result.stderr == ("ci-ssh-access: SSH is still admitted to CI runners on stack dev: "
                             "botstack-dev-ci-4100-1 (created 2026-12-05T03:00:00Z); close it with "
                             "scripts/ci-ssh-access remove dev\n")
    assert {r["method"] for r in api.requests()} == {"GET"}  # a read-only token is enough


def test_the_tag_is_the_one_the_stacks_firewall_applies_to():
    loader = importlib.machinery.SourceFileLoader("ci_ssh_access", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    for stack in ("dev", "prod"):
        run = run_program(stack, REPO)
        assert run.error is None
        assert unwrap(run.one("/firewall:Firewall").inputs["tags"]) == [module.TAG.format(stack=stack)]


def test_usage_is_refused_with_exit_2(repo):
    assert repo.run("open", "dev").returncode == 2
