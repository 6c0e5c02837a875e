"""Every policy both ways, on resources recorded from the program's own mock runs: the shipped
stacks pass, and a changed resource violates it with a message naming the resource and the fix."""
from __future__ import annotations

import pytest

from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE

from policy import botstack_policies
from tests.infra.harness import REPO, TEST_TOKEN
from tests.policy.analyzer import Recorded, analyze, record

_CACHE: dict[tuple, Recorded] = {}


def recorded(stack: str, preview: bool = False, **overrides) -> Recorded:
    key = (stack, preview, tuple(sorted(overrides.items())))
    if key not in _CACHE:
        _CACHE[key] = record(stack, preview=preview, overrides=overrides or None)
    return _CACHE[key].copy()


def only(diagnostics, policy: str):
    found = [d for d in diagnostics if d.policy == policy]
    others = [d for d in diagnostics if d.policy != policy]
    assert not others, others
    assert found, f"no {policy} violation"
    return found


def assert_names_resource_and_fix(diagnostic, rec: Recorded, name: str) -> None:
    assert diagnostic.urn == rec.named(name).urn
    assert name in diagnostic.message and "Fix:" in diagnostic.message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass_every_policy(stack):
    assert analyze(recorded(stack)) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_first_preview_with_unknown_values_passes_every_policy(stack):
    assert analyze(recorded(stack, preview=True)) == []


def test_values_unknown_in_a_preview_are_left_for_the_update_to_check():
    rec = recorded("prod")
    rec.named("network-firewall").set("inboundRules", [{"protocol": UNKNOWN_STRING_VALUE, "portRange": "80",
                                                        "sourceAddresses": [UNKNOWN_STRING_VALUE]}])
    rec.named("storage-bucket").set("acl", UNKNOWN_STRING_VALUE)
    rec.named("storage-bucket").set("versioning", {"enabled": UNKNOWN_BOOLEAN_VALUE})
    rec.named("storage-backup-key").set("grants", [{"bucket": UNKNOWN_STRING_VALUE, "permission": UNKNOWN_STRING_VALUE}])
    rec.named("server-droplet").set("monitoring", UNKNOWN_BOOLEAN_VALUE)
    rec.named("server-droplet").set("backups", UNKNOWN_BOOLEAN_VALUE)
    rec.named("server-droplet").set("size", UNKNOWN_STRING_VALUE)
    assert analyze(rec) == []


def test_the_managed_database_mode_passes_every_policy():
    assert analyze(recorded("prod", database="managed")) == []


# --- firewall ----------------------------------------------------------------------------------

def _add_inbound(rec: Recorded, rule: dict) -> None:
    fw = rec.named("network-firewall")
    fw.set("inboundRules", fw.inputs["inboundRules"] + [rule])


def test_an_inbound_port_other_than_ssh_is_refused_on_any_stack():
    rec = recorded("dev")
    _add_inbound(rec, {"protocol": "tcp", "portRange": "80", "sourceAddresses": ["203.0.113.10/32"]})
    [d] = only(analyze(rec), "ssh-only-from-admins")
    assert d.level == "mandatory" and "tcp 80" in d.message
    assert_names_resource_and_fix(d, rec, "network-firewall")


def test_udp_on_port_22_is_refused():
    rec = recorded("dev")
    _add_inbound(rec, {"protocol": "udp", "portRange": "22", "sourceAddresses": ["203.0.113.10/32"]})
    [d] = only(analyze(rec), "ssh-only-from-admins")
    assert "udp 22" in d.message


@pytest.mark.parametrize("everywhere", ["0.0.0.0/0", "::/0"])
def test_ssh_from_the_whole_internet_is_refused_on_prod(everywhere):
    rec = recorded("prod")
    _add_inbound(rec, {"protocol": "tcp", "portRange": "22", "sourceAddresses": [everywhere]})
    [d] = only(analyze(rec), "ssh-only-from-admins")
    assert everywhere in d.message and "botstack:adminCidrs" in d.message
    assert_names_resource_and_fix(d, rec, "network-firewall")


def test_ssh_from_the_whole_internet_is_allowed_on_dev():
    rec = recorded("dev")
    _add_inbound(rec, {"protocol": "tcp", "portRange": "22", "sourceAddresses": ["0.0.0.0/0"]})
    assert analyze(rec) == []


# --- bucket and key ----------------------------------------------------------------------------

