"""The droplet's user-data, as the program renders it: `cloud-init schema`, known top-level keys,
and what it must set up."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.harness import make_repo, run_program, stack_config, unwrap

SCHEMA = Path("/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json")


@pytest.fixture(scope="module", params=["dev", "prod"])
def user_data(request, tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    run = run_program(request.param, repo)
    assert run.error is None
    text = unwrap(run.one("/droplet:Droplet").inputs["userData"])
    return request.param, text


def test_the_user_data_passes_cloud_init_schema(user_data, tmp_path):
    if shutil.which("cloud-init") is None:
        pytest.fail("cloud-init is not installed: run scripts/install-test-deps")
    _, text = user_data
    f = tmp_path / "user-data"
    f.write_text(text)
    result = subprocess.run(["cloud-init", "schema", "-c", str(f)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def _known_top_level_keys() -> set[str]:
    schema = json.loads(SCHEMA.read_text())
    known: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            known.update((node.get("properties") or {}).keys())
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    # top-level keys are the properties of the module definitions (`$defs.cc_*`) and of the root
    for name, d in schema.get("$defs", {}).items():
        if name.startswith(("cc_", "base_config", "output_config", "reporting_config")):
            known.update((d.get("properties") or {}).keys())
    known.update((schema.get("properties") or {}).keys())
    return known


def test_the_user_data_has_no_key_cloud_init_would_ignore(user_data):
    _, text = user_data
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    unknown = set(doc) - _known_top_level_keys()
    assert not unknown, f"cloud-init would ignore these keys: {unknown}"


def test_the_known_key_list_would_catch_a_misspelt_key():
    assert "pacakges" not in _known_top_level_keys()
    assert {"packages", "users", "write_files", "runcmd", "ssh_keys", "mounts", "swap"} <= _known_top_level_keys()


def _file(doc, path):
    [f] = [f for f in doc["write_files"] if f["path"] == path]
    return f["content"]


def _doc(user_data) -> dict:
    return yaml.safe_load(user_data[1])


def test_the_droplet_gets_docker_compose_fail2ban_and_unattended_upgrades(user_data):
    doc = _doc(user_data)
    assert {"docker.io", "docker-compose-v2", "fail2ban", "unattended-upgrades"} <= set(doc["packages"])
    assert "Unattended-Upgrade" in _file(doc, "/etc/apt/apt.conf.d/20auto-upgrades")
    assert "enabled = true" in _file(doc, "/etc/fail2ban/jail.d/botstack.local")


def test_your_keys_are_not_in_the_user_data_and_the_deploy_user_may_sudo_only_the_keys_tool(user_data):
    # user-data is ForceNew: a key in it made every new or rotated key a new droplet (issue 19)
    stack, text = user_data
    admin, deploy = _doc(user_data)["users"]
    assert admin["name"] == "botadmin" and admin["lock_passwd"] is True
    assert "ssh_authorized_keys" not in admin
    for key in stack_config(stack)["sshPublicKeys"]:
        assert key.split()[1] not in text
    assert deploy["name"] == "deploy" and deploy["groups"] == ["docker"]
    assert deploy["sudo"] == "ALL=(root) NOPASSWD: /usr/local/sbin/botstack-admin-keys"
    assert deploy["ssh_authorized_keys"][0].startswith("ssh-ed25519 ")


def _keys_tool(user_data, home: Path) -> Path:
    """The admin-keys tool as rendered, for the current user with its home in `home`."""
    import getpass
    script = _file(_doc(user_data), "/usr/local/sbin/botstack-admin-keys")
    script = script.replace("user=botadmin", f"user={getpass.getuser()}")
    script = script.replace('dir="$(getent passwd "$user" | cut -d: -f6)/.ssh"', f'dir="{home}/.ssh"')
    tool = home / "botstack-admin-keys"
    tool.write_text(script)
    return tool


def _run_tool(tool: Path, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(tool)], input=stdin, capture_output=True, text=True)


def test_the_keys_tool_writes_the_admins_keys_whole(user_data, tmp_path):
    from tests.infra.harness import real_ed25519_key
    tool = _keys_tool(user_data, tmp_path)
    keys = [real_ed25519_key("admin-a").public_openssh.strip(), real_ed25519_key("admin-b").public_openssh.strip()]
    result = _run_tool(tool, "".join(k + "\n" for k in keys))
    assert result.returncode == 0, result.stderr
    written = tmp_path / ".ssh" / "authorized_keys"
    assert written.read_text().splitlines() == keys
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / ".ssh").stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("stdin", ["", "\n\n", "TRUNCATED", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq\n"])
def test_the_keys_tool_refuses_what_would_lock_you_out_and_keeps_the_old_keys(user_data, tmp_path, stdin):
    from tests.infra.harness import real_ed25519_key
    tool = _keys_tool(user_data, tmp_path)
    good = real_ed25519_key("admin-a").public_openssh
    assert _run_tool(tool, good).returncode == 0
    if stdin == "TRUNCATED":   # a whole key, then one cut short: the list is refused as a whole
        stdin = good + good[:60] + "\n"
    result = _run_tool(tool, stdin)
    assert result.returncode == 1 and "refused" in result.stderr
    assert (tmp_path / ".ssh" / "authorized_keys").read_text() == good


def test_ssh_refuses_root_and_passwords(user_data):
    doc = _doc(user_data)
    assert doc["disable_root"] is True and doc["ssh_pwauth"] is False
    sshd = _file(doc, "/etc/ssh/sshd_config.d/10-botstack.conf")
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin no" in sshd


def test_the_host_key_is_the_programs_not_one_made_at_first_boot(user_data):
    doc = _doc(user_data)
    assert doc["ssh_keys"]["ed25519_private"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert doc["ssh_keys"]["ed25519_public"].startswith("ssh-ed25519 ")
    assert doc["ssh_genkeytypes"] == ["ed25519"] and doc["ssh_deletekeys"] is True


def test_docker_rotates_container_logs(user_data):
    daemon = json.loads(_file(_doc(user_data), "/etc/docker/daemon.json"))
    assert daemon["log-driver"] == "json-file"
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "3"}


def test_the_droplet_gets_a_1_gib_swap_file(user_data):
    assert _doc(user_data)["swap"]["size"] == 1024 ** 3


def test_the_data_volume_is_mounted_by_label(user_data):
    assert _doc(user_data)["mounts"] == [["LABEL=botstack-data", "/mnt/botstack-data", "ext4",
                                          "defaults,nofail,discard,noatime,x-systemd.device-timeout=10min",
                                          "0", "2"]]


def test_the_stack_starts_at_boot_once_the_volume_is_mounted(user_data):
    doc = _doc(user_data)
    unit = _file(doc, "/etc/systemd/system/botstack.service")
    assert "RequiresMountsFor=/mnt/botstack-data" in unit
    assert "docker compose --project-name botstack" in unit and " up -d" in unit
    assert "WantedBy=multi-user.target" in unit
    assert ["systemctl", "enable", "--now", "botstack.service"] in doc["runcmd"]


def test_the_stack_unit_is_active_before_the_first_release_so_it_always_stops_the_stack(user_data):
    # a start condition that fails at first boot would leave the unit inactive after the first
    # deploy, and its ExecStop (the graceful stop at shutdown) would never run
    unit = _file(_doc(user_data), "/etc/systemd/system/botstack.service")
    settings = [l for l in unit.splitlines() if not l.lstrip().startswith("#")]
    assert not [l for l in settings if l.startswith(("ConditionPathExists", "WorkingDirectory="))]
    for line in ("ExecStart=", "ExecStop="):
        [cmd] = [l for l in unit.splitlines() if l.startswith(line)]
        assert "|| exit 0;" in cmd, cmd


def _unit(text: str) -> dict[str, list[str]]:
    """`Key=value` settings of a systemd unit, every value of a key in order (sections merged)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).extend(value.split() if key.strip() in
                                                        ("After", "Before", "Requires", "Wants", "WantedBy",
                                                         "RequiredBy") else [value])
    return settings


