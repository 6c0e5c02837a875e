"""The whole program for both stacks, fed from the real Pulumi.<stack>.yaml files."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from pulumi.runtime import rpc

from infra import prices, release
from infra.errors import ConfigError
from infra.contract import keys as contract_keys
from tests.infra.harness import SECRET_MARK, make_repo, run_program, stack_config, unwrap

STACKS = ["dev", "prod"]


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


@pytest.fixture(params=STACKS)
def run(request, repo):
    r = run_program(request.param, repo)
    assert r.error is None, r.error
    r.stack = request.param
    assert r.outputs["releaseId"] == release.release_id(repo)
    return r


def test_there_are_seven_components_each_naming_its_children(run):
    types = {r.typ for r in run.mocks.resources if r.typ.startswith("botstack:")}
    assert types == {f"botstack:infra:{c}" for c in
                     ("Network", "Server", "Storage", "Database", "Deploy", "Monitoring", "Project")}
    # every child is named from its component's name
    names = [r.name for r in run.mocks.resources if not r.typ.startswith("botstack:")]
    prefixes = ("network-", "server-", "storage-", "database-", "deploy-", "monitoring-", "project-")
    assert all(n.startswith(prefixes) for n in names), names


def test_the_reserved_ip_is_in_the_stack_region_and_no_vpc_is_made(run):
    cfg = stack_config(run.stack)
    assert run.one("/reservedIp:ReservedIp").inputs["region"] == cfg["region"]
    # the region's default VPC: one made here could become it, and a default is never deleted
    assert run.of_type("/vpc:Vpc") == []


def test_the_firewall_admits_only_ssh_from_the_admin_cidrs(run):
    cfg = stack_config(run.stack)
    fw = run.one("/firewall:Firewall")
    inbound = fw.inputs["inboundRules"]
    # only TCP 22, only from the admin CIDRs
    assert inbound == [{"protocol": "tcp", "portRange": "22", "sourceAddresses": cfg["adminCidrs"]}]
    assert fw.inputs["tags"] == [f"botstack-{run.stack}"]
    outbound = {(r["protocol"], r.get("portRange")) for r in fw.inputs["outboundRules"]}
    assert outbound == {("tcp", "53"), ("udp", "53"), ("udp", "123"), ("tcp", "80"), ("tcp", "443"),
                        ("icmp", None)}


def test_the_reserved_ip_is_assigned_to_the_droplet(run):
    assign = run.one("/reservedIpAssignment:ReservedIpAssignment")
    assert assign.inputs == {"ipAddress": "192.0.2.10", "dropletId": 424242}


def test_the_droplet_is_built_from_the_stack_config(run):
    cfg = stack_config(run.stack)
    d = run.one("/droplet:Droplet")
    i = d.inputs
    assert i["region"] == cfg["region"] and i["size"] == cfg["dropletSize"] and i["image"] == cfg["image"]
    assert i["monitoring"] is True
    assert "vpcUuid" not in i   # the region's default VPC
    assert i["tags"] == [f"botstack-{run.stack}"]


def test_the_only_account_key_is_the_stacks_own_deploy_key(run):
    [key] = run.of_type("/sshKey:SshKey")
    assert key.inputs == {"name": f"botstack-{run.stack}-deploy",
                          "publicKey": run.mocks.public_keys["server-deploy-key"]}
    assert run.one("/droplet:Droplet").inputs["sshKeys"] == ["fp:server-deploy-ssh-key"]


def test_the_droplets_user_data_is_a_secret(run):
    assert rpc.is_rpc_secret(run.one("/droplet:Droplet").inputs["userData"]), "user-data holds the host's private key"


def test_droplet_backups_follow_the_stack_config(run):
    cfg = stack_config(run.stack)
    i = run.one("/droplet:Droplet").inputs
    if cfg.get("enableDropletBackups"):
        assert i["backups"] is True
        assert i["backupPolicy"] == {"plan": cfg["dropletBackupPlan"], "weekday": cfg["dropletBackupWeekday"],
                                     "hour": cfg["dropletBackupHour"]}
    else:
        assert i["backups"] is False and "backupPolicy" not in i


def test_the_droplet_is_replaced_delete_before_create(run):
    assert run.options["server-droplet"].delete_before_replace is True


def test_prod_has_droplet_backups_and_dev_does_not():
    assert stack_config("prod")["enableDropletBackups"] is True
    assert stack_config("dev")["enableDropletBackups"] is False


def test_volume_holds_the_data(run):
    cfg = stack_config(run.stack)
    v = run.one("/volume:Volume")
    assert v.inputs["size"] == cfg["volumeSizeGib"]
    assert v.inputs["initialFilesystemType"] == "ext4"
    assert v.inputs["initialFilesystemLabel"] == "botstack-data"
    att = run.one("/volumeAttachment:VolumeAttachment")
    assert att.inputs == {"dropletId": 424242, "volumeId": "server-data-id"}


def test_keys_are_generated_ed25519(run):
    keys = {k.name: k.inputs for k in run.of_type("/privateKey:PrivateKey")}
    assert keys == {"server-host-key": {"algorithm": "ED25519"}, "server-deploy-key": {"algorithm": "ED25519"}}


def test_the_bucket_is_private_and_versioned(run):
    cfg = stack_config(run.stack)
    b = run.one("/spacesBucket:SpacesBucket")
    assert b.inputs["acl"] == "private"
    assert b.inputs["region"] == cfg["region"]
    assert b.inputs["versioning"] == {"enabled": True}
    assert b.inputs["name"] == f"botstack-{run.stack}-backups-a1b2c3d4"


def test_the_bucket_outlives_the_stack(run):
    assert run.options["storage-bucket"].retain_on_delete is True


def test_the_lifecycle_rules_never_expire_current_backups(run):
    rules = run.one("/spacesBucket:SpacesBucket").inputs["lifecycleRules"]
    assert all(r["enabled"] is True and "prefix" not in r for r in rules)   # every object
    # the backup tool owns offsite retention: no age or date expires a current object; only old
    # versions and lone delete markers (left by the tool's pruning) are cleaned up, one action a
    # rule (each a shape Spaces is known to take: do_rules.LIFECYCLE_SHAPES)
    assert [{k: v for k, v in r.items() if k not in ("id", "enabled")} for r in rules] == [
        {"abortIncompleteMultipartUploadDays": 1},
        {"noncurrentVersionExpiration": {"days": 7}},
        {"expiration": {"expiredObjectDeleteMarker": True}},
    ]


PASSPHRASE = f"{SECRET_MARK}0backup0passphrase0from0the0stack0config"


@pytest.mark.parametrize("stack", STACKS)
def test_the_backup_passphrase_comes_from_the_stack_config_where_it_outlives_a_destroy(stack, repo):
    run = run_program(stack, repo, {"backupPassphrase": PASSPHRASE})
    assert run.error is None, run.error
    # nothing in the state holds it, so `pulumi destroy` cannot take it with the stack
    assert "storage-backup-passphrase" not in run.by_name()
    env = run.by_name()["deploy-write-env"].inputs["stdin"]
    assert rpc.is_rpc_secret(env)
    assert f"BACKUP_PASSPHRASE={PASSPHRASE}" in unwrap(env).splitlines()


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_without_it_is_refused_before_any_resource(stack, repo):
    # a plain `pulumi up` (not scripts/deploy) used to generate one into the state only, which
    # `pulumi destroy` deleted while it kept the bucket with the backups encrypted with it
    run = run_program(stack, repo, drop=("backupPassphrase",))
    assert isinstance(run.error, ConfigError) and str(run.error).startswith("botstack:backupPassphrase: is not set")
    assert "\n" not in str(run.error)
    assert run.mocks.resources == []


def test_backup_key_is_scoped_to_the_bucket_only(run):
    k = run.one("/spacesKey:SpacesKey")
    assert k.inputs["grants"] == [{"bucket": f"botstack-{run.stack}-backups-a1b2c3d4", "permission": "readwrite"}]


def test_project_groups_the_resources(run):
    p = run.one("/project:Project")
    assert p.inputs["name"] == f"botstack-{run.stack}"
    assert p.inputs["environment"] == ("Production" if run.stack == "prod" else "Development")
    pr = run.one("/projectResources:ProjectResources")
    assert pr.inputs["project"] == "project-project-id"
    assert set(pr.inputs["resources"]) == {"do:droplet:424242", "do:volume:server-data",
                                           "do:reservedip:192.0.2.10", "do:space:storage-bucket"}


def test_monitor_alerts_when_emails_are_configured(run, repo):
    cfg = stack_config(run.stack)
    alerts = run.of_type("/monitorAlert:MonitorAlert")
    if not cfg.get("alertEmails"):
        assert alerts == []
        run = run_program(run.stack, repo, {"alertEmails": ["ops@example.org"]})
        alerts = run.of_type("/monitorAlert:MonitorAlert")
        cfg["alertEmails"] = ["ops@example.org"]
    kinds = {a.inputs["type"] for a in alerts}
    assert kinds == {"v1/insights/droplet/cpu", "v1/insights/droplet/memory_utilization_percent",
                     "v1/insights/droplet/disk_utilization_percent"}
    for a in alerts:
        assert a.inputs["entities"] == ["424242"]
        assert a.inputs["alerts"] == {"emails": cfg["alertEmails"]}


def test_data_is_protected_in_prod_only(run):
    data = {"network-reserved-ip", "server-data", "storage-bucket",
            "database-postgres-password", "database-app-password", "database-backup-password"}
    protected = {n for n, p in run.protected.items() if p}
    assert protected == (data if run.stack == "prod" else set())


def test_the_deploy_connection_verifies_the_pinned_host_key(run):
    by = run.by_name()
    conn = unwrap(by["deploy-activate"].inputs["connection"])
    assert conn["host"] == "192.0.2.10"
    assert conn["user"] == "deploy"
    assert conn["hostKey"] == run.mocks.public_keys["server-host-key"]
    assert conn["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert conn["dialErrorLimit"] >= 10
    # the private key in the connection is a secret
    assert rpc.is_rpc_secret(by["deploy-activate"].inputs["connection"]) or \
        rpc.is_rpc_secret(by["deploy-activate"].inputs["connection"]["privateKey"])


def test_your_keys_are_written_by_the_deploy_as_soon_as_it_can_log_in(run):
    from tests.infra import do_rules
    step = run.by_name()["deploy-admin-keys"]
    keys = stack_config(run.stack)["sshPublicKeys"]
    assert step.inputs["create"] == "sudo -n /usr/local/sbin/botstack-admin-keys"
    assert unwrap(step.inputs["stdin"]) == "".join(k + "\n" for k in keys)
    assert unwrap(step.inputs["triggers"]) == ["".join(k + "\n" for k in keys), "424242"]
    # not after cloud-init's end: a failing cloud-init must not lock you out of the droplet
    assert not do_rules.depends_on(run.options, "deploy-admin-keys", "deploy-wait-ready")
    assert do_rules.depends_on(run.options, "deploy-admin-keys", "server-ip-assignment")
    assert do_rules.depends_on(run.options, "deploy-admin-keys", "network-firewall")


def test_the_deploy_copies_and_unpacks_the_release_after_cloud_init(run):
    rid = run.outputs["releaseId"]
    by = run.by_name()
    assert "cloud-init status --wait" in by["deploy-wait-ready"].inputs["create"]
    copy = by["deploy-copy-release"].inputs
    assert copy["remotePath"] == f"/opt/botstack/incoming/release-{rid}.tar.gz"
    # relative to the project directory: the state does not depend on where the repo is checked out
    assert copy["source"].path == f".botstack/build/release-{rid}.tar.gz"
    assert f"/opt/botstack/releases/{rid}" in by["deploy-unpack-release"].inputs["create"]


def test_the_env_is_written_through_stdin_as_a_secret_without_logging(run):
    rid = run.outputs["releaseId"]
    env = run.by_name()["deploy-write-env"].inputs
    assert env["create"].endswith(f"/opt/botstack/releases/{rid}/deploy/write-env.sh")
    assert rpc.is_rpc_secret(env["stdin"])
    assert env["logging"] == "none"


def test_the_release_is_activated_after_a_volume_snapshot_named_after_it(run):
    rid = run.outputs["releaseId"]
    by = run.by_name()
    assert by["deploy-activate"].inputs["create"].endswith(f"/opt/botstack/releases/{rid}/deploy/activate.sh {rid}")
    snap = by["deploy-pre-release-snapshot"].inputs
    assert snap == {"volumeId": "server-data-id", "name": f"botstack-{run.stack}-pre-{rid}",
                    "tags": [f"botstack-{run.stack}"]}


def test_destroying_the_stack_first_takes_a_final_backup(run):
    from infra import teardown
    final = run.by_name()["deploy-final-backup"]
    assert final.typ == "command:local:Command"
    assert final.inputs["delete"] == teardown.guarded_ssh("final-backup", teardown.FINAL_BACKUP)
    assert teardown.FINAL_BACKUP.endswith("/opt/botstack/current/deploy/final-backup.sh")
    assert "create" not in final.inputs


def test_the_stack_is_stopped_and_flushed_after_the_final_backup_and_before_the_volume_detaches(run):
    from tests.infra.do_rules import depends_on
    # pulumi deletes a resource only after everything that depends on it: final backup, stop,
    # then the attachment
    assert depends_on(run.options, "deploy-final-backup", "deploy-stop-stack")
    assert depends_on(run.options, "deploy-stop-stack", "server-data-attachment")
    stop = run.by_name()["deploy-stop-stack"].inputs["delete"]
    assert "docker stop" in stop and "sync" in stop


def test_the_teardown_steps_reach_the_droplet_like_the_deploy(run):
    by = run.by_name()
    conn = unwrap(by["deploy-activate"].inputs["connection"])
    for step in ("deploy-stop-stack", "deploy-final-backup"):
        i = by[step].inputs
        # and the id of the droplet they were made for: the reserved IP may lead to another
        assert unwrap(i["environment"]) == {"BOTSTACK_SSH_HOST": conn["host"], "BOTSTACK_SSH_USER": "deploy",
                                            "BOTSTACK_SSH_HOST_KEY": conn["hostKey"], "BOTSTACK_DROPLET_ID": "424242"}
        assert rpc.is_rpc_secret(i["stdin"]) and unwrap(i["stdin"]) == conn["privateKey"]
        assert i["triggers"] == ["424242"]


def test_the_droplet_has_time_to_shut_down_gracefully_when_deleted(run):
    assert run.one("/droplet:Droplet").inputs["gracefulShutdown"] is True
    assert run.options["server-droplet"].custom_timeouts.delete == "10m"


def test_the_env_file_carries_the_stack_values(run):
    cfg = stack_config(run.stack)
    env = unwrap(run.by_name()["deploy-write-env"].inputs["stdin"])
    values = dict(line.split("=", 1) for line in env.splitlines())
    assert values["TELEGRAM_BOT_TOKEN"] == cfg["telegramBotToken"]
    assert values["COMPOSE_PROFILES"] == "localdb"
    assert values["DATABASE_URL"] == ("postgresql://botstack_app:TESTSECRETpwdatabaseapppassword"
                                      "@postgres:5432/botstack")
    assert values["BACKUP_DATABASE_URL"] == ("postgresql://botstack_backup:TESTSECRETpwdatabasebackuppassword"
                                             "@postgres:5432/botstack")
    assert values["POSTGRES_PASSWORD"] == "TESTSECRETpwdatabasepostgrespassword"
    assert values["SPACES_BUCKET"] == f"botstack-{run.stack}-backups-a1b2c3d4"
    assert values["SPACES_ENDPOINT"] == f"https://{cfg['region']}.digitaloceanspaces.com"
    assert values["SPACES_ACCESS_KEY_ID"] == "DO00TESTACCESSKEYID"
    assert values["SPACES_SECRET_ACCESS_KEY"] == f"{SECRET_MARK}-spaces-secret-key"
    assert values["ADMIN_USER_IDS"] == ",".join(str(i) for i in cfg["adminUserIds"])
    assert values["BACKUP_INTERVAL_HOURS"] == str(cfg["backupIntervalHours"])
    assert values["BOTSTACK_RELEASE"] == run.outputs["releaseId"]
    contract = ["TELEGRAM_BOT_TOKEN", "DATABASE_URL", "ALLOWED_USER_IDS", "ADMIN_USER_IDS", "DEFAULT_TIMEZONE",
                "TELEGRAM_API_BASE_URL", "BOTSTACK_RELEASE", "BACKUP_PASSPHRASE", "SPACES_ENDPOINT",
                "SPACES_REGION", "SPACES_BUCKET", "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY",
                "BACKUP_INTERVAL_HOURS", "BACKUP_LOCAL_RETENTION_DAYS", "BACKUP_DRILL_INTERVAL_DAYS",
                "POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "DATA_DIR", "COMPOSE_PROFILES"]
    assert set(contract) <= set(values)
    assert list(values) == contract_keys()


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a value that is not inside a secret, with where it is."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for n, v in enumerate(value):
            yield from _strings(v, f"{path}[{n}]")
    elif isinstance(value, str):
        yield path, value
    elif hasattr(value, "path"):  # FileAsset
        yield path, str(value.path)


@pytest.mark.parametrize("database", ["container", "managed"])
@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_is_in_plain_sight(stack, database, repo):
    # every optional secret set too: the ping URL holds the project's ping key
    run = run_program(stack, repo, {"database": database,
                                    "healthcheckPingUrl": f"https://hc-ping.com/{SECRET_MARK}-ping-key"})
    assert run.error is None
    secrets_seen = 0
    for r in run.mocks.resources:
        for path, s in _strings(r.inputs):
            assert SECRET_MARK not in s, f"{r.typ} {r.name}{path} holds a secret in plain text"
            # the mocks make real private keys (no mark in them): any plain key material is a leak
            assert "PRIVATE KEY" not in s, f"{r.typ} {r.name}{path} holds a private key in plain text"
            for private in run.mocks.private_keys.values():
                body = "".join(private.strip().splitlines()[1:-1])
                assert body[:40] not in s.replace("\n", ""), f"{r.typ} {r.name}{path} holds a private key"
        secrets_seen += len([1 for _ in _secret_values(r.inputs)])
    assert secrets_seen >= 4  # user-data, connection keys, .env: they are there, marked secret
    for key, value in run.outputs.items():
        if key not in run.secret_outputs:
            assert SECRET_MARK not in repr(value), f"stack output {key} leaks a secret"
            assert "PRIVATE KEY" not in repr(value)
    # no command line carries a secret; the .env goes through stdin
    for c in run.of_type("command:remote:Command"):
        for field in ("create", "update", "delete"):
            assert SECRET_MARK not in str(unwrap(c.inputs.get(field, "")))


def _secret_values(value: Any) -> Iterator[Any]:
    if rpc.is_rpc_secret(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _secret_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_values(v)


def test_the_outputs_say_how_to_reach_the_stack(run):
    o = run.outputs
    assert o["reservedIp"] == "192.0.2.10"
    assert o["ssh"] == "ssh botadmin@192.0.2.10"
    assert o["bucketName"] == f"botstack-{run.stack}-backups-a1b2c3d4"
    assert o["bucketEndpoint"] == f"https://{stack_config(run.stack)['region']}.digitaloceanspaces.com"
    assert o["knownHostsLine"].startswith("192.0.2.10 ssh-ed25519 ")
    assert o["pricesAsOf"] == prices.PRICES_AS_OF
    assert o["monthlyCostUsd"] == o["monthlyCostBreakdownUsd"]["total"]


# The figures docs/infra.md (and the README) quote: update both together.
EXPECTED_COST = {"dev": 11.32, "prod": 12.52}  # with the program's Spaces bucket; own store: $5 less


def test_the_monthly_cost_is_the_documented_figure(run, repo):
    assert run.outputs["monthlyCostUsd"] == EXPECTED_COST[run.stack]
    managed = run_program(run.stack, repo, {"database": "managed"})
    assert managed.outputs["monthlyCostUsd"] == round(EXPECTED_COST[run.stack] + 15.00, 2)


def _inputs_by_name(run) -> dict[str, Any]:
    out = {}
    for r in run.mocks.resources:
        inputs = unwrap(r.inputs)
        if "source" in inputs and hasattr(inputs["source"], "path"):
            inputs["source"] = Path(inputs["source"].path).name
        out[r.name] = inputs
    return out


DEPLOY_STEPS = {"deploy-copy-release", "deploy-unpack-release", "deploy-write-env",
                "deploy-pre-release-snapshot", "deploy-activate"}


@pytest.mark.parametrize("changed", ["bot/handlers_extra.py", "compose/compose.yml", "deploy/activate.sh"])
def test_a_release_change_touches_only_the_deploy_steps(changed, tmp_path):
    a = make_repo(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    target = b / changed
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as f:
        f.write("\n# changed\n")
    before, after = run_program("dev", a), run_program("dev", b)
    assert before.error is None and after.error is None
    x, y = _inputs_by_name(before), _inputs_by_name(after)
    assert x.keys() == y.keys()
    changed_resources = {n for n in x if x[n] != y[n]}
    assert changed_resources == DEPLOY_STEPS
    assert x["server-droplet"] == y["server-droplet"]
    # the triggers carry the content hash of the directory that changed
    top = changed.split("/")[0]
    tx = [t for t in x["deploy-activate"]["triggers"] if str(t).startswith(f"{top}:")]
    ty = [t for t in y["deploy-activate"]["triggers"] if str(t).startswith(f"{top}:")]
    assert tx != ty


def test_the_same_tree_deploys_nothing_new(tmp_path):
    a = make_repo(tmp_path / "a")
    first, second = _inputs_by_name(run_program("dev", a)), _inputs_by_name(run_program("dev", a))
    assert first == second


@pytest.fixture(params=STACKS)
def managed(request, repo):
    run = run_program(request.param, repo, {"database": "managed"})
    assert run.error is None, run.error
    run.stack = request.param
    return run


def _env(run) -> dict[str, str]:
    env = unwrap(run.by_name()["deploy-write-env"].inputs["stdin"])
    return dict(line.split("=", 1) for line in env.splitlines())


def test_managed_mode_makes_a_one_node_cluster_in_the_droplets_vpc(managed):
    i = managed.one("/databaseCluster:DatabaseCluster").inputs
    assert i["engine"] == "pg" and i["nodeCount"] == 1
    # the VPC DigitalOcean put the droplet in: the region's default
    assert i["privateNetworkUuid"] == managed.mocks.account.default_vpcs[i["region"]]
    assert i["region"] == stack_config(managed.stack)["region"]
    assert i["size"] == "db-s-1vcpu-1gb"
    assert managed.one("/databaseDb:DatabaseDb").inputs == {"clusterId": "database-cluster-id", "name": "botstack"}
    assert managed.one("/databaseUser:DatabaseUser").inputs == {"clusterId": "database-cluster-id",
                                                                "name": "botstack"}


def test_managed_mode_admits_only_the_droplet_to_the_cluster(managed):
    fw = managed.one("/databaseFirewall:DatabaseFirewall")
    assert fw.inputs["rules"] == [{"type": "droplet", "value": "424242"}]
    # the droplet may reach the database port on private addresses (its VPC) only
    outbound = managed.one("/firewall:Firewall").inputs["outboundRules"]
    assert {"protocol": "tcp", "portRange": "25060",
            "destinationAddresses": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]} in outbound


def test_managed_mode_points_both_urls_at_the_cluster_and_runs_no_local_database(managed):
    values = _env(managed)
    assert values["COMPOSE_PROFILES"] == ""
    assert values["DATABASE_URL"] == ("postgresql://botstack:TESTSECRET-db-user-password@"
                                      "private-botstack-pg.db.ondigitalocean.com:25060/botstack?sslmode=require")
    assert values["BACKUP_DATABASE_URL"] == values["DATABASE_URL"]


def test_managed_mode_takes_no_final_backup_from_the_droplet(managed):
    # the managed service keeps its own backups; the stack is still stopped before the detach
    assert "deploy-final-backup" not in managed.by_name()
    assert "deploy-stop-stack" in managed.by_name()


@pytest.mark.parametrize("stack", STACKS)
def test_main_runs_the_real_tree(stack, tmp_path, monkeypatch):
    """__main__.py with the repository's own compose/, bot/ and deploy/ (the archive goes to a
    temporary build dir)."""
    monkeypatch.setenv("BOTSTACK_BUILD_DIR", str(tmp_path))
    run = run_program(stack, Path("."), main=True)
    assert run.error is None, run.error
    assert len(run.of_type("/droplet:Droplet")) == 1
    rid = release.release_id(Path(__file__).resolve().parents[2])
    assert run.by_name()["deploy-activate"].inputs["create"].endswith(f"activate.sh {rid}")
    assert (tmp_path / f"release-{rid}.tar.gz").exists()


def test_main_reports_bad_config_in_one_line(tmp_path, monkeypatch):
    import pulumi
    monkeypatch.setenv("BOTSTACK_BUILD_DIR", str(tmp_path))
    run = run_program("prod", Path("."), {"adminCidrs": ["0.0.0.0/0"]}, main=True)
    assert isinstance(run.error, pulumi.RunError)  # pulumi prints a RunError without a traceback
    assert str(run.error).startswith("botstack:adminCidrs: 0.0.0.0/0 opens SSH to the whole internet")
    assert "\n" not in str(run.error)
    assert run.mocks.resources == []


def test_the_secret_scan_sees_plain_strings_and_skips_secrets():
    plain = {"a": [{"b": f"x{SECRET_MARK}y"}], "c": rpc.wrap_rpc_secret(f"{SECRET_MARK}")}
    found = [p for p, s in _strings(plain) if SECRET_MARK in s]
    assert found == [".a[0].b"]


@pytest.mark.parametrize("database", ["container", "managed"])
def test_a_first_preview_with_unknown_outputs(database, repo):
    """`pulumi preview` of a new stack: ids, keys and addresses are unknown; the program still
    registers everything, and what is known (the release, the cost) is shown."""
    run = run_program("prod", repo, {"database": database}, preview=True)
    assert run.error is None, run.error
    names = set(run.by_name())
    assert {"server-droplet", "deploy-activate", "deploy-write-env", "storage-bucket"} <= names
    assert run.outputs["releaseId"] == release.release_id(repo)
    assert run.outputs["monthlyCostUsd"] == EXPECTED_COST["prod"] + (15.0 if database == "managed" else 0.0)