def test_a_public_bucket_is_refused():
    rec = recorded("prod")
    rec.named("storage-bucket").set("acl", "public-read")
    [d] = only(analyze(rec), "backup-bucket-private-versioned")
    assert "'public-read'" in d.message
    assert_names_resource_and_fix(d, rec, "storage-bucket")


def test_a_bucket_without_versioning_is_refused():
    rec = recorded("dev")
    rec.named("storage-bucket").set("versioning", {"enabled": False})
    [d] = only(analyze(rec), "backup-bucket-private-versioned")
    assert "versioning is off" in d.message
    assert_names_resource_and_fix(d, rec, "storage-bucket")


def test_a_spaces_key_on_every_bucket_is_refused():
    rec = recorded("dev")
    rec.named("storage-backup-key").set("grants", [{"bucket": "", "permission": "fullaccess"}])
    found = only(analyze(rec), "spaces-key-one-bucket")
    assert any("'fullaccess'" in d.message for d in found)
    assert any("without a bucket" in d.message for d in found)
    assert_names_resource_and_fix(found[0], rec, "storage-backup-key")


def test_a_spaces_key_on_two_buckets_is_refused():
    rec = recorded("prod")
    key = rec.named("storage-backup-key")
    key.set("grants", key.inputs["grants"] + [{"bucket": "someone-elses-bucket", "permission": "read"}])
    [d] = only(analyze(rec), "spaces-key-one-bucket")
    assert "has 2 grants" in d.message
    assert_names_resource_and_fix(d, rec, "storage-backup-key")


# --- droplet -----------------------------------------------------------------------------------

def test_a_droplet_without_monitoring_is_refused():
    rec = recorded("dev")
    rec.named("server-droplet").set("monitoring", False)
    [d] = only(analyze(rec), "droplet-monitoring-on")
    assert_names_resource_and_fix(d, rec, "server-droplet")


def test_droplet_backups_off_in_prod_is_advisory():
    rec = recorded("prod")
    rec.named("server-droplet").set("backups", False)
    [d] = only(analyze(rec), "droplet-backups-on-in-prod")
    assert d.level == "advisory" and "enableDropletBackups" in d.message
    assert_names_resource_and_fix(d, rec, "server-droplet")


def test_droplet_backups_off_in_dev_is_not_reported():
    rec = recorded("dev")
    assert rec.named("server-droplet").inputs["backups"] is False
    assert analyze(rec) == []


def test_a_droplet_too_small_for_the_compose_limits_is_refused():
    rec = recorded("prod")
    rec.named("server-droplet").set("size", "s-1vcpu-512mb-10gb")
    [d] = only(analyze(rec), "droplet-fits-compose-limits")
    assert "leaves 512 MiB" in d.message and "Fix: botstack:dropletSize: s-1vcpu-1gb" in d.message
    assert_names_resource_and_fix(d, rec, "server-droplet")


def test_a_small_droplet_fits_when_the_database_is_managed():
    rec = recorded("prod", database="managed")
    rec.named("server-droplet").set("size", "s-1vcpu-512mb-10gb")
    assert analyze(rec) == []


@pytest.fixture
def heavy_profile(tmp_path, monkeypatch):
    """compose.yml with Prometheus' limit raised to 400M: the stack's 800 MiB fit the 1 GB droplet's
    1024, the stack with the profile (1232) does not."""
    text = (REPO / "compose" / "compose.yml").read_text()
    prometheus = text.index("\n  prometheus:\n")
    end = text.index("\n  node-exporter:\n")
    assert text[prometheus:end].count("memory: 128M") == 1
    heavy = tmp_path / "compose.yml"
    heavy.write_text(text[:prometheus] + text[prometheus:end].replace("memory: 128M", "memory: 400M") + text[end:])
    monkeypatch.setattr(botstack_policies, "COMPOSE_FILE", heavy)


def test_the_observability_profile_counts_when_the_env_turns_it_on(heavy_profile):
    assert analyze(recorded("dev")) == []
    rec = recorded("dev", observability=True)
    [d] = only(analyze(rec), "droplet-fits-compose-limits")
    assert "sum to 1232 MiB with the observability profile" in d.message
    assert "Fix: botstack:dropletSize: s-1vcpu-2gb" in d.message
    assert_names_resource_and_fix(d, rec, "server-droplet")


def test_a_preview_with_the_env_unknown_counts_the_observability_profile(heavy_profile):
    [d] = only(analyze(recorded("dev", preview=True)), "droplet-fits-compose-limits")
    assert "sum to 1232 MiB counting the observability profile (the .env is not known yet)" in d.message



