"""scripts/ci-drift-notify against the Bot API double, with the stack's config answered by the
stand-in `pulumi` (the token as `pulumi config get` prints a decrypted secret)."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.ci.fake_repo import Repo
from tests.infra.harness import REPO, TEST_TOKEN
from tests.support.botapi_double import BotApiDouble

SCRIPT = REPO / "scripts" / "ci-drift-notify"
RUN_URL = "https://github.com/example/botstack/actions/runs/42"


@pytest.fixture
def api():
    with BotApiDouble(token=TEST_TOKEN) as double:
        yield double


def stack_repo(tmp_path, api_url: str, admins=(111, 222)) -> Repo:
    repo = Repo(tmp_path, SCRIPT)
    path = repo.root / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].update({"botstack:adminUserIds": list(admins), "botstack:telegramApiBaseUrl": api_url})
    path.write_text(yaml.safe_dump(doc))
    repo.env["FAKE_PULUMI_SECRETS"] = json.dumps({"botstack:telegramBotToken": TEST_TOKEN})
    return repo


def test_each_admin_is_told_once_with_the_stack_and_the_run(tmp_path, api):
    repo = stack_repo(tmp_path, api.base_url)
    result = repo.run("prod", RUN_URL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ci-drift-notify: told 2 admin(s) of stack prod\n"
    for admin in (111, 222):
        [message] = api.sent_messages(admin)
        assert message["text"].startswith("botstack prod: drift.") and RUN_URL in message["text"]


def test_the_token_never_reaches_a_command_line_or_the_output(tmp_path, api):
    repo = stack_repo(tmp_path, api.base_url)
    result = repo.run("prod", RUN_URL)
    assert result.returncode == 0
    assert TEST_TOKEN not in repo.log.read_text()
    assert TEST_TOKEN not in result.stdout + result.stderr


def test_a_refused_token_fails_in_one_line_without_the_url(tmp_path):
    with BotApiDouble(token="999:another-bots-token-0123456789abcdef") as other:
        repo = stack_repo(tmp_path, other.base_url)
        result = repo.run("prod", RUN_URL)
    assert result.returncode == 1
    assert result.stderr == "ci-drift-notify: Telegram answered HTTP 401 for admin 111\n"


def test_an_unreadable_token_fails_naming_the_passphrase(tmp_path, api):
    repo = stack_repo(tmp_path, api.base_url)
    repo.env["FAKE_PULUMI_SECRETS"] = "{}"
    result = repo.run("prod", RUN_URL)
    assert result.returncode == 1 and "PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert api.sent_messages() == []


def test_an_unreachable_bot_api_fails_in_one_line(tmp_path):
    repo = stack_repo(tmp_path, "http://127.0.0.1:9")
    result = repo.run("prod", RUN_URL)
    assert result.returncode == 1
    assert result.stderr.startswith("ci-drift-notify: cannot reach the Bot API for admin 111")
    assert result.stderr.count("\n") == 1
