"""Host checks with pytest-testinfra against the booted stand-in, after the deploy (test_1_deploy)."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.rehearsal

ROOT = "/opt/botstack"
METADATA = "169.254.169.254"


@pytest.fixture(scope="module")
def host(droplet):
    import testinfra
    return testinfra.get_host(f"docker://{droplet.d.name}")


def _sshd_t(host, user: str = "deploy") -> dict[str, list[str]]:
    out = host.check_output(f"sshd -T -C user={user},host=client.example,addr=198.51.100.7")
    conf: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        conf.setdefault(key, []).append(value)
    return conf


def test_sshd_accepts_public_keys_only(host):
    conf = _sshd_t(host)
    assert conf["passwordauthentication"] == ["no"]
    assert conf["kbdinteractiveauthentication"] == ["no"]
    assert conf["authenticationmethods"] == ["publickey"]
    assert conf["permitrootlogin"] == ["no"]


def test_sshd_lets_in_only_the_admin_and_the_deploy_user(host):
    assert sorted(_sshd_t(host)["allowusers"]) == ["botadmin", "deploy"]


def test_sshd_serves_only_the_pinned_host_key(host, droplet):
    assert _sshd_t(host)["hostkey"] == ["/etc/ssh/ssh_host_ed25519_key"]
    keys = host.check_output("ls /etc/ssh/ | grep '^ssh_host_' || true").split()
    assert keys == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    served = host.check_output("ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key").split()[:2]
    assert served == droplet.run1.outputs["knownHostsLine"].split()[1:3]


def test_sshd_gives_the_deploy_user_no_forwarding(host):
    conf = _sshd_t(host, "deploy")
    assert conf["disableforwarding"] == ["yes"]
    for key in ("allowtcpforwarding", "allowstreamlocalforwarding", "allowagentforwarding",
                "x11forwarding", "permittunnel"):
        assert conf[key] == ["no"], (key, conf[key])
    # the admin keeps TCP forwarding (the Match is per user)
    assert _sshd_t(host, "botadmin")["allowtcpforwarding"] == ["yes"]


def test_unattended_upgrades_is_configured_for_security_updates(host):
    assert host.package("unattended-upgrades").is_installed
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    assert "-security" in host.check_output("apt-config dump Unattended-Upgrade::Allowed-Origins")
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert host.service("apt-daily-upgrade.timer").is_enabled
    assert host.service("unattended-upgrades").is_enabled


def test_docker_log_rotation_applies_to_every_container(host):
    ids = host.check_output("docker ps -q").split()
    assert len(ids) >= 3
    for cid in ids:
        cfg = json.loads(host.check_output(
            f"docker inspect --format '{{{{json .HostConfig.LogConfig}}}}' {cid}"))
        assert cfg["Type"] == "json-file" and cfg["Config"].get("max-size") == "10m" and \
            cfg["Config"].get("max-file") == "3", (cid, cfg)


def test_the_env_file_is_0600_and_owned_by_the_deploy_user(host):
    f = host.file(f"{ROOT}/shared/.env")
    assert f.mode == 0o600 and f.user == "deploy" and f.group == "deploy"


def test_postgresql_keeps_its_data_on_the_volume(host, droplet):
    mounts = json.loads(host.check_output(
        "docker inspect --format '{{json .Mounts}}' "
        "$(docker ps -q --filter label=com.docker.compose.service=postgres)"))
    data = [m for m in mounts if m["Destination"] == "/var/lib/postgresql/data"]
    assert data and data[0]["Source"] == "/mnt/botstack-data/postgres", mounts
    src = host.check_output("findmnt -n -o SOURCE -T /mnt/botstack-data/postgres")
    assert src == droplet.volume_device
    assert host.file("/mnt/botstack-data/postgres/PG_VERSION").exists


def test_nothing_but_ssh_listens_beyond_loopback(host):
    listening = host.check_output("ss -Htulnp").splitlines()
    public = []
    for line in listening:
        local = line.split()[4]
        addr = local.rsplit(":", 1)[0].strip("[]")
        if addr.startswith("127.") or addr == "::1" or addr.startswith("127.0.0.11"):
            continue
        public.append(line)
    assert public and all(":22 " in f"{p.split()[4]} " and "sshd" in p for p in public), public


def test_fail2ban_bans_an_address_after_repeated_failed_logins(host, droplet):
    attacker = droplet.d.attacker()
    ip = droplet.d.address_of(attacker)
    # `timeout`: a ban that lands mid-handshake leaves the client waiting for packets that are dropped
    ssh = "timeout 10 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5"
    tries = f"for i in 1 2 3 4 5 6; do {ssh} nosuchuser@{droplet.d.address} true 2>/dev/null; done; true"
    droplet.d.outer_exec(attacker, tries)
    deadline = time.monotonic() + 30
    while ip not in host.check_output("fail2ban-client status sshd") and time.monotonic() < deadline:
        time.sleep(1)
    try:
        assert ip in host.check_output("fail2ban-client status sshd")
        probe = droplet.d.outer_exec(attacker, f"{ssh} deploy@{droplet.d.address} true 2>&1; echo rc=$?")
        assert "rc=124" in probe or "rc=255" in probe and ("refused" in probe or "timed out" in probe), probe
    finally:
        host.run(f"fail2ban-client set sshd unbanip {ip}")


def _bot_reaches_metadata(droplet) -> bool:
    code = (f"import urllib.request\ntry:\n urllib.request.urlopen('http://{METADATA}/', timeout=5)\n"
            " print('reached')\nexcept OSError as e:\n print('blocked', e)\n")
    out = droplet.compose("exec", "-T", "bot", "python3", "-c", code).strip()
    assert out == "reached" or out.startswith("blocked"), out
    return out == "reached"


def test_containers_cannot_reach_the_metadata_address(host, droplet):
    droplet.serve_metadata()
    assert host.service("botstack-metadata-block").is_enabled
    assert not _bot_reaches_metadata(droplet)
    # the rule is what blocks it: without it the bot reaches the listener; the unit puts it back
    host.run_expect([0], f"iptables -D DOCKER-USER -d {METADATA}/32 -j REJECT")
    try:
        assert _bot_reaches_metadata(droplet)
    finally:
        host.run_expect([0], "systemctl restart botstack-metadata-block")
    assert not _bot_reaches_metadata(droplet)


def test_docker_starts_only_once_the_data_volume_is_mounted(host):
    # dockerd restarts the stack's containers at boot: before the volume, PostgreSQL would start an
    # empty cluster on the root disk under the mount point
    mount = host.check_output("systemd-escape --path --suffix=mount /mnt/botstack-data")
    deps = host.check_output("systemctl show -p Requires -p After docker.service")
    # systemctl show quotes a name with an escape in it, and doubles its backslash
    units = {k: [u.strip('"').replace("\\\\", "\\") for u in v.split()]
             for k, _, v in (line.partition("=") for line in deps.splitlines())}
    assert mount in units["Requires"] and mount in units["After"], deps
