"""The Architecture Review's settings (``tasks.architecture_review.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sanvi_ops.core.config import (
    NonEmpty,
    _Model,
)


class EcsServiceSpec(_Model):
    """A documented ECS service: the guide's minimum of tasks ("Min instances: 2")."""

    min_tasks: int = Field(default=2, ge=0)


class LoadBalancerSpec(_Model):
    """A documented load balancer (ELBv2), by name."""

    type: Literal["application", "network", "gateway"] = "application"
    scheme: Literal["internet-facing", "internal"] = "internet-facing"


class RdsInstanceSpec(_Model):
    """A documented RDS instance: class, Multi-AZ and engine as built."""

    instance_class: NonEmpty
    multi_az: bool = True
    engine: NonEmpty = "postgres"


class CacheClusterSpec(_Model):
    """A documented ElastiCache cluster or replication group; ``node_type`` ``null`` = any."""

    engine: NonEmpty = "redis"
    node_type: str | None = None


def _default_ecs_services() -> dict[str, EcsServiceSpec]:
    return {"frontend": EcsServiceSpec(), "backend": EcsServiceSpec()}


class ArchitectureReviewConfig(_Model):
    """The documented architecture the quarterly Architecture Review (``sanvi_ops.tasks.architecture_review.architecture``)
    compares the AWS inventory with: the guide's component overview and network layout.

    ``ecs_cluster`` ``null`` = ``tasks.system_health_check.settings.ecs_cluster``. Resources whose name matches one of
    ``undocumented_ok`` (fnmatch patterns) are inventoried but never reported as extra.
    """

    ecs_cluster: str | None = None
    ecs_services: dict[NonEmpty, EcsServiceSpec] = Field(default_factory=_default_ecs_services)
    #: Documented load balancers by name; empty = only the ``require_alb`` rule.
    load_balancers: dict[NonEmpty, LoadBalancerSpec] = Field(default_factory=dict)
    #: The guide: "Application Load Balancer for traffic distribution" (internet-facing).
    require_alb: bool = True
    rds_instances: dict[NonEmpty, RdsInstanceSpec] = Field(default_factory=dict)
    cache_clusters: dict[NonEmpty, CacheClusterSpec] = Field(default_factory=dict)
    buckets: list[NonEmpty] = Field(default_factory=list)
    #: VPCs of the system, by their ``Name`` tag ("isolated network with public and private subnets").
    vpc_names: list[NonEmpty] = Field(default_factory=list)
    #: Every availability zone the VPC uses has a public and a private subnet.
    require_public_and_private_per_az: bool = True
    #: The guide: "NAT Gateway: allows private subnets to access internet for updates".
    require_nat_gateway: bool = True
    undocumented_ok: list[NonEmpty] = Field(default_factory=list)
