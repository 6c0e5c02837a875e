"""Network: the cloud firewall (SSH from the admin CIDRs only), the droplet tag and the reserved IP.

No VPC of its own: the droplet (and a managed database) sit in the region's default VPC, which
DigitalOcean makes for the first resource of a region and keeps. A VPC the stack made would become
that default on an account with none in the region, and DigitalOcean refuses to delete a default
VPC (403; the provider retries for its 2-minute delete timeout, then fails the `destroy`:
terraform-provider-digitalocean, digitalocean/vpc/resource_vpc.go).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_digitalocean as do

EVERYWHERE = ["0.0.0.0/0", "::/0"]
MANAGED_DB_PORT = "25060"
# Where a VPC's addresses come from (RFC 1918; DigitalOcean's VPC docs): the managed database's
# private address is in the default VPC's range, which the program does not know before the
# droplet exists. Private addresses are reachable from the droplet only inside its VPC.
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


@dataclass(frozen=True)
class NetworkArgs:
    stack: str
    region: str
    ssh_sources: tuple[str, ...]   # adminCidrs and the CI job's hosts: who reaches TCP 22
    managed_db: bool               # opens PostgreSQL (25060) to private addresses (the VPC)
    protect_data: bool


class Network(pulumi.ComponentResource):
    """The droplet tag the firewall applies to, the firewall, and the reserved IP.

    The firewall is bound to the tag, not to a droplet id, so it covers a replacement droplet from
    its first boot. Inbound: TCP 22 from `adminCidrs` (and `ciRunnerCidrs`) only (the bot
    long-polls Telegram, nothing else listens). Outbound: DNS (53), NTP (123/udp), HTTP/HTTPS (apt,
    image and pip downloads, the Telegram Bot API, Spaces), ICMP, and in managed mode PostgreSQL
    (25060) to private addresses (the VPC).

    Outputs for the others: `tag_name`, `reserved_ip` (the address), `reserved_ip_urn`,
    and `ssh_open` (the firewall: remote commands depend on it, so its rules are in place before
    they dial).
    """

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Network", name, None, opts)
        prefix = f"botstack-{args.stack}"
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, protect=args.protect_data)

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
                protocol="tcp", port_range=MANAGED_DB_PORT, destination_addresses=PRIVATE_RANGES))
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

        self.tag_name: pulumi.Output[str] = tag.name
        self.reserved_ip: pulumi.Output[str] = reserved_ip.ip_address
        self.reserved_ip_urn: pulumi.Output[str] = reserved_ip.reserved_ip_urn
        self.ssh_open: pulumi.Resource = firewall
        self.register_outputs({"firewallId": firewall.id, "reservedIp": reserved_ip.ip_address})
