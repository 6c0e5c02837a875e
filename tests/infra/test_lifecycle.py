"""A stack's whole life (issue 19): sequences of `pulumi up` with changed config, a droplet deleted
by hand, `destroy`, each played against DigitalOcean's rules (tests/infra/do_rules.py) by
tests/infra/lifecycle.py. Each test fails where DigitalOcean would refuse the program before."""
from __future__ import annotations

import pytest

from infra.errors import ConfigError
from tests.infra import do_rules
from tests.infra.do_rules import Account, DoRuleError
from tests.infra.harness import make_repo, stack_config, unwrap
from tests.infra.lifecycle import LifeStack


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


@pytest.fixture
def dev(repo):
    return LifeStack("dev", repo)


# --- the rules themselves ------------------------------------------------------------------------

def test_the_first_vpc_of_a_region_is_its_default_and_cannot_be_deleted():
    account = Account()
    account.create(do_rules.VPC, "s:vpc", {"name": "mine", "region": "ams3"})
    with pytest.raises(DoRuleError, match="403 the default VPC of ams3"):
        account.delete(do_rules.VPC, "s:vpc", {})


def test_a_vpc_made_after_the_default_can_be_deleted():
    account = Account()
    account.default_vpc("ams3")   # an earlier droplet made without a VPC
    account.create(do_rules.VPC, "s:vpc", {"name": "mine", "region": "ams3"})
    account.delete(do_rules.VPC, "s:vpc", {})


# --- 1: the first destroy on a fresh account -----------------------------------------------------

def test_a_fresh_account_destroys_what_it_made(dev):
    dev.up()
    dev.destroy()
    assert not dev.state


def test_the_stack_makes_no_vpc_of_its_own(dev):
    run = dev.up()
    assert run.of_type("/vpc:Vpc") == []
    # the droplet is in the region's default VPC, which DigitalOcean made and keeps
    assert dev.droplet().vpc == dev.account.default_vpcs["ams3"]


# --- 12: a plain `pulumi up`, then `destroy` ------------------------------------------------------

def test_a_plain_up_without_a_backup_passphrase_is_refused_before_any_resource(dev):
    # it used to generate one into the state, which `destroy` deleted while keeping the bucket
    with pytest.raises(ConfigError, match="^botstack:backupPassphrase: is not set"):
        dev.up(backupPassphrase=None)
    assert not dev.state and not dev.account.droplets


def test_after_destroy_the_kept_bucket_is_readable_with_the_passphrase_in_the_stack_file(dev):
    run = dev.up()
    env = unwrap(run.by_name()["deploy-write-env"].inputs["stdin"]).splitlines()
    dev.destroy()
    assert "retain storage-bucket" in dev.log
    # what encrypted the backups is in the stack file, which destroy does not touch
    assert f"BACKUP_PASSPHRASE={stack_config('dev')['backupPassphrase']}" in env
    assert not any(h.typ.endswith("randomPassword:RandomPassword") and "passphrase" in h.name
                   for h in dev.state.values())


# --- 2: a new or rotated admin key ---------------------------------------------------------------

def test_adding_an_admin_key_keeps_the_droplet_and_rewrites_the_keys(dev):
    from tests.infra.harness import real_ed25519_key
    first = dev.up()
    droplet = dev.droplet().id
    keys = stack_config("dev")["sshPublicKeys"] + [real_ed25519_key("second-admin").public_openssh.strip()]
    second = dev.up(sshPublicKeys=keys)
    assert dev.droplet().id == droplet                        # no new droplet: no downtime, backups kept
    assert do_rules.replaced(first.mocks.resources, second.mocks.resources) == {}
    step = second.by_name()["deploy-admin-keys"]
    assert unwrap(step.inputs["stdin"]) == "".join(k + "\n" for k in keys)
    # its trigger changed: pulumi-command runs it again on this droplet
    assert unwrap(step.inputs["triggers"]) != unwrap(first.by_name()["deploy-admin-keys"].inputs["triggers"])


# --- 3: a new droplet size -----------------------------------------------------------------------

