"""The whole stack: config first (a bad key stops the program before any resource), then the
components, then the outputs. `build` returns the outputs; __main__.py exports them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi

from infra import config as config_mod, prices
from infra.config import StackConfig
from infra.database import Database
from infra.deploy import Deploy
from infra.monitoring import Monitoring, Project
from infra.network import Network
from infra.server import Server
from infra.storage import Storage
from infra import cloudinit

# how many pre-release volume snapshots exist at a time (Deploy replaces it with each release)
SNAPSHOTS_KEPT = 1


def cost_of(cfg: StackConfig) -> dict[str, float]:
    return prices.monthly_cost(
        droplet_size=cfg.droplet_size, droplet_backups=cfg.enable_droplet_backups,
        backup_plan=cfg.droplet_backup_plan, volume_gib=cfg.volume_size_gib,
        snapshots_kept=SNAPSHOTS_KEPT, database_mode=cfg.database,
        managed_db_size=cfg.managed_database_size)


def build(stack: str, repo_root: Path, get: Optional[Callable[[str], Any]] = None) -> dict[str, Any]:
    repo_root = Path(repo_root)
    compose_file = repo_root / "compose" / "compose.yml"
    if get is None:
        cfg = config_mod.from_pulumi(stack, compose_file)
    else:
        cfg = config_mod.load(get, stack, compose_file)
    build_dir = Path(os.environ.get("BOTSTACK_BUILD_DIR", repo_root / ".botstack" / "build"))

    network = Network("network", cfg)
    server = Server("server", cfg, network)
    storage = Storage("storage", cfg, network)
    database = Database("database", cfg, network, server)
    deploy = Deploy("deploy", cfg, repo_root, network, server, storage, database, build_dir)
    Monitoring("monitoring", cfg, server)
    urns = [server.droplet.droplet_urn, server.volume.volume_urn,
            network.reserved_ip.reserved_ip_urn, storage.bucket.bucket_urn]
    if database.cluster is not None:
        urns.append(database.cluster.cluster_urn)
    Project("project", cfg, urns)

    ip = network.reserved_ip.ip_address
    cost = cost_of(cfg)
    return {
        "reservedIp": ip,
        "ssh": pulumi.Output.concat("ssh ", cloudinit.ADMIN_USER, "@", ip),
        # add this line to ~/.ssh/known_hosts and the first `ssh` verifies the host as well
        "knownHostsLine": pulumi.Output.concat(ip, " ", server.host_key.public_key_openssh.apply(str.strip)),
        "bucketName": storage.bucket.name,
        "bucketEndpoint": storage.endpoint,
        "releaseId": deploy.release_id,
        "databaseMode": cfg.database,
        "preReleaseSnapshot": deploy.snapshot.name,
        "monthlyCostUsd": cost["total"],
        "monthlyCostBreakdownUsd": cost,
        "pricesAsOf": prices.PRICES_AS_OF,
    }
