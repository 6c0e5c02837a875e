"""Network: the VPC, the cloud firewall (SSH from the admin CIDRs only) and the reserved IP."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_digitalocean as do

from infra.config import StackConfig

EVERYWHERE = ["0.0.0.0/0", "::/0"]
MANAGED_DB_PORT = "25060"


class Network(pulumi.ComponentResource):
    """VPC, the droplet tag the firewall applies to, the firewall, and the reserved IP.

    The firewall is bound to the tag, not to a droplet id, so it covers a replacement droplet from
    its first boot. Inbound: TCP 22 from `adminCidrs` only (the bot long-polls Telegram, nothing
    else listens). Outbound: DNS (53), NTP (123/udp), HTTP/HTTPS (apt, image and pip downloads,
    the Telegram Bot API, Spaces), ICMP, and in managed mode PostgreSQL (25060) inside the VPC.
    """

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Network", name, None, opts)
        prefix = f"botstack-{cfg.stack}"
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, protect=cfg.protect_data)

        self.vpc = do.Vpc(f"{name}-vpc", name=f"{prefix}-vpc", region=cfg.region,
                          description=f"botstack {cfg.stack}", opts=child)
        self.tag = do.Tag(f"{name}-tag", name=prefix, opts=child)

        outbound = [
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="53", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="udp", port_range="53", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="udp", port_range="123", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="80", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="443", destination_addresses=EVERYWHERE),
            do.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=EVERYWHERE),
        ]
        if cfg.managed_db:
            outbound.append(do.FirewallOutboundRuleArgs(
                protocol="tcp", port_range=MANAGED_DB_PORT, destination_addresses=[self.vpc.ip_range]))
        self.firewall = do.Firewall(
            f"{name}-firewall",
            name=f"{prefix}-fw",
            tags=[self.tag.name],
            inbound_rules=[do.FirewallInboundRuleArgs(
                protocol="tcp", port_range="22", source_addresses=list(cfg.admin_cidrs))],
            outbound_rules=outbound,
            opts=child,
        )
        # The address outlives the droplet: a replaced droplet gets the same IP.
        self.reserved_ip = do.ReservedIp(f"{name}-reserved-ip", region=cfg.region, opts=data)

        self.register_outputs({
            "vpcId": self.vpc.id,
            "firewallId": self.firewall.id,
            "reservedIp": self.reserved_ip.ip_address,
        })
