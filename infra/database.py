"""Database: PostgreSQL in the compose stack (`container`) or DigitalOcean Managed PostgreSQL."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_digitalocean as do
import pulumi_random as random

from infra.config import StackConfig
from infra.network import Network
from infra.server import Server

DB_NAME = "botstack"
DB_USER = "botstack"


class Database(pulumi.ComponentResource):
    """`container`: a generated POSTGRES_PASSWORD; the compose stack's `localdb` profile runs the
    postgres and backup services on the data volume. DATABASE_URL points at `postgres:5432`.

    `managed`: a one-node cluster in the VPC, database `botstack`, user `botstack`, and a database
    firewall that admits only the droplet. DATABASE_URL uses the cluster's private host (VPC) with
    sslmode=require; COMPOSE_PROFILES is empty so neither local postgres nor the backup service runs
    (the managed service takes daily backups with 7 days point-in-time recovery).

    `database_url` is always a secret Output.
    """

    def __init__(self, name: str, cfg: StackConfig, network: Network, server: Server,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Database", name, None, opts)
        prefix = f"botstack-{cfg.stack}"
        child = pulumi.ResourceOptions(parent=self)

        # used by the compose postgres service; generated in both modes so .env is always complete
        self.postgres_password = random.RandomPassword(
            # PGDATA keeps the password it was initialised with: it is data, protected like it
            f"{name}-postgres-password", length=32, special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect_data))
        self.cluster = None
        if cfg.managed_db:
            self.cluster = do.DatabaseCluster(
                f"{name}-cluster",
                name=f"{prefix}-pg",
                engine="pg",
                version=cfg.managed_database_version,
                size=cfg.managed_database_size,
                region=cfg.region,
                node_count=1,
                private_network_uuid=network.vpc.id,
                tags=[network.tag.name],
                opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect_data),
            )
            self.db = do.DatabaseDb(f"{name}-db", cluster_id=self.cluster.id, name=DB_NAME, opts=child)
            self.user = do.DatabaseUser(f"{name}-user", cluster_id=self.cluster.id, name=DB_USER, opts=child)
            self.firewall = do.DatabaseFirewall(
                f"{name}-firewall",
                cluster_id=self.cluster.id,
                rules=[do.DatabaseFirewallRuleArgs(type="droplet", value=server.droplet.id)],
                opts=child,
            )
            self.database_url = pulumi.Output.secret(pulumi.Output.concat(
                "postgresql://", self.user.name, ":", self.user.password, "@",
                self.cluster.private_host, ":", self.cluster.port.apply(str), "/", self.db.name,
                "?sslmode=require"))
            self.compose_profiles = ""
        else:
            self.database_url = pulumi.Output.secret(pulumi.Output.concat(
                f"postgresql://{DB_USER}:", self.postgres_password.result, f"@postgres:5432/{DB_NAME}"))
            self.compose_profiles = "localdb"

        self.register_outputs({"mode": cfg.database})
