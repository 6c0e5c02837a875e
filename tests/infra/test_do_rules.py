"""The DigitalOcean rules of the test mocks (tests/infra/do_rules.py), and the program against
them: each rule refuses what the API or the provider would, and the program passes them."""
from __future__ import annotations

import pytest
from pulumi.runtime import MockResourceArgs

from tests.infra import do_rules
from tests.infra.do_rules import Account, DoRuleError
from tests.infra.harness import make_repo, run_program

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqEHTko1jALhmAqKWcaaR8WQkKfLGXAvAxEsdI3U2Lu"


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def test_a_public_key_is_accepted_once_per_account():
    account = Account()
    account.create(do_rules.SSH_KEY, "dev:k", {"name": "a", "publicKey": KEY + " laptop"})
    with pytest.raises(DoRuleError, match="SSH Key is already in use on your account"):
        account.create(do_rules.SSH_KEY, "prod:k", {"name": "b", "publicKey": KEY + " other-comment"})


def test_the_same_key_in_another_account_is_fine():
    Account().create(do_rules.SSH_KEY, "dev:k", {"name": "a", "publicKey": KEY})
    Account().create(do_rules.SSH_KEY, "prod:k", {"name": "a", "publicKey": KEY})


def test_dev_and_prod_deploy_into_one_account_with_the_same_admin_key(repo):
    # both shipped stack files carry the same example key, as one person's stacks would
    account = Account()
    assert run_program("dev", repo, account=account).error is None
    prod = run_program("prod", repo, account=account)
    assert prod.error is None, prod.error


def test_a_redeploy_of_the_same_stack_claims_nothing_twice(repo):
    account = Account()
    assert run_program("dev", repo, account=account).error is None
    assert run_program("dev", repo, account=account).error is None


@pytest.mark.parametrize("name", ["ab", "Botstack-x", "botstack_x", "-botstack", "x" * 64, "a_b"])
def test_a_bucket_name_the_api_refuses(name):
    with pytest.raises(DoRuleError, match="bucket name"):
        Account().create(do_rules.BUCKET, "s:b", {"name": name, "region": "ams3"})


def test_bucket_names_are_global_across_accounts():
    do_rules.forget_buckets()
    Account().create(do_rules.BUCKET, "dev:b", {"name": "botstack-backups", "region": "ams3"})
    with pytest.raises(DoRuleError, match="BucketAlreadyExists"):
        Account().create(do_rules.BUCKET, "other:b", {"name": "botstack-backups", "region": "fra1"})


@pytest.mark.parametrize("typ,name", [
    (do_rules.VOLUME, "Botstack-data"), (do_rules.VOLUME, "1data"), (do_rules.VOLUME, "a" * 65),
    (do_rules.VOLUME, "bot_data"), (do_rules.DROPLET, "bot_stack"), (do_rules.DROPLET, "a" * 64),
    (do_rules.SNAPSHOT, "Pre-release"), ("digitalocean:index/tag:Tag", "bot stack"),
])
def test_a_resource_name_the_api_refuses(typ, name):
    with pytest.raises(DoRuleError, match="422"):
        Account().create(typ, "s:r", {"name": name, "region": "ams3"})


def test_two_volumes_of_one_name_in_one_region_are_refused():
    account = Account()
    account.create(do_rules.VOLUME, "dev:v", {"name": "data", "region": "ams3"})
    account.create(do_rules.VOLUME, "prod:v", {"name": "data", "region": "fra1"})
    with pytest.raises(DoRuleError, match="already exists"):
        account.create(do_rules.VOLUME, "prod:w", {"name": "data", "region": "ams3"})


class _Opts:
    def __init__(self, *after):
        self.depends_on = list(after)


class _Res:
    def __init__(self, name):
        self._name = name


def _actions():
    return [MockResourceArgs(do_rules.VOLUME_ATTACHMENT, "att", {"dropletId": 7, "volumeId": "v"}),
            MockResourceArgs(do_rules.IP_ASSIGNMENT, "ip", {"dropletId": 7, "ipAddress": "192.0.2.1"})]


def test_two_unordered_actions_on_one_droplet_are_refused():
    with pytest.raises(DoRuleError, match="pending event"):
        do_rules.check_run(_actions(), {"att": _Opts(), "ip": _Opts()})


def test_two_actions_ordered_through_another_resource_pass():
    do_rules.check_run(_actions(), {"att": _Opts(), "mid": _Opts(_Res("att")), "ip": _Opts(_Res("mid"))})


def test_the_ip_assignment_waits_for_the_volume_attachment(repo):
    run = run_program("dev", repo)
    assert run.error is None, run.error
    assert do_rules.depends_on(run.options, "server-ip-assignment", "server-data-attachment")


def test_a_changed_force_new_field_replaces_the_resource():
    before = [MockResourceArgs(do_rules.DROPLET, "d", {"size": "s-1vcpu-1gb", "sshKeys": ["a"]})]
    resized = [MockResourceArgs(do_rules.DROPLET, "d", {"size": "s-1vcpu-2gb", "sshKeys": ["a"]})]
    rekeyed = [MockResourceArgs(do_rules.DROPLET, "d", {"size": "s-1vcpu-1gb", "sshKeys": ["b"]})]
    assert do_rules.replaced(before, resized) == {}
    assert do_rules.replaced(before, rekeyed) == {"d": {"sshKeys"}}


def test_a_new_admin_key_replaces_nothing(repo):
    # user-data is ForceNew: your keys are not in it (issue 19), the deploy writes them
    from tests.infra.harness import real_ed25519_key
    base = run_program("dev", repo)
    rekeyed = run_program("dev", repo, {"sshPublicKeys": [real_ed25519_key("another-admin").public_openssh.strip()]})
    assert do_rules.replaced(base.mocks.resources, rekeyed.mocks.resources) == {}


def test_a_lifecycle_rule_joining_actions_is_refused_and_single_ones_pass():
    joined = {"id": "x", "enabled": True, "abortIncompleteMultipartUploadDays": 1,
              "expiration": {"expiredObjectDeleteMarker": True}, "noncurrentVersionExpiration": {"days": 7}}
    with pytest.raises(DoRuleError, match="no shape Spaces is known to accept"):
        Account().create(do_rules.BUCKET, "s:b", {"name": "botstack-x-backups", "lifecycleRules": [joined]})
    single = [{"id": "a", "abortIncompleteMultipartUploadDays": 1}, {"id": "n", "noncurrentVersionExpiration": {"days": 7}}]
    do_rules.forget_buckets()
    Account().create(do_rules.BUCKET, "s:b", {"name": "botstack-x-backups", "lifecycleRules": single})