def test_a_preview_of_a_managed_database_stack_does_not_count_the_profile(heavy_profile):
    # the program refuses the profile with a managed database: 512 MiB hold the bot alone
    rec = recorded("prod", preview=True, database="managed")
    rec.named("server-droplet").set("size", "s-1vcpu-512mb-10gb")
    assert analyze(rec) == []


def test_a_droplet_size_missing_from_the_price_table_is_refused():
    rec = recorded("dev")
    rec.named("server-droplet").set("size", "g-2vcpu-8gb")
    [d] = only(analyze(rec), "droplet-fits-compose-limits")
    assert "'g-2vcpu-8gb'" in d.message
    assert_names_resource_and_fix(d, rec, "server-droplet")


# --- protection --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["server-data", "storage-bucket", "network-reserved-ip",
                                  "database-postgres-password"])
def test_an_unprotected_data_resource_is_refused_on_prod(name):
    rec = recorded("prod")
    rec.named(name).protect = False
    [d] = only(analyze(rec), "data-protected-on-prod")
    assert "protectData: true" in d.message
    assert_names_resource_and_fix(d, rec, name)


def test_an_unprotected_managed_database_is_refused_on_prod():
    rec = recorded("prod", database="managed")
    rec.named("database-cluster").protect = False
    [d] = only(analyze(rec), "data-protected-on-prod")
    assert_names_resource_and_fix(d, rec, "database-cluster")


def test_unprotected_data_is_allowed_on_dev():
    rec = recorded("dev")
    assert rec.named("server-data").protect is False
    assert analyze(rec) == []


# --- stack outputs -----------------------------------------------------------------------------

def test_an_output_with_the_bot_token_is_refused():
    rec = recorded("dev")
    rec.root.outputs["botToken"] = TEST_TOKEN
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert d.urn == rec.root.urn
    assert "botToken" in d.message and "Telegram bot token" in d.message and "Fix:" in d.message


def test_an_output_with_a_resource_secret_is_refused_and_names_its_source():
    rec = recorded("prod")
    secret = rec.named("database-postgres-password").outputs["result"]["value"]
    rec.root.outputs["restoreHint"] = f"password: {secret}"
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert "restoreHint" in d.message and "database-postgres-password.result" in d.message


def test_an_output_with_the_deploy_key_is_refused():
    rec = recorded("dev")
    key = rec.named("server-deploy-key").outputs["privateKeyOpenssh"]["value"]
    rec.root.outputs["deployKey"] = {"value": key}
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert "deployKey.value" in d.message


def test_an_output_marked_secret_is_still_refused_because_the_pack_cannot_see_the_mark():
    rec = recorded("dev")
    secret = rec.named("storage-backup-key").outputs["secretKey"]
    rec.root.outputs["backupSecretKey"] = secret  # the secret signature object, as the engine sends it
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert "storage-backup-key.secretKey" in d.message


@pytest.mark.parametrize("url", ["https://hc-ping.com/AbCdEfGhIjKlMnOpQrStUv/botstack-dev-bot?create=1",
                                 "https://hc.example.org/ping/AbCdEfGhIjKlMnOpQrStUv/botstack-dev-backup"])
def test_an_output_with_a_health_check_ping_url_is_refused(url):
    rec = recorded("dev")
    rec.root.outputs["heartbeat"] = url
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert "health-check ping URL" in d.message


# --- the user's own backup store (issue 21) -----------------------------------------------------------

OWN_STORE = {"backupStoreEndpoint": "https://s3.eu-central-003.backblazeb2.com", "backupStoreRegion": "eu-central-003",
             "backupStoreBucket": "my-botstack-backups", "backupStoreAccessKeyId": "003a1b2c3d4e5f0000000001",
             "backupStoreSecretAccessKey": "K003TheApplicationKeysSecretPart"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("preview", [False, True])
def test_a_stack_with_its_own_store_passes_every_policy(stack, preview):
    rec = recorded(stack, preview=preview, **OWN_STORE)
    assert not [r for r in rec.resources if r.type.endswith(("spacesBucket:SpacesBucket", "spacesKey:SpacesKey"))]
    assert analyze(rec) == []


def test_an_output_with_the_own_stores_secret_key_is_refused():
    rec = recorded("prod", **OWN_STORE)
    rec.root.outputs["storeKey"] = f"key: {OWN_STORE['backupStoreSecretAccessKey']}"
    [d] = only(analyze(rec), "no-secret-in-stack-outputs")
    assert "storeKey" in d.message and "deploy-write-env.stdin (SPACES_SECRET_ACCESS_KEY)" in d.message