def test_the_metadata_block_is_in_place_before_dockerd_restarts_any_container(user_data):
    # dockerd starts `unless-stopped` containers itself as it comes up: a block applied after
    # docker.service left a moment in which a container could read the user-data (issue 19)
    doc = _doc(user_data)
    unit = _unit(_file(doc, "/etc/systemd/system/botstack-metadata-block.service"))
    assert "docker.service" in unit["Before"] and "docker.service" not in unit.get("After", [])
    assert "docker.service" not in unit.get("Requires", [])
    # docker pulls it in and waits for it, and does not start without the rule (fail closed); no
    # Requires either way: restarting the block (a Requires would restart docker with it) leaves
    # the stack running (the stand-in droplet found that), and a docker restart applies it again
    assert "docker.service" in unit["WantedBy"] and "RequiredBy" not in unit
    assert unit["PartOf"] == ["docker.service"]
    docker = _unit(_file(doc, "/etc/systemd/system/docker.service.d/20-botstack-metadata-block.conf"))
    assert docker["Wants"] == docker["After"] == ["botstack-metadata-block.service"]
    assert docker["ExecStartPre"] == ["/bin/sh -c 'iptables -C DOCKER-USER -d 169.254.169.254/32 -j REJECT'"]
    # dockerd keeps a DOCKER-USER chain it finds (it only adds its jump and a final RETURN)
    [start] = unit["ExecStart"]
    assert start.index("iptables -N DOCKER-USER") < start.index("iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT")
    # enabled, so it is pulled in at every boot, before docker; cloud-init's own first boot too
    assert ["systemctl", "enable", "--now", "botstack-metadata-block.service"] in doc["runcmd"]
    runcmd = [" ".join(c) if isinstance(c, list) else c for c in doc["runcmd"]]
    block = runcmd.index("systemctl enable --now botstack-metadata-block.service")
    assert block < runcmd.index("systemctl restart docker")
