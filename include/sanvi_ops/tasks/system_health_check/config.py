"""The System Health Check's settings (``tasks.system_health_check.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sanvi_ops.core.config import (
    Duration,
    HttpUrl,
    NonEmpty,
    _Model,
)


class AirflowHealthConfig(_Model):
    """Airflow's own health endpoint (api-server ``/api/v2/monitor/health``), probed by the System
    Health Check: the base URL is the HTTP connection ``connection`` (no connection: a warning,
    "not configured")."""

    connection: NonEmpty = "sanvi_airflow_api"
    path: NonEmpty = "/api/v2/monitor/health"
    timeout_seconds: float = Field(default=10, gt=0)
    #: A heartbeat older than this is a warning / critical even when Airflow says "healthy".
    heartbeat_warning: Duration = dt.timedelta(minutes=2)
    heartbeat_critical: Duration = dt.timedelta(minutes=10)

    @model_validator(mode="after")
    def _ordered(self) -> AirflowHealthConfig:
        if self.heartbeat_warning >= self.heartbeat_critical:
            raise ValueError("heartbeat_warning must be shorter than heartbeat_critical")
        return self


class Endpoint(_Model):
    """An HTTP endpoint the health check probes."""

    name: NonEmpty
    url: HttpUrl
    environment: NonEmpty
    component: Literal["frontend", "backend"]
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: float = Field(default=5, gt=0)


class PrometheusQueries(_Model):
    """PromQL returning one percent value per instance."""

    cpu: NonEmpty
    memory: NonEmpty


class HealthCheckConfig(_Model):
    """What the daily System Health Check probes."""

    component_timeout_seconds: float = Field(default=20, gt=0)
    endpoints: list[Endpoint] = Field(default_factory=list)
    buckets: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    ecs_cluster: NonEmpty
    ecs_services: list[NonEmpty] = Field(default_factory=list)
    rds_instances: list[NonEmpty] = Field(default_factory=list)
    elasticache_clusters: list[NonEmpty] = Field(default_factory=list)
    prometheus: PrometheusQueries
    airflow_health: AirflowHealthConfig = Field(default_factory=AirflowHealthConfig)

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, value: list[Endpoint]) -> list[Endpoint]:
        names = [e.name for e in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"endpoint names must be unique, repeated: {', '.join(duplicates)}")
        return value
