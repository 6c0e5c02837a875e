"""Monitoring: CPU, memory and disk alerts by e-mail."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_digitalocean as do

# (name, metric type, threshold %) over a 5 minute window
ALERTS = (
    ("cpu", "v1/insights/droplet/cpu", 90),
    ("memory", "v1/insights/droplet/memory_utilization_percent", 90),
    ("disk", "v1/insights/droplet/disk_utilization_percent", 85),
)


@dataclass(frozen=True)
class MonitoringArgs:
    stack: str
    alert_emails: tuple[str, ...]
    droplet_id: pulumi.Input[str]


class Monitoring(pulumi.ComponentResource):
    """MonitorAlerts (only when `alertEmails` is set; the droplet runs the metrics agent
    either way: `monitoring=True`)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Monitoring", name, None, opts)
        alerts = []
        for alert, metric, value in (ALERTS if args.alert_emails else ()):
            alerts.append(do.MonitorAlert(
                f"{name}-{alert}",
                type=metric,
                compare="GreaterThan",
                value=value,
                window="5m",
                enabled=True,
                entities=[args.droplet_id],
                alerts=do.MonitorAlertAlertsArgs(emails=list(args.alert_emails)),
                description=f"botstack-{args.stack}: {alert} above {value}% for 5 minutes",
                opts=pulumi.ResourceOptions(parent=self)))
        self.register_outputs({"alerts": len(alerts)})
