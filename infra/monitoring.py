"""Monitoring (CPU, memory and disk alerts by e-mail) and the DigitalOcean Project grouping."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_digitalocean as do

from infra.config import StackConfig
from infra.server import Server

# (name, metric type, threshold %) over a 5 minute window
ALERTS = (
    ("cpu", "v1/insights/droplet/cpu", 90),
    ("memory", "v1/insights/droplet/memory_utilization_percent", 90),
    ("disk", "v1/insights/droplet/disk_utilization_percent", 85),
)


class Monitoring(pulumi.ComponentResource):
    """MonitorAlerts (only when `alertEmails` is set; the droplet runs the metrics agent
    either way: `monitoring=True`)."""

    def __init__(self, name: str, cfg: StackConfig, server: Server,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Monitoring", name, None, opts)
        self.alerts = []
        if cfg.alert_emails:
            for alert, metric, value in ALERTS:
                self.alerts.append(do.MonitorAlert(
                    f"{name}-{alert}",
                    type=metric,
                    compare="GreaterThan",
                    value=value,
                    window="5m",
                    enabled=True,
                    entities=[server.droplet.id],
                    alerts=do.MonitorAlertAlertsArgs(emails=list(cfg.alert_emails)),
                    description=f"botstack-{cfg.stack}: {alert} above {value}% for 5 minutes",
                    opts=pulumi.ResourceOptions(parent=self)))
        self.register_outputs({"alerts": len(self.alerts)})


class Project(pulumi.ComponentResource):
    """A DigitalOcean Project `botstack-<stack>` holding the droplet, volume, reserved IP, bucket
    and (managed mode) the database cluster."""

    def __init__(self, name: str, cfg: StackConfig, resource_urns: Sequence[pulumi.Input[str]],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Project", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.project = do.Project(
            f"{name}-project",
            name=f"botstack-{cfg.stack}",
            description="Personal Telegram bot (botstack)",
            purpose="Service or API",
            environment="Production" if cfg.production else "Development",
            opts=child)
        self.resources = do.ProjectResources(
            f"{name}-resources", project=self.project.id, resources=list(resource_urns), opts=child)
        self.register_outputs({"projectId": self.project.id})
