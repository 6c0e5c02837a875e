"""issue 21 items 1 and 4 (program side): the user's own S3-compatible store instead of Spaces
(botstack:backupStore*), and botstack:restoreFrom. Through the real program under the mocks with
DigitalOcean's rules (tests/infra/do_rules.py); the rendered .env read by the backup tool's loader."""
from __future__ import annotations

import sys

import pytest

from infra import contract
from tests.infra.harness import REPO, make_repo, run_program, unwrap

B2 = {"backupStoreEndpoint": "https://s3.eu-central-003.backblazeb2.com", "backupStoreRegion": "eu-central-003",
      "backupStoreBucket": "my-botstack-backups", "backupStoreAccessKeyId": "003a1b2c3d4e5f0000000001",
      "backupStoreSecretAccessKey": "K003-the-application-keys-secret-part"}
SPACES_TYPES = ("spacesBucket:SpacesBucket", "spacesKey:SpacesKey")


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def env_of(run) -> dict[str, str]:
    return contract.parse(unwrap(run.by_name()["deploy-write-env"].inputs["stdin"]))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_with_its_own_store_the_program_makes_no_spaces_bucket_or_key(repo, stack):
    run = run_program(stack, repo, B2)
    assert run.error is None, run.error
    for suffix in SPACES_TYPES:
        assert run.of_type(suffix) == [], suffix
    env = env_of(run)
    assert (env["SPACES_ENDPOINT"], env["SPACES_REGION"], env["SPACES_BUCKET"], env["SPACES_ACCESS_KEY_ID"],
            env["SPACES_SECRET_ACCESS_KEY"]) == (B2["backupStoreEndpoint"], B2["backupStoreRegion"],
                                                 B2["backupStoreBucket"], B2["backupStoreAccessKeyId"],
                                                 B2["backupStoreSecretAccessKey"])
    assert unwrap(run.outputs["bucketName"]) == B2["backupStoreBucket"]
    assert run.outputs["bucketEndpoint"] == B2["backupStoreEndpoint"]
    assert run.outputs["backupStore"] == "own"
    # nothing of the key in the outputs
    assert B2["backupStoreSecretAccessKey"] not in repr(run.outputs)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_unset_the_backups_go_to_the_programs_spaces_bucket_as_before(repo, stack):
    run = run_program(stack, repo)
    assert run.error is None, run.error
    assert len(run.of_type("spacesBucket:SpacesBucket")) == 1 and len(run.of_type("spacesKey:SpacesKey")) == 1
    env = env_of(run)
    assert env["SPACES_ENDPOINT"].endswith(".digitaloceanspaces.com") and env["SPACES_REGION"] == "ams3"
    assert run.outputs["backupStore"] == "spaces"


def test_the_backup_tools_loader_reads_the_own_store_from_the_rendered_env(repo, tmp_path):
    run = run_program("dev", repo, B2)
    assert run.error is None, run.error
    sys.path.insert(0, str(REPO / "compose" / "backup"))
    try:
        from botstack_backup.config import Config
    finally:
        sys.path.pop(0)
    env = env_of(run)
    inside = {name: env[key] for name, key in contract.read_by(contract.BACKUP).items()}
    cfg = Config.from_env(inside)
    cfg.require_spaces()
    assert (cfg.spaces_endpoint, cfg.spaces_region, cfg.spaces_bucket) == (
        B2["backupStoreEndpoint"], B2["backupStoreRegion"], B2["backupStoreBucket"])


def test_the_monthly_cost_shows_both_choices(repo):
    spaces = run_program("dev", repo)
    own = run_program("dev", repo, B2)
    assert spaces.error is None and own.error is None
    assert own.outputs["monthlyCostBreakdownUsd"]["spaces"] == 0.0
    assert own.outputs["monthlyCostUsd"] == round(spaces.outputs["monthlyCostUsd"] - 5.00, 2)
    both = {"spaces": spaces.outputs["monthlyCostUsd"], "ownStore": own.outputs["monthlyCostUsd"]}
    assert spaces.outputs["monthlyCostByStoreUsd"] == own.outputs["monthlyCostByStoreUsd"] == both


def test_a_region_without_spaces_is_fine_with_the_own_store_only(repo):
    refused = run_program("dev", repo, {"region": "nyc1"})
    assert str(refused.error).startswith("botstack:region: nyc1 has no Spaces")
    run = run_program("dev", repo, {**B2, "region": "nyc1"})
    assert run.error is None, run.error


@pytest.mark.parametrize("drop, culprit", [
    ("backupStoreEndpoint", "botstack:backupStoreEndpoint: is not set"),
    ("backupStoreBucket", "botstack:backupStoreBucket: is not set"),
    ("backupStoreSecretAccessKey", "botstack:backupStoreSecretAccessKey: is not set"),
])
def test_a_partial_store_is_refused_naming_what_is_missing_before_any_resource(repo, drop, culprit):
    run = run_program("dev", repo, {k: v for k, v in B2.items() if k != drop})
    assert str(run.error).startswith(culprit), run.error
    assert "\n" not in str(run.error) and B2["backupStoreSecretAccessKey"] not in str(run.error)
    assert run.mocks.resources == []


@pytest.mark.parametrize("key, value, culprit", [
    ("backupStoreEndpoint", "http://s3.example.com", "is not an https:// endpoint"),
    ("backupStoreBucket", "My_Bucket", "is not a bucket name"),
    ("backupStoreRegion", "eu central", "is not a region name"),
    ("backupStoreSecretAccessKey", "has space", "must be 8-256 printable characters"),
])
def test_bad_store_values_are_refused_in_one_line(repo, key, value, culprit):
    run = run_program("dev", repo, {**B2, key: value})
    assert str(run.error).startswith(f"botstack:{key}: ") and culprit in str(run.error), run.error


