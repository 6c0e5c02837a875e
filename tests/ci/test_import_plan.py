"""scripts/import-plan: every entry it writes matches a resource the program registers (type, name,
parent), with the import ids the providers expect."""
from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import json
import subprocess
import sys

import pytest
from pulumi.runtime import settings

from tests.infra.harness import REPO, run_program, unwrap

SCRIPT = REPO / "scripts" / "import-plan"
ROOT_STACK_PREFIX = "pulumi:pulumi:Stack$"  # the mock monitor keeps it in URNs; the engine drops it


def _load():
    loader = importlib.machinery.SourceFileLoader("import_plan", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


import_plan = _load()


def registered(stack):
    run = run_program(stack, REPO)
    assert run.error is None
    urns = {u.rsplit("::", 1)[1]: u.replace(ROOT_STACK_PREFIX, "") for u in
            settings.SETTINGS.monitor.get_registered_resources()}
    return run, urns


def full_plan(stack, **kw):
    return import_plan.plan(stack, reserved_ip="203.0.113.20", droplet="424242",
                            bucket=f"botstack-{stack}-backups-a1b2c3d4", **kw)


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("new_stack", [False, True])
def test_every_entry_matches_a_resource_the_program_registers(stack, new_stack):
    run, _ = registered(stack)
    by_name = run.by_name()
    for entry in full_plan(stack, new_stack=new_stack)["resources"]:
        resource = by_name[entry["name"]]
        assert resource.typ == entry["type"]
        assert bool(entry.get("component")) == (not resource.custom)
        if "parent" in entry:
            assert run.options[entry["name"]].parent._name == entry["parent"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_name_table_holds_the_parents_urns_as_the_engine_makes_them(stack):
    _, urns = registered(stack)
    table = full_plan(stack)["nameTable"]
    assert set(table) == {"network", "server", "storage"}
    for name, urn in table.items():
        assert urn == urns[name]


def test_a_new_stack_plan_creates_each_parent_before_its_children():
    entries = full_plan("dev", new_stack=True)["resources"]
    seen = set()
    for entry in entries:
        if "parent" in entry:
            assert entry["parent"] in seen
        if entry.get("component"):
            seen.add(entry["name"])
    assert "nameTable" not in full_plan("dev", new_stack=True)


def test_the_bucket_keeps_its_name_because_its_suffix_is_adopted_with_it():
    run, _ = registered("dev")
    program_name = unwrap(run.by_name()["storage-bucket"].inputs)["name"]
    hex_suffix = program_name.rsplit("-", 1)[1]
    ids = {e["name"]: e["id"] for e in import_plan.plan("dev", bucket=program_name)["resources"]}
    assert ids["storage-bucket"] == f"ams3,{program_name}"
    suffix = ids["storage-bucket-suffix"]
    assert base64.urlsafe_b64decode(suffix + "=" * (-len(suffix) % 4)).hex() == hex_suffix


def test_a_droplet_with_its_reserved_ip_brings_their_assignment():
    ids = {e["name"]: e["id"] for e in full_plan("prod")["resources"]}
    assert ids["server-ip-assignment"] == "203.0.113.20,424242"
    assert ids["server-droplet"] == "424242" and ids["network-reserved-ip"] == "203.0.113.20"


@pytest.mark.parametrize("kw, culprit", [
    ({"bucket": "botstack-prod-backups-a1b2c3d4"}, "--bucket"),
    ({"bucket": "botstack-dev-backups-a1b2"}, "--bucket"),
    ({"droplet": "abc"}, "--droplet"),
    ({"reserved_ip": "2001:db8::1"}, "--reserved-ip"),
    ({"reserved_ip": "10.0.0.300"}, "--reserved-ip"),
    ({}, "nothing to adopt"),
])
def test_what_the_program_could_not_own_is_refused_naming_the_culprit(kw, culprit):
    with pytest.raises(import_plan.PlanError, match=culprit):
        import_plan.plan("dev", **kw)


def test_the_script_prints_the_plan_and_fails_in_one_line():
    ok = subprocess.run([sys.executable, str(SCRIPT), "prod", "--reserved-ip", "203.0.113.20"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["resources"] == [{"type": "digitalocean:index/reservedIp:ReservedIp",
                                                   "name": "network-reserved-ip", "id": "203.0.113.20",
                                                   "parent": "network"}]
    bad = subprocess.run([sys.executable, str(SCRIPT), "staging", "--droplet", "1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr == "import-plan: Pulumi.staging.yaml not found: no stack staging\n"
