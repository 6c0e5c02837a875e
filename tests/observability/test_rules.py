"""The alert rules (compose/observability/rules/botstack.yml) through Debian's promtool: the file
checks, and each alert fires when it should and not before (rules_test.yml)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "..", "compose", "observability", "rules", "botstack.yml")

pytestmark = pytest.mark.skipif(not shutil.which("promtool"),
                                reason="promtool (Debian's prometheus package) is not installed")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=HERE, timeout=120)


def test_the_rules_file_checks():
    res = promtool("check", "rules", RULES)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "5 rules found" in res.stdout


def test_every_alert_fires_when_it_should_and_not_before():
    res = promtool("test", "rules", "rules_test.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_rule_that_fires_too_early_fails_the_unit_tests(tmp_path):
    """The unit tests can fail: with BotDown's `for` removed they do."""
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "botstack.yml").write_text(open(RULES).read().replace("        for: 3m\n", "", 1))
    tests = open(os.path.join(HERE, "rules_test.yml")).read().replace(
        "../../compose/observability/rules/botstack.yml", str(broken / "botstack.yml"))
    (tmp_path / "rules_test.yml").write_text(tests)
    res = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode != 0 and "BotDown" in res.stdout + res.stderr
