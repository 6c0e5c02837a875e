"""Project: the DigitalOcean Project grouping the stack's billable resources."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_digitalocean as do


@dataclass(frozen=True)
class ProjectArgs:
    stack: str
    production: bool
    resource_urns: Sequence[pulumi.Input[str]]


class Project(pulumi.ComponentResource):
    """A DigitalOcean Project `botstack-<stack>` holding the droplet, volume, reserved IP, bucket
    and (managed mode) the database cluster."""

    def __init__(self, name: str, args: ProjectArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("botstack:infra:Project", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = do.Project(
            f"{name}-project",
            name=f"botstack-{args.stack}",
            description="Personal Telegram bot (botstack)",
            purpose="Service or API",
            environment="Production" if args.production else "Development",
            opts=child)
        do.ProjectResources(
            f"{name}-resources", project=project.id, resources=list(args.resource_urns), opts=child)
        self.register_outputs({"projectId": project.id})
