"""DigitalOcean facts the program checks config against and prices the stack with.

PRICES_AS_OF is the date the table was taken from DigitalOcean's public pricing pages; prices are
USD per month (a month being 672 hours, DO's monthly cap). Update the date with the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2025-11-01"


@dataclass(frozen=True)
class DropletSize:
    memory_mib: int
    vcpus: int
    disk_gib: int
    usd_month: float


# Basic (shared CPU) droplet sizes usable for this stack.
DROPLET_SIZES: dict[str, DropletSize] = {
    "s-1vcpu-512mb-10gb": DropletSize(512, 1, 10, 4.00),
    "s-1vcpu-1gb": DropletSize(1024, 1, 25, 6.00),
    "s-1vcpu-1gb-amd": DropletSize(1024, 1, 25, 7.00),
    "s-1vcpu-1gb-intel": DropletSize(1024, 1, 25, 7.00),
    "s-1vcpu-2gb": DropletSize(2048, 1, 50, 12.00),
    "s-1vcpu-2gb-amd": DropletSize(2048, 1, 50, 14.00),
    "s-1vcpu-2gb-intel": DropletSize(2048, 1, 50, 14.00),
    "s-2vcpu-2gb": DropletSize(2048, 2, 60, 18.00),
    "s-2vcpu-4gb": DropletSize(4096, 2, 80, 24.00),
    "s-4vcpu-8gb": DropletSize(8192, 4, 160, 48.00),
}

# Droplet backups are priced as a share of the droplet's price.
DROPLET_BACKUP_SHARE = {"weekly": 0.20, "daily": 0.30}

VOLUME_USD_PER_GIB = 0.10          # block storage volumes
SNAPSHOT_USD_PER_GIB = 0.06        # volume snapshots, billed on the snapshot's size
SPACES_USD_MONTH = 5.00            # Spaces subscription: 250 GiB stored + 1 TiB transfer included

# Managed PostgreSQL, single node.
MANAGED_DB_SIZES: dict[str, float] = {
    "db-s-1vcpu-1gb": 15.00,
    "db-s-1vcpu-2gb": 30.00,
    "db-s-2vcpu-4gb": 60.00,
}

# Droplet regions, and whether Spaces (object storage) is offered there. The stack needs both in
# one region: the backup bucket lives next to the droplet.
REGIONS: dict[str, bool] = {
    "nyc1": False, "nyc2": False, "nyc3": True,
    "sfo1": False, "sfo2": True, "sfo3": True,
    "ams2": False, "ams3": True,
    "sgp1": True, "lon1": True, "fra1": True, "tor1": True,
    "blr1": True, "syd1": True, "atl1": True, "ric1": False,
}

# Droplet images the cloud-init is written for (Docker Engine from Ubuntu's docker.io package,
# the compose plugin from docker-compose-v2).
IMAGES = ("ubuntu-24-04-x64", "ubuntu-22-04-x64")


def monthly_cost(*, droplet_size: str, droplet_backups: bool, backup_plan: str, volume_gib: int,
                 snapshots_kept: int, database_mode: str, managed_db_size: str,
                 spaces: bool = True) -> dict[str, float]:
    """Itemised monthly cost (USD) and its `total`. Snapshots are priced at the volume's full size:
    the upper bound (a snapshot is billed on the data it holds). `spaces` False: the backups go to
    the user's own S3-compatible store (botstack:backupStore*), priced at nothing here: a personal
    bot's backups fit the free tiers of B2 (10 GB) and R2 (10 GB-month)."""
    droplet = DROPLET_SIZES[droplet_size].usd_month
    items = {
        "droplet": droplet,
        "dropletBackups": round(droplet * DROPLET_BACKUP_SHARE[backup_plan], 2) if droplet_backups else 0.0,
        "volume": round(volume_gib * VOLUME_USD_PER_GIB, 2),
        "volumeSnapshots": round(snapshots_kept * volume_gib * SNAPSHOT_USD_PER_GIB, 2),
        "spaces": SPACES_USD_MONTH if spaces else 0.0,
        "managedDatabase": MANAGED_DB_SIZES[managed_db_size] if database_mode == "managed" else 0.0,
    }
    items["total"] = round(sum(items.values()), 2)
    return items