def test_a_resize_and_back_keeps_the_droplet_and_its_disk(dev):
    dev.up()
    droplet = dev.droplet()
    dev.up(dropletSize="s-1vcpu-2gb")
    assert dev.droplet() is droplet and droplet.size == "s-1vcpu-2gb"
    # the disk stays at 25 GiB, so the way back is open: a grown disk (resize_disk, the provider's
    # default) would refuse it
    assert droplet.disk_gib == 25
    dev.up(dropletSize="s-1vcpu-1gb")
    assert droplet.size == "s-1vcpu-1gb"


def test_the_stack_is_stopped_with_a_final_backup_before_the_power_off(dev):
    dev.up()
    run = dev.up(dropletSize="s-1vcpu-2gb")
    assert "update server-pre-resize: stack stopped before the resize" in dev.log
    assert dev.droplet().events == [("power-off", "resize s-1vcpu-1gb -> s-1vcpu-2gb")]
    update = run.by_name()["server-pre-resize"].inputs["update"]
    assert update.index("final-backup.sh") < update.index("docker stop")


def test_a_grown_disk_refuses_a_smaller_size():
    droplet = do_rules.LiveDroplet(1, "ams3", "v", "s-1vcpu-1gb", 25)
    droplet.resize("d", "s-1vcpu-1gb", "s-1vcpu-2gb", resize_disk=True)
    with pytest.raises(DoRuleError, match="cannot shrink"):
        droplet.resize("d", "s-1vcpu-2gb", "s-1vcpu-1gb", resize_disk=True)


# --- 4: a droplet deleted by hand ----------------------------------------------------------------

def test_without_a_refresh_destroy_panics_on_a_droplet_deleted_by_hand(dev):
    # the provider's rule the program has to live with (do_rules.Account.delete)
    dev.up()
    dev.account.delete_by_hand(dev.droplet().id)
    with pytest.raises(DoRuleError, match="nil pointer"):
        dev.destroy(refresh=False)


def test_destroy_after_the_droplet_was_deleted_by_hand(dev):
    dev.up()
    dev.account.delete_by_hand(dev.droplet().id)
    dev.destroy()   # Pulumi.yaml: refresh always, so the gone droplet leaves the state first
    assert "refresh: server-ip-assignment is gone" in dev.log
    assert "refresh: server-data-attachment is gone" in dev.log
    assert not dev.state


def test_up_after_the_droplet_was_deleted_by_hand_leaves_the_new_droplets_stack_running(dev):
    dev.up()
    old = dev.droplet().id
    dev.account.delete_by_hand(old)
    run = dev.up()
    new = dev.droplet().id
    assert new != old and dev.account.ip_assigned_to["192.0.2.10"] == new
    # the old teardown steps dial the reserved IP, now the new droplet's: each knows its droplet
    for step in ("deploy-stop-stack", "deploy-final-backup"):
        assert f"teardown {step}: droplet {new} is not {old}, skipped" in dev.log
        assert unwrap(run.by_name()[step].inputs["environment"])[do_rules.DROPLET_ID_ENV] == str(new)


# --- the rest of a life --------------------------------------------------------------------------

def test_a_killed_up_leaves_the_lock_until_pulumi_cancel(dev):
    dev.up()
    dev.killed_up()
    with pytest.raises(DoRuleError, match=r"currently locked by 1 lock\(s\).*pulumi cancel"):
        dev.up()
    with pytest.raises(DoRuleError, match="currently locked"):
        dev.destroy()
    dev.backend.cancel("dev")
    dev.up()


def test_a_smaller_volume_is_refused(dev):
    dev.up(volumeSizeGib=20)
    with pytest.raises(DoRuleError, match="can only be expanded"):
        dev.up(volumeSizeGib=10)


def test_a_whole_life(dev):
    from tests.infra.harness import real_ed25519_key
    dev.up()                                                    # first up
    keys = stack_config("dev")["sshPublicKeys"] + [real_ed25519_key("life-admin").public_openssh.strip()]
    dev.up(sshPublicKeys=keys)                                  # add a key
    dev.up(dropletSize="s-1vcpu-2gb")                           # resize
    dev.up(volumeSizeGib=20)                                    # more room for data
    dev.account.delete_by_hand(dev.droplet().id)                # droplet gone
    dev.up()                                                    # a new one, the old steps skip it
    dev.destroy()                                               # and everything goes but the bucket
    assert not dev.state and not dev.account.droplets
    assert "retain storage-bucket" in dev.log
