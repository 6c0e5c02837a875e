"""The stand-in droplet boots the program's user-data, and the program's own deploy commands run on
it over real SSH: first release, chat, a second release (only the changed commands run again).

The steps share one stand-in (the package fixture `droplet`) and run in order.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.droplet import remote

pytestmark = pytest.mark.rehearsal

ROOT = "/opt/botstack"


def _edit_version(repo: Path) -> None:
    init = repo / "bot" / "__init__.py"
    src = init.read_text()
    new = re.sub(r'__version__ = "([^"]+)"', r'__version__ = "\1+standin2"', src)
    assert new != src, "bot/__init__.py has no __version__ to change"
    init.write_text(new)


def test_the_stand_in_boots_with_systemd_as_pid_1(droplet):
    assert droplet.d.exec("cat", "/proc/1/comm").stdout.strip() == "systemd"
    failed = droplet.d.exec("systemctl", "list-units", "--failed", "--plain", "--no-legend").stdout
    assert failed.strip() == "", f"failed units after boot:\n{failed}"


def test_cloud_init_runs_the_rendered_user_data_without_an_error_or_a_warning(droplet):
    status = droplet.cloud_init
    assert status.get("status") == "done" and not status.get("errors"), f"cloud-init: {status}"
    # cloud-init 24+ (Ubuntu 24.04's too) reports warnings and deprecations as "recoverable errors"
    # and `cloud-init status` exits 2 with them: a user-data that warns fails here
    recoverable = {level: msgs for level, msgs in (status.get("recoverable_errors") or {}).items() if msgs}
    assert not recoverable, f"cloud-init's recoverable errors: {recoverable}"
    assert status["exit"] == 0, status
    assert status.get("datasource") == "nocloud"
    # it really was the program's user-data that ran
    seeded = droplet.d.exec("cat", "/var/lib/cloud/instance/user-data.txt").stdout
    assert seeded == droplet.user_data(droplet.run1)


def test_the_volume_arrived_after_boot_while_dockers_start_waited_for_its_mount(droplet):
    # the first boot as on DigitalOcean: the volume attachment comes once the droplet is up; here
    # it came when Docker's install started docker.service, whose drop-in requires the mount
    assert droplet.volume_awaited["awaited_by"] == "docker.service", droplet.volume_awaited
    assert droplet.d.exec("dpkg-query", "-W", "-f", "${Status}", "docker.io").stdout == \
        "install ok installed"
    assert droplet.d.exec("systemctl", "is-active", "docker.service").stdout.strip() == "active"
    mounted = droplet.d.unit_time("mnt-botstack\\x2ddata.mount", "ActiveEnterTimestampMonotonic")
    dockerd = droplet.d.unit_time("docker.service", "ExecMainStartTimestampMonotonic")
    assert 0 < mounted <= dockerd, (mounted, dockerd)


def test_the_volume_is_mounted_by_its_label_at_the_data_dir(droplet):
    out = droplet.d.exec("findmnt", "-n", "-o", "SOURCE,FSTYPE,MAJ:MIN", "/mnt/botstack-data").stdout.split()
    rdev = os.stat(droplet.d.loop).st_rdev
    assert out == [droplet.volume_device, "ext4", f"{os.major(rdev)}:{os.minor(rdev)}"]
    link = droplet.d.exec("readlink", "-f", "/dev/disk/by-label/botstack-data").stdout.strip()
    assert link == droplet.volume_device


def test_the_host_key_of_the_stand_in_is_the_pinned_one(droplet):
    key = droplet.d.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
    assert key == droplet.run1.outputs["knownHostsLine"].split()[1:3]


def test_a_connection_pinned_to_another_host_key_is_refused(droplet, tmp_path):
    from tests.infra.harness import real_ed25519_key
    other = real_ed25519_key("standin-not-the-host-key").public_openssh.strip()
    alias = droplet.run1.outputs["knownHostsLine"].split()[0]
    conn = dict(droplet.connection(), hostKey=other)
    ssh = remote.Ssh(tmp_path, droplet.d.address, conn, f"{alias} {other}")
    proc = ssh.run("true", timeout=60)
    assert proc.returncode == 255 and "host key" in proc.stderr.lower(), proc.stderr


def test_the_first_deploy_runs_every_remote_command_in_dependency_order(droplet):
    names = [s.name for s in droplet.steps1]
    assert names.index("deploy-wait-ready") < names.index("deploy-copy-release") < \
        names.index("deploy-unpack-release") < names.index("deploy-write-env") < \
        names.index("deploy-activate") < names.index("deploy-final-backup")
    t0 = time.monotonic()
    droplet.figures["first_deploy_steps_s"] = droplet.deploy(droplet.steps1)
    droplet.figures["first_deploy_s"] = round(time.monotonic() - t0, 1)
    rid = droplet.run1.outputs["releaseId"]
    assert droplet.d.exec("readlink", f"{ROOT}/current").stdout.strip() == f"releases/{rid}"


def test_the_env_file_is_the_programs_with_mode_0600_for_the_deploy_user(droplet):
    write_env = next(s for s in droplet.steps1 if droplet.env_stdin(s) is not None)
    st = droplet.d.exec("stat", "-c", "%a %U", f"{ROOT}/shared/.env").stdout.split()
    assert st == ["600", "deploy"]
    on_host = droplet.d.exec("cat", f"{ROOT}/shared/.env").stdout
    assert on_host == droplet.env_stdin(write_env)


def test_every_service_runs_healthy_after_the_first_deploy(droplet):
    services = droplet.services()
    setup = services.pop("db-setup", None)
    assert setup is not None and (setup["State"], setup.get("ExitCode")) == ("exited", 0), setup
    states = {k: (v["State"], v.get("Health") or "") for k, v in services.items()}
    assert set(states) == {"bot", "postgres", "backup"}, states
    assert all(st == "running" for st, _ in states.values()), states
    assert states["bot"][1] == states["postgres"][1] == "healthy", states


def test_the_boot_unit_is_active_after_the_first_deploy_so_shutdown_stops_the_stack(droplet):
    # started at first boot with no release yet; an inactive unit would never run its ExecStop
    assert droplet.d.exec("systemctl", "is-active", "botstack.service").stdout.strip() == "active"


def test_the_bot_answers_in_chat_after_the_first_deploy(droplet):
    droplet.ask("/start", "")
    droplet.figures["boot_to_first_answer_s"] = round(time.monotonic() - droplet.boot_started, 1)
    droplet.ask("/tz Europe/Berlin", "Europe/Berlin")
    droplet.ask("/remind tomorrow at 9:00 call the dentist", "dentist")
    listed = droplet.ask("/list", "dentist")
    assert "dentist" in listed["text"]


def test_a_backup_reaches_the_s3_double(droplet):
    before = droplet.bucket_keys()
    droplet.compose("exec", "-T", "backup", "botstack-backup", "run", timeout=300)
    assert len(droplet.bucket_keys()) > len(before)


def test_a_second_release_reruns_only_the_commands_whose_inputs_changed(droplet):
    run2, repo2 = droplet.program("release-2", _edit_version)
    assert droplet.user_data(run2) == droplet.user_data(droplet.run1), "a release replaced the droplet"
    droplet.steps2 = remote.steps_of(run2, repo2)
    rerun = [s.name for s in remote.changed(droplet.steps1, droplet.steps2)]
    assert rerun == ["deploy-copy-release", "deploy-unpack-release", "deploy-write-env",
                     "deploy-activate"], rerun
    t0 = time.monotonic()
    droplet.figures["redeploy_steps_s"] = droplet.deploy(remote.changed(droplet.steps1, droplet.steps2))
    droplet.figures["redeploy_s"] = round(time.monotonic() - t0, 1)
    droplet.run2 = run2
    rid1, rid2 = droplet.run1.outputs["releaseId"], run2.outputs["releaseId"]
    assert rid1 != rid2
    assert droplet.d.exec("readlink", f"{ROOT}/current").stdout.strip() == f"releases/{rid2}"
    assert droplet.d.exec("readlink", f"{ROOT}/previous").stdout.strip() == f"releases/{rid1}"


def test_the_second_release_answers_and_kept_the_reminders(droplet):
    status = droplet.ask("/status", droplet.run2.outputs["releaseId"])
    assert "+standin2" in status["text"]
    assert "dentist" in droplet.ask("/list", "dentist")["text"]


def test_ssh_as_the_deploy_user_cannot_forward_ports(droplet):
    proc = droplet.ssh.run("true", timeout=60, extra=("-o", "ExitOnForwardFailure=yes",
                                                       "-R", "127.0.0.1:47219:127.0.0.1:9"))
    assert proc.returncode == 255, (proc.returncode, proc.stderr)


def test_ssh_as_root_is_refused(droplet):
    proc = droplet.ssh.run("true", user="root", timeout=60)
    assert proc.returncode == 255 and "denied" in proc.stderr.lower(), proc.stderr

