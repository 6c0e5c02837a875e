"""Renders the droplet's cloud-init user-data from `cloud-init/user-data.yaml` (pure Python).

The template holds everything static; `render_user_data` fills the `@@NAME@@` placeholders and adds
the parts that come from the program: the users and the deploy key, the pinned SSH host key
(`ssh_keys`, so the deploy connection can verify the host) and the volume's mount.

Nothing here may change while the stack lives: user-data is ForceNew (a change replaces the
droplet). Your admin keys are therefore not in it; the deploy writes them (infra/deploy.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from infra import facts

TEMPLATE = Path(__file__).resolve().parent.parent / "cloud-init" / "user-data.yaml"

ADMIN_USER = facts.ADMIN_USER
DEPLOY_USER = facts.DEPLOY_USER
BOTSTACK_ROOT = facts.BOTSTACK_ROOT
DATA_DIR = facts.DATA_DIR
VOLUME_LABEL = facts.VOLUME_LABEL
SWAP_MIB = facts.SWAP_MIB


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (file contents, keys) as `|` blocks: readable user-data."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value and not any(c in value for c in "\t\r") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


@dataclass(frozen=True)
class UserDataParams:
    deploy_public_key: str
    host_private_key: str     # OpenSSH-format ed25519 private key (secret)
    host_public_key: str      # "ssh-ed25519 AAAA..."


def render_user_data(p: UserDataParams, template: Path = TEMPLATE) -> str:
    text = Path(template).read_text()
    for name, value in {
        "ADMIN_USER": ADMIN_USER, "DEPLOY_USER": DEPLOY_USER, "ROOT": BOTSTACK_ROOT,
        "DATA_DIR": DATA_DIR, "VOLUME_LABEL": VOLUME_LABEL, "SWAP_MIB": str(SWAP_MIB),
        "SWAP_BYTES": str(SWAP_MIB * 1024 * 1024), "COMPOSE_PROJECT": facts.COMPOSE_PROJECT,
        "ADMIN_KEYS_TOOL": facts.ADMIN_KEYS_TOOL,
    }.items():
        text = text.replace(f"@@{name}@@", value)
    if "@@" in text:
        raise ValueError("cloud-init template has an unknown @@placeholder@@")
    doc = yaml.safe_load(text)
    doc["users"] = [
        {
            "name": ADMIN_USER, "gecos": "botstack admin", "shell": "/bin/bash",
            "groups": ["sudo", "docker"], "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,   # keys: the deploy's admin-keys step
        },
        {
            "name": DEPLOY_USER, "gecos": "botstack deploy", "shell": "/bin/bash",
            # docker already makes it root's equal; sudo adds nothing but the named tool
            "groups": ["docker"], "lock_passwd": True, "sudo": f"ALL=(root) NOPASSWD: {facts.ADMIN_KEYS_TOOL}",
            "ssh_authorized_keys": [p.deploy_public_key.strip()],
        },
    ]
    doc["ssh_keys"] = {
        "ed25519_private": p.host_private_key.strip() + "\n",
        "ed25519_public": p.host_public_key.strip(),
    }
    doc["mounts"] = [[f"LABEL={VOLUME_LABEL}", DATA_DIR, "ext4",
                      "defaults,nofail,discard,noatime,x-systemd.device-timeout=10min", "0", "2"]]
    header = "#cloud-config\n# rendered by infra/cloudinit.py from cloud-init/user-data.yaml\n"
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
