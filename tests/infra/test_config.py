"""Stack configuration: the real stack files pass; each bad value fails with one line naming the
key, before any resource is registered."""
from __future__ import annotations

import pytest

from infra import config
from infra.config import ConfigError
from tests.infra.harness import REPO, make_repo, run_program, stack_config

BIG_COMPOSE = """\
services:
  bot: {image: x, deploy: {resources: {limits: {memory: 512m}}}}
  postgres: {image: x, profiles: [localdb], deploy: {resources: {limits: {memory: 1g}}}}
  backup: {image: x, profiles: [localdb], deploy: {resources: {limits: {memory: 256MiB}}}}
"""


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack_files_are_valid(stack, repo):
    run = run_program(stack, repo)
    assert run.error is None
    assert run.mocks.resources


def test_every_key_in_the_stack_files_is_known():
    for stack in ("dev", "prod"):
        unknown = set(stack_config(stack)) - config.KNOWN_KEYS
        assert not unknown, f"Pulumi.{stack}.yaml: unknown keys {unknown}"


BAD = [
    # (stack, overrides, drop, key, words in the message)
    ("dev", {"adminCidrs": ["10.0.0.300/32"]}, (), "adminCidrs", "not a valid CIDR"),
    ("dev", {"adminCidrs": ["not-an-address"]}, (), "adminCidrs", "not a valid CIDR"),
    ("prod", {"adminCidrs": ["0.0.0.0/0"]}, (), "adminCidrs", "dangerouslyAllowSshFromAnywhere"),
    ("prod", {"adminCidrs": ["203.0.113.10/32", "::/0"]}, (), "adminCidrs", "whole internet"),
    ("dev", {"region": "xyz9"}, (), "region", "unknown region"),
    ("dev", {"region": "nyc1"}, (), "region", "has no Spaces"),
    ("dev", {"allowedUserIds": ["12ab"]}, (), "allowedUserIds", "not an integer"),
    ("prod", {"adminUserIds": [1.5]}, (), "adminUserIds", "not an integer"),
    ("dev", {"defaultTimezone": "Mars/Olympus_Mons"}, (), "defaultTimezone", "not an IANA time zone"),
    ("dev", {"backupLocalRetentionDays": 0}, (), "backupLocalRetentionDays", "at least 1"),
    ("prod", {"backupOffsiteRetentionDays": 0}, (), "backupOffsiteRetentionDays", "at least 1"),
    ("dev", {"backupOffsiteRetentionDays": "thirty"}, (), "backupOffsiteRetentionDays", "must be an integer"),
    ("dev", {}, ("telegramBotToken",), "telegramBotToken", "is required"),
    ("dev", {"telegramBotToken": "TESTSECRET-not-a-token"}, (), "telegramBotToken", "does not look like"),
    ("dev", {"dropletSize": "s-64vcpu-1tb"}, (), "dropletSize", "unknown size"),
    ("dev", {"database": "sqlite"}, (), "database", "container or managed"),
    ("dev", {"sshPublicKeys": ["ssh-ed25519 not-base64!"]}, (), "sshPublicKeys", "base64"),
    ("dev", {"sshPublicKeys": []}, (), "sshPublicKeys", "at least one"),
    ("dev", {"image": "windows-2022"}, (), "image", "not supported"),
    ("dev", {"dropletBackupHour": 5}, (), "dropletBackupHour", "0, 4, 8"),
    ("dev", {"alertEmails": ["nobody"]}, (), "alertEmails", "not an e-mail"),
    ("prod", {"adminCidr": ["0.0.0.0/0"]}, (), "adminCidr", "did you mean adminCidrs?"),
    ("prod", {"ciRunnerCidrs": ["198.51.100.0/24"]}, (), "ciRunnerCidrs", "not a single host"),
    ("prod", {"ciRunnerCidrs": ["0.0.0.0/0"]}, (), "ciRunnerCidrs", "not a single host"),
    ("dev", {"ciRunnerCidrs": ["runner"]}, (), "ciRunnerCidrs", "not a valid CIDR"),
    ("dev", {"healthcheckPingUrl": "hc-ping.com/TESTSECRET"}, (), "healthcheckPingUrl", "ping base URL"),
    ("dev", {"healthcheckPingUrl": "https://hc-ping.com/TESTSECRET?x=1"}, (), "healthcheckPingUrl", "without query"),
    ("dev", {"backupOffsiteKeepLast": 0}, (), "backupOffsiteKeepLast", "at least 1"),
    ("dev", {"backupOffsiteKeepWeekly": -1}, (), "backupOffsiteKeepWeekly", "at least 0"),
    ("dev", {"database": "managed", "managedDatabaseVersion": "13"}, (), "managedDatabaseVersion", "offers PostgreSQL"),
    ("dev", {"backupPassphrase": "TESTSECRET-too-short"}, (), "backupPassphrase", "32-256 characters"),
    ("dev", {"backupPassphrase": "TESTSECRET with spaces and $ signs 0123456789"}, (), "backupPassphrase", "letters"),
    ("dev", {"managedDatabaseVersion": "19"}, (), "managedDatabaseVersion", "offers PostgreSQL 14, 15, 16, 17"),
    # issue 19: one address with a prefix silently became the 256 around it
    ("dev", {"adminCidrs": ["198.51.100.23/24"]}, (), "adminCidrs", "198.51.100.23/32 is that one address"),
    ("dev", {"adminCidrs": ["2001:db8::7/64"]}, (), "adminCidrs", "host bits set"),
    ("dev", {"ciRunnerCidrs": ["198.51.100.7/31"]}, (), "ciRunnerCidrs", "host bits set"),
    # issue 19: a key cut short (a copy-paste that lost its end) locked you out
    ("dev", {"sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqEHTko1jALhmAqKWcaaR8WQkKfLGXAvAxE"]}, (),
     "sshPublicKeys", "cut short"),
    ("dev", {"sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"]}, (), "sshPublicKeys", "not a whole ed25519 key"),
]


