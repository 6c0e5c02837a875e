"""The memory rule for dropletSize (pure Python).

Memory rule for dropletSize: the sum of the compose services' memory limits plus OS_RESERVE_MIB
(kernel, systemd, sshd, dockerd, fail2ban) must fit in the droplet's RAM plus a quarter of the
1 GiB swap file cloud-init adds (swap absorbs bursts such as image builds; counting more of it
would let the database live in swap). s-1vcpu-1gb: 1024 + 256 - 256 = 1024 MiB for the stack;
s-1vcpu-512mb-10gb: 512 MiB.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from infra import facts, prices
from infra.errors import ConfigError

OS_RESERVE_MIB = 256
SWAP_COUNTED_MIB = facts.SWAP_MIB // 4

_MEM_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_MEM_UNIT = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse_memory(value: Any) -> int:
    """Docker/compose byte values (`256m`, `1g`, `512MiB`, `1073741824`) to bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _MEM_RE.match(str(value))
    if not m:
        raise ValueError(f"not a memory size: {value!r}")
    return int(float(m.group(1)) * _MEM_UNIT[m.group(2).lower()])


def compose_memory_mib(compose_file: Path, managed_db: bool, observability: bool = False) -> int:
    """Sum of `deploy.resources.limits.memory` (MiB) over the services that run in this mode: in
    managed mode the services of the `localdb` profile (postgres, backup) do not run; those of the
    `observability` profile (Prometheus, node-exporter) run only when the stack turns it on."""
    try:
        doc = yaml.safe_load(Path(compose_file).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError("dropletSize", f"cannot check memory: {compose_file} not found") from None
    total = 0
    for name, svc in (doc.get("services") or {}).items():
        svc = svc or {}
        if managed_db and facts.LOCALDB_PROFILE in (svc.get("profiles") or []):
            continue
        if not observability and facts.OBSERVABILITY_PROFILE in (svc.get("profiles") or []):
            continue
        limit = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None:
            raise ConfigError("dropletSize", f"cannot check memory: service {name} in {compose_file} "
                                             "has no deploy.resources.limits.memory")
        try:
            total += parse_memory(limit)
        except ValueError:
            raise ConfigError("dropletSize", f"cannot check memory: service {name} has limit {limit!r}") from None
    return -(-total // (1024 * 1024))


def usable_mib(size: str) -> int:
    """MiB the compose stack may use on a droplet of `size` (a known size): the rule above."""
    return prices.DROPLET_SIZES[size].memory_mib + SWAP_COUNTED_MIB - OS_RESERVE_MIB


def memory_fits(size: str, compose_file: Path, managed_db: bool, observability: bool = False) -> int:
    """The stack's memory limits (MiB) after checking they fit the droplet size (rule above)."""
    if size not in prices.DROPLET_SIZES:
        raise ConfigError("dropletSize", f"unknown size {size!r}; known: {', '.join(prices.DROPLET_SIZES)}")
    need = compose_memory_mib(compose_file, managed_db, observability)
    ram = prices.DROPLET_SIZES[size].memory_mib
    usable = usable_mib(size)
    if need > usable:
        raise ConfigError("dropletSize", f"{size} ({ram} MiB RAM) is too small: the stack's memory limits "
                                         f"sum to {need} MiB, over the {usable} MiB usable (RAM + {SWAP_COUNTED_MIB} MiB "
                                         f"of swap - {OS_RESERVE_MIB} MiB for the system)")
    return need
