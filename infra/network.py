"""Network: the VPC, the cloud firewall (SSH from the admin CIDRs only) and the reserved IP."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_digitalocean as do

EVERYWHERE = ["0.0.0.0/0", "::/0"]
MANAGED_DB_PORT = "25060"


@dataclass(frozen=True)
class NetworkArgs:
    stack: str
    region: str
    ssh_sources: tuple[str, ...]   # adminCidrs and the CI job's hosts: who reaches TCP 22
    managed_db: bool               # opens PostgreSQL (25060) inside the VPC
    protect_data: bool


class Network(pulumi.ComponentResource):
    """VPC, the droplet tag the firewall applies to, the firewall, and the reserved IP.

    The firewall is bound to the tag, not to a droplet id, so it covers a replacement droplet from
    its first boot. Inbound: TCP 22 from `adminCidrs` (and `ciRunnerCidrs`) only (the bot
    long-polls Telegram, nothing else listens). Outbound: DNS (53), NTP (123/udp), HTTP/HTTPS (apt,
    image and pip downloads, the Telegram Bot API, Spaces), ICMP, and in managed mode PostgreSQL
    (25060) inside the VPC.

    Outputs for the others: `vpc_id`, `tag_name`, `reserved_ip` (the address), `reserved_ip_urn`,
    and `ssh_open` (the firewall: remote commands depend on it, so its rules are in place before
    they dial).
    """

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Network", name, None, opts)
        prefix = f"botstack-{args.stack}"
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, protect=args.protect_data)

        vpc = do.Vpc(f"{name}-vpc", name=f"{prefix}-vpc", region=args.region,
                     description=f"botstack {args.stack}", opts=child)
        tag = do.Tag(f"{name}-tag", name=prefix, opts=child)

        outbound = [
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="53", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="udp", port_range="53", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="udp", port_range="123", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="80", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="443", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=EVERYWHERE),
        ]
        if args.managed_db:
            outbound.append(do.FirewallOutboundRuleArgs(
                protocol="tcp", port_range=MANAGED_DB_PORT, destination_addresses=[vpc.ip_range]))
        firewall = do.Firewall(
            f"{name}-firewall",
            name=f"{prefix}-fw",
            tags=[tag.name],
            inbound_rules=[do.FirewallInboundRuleArgs(
                protocol="tcp", port_range="22", source_addresses=list(args.ssh_sources))],
            outbound_rules=outbound,
            opts=child,
        )
        # The address outlives the droplet: a replaced droplet gets the same IP.
        reserved_ip = do.ReservedIp(f"{name}-reserved-ip", region=args.region, opts=data)

        self.vpc_id: pulumi.Output[str] = vpc.id
        self.tag_name: pulumi.Output[str] = tag.name
        self.reserved_ip: pulumi.Output[str] = reserved_ip.ip_address
        self.reserved_ip_urn: pulumi.Output[str] = reserved_ip.reserved_ip_urn
        self.ssh_open: pulumi.Resource = firewall
        self.register_outputs({"vpcId": vpc.id, "firewallId": firewall.id, "reservedIp": reserved_ip.ip_address})
