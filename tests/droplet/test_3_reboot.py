"""Reboot: the stand-in stops (systemd shuts down: botstack.service stops the stack, dockerd stops)
and boots again; botstack.service brings the stack back with no deploy step, and a reminder that
fell due while it was down is delivered afterwards, flagged late."""
from __future__ import annotations

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
    droplet.d.stop()
    assert droplet.d.exec_state() == "exited"
    time.sleep(max(0.0, due + DOWN_PAST_DUE_S - time.monotonic()))
    t0 = time.monotonic()
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
