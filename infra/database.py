"""Database: PostgreSQL in the compose stack (`container`) or DigitalOcean Managed PostgreSQL."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_digitalocean as do
import pulumi_random as random

from infra import facts

DB_NAME = "botstack"
DB_USER = "botstack"
# container mode: the roles compose's db-setup service creates (the superuser DB_USER is for it only)
APP_ROLE = "botstack_app"
BACKUP_ROLE = "botstack_backup"


@dataclass(frozen=True)
class DatabaseArgs:
    stack: str
    managed: bool
    region: str
    managed_size: str
    managed_version: str
    protect_data: bool
    vpc_id: pulumi.Input[str]       # the droplet's VPC (the region's default)
    tag_name: pulumi.Input[str]
    droplet_id: pulumi.Input[str]   # the only client the managed cluster's firewall admits


@dataclass(frozen=True)
class DatabaseAccess:
    """The connections and passwords the stack's `.env` carries (all secret Outputs)."""
    database_url: pulumi.Output[str]
    backup_database_url: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    app_password: pulumi.Output[str]
    backup_password: pulumi.Output[str]
    compose_profiles: str


class Database(pulumi.ComponentResource):
    """`container`: a generated POSTGRES_PASSWORD (the superuser's, for compose's one-shot db-setup
    only); the compose stack's `localdb` profile runs the postgres, db-setup and backup services on
    the data volume. DATABASE_URL is the role botstack_app at `postgres:5432`, BACKUP_DATABASE_URL
    the role botstack_backup (db-setup creates both with the generated passwords and hands the
    application's objects to botstack_app, also on a stack laid out before the roles existed).

    `managed`: a one-node cluster in the droplet's VPC, database `botstack`, user `botstack`, and a database
    firewall that admits only the droplet. DATABASE_URL uses the cluster's private host (VPC) with
    sslmode=require; COMPOSE_PROFILES is empty so neither local postgres nor the backup service runs
    (the managed service takes daily backups with 7 days point-in-time recovery).

    Both modes generate the roles' passwords, so the .env is always complete; in managed mode
    BACKUP_DATABASE_URL equals DATABASE_URL (no backup service runs there).

    Outputs for the others: `access`, `cluster_urn` (None in container mode).
    """

    def __init__(self, name: str, args: DatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Database", name, None, opts)
        # PGDATA keeps the passwords it was initialised with: they are data, protected like it
        data = pulumi.ResourceOptions(parent=self, protect=args.protect_data)
        # used by the compose postgres service; generated in both modes so .env is always complete
        postgres = random.RandomPassword(f"{name}-postgres-password", length=32, special=False, opts=data)
        app = random.RandomPassword(f"{name}-app-password", length=32, special=False, opts=data)
        backup = random.RandomPassword(f"{name}-backup-password", length=32, special=False, opts=data)
        self.cluster_urn: Optional[pulumi.Output[str]] = None
        if args.managed:
            url = backup_url = self._managed(name, args)
            profiles = ""
        else:
            url = _container_url(APP_ROLE, app.result)
            backup_url = _container_url(BACKUP_ROLE, backup.result)
            profiles = facts.LOCALDB_PROFILE
        self.access = DatabaseAccess(
            database_url=url, backup_database_url=backup_url, postgres_password=postgres.result,
            app_password=app.result, backup_password=backup.result, compose_profiles=profiles)
        self.register_outputs({"mode": "managed" if args.managed else "container"})

    def _managed(self, name: str, args: DatabaseArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        cluster = do.DatabaseCluster(
            f"{name}-cluster",
            name=f"botstack-{args.stack}-pg",
            engine="pg",
            version=args.managed_version,
            size=args.managed_size,
            region=args.region,
            node_count=1,
            private_network_uuid=args.vpc_id,
            tags=[args.tag_name],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
        )
        db = do.DatabaseDb(f"{name}-db", cluster_id=cluster.id, name=DB_NAME, opts=child)
        user = do.DatabaseUser(f"{name}-user", cluster_id=cluster.id, name=DB_USER, opts=child)
        do.DatabaseFirewall(
            f"{name}-firewall",
            cluster_id=cluster.id,
            rules=[do.DatabaseFirewallRuleArgs(type="droplet", value=args.droplet_id)],
            opts=child,
        )
        self.cluster_urn = cluster.cluster_urn
        return pulumi.Output.secret(pulumi.Output.concat(
            "postgresql://", user.name, ":", user.password, "@",
            cluster.private_host, ":", cluster.port.apply(str), "/", db.name, "?sslmode=require"))


def _container_url(role: str, password: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.concat(
        f"postgresql://{role}:", password, f"@postgres:5432/{DB_NAME}"))