def test_restore_from_reaches_the_backup_job_and_the_deploy(repo):
    run = run_program("dev", repo, {"restoreFrom": "s3://botstack-dev-backups-1a2b3c4d/backups",
                                    "restoreFromEndpoint": "https://fra1.digitaloceanspaces.com"})
    assert run.error is None, run.error
    env = env_of(run)
    assert env["RESTORE_FROM"] == "s3://botstack-dev-backups-1a2b3c4d/backups/"
    assert env["RESTORE_FROM_ENDPOINT"] == "https://fra1.digitaloceanspaces.com"
    assert env["RESTORE_FROM_PASSPHRASE"] == env["RESTORE_FROM_ACCESS_KEY_ID"] == env["RESTORE_FROM_SECRET_ACCESS_KEY"] == ""
    keyed = env_of(run_program("dev", repo, {"restoreFrom": "s3://botstack-dev-backups-1a2b3c4d",
                                             "restoreFromAccessKeyId": "DO00READONLYKEY0001",
                                             "restoreFromSecretAccessKey": "read-only-secret-of-the-old-bucket"}))
    assert (keyed["RESTORE_FROM"], keyed["RESTORE_FROM_ACCESS_KEY_ID"], keyed["RESTORE_FROM_SECRET_ACCESS_KEY"]) == (
        "s3://botstack-dev-backups-1a2b3c4d/backups/", "DO00READONLYKEY0001", "read-only-secret-of-the-old-bucket")
    plain = env_of(run_program("dev", repo))
    assert (plain["RESTORE_FROM"], plain["RESTORE_FROM_ENDPOINT"]) == ("", "")


@pytest.mark.parametrize("over, culprit", [
    ({"restoreFrom": "https://bucket/backups"}, "botstack:restoreFrom: 'https://bucket/backups' is not s3://"),
    ({"restoreFrom": "s3://bucket/../x"}, "is not a key prefix"),
    ({"restoreFrom": "s3://b/backups"}, "is not a bucket name"),
    ({"restoreFromEndpoint": "https://fra1.digitaloceanspaces.com"}, "botstack:restoreFromEndpoint: is set without"),
    ({"restoreFrom": "s3://bucket/backups", "database": "managed"}, "botstack:restoreFrom: restores into the stack's own"),
    ({"restoreFrom": "s3://bucket/backups", "restoreFromAccessKeyId": "DO00READONLYKEY0001"},
     "botstack:restoreFromSecretAccessKey: is not set, but the other half"),
])
def test_a_bad_restore_from_is_refused_in_one_line(repo, over, culprit):
    run = run_program("dev", repo, over)
    assert culprit in str(run.error), run.error


# --- the bill (issue 21 item 3) -------------------------------------------------------------------------

def test_with_the_own_store_dev_and_prod_stay_within_the_goal(repo):
    """Goal: dev at most $7.00, prod at most $7.60 a month with offsite, encrypted, drilled backups on
    the user's store (prod keeps DigitalOcean's weekly droplet backups)."""
    dev, prod = (run_program(s, repo, B2) for s in ("dev", "prod"))
    assert dev.error is None and prod.error is None
    assert dev.outputs["monthlyCostUsd"] == 6.32 <= 7.00
    assert prod.outputs["monthlyCostUsd"] == 7.52 <= 7.60
    assert prod.outputs["monthlyCostBreakdownUsd"]["dropletBackups"] == 1.20
    assert (dev.outputs["monthlyCostByStoreUsd"], prod.outputs["monthlyCostByStoreUsd"]) == (
        {"spaces": 11.32, "ownStore": 6.32}, {"spaces": 12.52, "ownStore": 7.52})


def test_growing_the_volume_is_an_in_place_change_not_a_replacement(repo):
    from tests.infra import do_rules
    before = run_program("prod", repo)
    grown = run_program("prod", repo, {"volumeSizeGib": 20})
    assert before.error is None and grown.error is None
    [volume] = grown.of_type("volume:Volume")
    assert unwrap(volume.inputs)["size"] == 20
    assert do_rules.replaced(before.mocks.resources, grown.mocks.resources) == {}


def test_the_backup_tool_reads_restore_from_as_the_program_renders_it(repo):
    run = run_program("dev", repo, {**B2, "restoreFrom": "s3://old-stack-backups/old/backups",
                                    "restoreFromEndpoint": "https://fra1.digitaloceanspaces.com",
                                    "restoreFromAccessKeyId": "DO00READONLYKEY0001",
                                    "restoreFromSecretAccessKey": "read-only-secret-of-the-old-bucket"})
    assert run.error is None, run.error
    sys.path.insert(0, str(REPO / "compose" / "backup"))
    try:
        from botstack_backup import restore_empty
        from botstack_backup.config import Config
    finally:
        sys.path.pop(0)
    env = env_of(run)
    inside = {name: env[key] for name, key in contract.read_by(contract.BACKUP).items()}
    source = restore_empty.source_config(Config.from_env(inside), inside)
    assert (source.spaces_bucket, source.prefix, source.spaces_endpoint, source.spaces_access_key_id,
            source.spaces_secret_access_key, source.spaces_region) == (
        "old-stack-backups", "old/backups/", "https://fra1.digitaloceanspaces.com", "DO00READONLYKEY0001",
        "read-only-secret-of-the-old-bucket", B2["backupStoreRegion"])
