"""Reboot: the stand-in stops (systemd shuts down: botstack.service's ExecStop stops the stack,
PostgreSQL shuts down cleanly, dockerd stops) and boots again with its volume still attached;
botstack.service brings the stack back with no deploy step, the metadata block is back, and a
reminder that fell due while it was down is delivered afterwards, flagged late."""
from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.rehearsal

DOWN_PAST_DUE_S = 95  # the bot flags a delivery late from 90 s (LATE_NOTE_AFTER in the bot)


def test_the_stack_comes_back_after_a_reboot_without_a_deploy(droplet):
    before = droplet.psql("SELECT count(*) FROM reminders")
    droplet.psql(f"INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES ({droplet.user_id}, "
                 f"{droplet.user_id}, 'due while the droplet rebooted', 'Europe/Berlin', "
                 "now() + interval '5 seconds')")
    due = time.monotonic() + 5
    ran = list(droplet.ran)
    droplet.sent_before_reboot = len(droplet.sent())
    droplet.journal_before_reboot = droplet.d.journal_cursor()
    droplet.d.stop()
    assert droplet.d.exec_state() == "exited"
    time.sleep(max(0.0, due + DOWN_PAST_DUE_S - time.monotonic()))
    t0 = time.monotonic()
    droplet.restarted_at = time.time()
    droplet.d.start()
    droplet.d.wait_booted()
    droplet.figures["reboot_systemd_s"] = round(time.monotonic() - t0, 1)
    assert droplet.d.exec("systemctl", "is-active", "botstack.service").stdout.strip() == "active"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        services = droplet.services()
        setup = services.pop("db-setup", None)  # one-shot: it ran again at boot and exited
        states = {k: (v["State"], v.get("Health") or "") for k, v in services.items()}
        if states and all(st == "running" and h in ("", "healthy") for st, h in states.values()):
            break
        time.sleep(2)
    droplet.figures["reboot_to_healthy_s"] = round(time.monotonic() - t0, 1)
    assert setup is not None and (setup["State"], setup.get("ExitCode")) == ("exited", 0), setup
    assert set(states) == {"bot", "postgres", "backup"} and all(
        st == "running" and h in ("", "healthy") for st, h in states.values()), states
    assert droplet.ran == ran, "a deploy step ran during the reboot"
    assert droplet.psql("SELECT count(*) FROM reminders") == str(int(before) + 1)


def test_the_shutdown_stopped_the_stack_through_the_units_execstop(droplet):
    # the persistent journal (as on Ubuntu) of the shutdown: systemd stopped botstack.service, its
    # ExecStop (`compose stop`: these are compose's lines) stopped every service, the unit did not
    # fail. SUBSTITUTION boot-id: the stand-in shares the test machine's boot id, so there is no
    # `journalctl -b -1`: the shutdown is what was logged between the cursor taken before it and
    # the restart.
    journal = droplet.d.exec("journalctl", "-u", "botstack.service", "--no-pager", "-o", "cat",
                             f"--after-cursor={droplet.journal_before_reboot}",
                             f"--until=@{int(droplet.restarted_at)}").stdout
    assert re.search(r"^Stopping botstack\.service\b", journal, re.M), journal[-3000:]
    for service in ("bot", "postgres", "backup"):
        assert re.search(rf"Container botstack-{service}-1\s+Stopped", journal), (service, journal[-3000:])
    assert re.search(r"^Stopped botstack\.service\b", journal, re.M), journal[-3000:]
    assert "Failed with result" not in journal, journal[-3000:]


def test_postgresql_shut_down_cleanly_and_started_without_recovery(droplet):
    # the same container across the reboot (compose starts it again): its log spans both boots
    cid = droplet.d.exec("docker", "ps", "-aq", "--filter", "label=com.docker.compose.service=postgres"
                         ).stdout.split()
    assert len(cid) == 1, cid
    log = droplet.d.sh(f"docker logs {cid[0]} 2>&1")
    assert "database system is shut down" in log, log[-3000:]
    last_start = log[log.rindex("database system is shut down"):]
    assert "database system was shut down at" in last_start, last_start[-3000:]
    assert "database system is ready to accept connections" in last_start, last_start[-3000:]
    for unclean in ("was not properly shut down", "automatic recovery in progress",
                    "database system was interrupted"):
        assert unclean not in log, (unclean, log[-3000:])


def test_the_metadata_block_is_active_again_after_the_reboot(droplet):
    assert droplet.d.exec("systemctl", "is-active", "botstack-metadata-block.service").stdout.strip() == "active"
    rule = droplet.d.exec("iptables", "-C", "DOCKER-USER", "-d", "169.254.169.254/32", "-j", "REJECT",
                          check=False)
    assert rule.returncode == 0, rule.stderr


def test_a_reminder_due_during_the_reboot_is_delivered_late_afterwards(droplet):
    m = droplet.wait_sent(lambda t: "due while the droplet rebooted" in t, droplet.sent_before_reboot,
                          120, "the reminder that fell due during the reboot")
    assert "late by" in m["text"], m["text"]
    sql = "SELECT status FROM reminders WHERE text = 'due while the droplet rebooted'"
    deadline = time.monotonic() + 15
    while droplet.psql(sql) != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert droplet.psql(sql) == "done"


def test_the_bot_answers_after_the_reboot(droplet):
    assert "dentist" in droplet.ask("/list", "dentist")["text"]
