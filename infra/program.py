"""Around the wiring in __main__.py: the config it starts from and the outputs it ends in.

`build(stack, repo_root)` runs the whole program (the tests' entry point); `run` is what
__main__.py calls under `pulumi up`.
"""
from __future__ import annotations

import os
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi

from infra import config as config_mod, facts, prices
from infra.config import ConfigError, StackConfig
from infra.storage import BackupCredentials

# how many pre-release volume snapshots exist at a time (Deploy replaces it with each release)
SNAPSHOTS_KEPT = 1
MAIN = Path(__file__).resolve().parent.parent / "__main__.py"


@dataclass(frozen=True)
class Wired:
    """What the outputs are made of."""
    cfg: StackConfig
    reserved_ip: pulumi.Output[str]
    host_public_key: pulumi.Output[str]
    backups: BackupCredentials
    deploy: Any   # infra.deploy.Deploy: release_id, snapshot_name


Wire = Callable[[StackConfig, Path, Path], Wired]


def cost_of(cfg: StackConfig, spaces: Optional[bool] = None) -> dict[str, float]:
    """The stack's monthly cost; `spaces` True/False prices the other store choice."""
    return prices.monthly_cost(
        droplet_size=cfg.droplet_size, droplet_backups=cfg.enable_droplet_backups,
        backup_plan=cfg.droplet_backup_plan, volume_gib=cfg.volume_size_gib,
        snapshots_kept=SNAPSHOTS_KEPT, database_mode=cfg.database,
        managed_db_size=cfg.managed_database_size,
        spaces=cfg.backup_store is None if spaces is None else spaces)


def outputs(w: Wired) -> dict[str, Any]:
    ip, cfg = w.reserved_ip, w.cfg
    cost = cost_of(cfg)
    return {
        "reservedIp": ip,
        "ssh": pulumi.Output.concat("ssh ", facts.ADMIN_USER, "@", ip),
        # add this line to ~/.ssh/known_hosts and the first `ssh` verifies the host as well
        "knownHostsLine": pulumi.Output.concat(ip, " ", w.host_public_key),
        "bucketName": w.backups.bucket,
        "bucketEndpoint": w.backups.endpoint,
        "releaseId": w.deploy.release_id,
        "databaseMode": cfg.database,
        "preReleaseSnapshot": w.deploy.snapshot_name,
        "monthlyCostUsd": cost["total"],
        "monthlyCostBreakdownUsd": cost,
        # both choices of backup store (botstack:backupStore*): the program's Spaces bucket, or your own
        "monthlyCostByStoreUsd": {"spaces": cost_of(cfg, True)["total"], "ownStore": cost_of(cfg, False)["total"]},
        "backupStore": "own" if cfg.backup_store else "spaces",
        "pricesAsOf": prices.PRICES_AS_OF,
    }


def build(stack: str, repo_root: Path, get: Optional[Callable[[str], Any]] = None,
          wire: Optional[Wire] = None) -> dict[str, Any]:
    """Config (from Pulumi, or from `get`), the wiring of __main__.py, the outputs."""
    repo_root = Path(repo_root)
    compose_file = repo_root / "compose" / "compose.yml"
    if get is None:
        cfg = config_mod.from_pulumi(stack, compose_file, MAIN.parent / f"Pulumi.{stack}.yaml")
    else:
        cfg = config_mod.load(get, stack, compose_file)
    build_dir = Path(os.environ.get("BOTSTACK_BUILD_DIR", repo_root / ".botstack" / "build"))
    if wire is None:
        wire = runpy.run_path(str(MAIN), run_name="botstack_wiring")["wire"]
    return outputs(wire(cfg, repo_root, build_dir))


def run(stack: str, repo_root: Path, wire: Wire) -> dict[str, Any]:
    try:
        return build(stack, repo_root, wire=wire)
    except ConfigError as error:
        # RunError ends the program with this one line instead of a traceback
        raise pulumi.RunError(str(error)) from None
