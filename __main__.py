"""botstack: one personal Telegram bot on one DigitalOcean droplet. This file is the architecture:
config first (a bad key stops the program before any resource), then each component with the few
outputs the next one needs. Each concern lives in one module of infra/ (infra/__init__.py)."""
from pathlib import Path

import pulumi

from infra import envfile, release
from infra.config import StackConfig
from infra.database import Database, DatabaseArgs
from infra.deploy import Deploy, DeployArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.program import Wired
from infra.project import Project, ProjectArgs
from infra.server import DropletBackups, Server, ServerArgs
from infra.storage import Storage, StorageArgs, own_store_credentials


def wire(cfg: StackConfig, repo_root: Path, build_dir: Path) -> Wired:
    network = Network("network", NetworkArgs(cfg.stack, cfg.region, cfg.ssh_sources, cfg.managed_db,
                                             cfg.protect_data))
    backups = DropletBackups(cfg.droplet_backup_plan, cfg.droplet_backup_weekday, cfg.droplet_backup_hour)
    server = Server("server", ServerArgs(
        cfg.stack, cfg.region, cfg.droplet_size, cfg.image, cfg.volume_size_gib,
        backups if cfg.enable_droplet_backups else None, cfg.protect_data,
        tag_name=network.tag_name, reserved_ip=network.reserved_ip, final_backup=not cfg.managed_db))
    if cfg.backup_store:  # the user's own S3-compatible store: no Spaces bucket, no Spaces key
        credentials, bucket_urns = own_store_credentials(cfg.backup_store, cfg.backup_passphrase), []
    else:
        storage = Storage("storage", StorageArgs(cfg.stack, cfg.region, cfg.protect_data, cfg.backup_passphrase))
        credentials, bucket_urns = storage.credentials, [storage.bucket_urn]
    database = Database("database", DatabaseArgs(
        cfg.stack, cfg.managed_db, cfg.region, cfg.managed_database_size, cfg.managed_database_version,
        cfg.protect_data, vpc_id=server.vpc_id, tag_name=network.tag_name, droplet_id=server.droplet_id))
    release_id = release.release_id(repo_root)
    deploy = Deploy("deploy", DeployArgs(
        cfg.stack, repo_root, build_dir, server.connection,
        env=envfile.render(cfg, release_id, database.access, credentials),
        volume_id=server.volume_id, tag_name=network.tag_name, final_backup=not cfg.managed_db,
        ssh_open=network.ssh_open, admin_ssh_keys=cfg.ssh_public_keys))
    Monitoring("monitoring", MonitoringArgs(cfg.stack, cfg.alert_emails, server.droplet_id))
    urns = [server.droplet_urn, server.volume_urn, network.reserved_ip_urn, *bucket_urns]
    Project("project", ProjectArgs(cfg.stack, cfg.production,
                                   urns + ([database.cluster_urn] if database.cluster_urn else [])))
    return Wired(cfg, network.reserved_ip, server.host_public_key, credentials, deploy)


if __name__ == "__main__":
    from infra import program

    for key, value in program.run(pulumi.get_stack(), Path(__file__).resolve().parent, wire).items():
        pulumi.export(key, value)