@pytest.mark.parametrize("stack,overrides,drop,key,words", BAD,
                         ids=[f"{b[0]}-{b[3]}-{b[4][:20]}" for b in BAD])
def test_bad_config_fails_before_any_resource(stack, overrides, drop, key, words, repo):
    run = run_program(stack, repo, overrides, drop)
    assert isinstance(run.error, ConfigError), run.error
    message = str(run.error)
    assert message.startswith(f"botstack:{key}: "), message
    assert words in message
    assert "\n" not in message
    assert "TESTSECRET" not in message
    assert run.mocks.resources == [], [r.name for r in run.mocks.resources]


def test_ssh_from_anywhere_needs_the_loud_opt_in_only_in_prod(repo):
    assert run_program("dev", repo, {"adminCidrs": ["0.0.0.0/0"]}).error is None
    run = run_program("prod", repo, {"adminCidrs": ["0.0.0.0/0", "::/0"],
                                     "dangerouslyAllowSshFromAnywhere": True})
    assert run.error is None
    fw = run.one("/firewall:Firewall")
    assert fw.inputs["inboundRules"][0]["sourceAddresses"] == ["0.0.0.0/0", "::/0"]


def test_a_droplet_too_small_for_the_memory_limits_is_refused(repo):
    (repo / "compose" / "compose.yml").write_text(BIG_COMPOSE)
    # 512 + 1024 + 256 = 1792 MiB of limits; s-1vcpu-1gb offers 1024 + 256 - 256 = 1024
    run = run_program("dev", repo, {"dropletSize": "s-1vcpu-1gb"})
    assert isinstance(run.error, ConfigError)
    assert str(run.error).startswith("botstack:dropletSize: s-1vcpu-1gb (1024 MiB RAM) is too small")
    assert "1792 MiB" in str(run.error)
    assert run.mocks.resources == []
    # a 2 GB droplet holds it; so does the 1 GB one when postgres and backup are managed elsewhere
    assert run_program("dev", repo, {"dropletSize": "s-1vcpu-2gb"}).error is None
    assert run_program("dev", repo, {"dropletSize": "s-1vcpu-1gb", "database": "managed"}).error is None


def test_a_512mb_droplet_cannot_hold_the_full_stack(repo):
    from tests.infra.harness import FALLBACK_COMPOSE
    (repo / "compose" / "compose.yml").write_text(FALLBACK_COMPOSE)  # 256 + 384 + 128 = 768 MiB
    run = run_program("dev", repo, {"dropletSize": "s-1vcpu-512mb-10gb"})
    assert str(run.error) == ("botstack:dropletSize: s-1vcpu-512mb-10gb (512 MiB RAM) is too small: the stack's "
                              "memory limits sum to 768 MiB, over the 512 MiB usable (RAM + 256 MiB of swap - "
                              "256 MiB for the system)")
    assert run.mocks.resources == []


