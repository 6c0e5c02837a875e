"""`botstack`, the day-2 command line, run as a program.

Without Docker: --help of every command, and every error that comes before SSH (unknown stack, no
pulumi CLI, missing outputs, confirmation). With Docker: every command over real SSH against the SSH
stand-in of the droplet (tests/cli/standin.py) with the real stack deployed into it the way the
Pulumi program deploys it.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import SCRIPT

COMMANDS = ["status", "logs", "ssh", "backup", "backups", "restore", "rollback", "maintenance", "up", "down"]
OUTPUTS = {"reservedIp": "192.0.2.10", "ssh": "ssh botadmin@192.0.2.10",
           "knownHostsLine": "192.0.2.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBeT5q5eSfnb2vi0cGlbY7Yl2dhQ0cuTDV8i9ZXrqV5N"}
SEEN: list[str] = []  # every output of the SSH tests: checked for secrets at the end


def outputs_file(tmp_path: Path, data) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def one_line_error(r) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr!r}"
    assert lines[0].startswith("botstack: ")
    return lines[0]


def fake_pulumi(tmp_path: Path, script: str) -> dict:
    """A `pulumi` on PATH that answers as the real CLI does (messages from pulumi's source)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "pulumi"
    exe.write_text("#!/bin/sh\n" + f"echo \"$@\" >> {tmp_path}/pulumi-args\n" + script)
    exe.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


# -- without Docker -------------------------------------------------------------------------------
def test_top_level_help_names_every_command(cli):
    r = cli("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_its_own_help(cli, command):
    r = cli("dev", command, "--help")
    assert r.returncode == 0, r.out
    assert r.stdout.startswith(f"usage: botstack STACK {command}") or f"botstack STACK {command}" in r.stdout


def test_an_unknown_stack_is_one_line_naming_it(cli, tmp_path):
    env = fake_pulumi(tmp_path, "echo \"error: no stack named 'qa' found\" >&2\nexit 255\n")
    r = cli("qa", "status", env=env)
    assert r.returncode == 2
    assert "unknown stack 'qa'" in one_line_error(r)


def test_outputs_are_read_from_pulumi_without_secrets(cli, tmp_path):
    env = fake_pulumi(tmp_path, "echo '{}'\n")
    r = cli("dev", "status", env=env)
    assert r.returncode == 2
    assert "stack 'dev' has no outputs" in one_line_error(r)
    args = (tmp_path / "pulumi-args").read_text().split()
    assert args == ["stack", "output", "--json", "--stack", "dev"]


def test_without_the_pulumi_cli_it_asks_for_an_outputs_file(cli):
    r = cli("dev", "status", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "--outputs FILE" in one_line_error(r)


def test_a_stack_without_the_known_hosts_line_is_refused(cli, tmp_path):
    data = dict(OUTPUTS)
    del data["knownHostsLine"]
    r = cli("--outputs", outputs_file(tmp_path, data), "dev", "status")
    assert r.returncode == 2
    assert "no output knownHostsLine" in one_line_error(r)


def test_an_outputs_file_that_is_not_json_is_refused(cli, tmp_path):
    r = cli("--outputs", outputs_file(tmp_path, "reservedIp: 1.2.3.4"), "dev", "status")
    assert r.returncode == 2
    assert "not JSON" in one_line_error(r)


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"[" * 100_000],
                         ids=["not-utf-8", "deeply-nested"])
def test_an_outputs_file_that_cannot_be_decoded_is_one_line(cli, tmp_path, content):
    path = tmp_path / "outputs.json"
    path.write_bytes(content)
    r = cli("--outputs", path, "dev", "status")
    assert r.returncode == 2
    assert "outputs" in one_line_error(r)


def test_a_missing_outputs_file_is_refused(cli, tmp_path):
    r = cli("--outputs", tmp_path / "nope.json", "dev", "status")
    assert r.returncode == 2
    assert "cannot read the outputs file" in one_line_error(r)


def test_up_and_down_are_for_the_local_stack_only(cli):
    r = cli("dev", "up")
    assert r.returncode == 2
    assert "local stack only" in one_line_error(r)


def test_restore_without_a_terminal_asks_for_yes(cli, tmp_path):
    r = cli("--outputs", outputs_file(tmp_path, OUTPUTS), "dev", "restore", "latest", input="dev\n")
    assert r.returncode == 2
    assert "pass --yes" in one_line_error(r)


def test_a_maintenance_message_goes_with_on_only(cli, tmp_path):
    r = cli("--outputs", outputs_file(tmp_path, OUTPUTS), "dev", "maintenance", "off", "--message", "x")
    assert r.returncode == 2
    assert "--message goes with `maintenance on`" in one_line_error(r)


def test_the_agent_runs_under_the_oldest_python_it_promises():
    import ast
    source = (SCRIPT.parent / "botstack_cli" / "agent.py").read_text()
    ast.parse(source, feature_version=(3, 8))


def test_words_sent_over_ssh_are_split_back_exactly(tmp_path):
    from botstack_cli.outputs import to_stack
    from botstack_cli.remote import Remote
    words = ["printf", "%s|", "a b", "c'd", "$HOME", "; rm -rf /", "`x`"]
    with Remote(to_stack("dev", OUTPUTS, "test")) as r:
        argv = r.argv(shlex.join(words))
    assert shlex.split(argv[-1]) == words
    assert "StrictHostKeyChecking=yes" in argv and "GlobalKnownHostsFile=/dev/null" in argv


# -- over SSH: the connection ---------------------------------------------------------------------
def run(cli, standin, *args, outputs=None, identity=None, **kw):
    out = outputs or standin.write_outputs()
    r = cli("--outputs", out, "-i", identity or standin.admin_key, "dev", *args, **kw)
    SEEN.append(r.out)
    return r


def test_ssh_runs_a_command_as_the_admin_with_the_host_key_pinned(cli, standin, tmp_path):
    r = run(cli, standin, "ssh", "--", "id", "-un", env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.out
    assert r.stdout.strip() == "botadmin"
    assert not (cli.home / ".ssh").exists(), "the CLI wrote to ~/.ssh"
    assert not list(tmp_path.glob("botstack-ssh-*")), "the temporary known_hosts was left behind"


def test_ssh_passes_each_word_as_is(cli, standin):
    r = run(cli, standin, "ssh", "--", "printf", "%s|", "a b", "c'd", "$HOME")
    assert r.returncode == 0, r.out
    assert r.stdout == "a b|c'd|$HOME|"


def test_ssh_without_a_command_is_the_admin_shell(cli, standin):
    r = run(cli, standin, "ssh", input="id -un; sudo -n -u deploy id -un\n")
    assert r.returncode == 0, r.out
    assert r.stdout.split()[-2:] == ["botadmin", "deploy"]  # after the login banner


def test_a_different_host_key_is_refused_before_anything_runs(cli, standin, tmp_path):
    bad = standin.write_outputs("bad.json", knownHostsLine=f"{standin.ip} {standin.other_host_pub}")
    marker = f"/tmp/ran-{os.getpid()}"
    r = run(cli, standin, "ssh", "--", "touch", marker, outputs=bad)
    assert r.returncode == 3
    assert "host key mismatch" in one_line_error(r)
    assert standin.ssh("botadmin", f"test -e {marker}", check=False).returncode == 1


def test_a_refused_connection_is_one_line(cli, standin):
    nothing = standin.write_outputs("port.json", sshPort=2222)
    r = run(cli, standin, "status", outputs=nothing)
    assert r.returncode == 4
    assert "refused: connection refused" in one_line_error(r)


def test_a_key_the_droplet_does_not_know_is_refused(cli, standin):
    r = run(cli, standin, "status", identity=standin.deploy_key)  # the deploy key: not the admin's
    assert r.returncode == 4
    assert "permission denied" in one_line_error(r)


# -- over SSH: the stack --------------------------------------------------------------------------
def test_status_shows_release_services_backups_disk_memory_and_reminders(cli, deployed):
    r = run(cli, deployed, "status")
    assert r.returncode == 0, r.out
    text = r.stdout
    assert f"release      {deployed.second} (previous {deployed.first})" in text
    for service in ("bot", "postgres", "backup"):
        assert any(line.split()[:2] == [service, "running"] for line in text.splitlines()), text
    for label in ("last backup", "last drill", "reminders", "memory", "disk", "maintenance  off"):
        assert label in text


def test_status_json_has_every_section(cli, deployed):
    r = run(cli, deployed, "status", "--json")
    assert r.returncode == 0, r.out
    data = json.loads(r.stdout)
    assert data["release"] == {"current": deployed.second, "previous": deployed.first}
    assert data["stack"]["releaseId"] == deployed.second
    bot = next(s for s in data["services"] if s["service"] == "bot")
    assert bot["state"] == "running" and bot["health"] == "healthy" and bot["started_at"]
    assert isinstance(data["database"]["reminders"]["pending"], int)
    assert data["host"]["memory"]["total"] > 0 and data["host"]["disks"]
    assert data["maintenance"]["maintenance"] == "off"


def test_logs_of_one_service_are_its_last_lines(cli, deployed):
    r = run(cli, deployed, "logs", "bot", "-n", "3")
    assert r.returncode == 0, r.out
    lines = r.stdout.splitlines()
    assert 1 <= len(lines) <= 3 and all(x.startswith("bot-1") for x in lines), r.stdout


def test_logs_grep_keeps_only_matching_lines(cli, deployed):
    r = run(cli, deployed, "logs", "--since", "24h", "--grep", "BOT_STARTED")
    assert r.returncode == 0, r.out
    lines = r.stdout.splitlines()
    assert lines and all("bot_started" in x for x in lines)


def test_logs_since_a_later_time_print_nothing(cli, deployed):
    r = run(cli, deployed, "logs", "bot", "--since", "2099-01-01T00:00:00Z")
    assert r.returncode == 0, r.out
    assert r.stdout == ""


def test_logs_of_an_unknown_service_is_one_line(cli, deployed):
    r = run(cli, deployed, "logs", "nosuch")
    assert r.returncode == 2
    assert "no service 'nosuch'" in one_line_error(r)


def test_following_logs_stops_on_the_droplet_when_interrupted(cli, deployed):
    out = deployed.write_outputs()
    p = subprocess.Popen([sys.executable, str(SCRIPT), "--outputs", str(out), "-i", str(deployed.admin_key),
                          "dev", "logs", "bot", "-f", "-n", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=cli.env, start_new_session=True)
    try:
        first = p.stdout.readline()
        assert first.startswith(b"bot-1"), first
        assert "--follow" in deployed.remote_processes()
        os.killpg(p.pid, signal.SIGINT)  # Ctrl-C in a terminal
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while "--follow" in deployed.remote_processes():
        assert time.monotonic() < deadline, "`docker compose logs --follow` still runs on the droplet"
        time.sleep(0.5)


def test_backup_now_uploads_and_backups_lists_it(cli, deployed):
    r = run(cli, deployed, "backup")
    assert r.returncode == 0, r.out
    name = r.stdout.split(":")[0]
    assert name.startswith("botstack-") and "uploaded to backups/" in r.stdout
    listed = run(cli, deployed, "backups")
    assert listed.returncode == 0, listed.out
    assert any(line.startswith(name) and "spaces" in line for line in listed.stdout.splitlines())
    data = json.loads(run(cli, deployed, "backups", "--json").stdout)
    assert name in [b["name"] for b in data["backups"]]


def test_restore_brings_lost_rows_back_reports_counts_and_ends_maintenance(cli, deployed):
    deployed.ask("/start", "")
    deployed.ask("remind me in 3 hours to water the plants", "")
    assert deployed.psql("SELECT count(*) FROM reminders WHERE status = 'pending'") == "1"
    assert run(cli, deployed, "backup").returncode == 0
    deployed.psql("DELETE FROM reminders")  # the mistake the restore undoes
    r = run(cli, deployed, "restore", "latest", "--yes", "--message", "Restoring, back soon")
    assert r.returncode == 0, r.out
    assert "maintenance mode on" in r.stderr and "maintenance mode off" in r.stderr
    counts = dict(line.split() for line in r.stdout.splitlines() if line.startswith("  "))
    assert counts["reminders"] == "1" and counts["users"] == "1"
    assert deployed.psql("SELECT count(*) FROM reminders WHERE status = 'pending'") == "1"
    status = json.loads(run(cli, deployed, "maintenance", "status", "--json").stdout)
    assert status["maintenance"] == "off"


def test_restore_of_an_unknown_backup_fails_and_leaves_the_bot_serving(cli, deployed):
    r = run(cli, deployed, "restore", "botstack-19990101T000000Z", "--yes")
    assert r.returncode == 9  # the backup tool's "no such backup"
    assert "restore of 'botstack-19990101T000000Z' failed" in r.stderr.splitlines()[-1]
    assert json.loads(run(cli, deployed, "maintenance", "status", "--json").stdout)["maintenance"] == "off"


def test_maintenance_on_with_a_message_then_off(cli, deployed):
    r = run(cli, deployed, "maintenance", "on", "--message", "Back at 18:00")
    assert r.returncode == 0, r.out
    status = run(cli, deployed, "status")
    assert "maintenance  ON: Back at 18:00" in status.stdout
    deployed.ask("/list", "Back at 18:00")  # what the bot's users get meanwhile
    assert run(cli, deployed, "maintenance", "off").returncode == 0
    assert json.loads(run(cli, deployed, "maintenance", "status", "--json").stdout)["maintenance"] == "off"


def test_status_exits_1_and_names_a_stopped_service(cli, deployed):
    from tests.rehearsal.engine import docker
    docker("stop", deployed.service_container("backup"))
    try:
        r = run(cli, deployed, "status")
        assert r.returncode == 1
        assert "NOT HEALTHY: backup" in r.stdout
    finally:
        docker("start", deployed.service_container("backup"))


def test_rollback_returns_to_the_previous_release_and_says_what_pulumi_up_will_do(cli, deployed):
    r = run(cli, deployed, "rollback")
    assert r.returncode == 0, r.out
    assert f"release {deployed.first} is running again" in r.stdout
    assert "the next `pulumi up`" in r.stdout
    data = json.loads(run(cli, deployed, "status", "--json").stdout)
    assert data["release"] == {"current": deployed.first, "previous": deployed.second}
    from botstack_cli import report
    assert report.healthy(data), data["services"]  # the long-running services up, db-setup done
    assert "the droplet runs another release" in run(cli, deployed, "status").stdout
    again = run(cli, deployed, "rollback")
    assert again.returncode == 0, again.out
    assert json.loads(run(cli, deployed, "status", "--json").stdout)["release"]["current"] == deployed.second


def test_no_secret_appears_in_any_output(deployed):
    assert len(SEEN) > 10
    for secret in deployed.secrets():
        for out in SEEN:
            assert secret not in out


# -- the text of status, with a fixed clock -------------------------------------------------------
STATUS = {
    "stack": {"name": "prod", "host": "203.0.113.7", "releaseId": "bbbbbbbbbbbb"},
    "release": {"current": "aaaaaaaaaaaa", "previous": "bbbbbbbbbbbb"},
    "host": {"uptime_s": 90061, "memory": {"total": 1024 ** 3, "available": 512 * 1024 ** 2,
                                            "swap_total": 1024 ** 3, "swap_free": 1024 ** 3},
             "disks": [{"path": "/mnt/botstack-data", "total": 10 * 1024 ** 3, "free": 9 * 1024 ** 3}]},
    "services": [
        {"service": "bot", "state": "running", "health": "healthy", "started_at": "2026-11-27T09:59:00.123456789Z",
         "restarts": 0, "memory": "45MiB / 256MiB"},
        {"service": "backup", "state": "restarting", "health": "", "started_at": "2026-11-27T11:59:00Z",
         "restarts": 7, "memory": "0B / 192MiB"},
    ],
    "database": {"reminders": {"pending": 12, "overdue": 1}, "database_bytes": 9 * 1024 ** 2,
                 "last_backup": {"finished_at": "2026-11-27T06:30:00+00:00", "ok": True,
                                 "object": "backups/2026/11/27/botstack-20261127T063000Z.dump.gpg", "detail": ""},
                 "last_drill": None},
    "maintenance": {"maintenance": "on", "message": "Back at 18:00", "since": None, "due_waiting": 0},
}


def test_status_text_reads_as_a_report_with_a_fixed_clock():
    import datetime as dt
    from botstack_cli import report
    text = report.status_text(STATUS, at=dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc))
    assert "release      aaaaaaaaaaaa (previous bbbbbbbbbbbb)" in text
    assert "the stack's releaseId is bbbbbbbbbbbb: the droplet runs another release" in text
    assert "maintenance  ON: Back at 18:00" in text
    assert "host         up 1d 1h; memory 512 MiB used of 1.0 GiB" in text
    assert "/mnt/botstack-data: 9.0 GiB free of 10.0 GiB" in text
    assert any(line.split()[:5] == ["bot", "running", "healthy", "2h", "0m"] for line in text.splitlines())
    assert "last backup  2026-11-27 06:30 UTC (5h 30m ago) ok: backups/2026/11/27/" in text
    assert "last drill   none recorded" in text
    assert "reminders    12 pending (1 overdue); database 9 MiB" in text
    assert text.splitlines()[-1].startswith("NOT HEALTHY: backup")
    assert not report.healthy(STATUS)


@pytest.mark.parametrize("facts, flagged", [
    ({"last_ok_drill_at": "2026-11-20T03:00:00+00:00", "first_backup_at": "2026-10-01T03:00:00+00:00"}, "9h ago"),
    ({"last_ok_drill_at": "2026-11-26T03:00:00+00:00", "first_backup_at": "2026-10-01T03:00:00+00:00"}, None),
    ({"last_ok_drill_at": None, "first_backup_at": "2026-11-01T03:00:00+00:00"}, "no good restore drill"),
    ({"last_ok_drill_at": None, "first_backup_at": "2026-11-26T03:00:00+00:00"}, None),
], ids=["stale", "recent", "never-after-weeks", "new-stack"])
def test_status_flags_a_drill_older_than_twice_its_interval(facts, flagged):
    import datetime as dt
    from botstack_cli import report
    data = json.loads(json.dumps(STATUS))
    data["drill_interval_days"] = 3
    data["database"].update(facts)
    text = report.status_text(data, at=dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc))
    stale = [line for line in text.splitlines() if "DRILL STALE" in line]
    if flagged is None:
        assert stale == []
    else:
        assert len(stale) == 1 and flagged in stale[0] and "every 3 days" in stale[0]


# -- the CLI and the program agree ----------------------------------------------------------------
def test_the_cli_reads_the_outputs_the_program_exports(tmp_path):
    from botstack_cli.outputs import to_stack
    from tests.infra.harness import make_repo, run_program
    run = run_program("dev", make_repo(tmp_path / "repo"))
    assert run.error is None, run.error
    needed = {"reservedIp", "knownHostsLine", "ssh", "releaseId", "databaseMode"}
    assert needed <= set(run.outputs) and not needed & run.secret_outputs
    stack = to_stack("dev", dict(run.outputs), "mock run")
    assert stack.host == run.outputs["reservedIp"] and stack.user == "botadmin"
    assert stack.known_hosts_line.split()[1] == "ssh-ed25519"


def test_the_droplet_side_uses_the_layout_the_program_makes():
    from infra import facts
    from botstack_cli import agent, outputs, remote
    assert (agent.ROOT, agent.PROJECT, agent.DEFAULT_DATA_DIR) == \
        (facts.BOTSTACK_ROOT, facts.COMPOSE_PROJECT, facts.DATA_DIR)
    assert (outputs.ADMIN_USER, remote.DEPLOY_USER) == (facts.ADMIN_USER, facts.DEPLOY_USER)


def test_the_one_shot_services_are_the_compose_services_that_never_restart():
    import yaml
    from botstack_cli import report
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose" / "compose.yml").read_text())
    never = {name for name, svc in doc["services"].items() if str(svc.get("restart")) == "no"}
    assert set(report.ONE_SHOT_SERVICES) == never


def test_a_finished_setup_service_is_healthy_and_a_failed_one_is_not():
    from botstack_cli import report
    running = {"service": "bot", "state": "running", "health": "healthy"}
    done = {"service": "db-setup", "state": "exited", "exit_code": 0, "health": ""}
    failed = dict(done, exit_code=2)
    assert report.healthy({"services": [running, done]})
    assert not report.healthy({"services": [running, failed]})
    assert not report.healthy({"services": [dict(running, state="exited", exit_code=0)]})
