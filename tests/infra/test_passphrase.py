"""infra/passphrase.py: the backup passphrase scripts/deploy stores in a stack's config."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra import passphrase
from tests.infra.harness import REPO

URN = ("urn:pulumi:prod::botstack::botstack:infra:Storage$random:index/randomPassword:RandomPassword"
       "::storage-backup-passphrase")


def _export(result) -> dict:
    return {"version": 3, "deployment": {"resources": [
        {"urn": "urn:pulumi:prod::botstack::pulumi:pulumi:Stack::botstack-prod", "outputs": {}},
        {"urn": URN, "outputs": {"result": result}}]}}


def test_the_generated_passphrase_of_an_existing_stack_is_found_in_its_export():
    shown = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
             "plaintext": json.dumps("TESTSECRETkept")}
    assert passphrase.from_state(_export(shown)) == "TESTSECRETkept"


def test_a_new_stack_has_none():
    assert passphrase.from_state({"version": 3, "deployment": {}}) is None


def test_an_export_without_show_secrets_is_refused():
    encrypted = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:x"}
    with pytest.raises(ValueError, match="--show-secrets"):
        passphrase.from_state(_export(encrypted))


def test_a_new_passphrase_is_48_random_letters_and_digits():
    a, b = passphrase.new(), passphrase.new()
    assert len(a) == 48 and a.isalnum() and a != b


def test_the_command_prints_one_line_saying_where_it_came_from():
    run = lambda doc: subprocess.run([sys.executable, str(REPO / "infra" / "passphrase.py")],  # noqa: E731
                                     input=json.dumps(doc), capture_output=True, text=True)
    kept = run(_export("TESTSECRETkept"))
    assert kept.returncode == 0 and kept.stdout == "state TESTSECRETkept\n"
    made = run({"deployment": {}})
    assert made.stdout.startswith("new ") and len(made.stdout.split()[1]) == 48
    assert run({"deployment": {"resources": [{"urn": URN, "outputs": {}}]}}).returncode == 1