def test_the_real_compose_file_fits_the_stack_sizes(repo):
    for stack in ("dev", "prod"):
        cfg = config.load(lambda k, s=stack: stack_config(s).get(k), stack, repo / "compose" / "compose.yml")
        assert cfg.compose_memory_mib > 0


@pytest.mark.parametrize("text,expected", [
    ("256m", 256 * 2 ** 20), ("1g", 2 ** 30), ("512MiB", 512 * 2 ** 20), ("64M", 64 * 2 ** 20),
    ("1.5g", int(1.5 * 2 ** 30)), (1048576, 1048576), ("100k", 102400), ("2048", 2048),
])
def test_compose_memory_sizes_parse_to_bytes(text, expected):
    assert config.parse_memory(text) == expected


def test_lists_may_be_comma_separated_and_ints_strings(repo):
    values = dict(stack_config("dev"), allowedUserIds="1, 2,3", adminUserIds="7", volumeSizeGib="20")
    cfg = config.load(values.get, "dev", repo / "compose" / "compose.yml")
    assert cfg.allowed_user_ids == (1, 2, 3)
    assert cfg.admin_user_ids == (7,)
    assert cfg.volume_size_gib == 20


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_key_is_documented_in_the_stack_file(stack):
    from tests.infra.harness import REPO
    text = (REPO / f"Pulumi.{stack}.yaml").read_text()
    undocumented = [k for k in sorted(config.KNOWN_KEYS) if f"botstack:{k}:" not in text]
    assert not undocumented, f"Pulumi.{stack}.yaml does not mention {undocumented}"


def test_every_key_is_documented_in_the_config_module():
    undocumented = [k for k in sorted(config.KNOWN_KEYS) if f"| {k} |" not in config.__doc__]
    assert not undocumented


def test_a_ci_runner_host_is_admitted_to_ssh_beside_the_admins(repo):
    run = run_program("prod", repo, {"ciRunnerCidrs": ["198.51.100.7/32", "2001:db8::7/128"]})
    assert run.error is None, run.error
    [rule] = run.one("/firewall:Firewall").inputs["inboundRules"]
    assert rule["sourceAddresses"] == stack_config("prod")["adminCidrs"] + ["198.51.100.7/32", "2001:db8::7/128"]


def test_remote_commands_wait_for_the_firewall(repo):
    run = run_program("dev", repo)
    assert run.error is None, run.error
    after = [d.pulumi_resource_name for d in run.options["deploy-wait-ready"].depends_on]
    assert "network-firewall" in after


