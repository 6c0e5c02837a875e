"""Maintenance mode: `python -m bot.maintenance on|off|status`; while on, every allowed user gets
the maintenance message (in their language, or the custom one as given), nothing is delivered and
nothing is lost: reminders due meanwhile arrive, flagged late, after `off`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot import maintenance
from bot.catalogue import MESSAGES
from tests.bot.conftest import REPO, STRANGER, USER, q, reminder_messages, wait_reminders


def cli(database_url, *args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "bot.maintenance", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_on_prints_one_line_of_state(database_url):
    r = cli(database_url, "on")
    assert r.returncode == 0 and r.stdout.startswith("maintenance: on since ")
    assert len(r.stdout.strip().splitlines()) == 1


def test_off_prints_one_line_of_state(database_url):
    cli(database_url, "on")
    r = cli(database_url, "off")
    assert r.returncode == 0 and r.stdout.strip() == "maintenance: off (0 reminders due now)"


def test_status_json_reports_the_state_and_the_custom_message(database_url):
    cli(database_url, "on", "--message", "Back at 18:00 — до 18:00")
    r = cli(database_url, "status", "--json")
    state = json.loads(r.stdout)
    assert r.returncode == 0 and state["maintenance"] == "on"
    assert state["message"] == "Back at 18:00 — до 18:00" and state["since"]


def test_switching_on_twice_keeps_the_first_since(database_url):
    first = json.loads(cli(database_url, "on") and cli(database_url, "status", "--json").stdout)["since"]
    cli(database_url, "on", "--message", "still")
    assert json.loads(cli(database_url, "status", "--json").stdout)["since"] == first


@pytest.mark.parametrize("args", [[], ["sideways"], ["on", "--message", ""], ["on", "--message", "x" * 1001]])
def test_bad_usage_exits_2(database_url, args):
    assert cli(database_url, *args).returncode == 2


def test_a_missing_database_url_is_one_line_and_exit_2():
    r = cli(None, "status")
    assert r.returncode == 2 and r.stderr.strip() == "maintenance: DATABASE_URL is missing"


def test_an_unreachable_database_is_one_line_without_the_password():
    r = cli("postgresql://bot:s3cret-pw@127.0.0.1:1/bot", "on")
    assert r.returncode == 1 and r.stderr.startswith("maintenance: database unreachable")
    assert "s3cret-pw" not in r.stderr + r.stdout and len(r.stderr.strip().splitlines()) == 1


async def _on(b, database_url, *args):
    assert cli(database_url, "on", *args).returncode == 0
    await b.api.async_wait_for(lambda: b.app.bot_data["services"].maintenance.enabled, 10)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_users_get_the_maintenance_message_in_their_language(make_bot, database_url, lang):
    b = await make_bot()
    await _on(b, database_url)
    (m,) = await b.say(USER, "in 10 minutes tea", lang=lang)
    assert m["text"] == MESSAGES["maintenance"][lang]
    assert q(database_url, "SELECT count(*) FROM reminders") == [(0,)]


async def test_the_custom_message_is_shown_as_given(make_bot, database_url):
    b = await make_bot()
    await _on(b, database_url, "--message", "Upgrading <b>now</b> — back at 18:00")
    (m,) = await b.say(USER, "/list", lang="ru")
    assert m["text"] == "Upgrading <b>now</b> — back at 18:00"


async def test_strangers_are_still_refused_during_maintenance(make_bot, database_url, api):
    b = await make_bot()
    await _on(b, database_url)
    api.push_message(STRANGER, "hi")
    await b.say(USER, "/help")
    await api.async_wait_for(lambda: api.sent_messages(STRANGER), 10)
    assert api.sent_messages(STRANGER)[0]["text"] == MESSAGES["refusal"]["en"]


async def test_nothing_is_delivered_during_maintenance_and_nothing_lost_after(make_bot, database_url, api):
    b = await make_bot()
    await b.say(USER, "/start")
    await _on(b, database_url)
    q(database_url, "INSERT INTO reminders (user_id, chat_id, text, tz, due_at) VALUES "
      "(%s, %s, 'during', 'UTC', now() - interval '5 minutes')", USER, USER)
    await b.say(USER, "/help")
    import asyncio
    await asyncio.sleep(1.0)  # ten scheduler ticks
    assert not reminder_messages(api, USER)
    assert q(database_url, "SELECT status FROM reminders") == [("pending",)]
    assert cli(database_url, "off").returncode == 0
    (m,) = await wait_reminders(api, USER, 1)
    assert m["text"].startswith("⏰ during\n\n(late by 5 min")


async def test_the_bot_answers_normally_after_maintenance(make_bot, database_url):
    b = await make_bot()
    await _on(b, database_url)
    cli(database_url, "off")
    await b.api.async_wait_for(lambda: not b.app.bot_data["services"].maintenance.enabled, 10)
    (m,) = await b.say(USER, "/help")
    assert "/remind" in m["text"]


def test_the_state_line_names_the_waiting_reminders():
    assert maintenance.line({"maintenance": "on", "message": None, "since": "t", "due_waiting": 3}) == \
        "maintenance: on since t (default message; 3 reminders waiting)"
