"""The backup tool's own loader of the stack's runtime settings."""
from __future__ import annotations

import pytest

from botstack_backup.config import Config
from botstack_backup.errors import ConfigError


def test_the_interval_defaults_to_24_hours_like_the_stack_config():
    assert Config.from_env({}).interval_hours == 24
    assert Config.from_env({"BACKUP_INTERVAL_HOURS": ""}).interval_hours == 24
    assert Config.from_env({"BACKUP_INTERVAL_HOURS": "6"}).interval_hours == 6


def test_the_backup_jobs_own_database_url_wins_over_the_applications():
    cfg = Config.from_env({"BACKUP_DATABASE_URL": "postgresql://botstack_backup@db/botstack",
                           "DATABASE_URL": "postgresql://botstack_app@db/botstack"})
    assert cfg.database_url == "postgresql://botstack_backup@db/botstack"


@pytest.mark.parametrize("backup_url", [None, "", "  "])
def test_without_a_backup_database_url_the_applications_is_used(backup_url):
    env = {"DATABASE_URL": "postgresql://botstack_app@db/botstack"}
    if backup_url is not None:
        env["BACKUP_DATABASE_URL"] = backup_url
    assert Config.from_env(env).database_url == "postgresql://botstack_app@db/botstack"


def test_without_any_database_url_the_error_names_both_settings():
    with pytest.raises(ConfigError, match=r"BACKUP_DATABASE_URL \(or DATABASE_URL\) is not set"):
        Config.from_env({}).require_database()


def test_the_program_fixes_glibcs_malloc_settings_on_debian_python():
    """The image's python3 (glibc) takes the settings that keep the run's memory flat."""
    import subprocess

    from .conftest import BACKUP_SRC
    probe = subprocess.run(["/usr/bin/python3", "-c", ("from botstack_backup.memory import bound_malloc; "
                            "print(bound_malloc())")], env={"PYTHONPATH": BACKUP_SRC}, capture_output=True,
                           text=True, timeout=60)
    assert probe.stdout.strip() == "True", probe.stderr


def test_the_offsite_retention_defaults_and_minimums_match_the_stack_config():
    """infra/config.py: retention >= 1 (30), keep last >= 1 (3), daily/weekly/monthly >= 0 (7, 4, 6)."""
    from infra import contract
    from infra.config import DEFAULTS

    cfg = Config.from_env({})
    ours = {"BACKUP_OFFSITE_RETENTION_DAYS": cfg.offsite_retention_days,
            "BACKUP_OFFSITE_KEEP_LAST": cfg.offsite_keep_last,
            "BACKUP_OFFSITE_KEEP_DAILY": cfg.offsite_keep_daily,
            "BACKUP_OFFSITE_KEEP_WEEKLY": cfg.offsite_keep_weekly,
            "BACKUP_OFFSITE_KEEP_MONTHLY": cfg.offsite_keep_monthly}
    for key, value in ours.items():
        setting = contract.BY_KEY[key]
        assert str(value) == setting.default, key
        assert DEFAULTS[setting.source] == value, key
    for key in ("BACKUP_OFFSITE_RETENTION_DAYS", "BACKUP_OFFSITE_KEEP_LAST"):
        with pytest.raises(ConfigError, match=f"{key} must be at least 1"):
            Config.from_env({key: "0"})
    for key in ("BACKUP_OFFSITE_KEEP_DAILY", "BACKUP_OFFSITE_KEEP_WEEKLY", "BACKUP_OFFSITE_KEEP_MONTHLY"):
        assert Config.from_env({key: "0"}).offsite_policy() is not None
        with pytest.raises(ConfigError, match=f"{key} must be at least 0"):
            Config.from_env({key: "-1"})