def test_an_unknown_key_in_the_stack_file_is_refused(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text("config:\n  botstack:regoin: ams3\n  other:key: 1\n")
    assert config.keys_set(stack_file, {}) == {"regoin"}
    with pytest.raises(ConfigError, match="did you mean region"):
        config.check_known(config.keys_set(stack_file, {}))


def test_keys_the_engine_passes_count_as_set(tmp_path):
    assert config.keys_set(tmp_path / "absent.yaml", {"botstack:region": "ams3", "aws:region": "x"}) == {"region"}


def test_the_program_reads_config_only_through_public_sdk_functions():
    from tests.infra.harness import REPO
    for path in (REPO / "infra").glob("*.py"):
        text = path.read_text()
        assert "runtime.config" not in text and "CONFIG.get" not in text, path.name


@pytest.mark.parametrize("stack,words", [
    ("Dev", "lowercase letters"), ("my_bot", "lowercase letters"), ("dev.eu", "lowercase letters"),
    ("-dev", "inner hyphens"), ("a" * 38, "at most 37"),
])
def test_a_stack_name_digitalocean_would_refuse_stops_the_program(stack, words, repo):
    run = run_program(stack, repo, config_of="dev")
    assert isinstance(run.error, ConfigError), run.error
    assert str(run.error).startswith(f"stack {stack!r}: ") and words in str(run.error)
    assert "\n" not in str(run.error)
    assert run.mocks.resources == []


@pytest.mark.parametrize("stack", ["a" * 37, "staging-2", "prod-eu1"])
def test_the_longest_and_hyphenated_stack_names_pass_digitaloceans_rules(stack, repo):
    # the rules layer checks every resource name the stack name flows into
    run = run_program(stack, repo, config_of="dev", overrides={"database": "managed"})
    assert run.error is None, run.error


@pytest.mark.parametrize("version", ["14", "15", "16", "17"])
def test_every_offered_postgresql_version_is_accepted(version, repo):
    assert run_program("dev", repo, {"database": "managed", "managedDatabaseVersion": version}).error is None


# --- the stack file on its own: `python -m infra.config check STACK` (scripts/deploy runs it first) --

FILLED = """\
config:
  botstack:region: ams3
  botstack:sshPublicKeys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqEHTko1jALhmAqKWcaaR8WQkKfLGXAvAxEsdI3U2Lu me
  botstack:adminCidrs: [198.51.100.7/32]
  botstack:adminUserIds: [42]
  botstack:defaultTimezone: Europe/Lisbon
  botstack:telegramBotToken:
    secure: v1:AAAAabcd
  botstack:backupPassphrase:
    secure: v1:AAAAefgh
"""


def _check(tmp_path, text: str, stack: str = "dev", deploy: bool = False):
    f = tmp_path / f"Pulumi.{stack}.yaml"
    f.write_text(text)
    return config.check_stack_file(stack, f, deploy=deploy)


def test_a_filled_in_stack_file_passes_with_its_secrets_taken_as_set(tmp_path):
    cfg = _check(tmp_path, FILLED)
    assert cfg.default_timezone == "Europe/Lisbon" and cfg.admin_cidrs == ("198.51.100.7/32",)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stack_files_name_their_example_values(stack):
    # defaultTimezone: Europe/Berlin shipped unmarked: a bot far from Berlin kept it (issue 19)
    assert config.example_keys(REPO / f"Pulumi.{stack}.yaml")[:5] == [
        "sshPublicKeys", "adminCidrs", "allowedUserIds", "adminUserIds", "defaultTimezone"]


@pytest.mark.parametrize("edit,key,words", [
    (("198.51.100.7/32", "198.51.100.7/24"), "adminCidrs", "host bits set"),
    (("Europe/Lisbon", "Europe/Berlin # REPLACE-ME"), "defaultTimezone", "example value"),
    (("2Lu me", "2L me"), "sshPublicKeys", "cut short"),
    (("botstack:region", "botstack:regoin"), "regoin", "did you mean region?"),
    (("  botstack:backupPassphrase:\n    secure: v1:AAAAefgh\n", ""), "backupPassphrase", "is not set"),
])
def test_the_stack_file_check_refuses_in_one_line_naming_the_key(tmp_path, edit, key, words):
    with pytest.raises(ConfigError) as caught:
        _check(tmp_path, FILLED.replace(*edit))
    message = str(caught.value)
    assert message.startswith(f"botstack:{key}: ") and words in message and "\n" not in message


def test_on_a_first_deploy_the_keys_scripts_deploy_sets_may_be_missing(tmp_path):
    bare = FILLED.split("  botstack:telegramBotToken:")[0]
    with pytest.raises(ConfigError, match="telegramBotToken"):
        _check(tmp_path, bare)
    assert _check(tmp_path, bare, deploy=True).stack == "dev"
    # as scripts/deploy calls it: (stack, stack file), before it stores the token and passphrase
    f = tmp_path / "Pulumi.dev.yaml"
    assert config.check_stack_file("dev", f).stack == "dev"


def test_the_command_line_names_the_first_problem_and_fails(tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "infra.config", "check", "dev"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == ("botstack:sshPublicKeys: is an example value (marked REPLACE-ME in Pulumi.dev.yaml): "
                             "put yours in and remove the mark\n")
    usage = subprocess.run([sys.executable, "-m", "infra.config", "check"], cwd=REPO, capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: ")


def test_without_compose_the_file_check_still_checks_the_size_name(tmp_path):
    f = tmp_path / "Pulumi.dev.yaml"
    f.write_text(FILLED + "  botstack:dropletSize: s-9vcpu-huge\n")
    with pytest.raises(ConfigError, match="^botstack:dropletSize: unknown size"):
        config.check_stack_file("dev", f, tmp_path / "no-compose.yml")
    f.write_text(FILLED)
    assert config.check_stack_file("dev", f, tmp_path / "no-compose.yml").compose_memory_mib == 0
