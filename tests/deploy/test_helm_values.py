"""deploy/helm-values.yaml for the official Airflow Helm chart: parsed and checked (no cluster needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    FAB_AUTH_MANAGER,
    HELM_VALUES,
    POOLS,
    ROOT,
    TWELVE_HOURS_IN_MINUTES,
    airflow_pin,
    secret_findings_in_mapping,
    secret_findings_in_text,
)

pytestmark = pytest.mark.unit

COMPONENTS = ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    data = yaml.safe_load(HELM_VALUES.read_text())
    assert isinstance(data, dict)
    return data


def test_kubernetes_executor(values: dict[str, Any]) -> None:
    assert values["executor"] == "KubernetesExecutor"
    assert values["redis"]["enabled"] is False  # no Celery broker
    assert values["postgresql"]["enabled"] is False  # an external metadata DB


def test_image_is_the_project_image_pinned_to_the_airflow_version(values: dict[str, Any]) -> None:
    pin = airflow_pin()
    assert values["airflowVersion"] == pin
    image = values["images"]["airflow"]
    for tag in (image["tag"], values["defaultAirflowTag"]):
        assert tag == f"{pin}-python3.11", tag
    assert image["repository"] == values["defaultAirflowRepository"]
    # The project's image (Dockerfile), not the bare upstream one that lacks our pinned libraries.
    assert image["repository"] != "apache/airflow"


def test_dags_come_with_the_image(values: dict[str, Any]) -> None:
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["dags"]["persistence"]["enabled"] is False
    assert "not git-sync" in HELM_VALUES.read_text()  # the reason is written down
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["PYTHONPATH"] == "/opt/airflow/include:/opt/airflow/plugins"
    assert env["SANVI_OPS_CONFIG"] == "/opt/airflow/include/config/maintenance.yaml"


def test_fab_auth_manager_and_twelve_hour_session(values: dict[str, Any]) -> None:
    assert values["config"]["core"]["auth_manager"] == FAB_AUTH_MANAGER
    assert int(values["config"]["fab"]["session_lifetime_minutes"]) == TWELVE_HOURS_IN_MINUTES
    assert int(values["config"]["api_auth"]["jwt_expiration_time"]) == TWELVE_HOURS_IN_MINUTES * 60
    assert values["createUserJob"]["enabled"] is False  # no admin password in values


def test_connections_and_airflow_secrets_come_from_secrets(values: dict[str, Any]) -> None:
    env_from = yaml.safe_load(values["extraEnvFrom"])
    assert {"secretRef": {"name": "sanvi-ops-connections"}} in env_from
    assert not any(e["name"].startswith("AIRFLOW_CONN_") for e in values["env"])
    assert values["data"]["metadataSecretName"]
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values[key], key
    for literal in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey"):
        assert not values.get(literal), f"{literal} must come from a Secret"
    assert "metadataConnection" not in values["data"]


def test_every_component_has_resources(values: dict[str, Any]) -> None:
    for component in COMPONENTS:
        resources = values[component]["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{component}.resources.{kind}"
    assert values["apiServer"]["service"]["type"] == "ClusterIP"


def test_no_secret_literal(values: dict[str, Any]) -> None:
    where = str(HELM_VALUES.relative_to(ROOT))
    assert secret_findings_in_text(HELM_VALUES.read_text(), where) == []
    assert secret_findings_in_mapping(values, where) == []


def test_links_use_the_configured_base_url(values: dict[str, Any]) -> None:
    base_url = values["config"]["api"]["base_url"]
    assert base_url.startswith("https://") and not base_url.endswith("/")
    assert "localhost" not in base_url


def test_the_migration_hook_imports_the_pools_file(values: dict[str, Any]) -> None:
    """One pool definition: deploy/pools.json (in the image), imported on every install/upgrade."""
    job = values["migrateDatabaseJob"]
    assert values["images"]["useDefaultImageForMigration"] is False  # the file is in our image only
    assert job["enabled"] is True and job["useHelmHooks"] is True
    command = " ".join(job["args"])
    assert command.startswith("bash -c airflow db migrate")
    assert "&& airflow pools import /opt/airflow/deploy/pools.json" in command
    assert "&& python -m sanvi_ops migrate" in command  # the results store, never migrated by a task
    from sanvi_ops.core.config import load_config

    pools = json.loads(POOLS.read_text())
    assert (
        load_config(ROOT / "include" / "config" / "maintenance.yaml").tasks.database_maintenance.settings.pool
        in pools
    )


def test_task_pods_get_scratch_disk_iam_and_the_postgres_binaries(values: dict[str, Any]) -> None:
    """KubernetesExecutor: what a worker needs is configured, and written down for the operator."""
    workers = values["workers"]
    (volume,) = [v for v in workers["extraVolumes"] if v["name"] == "scratch"]
    claim = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"].endswith("Gi")
    assert {"name": "scratch", "mountPath": "/tmp"} in workers["extraVolumeMounts"]  # $TMPDIR of restores
    assert workers["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    text = HELM_VALUES.read_text()
    for needed in (
        "2.5x the application database's size",
        "/usr/lib/postgresql/18/bin",
        "pg_combinebackup",
        "s3:PutObject",
        "kms:GenerateDataKey",
        "rds:RestoreDBInstanceToPointInTime",
        "rds:DeleteDBInstance",
    ):
        assert needed in text, f"helm-values.yaml does not tell the operator about {needed}"
    image = values["images"]["airflow"]
    assert "pod_template" not in values.get("images", {}), "task pods must run the same image"
    assert image["repository"] == values["defaultAirflowRepository"]
