"""Security Patch Review logic with botocore's ``Stubber``.

moto 5.2's server does not implement RDS ``DescribePendingMaintenanceActions`` and
``DescribeDBEngineVersions``, nor ElastiCache ``DescribeCacheEngineVersions``,
``DescribeServiceUpdates`` and ``DescribeUpdateActions`` (each answers HTTP 500
"not implemented"). So these calls are tested here with ``Stubber``, fed responses shaped as in
the AWS API reference (RDS API Reference: DescribePendingMaintenanceActions,
DescribeDBEngineVersions; ElastiCache API Reference: DescribeCacheEngineVersions,
DescribeUpdateActions). What moto does serve (ECR, DescribeDBInstances, DescribeCacheClusters)
is tested against the moto server in tests/tasks/security_patch_review/test_patches_aws.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_patch_review.patches import (
    OPEN_UPDATE_STATUSES,
    newest_postgres_minor_from_rds,
    newest_same_major,
    review_elasticache,
    review_rds,
    server_version,
    version_key,
)

pytestmark = pytest.mark.unit

ARN = "arn:aws:rds:us-east-1:123456789012:db:sanvi-production-db"


def _client(service: str):
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
    )


def test_version_helpers() -> None:
    assert version_key("16.11") == (16, 11)
    assert version_key("7.0.x") == (7, 0)
    assert newest_same_major("16.3", ["16.3", "16.11", "16.9", "17.2"]) == "16.11"
    assert newest_same_major("7.0", ["6.2", "7.1"]) == "7.1"
    assert server_version(160003) == (16, 3) and server_version(180001) == (18, 1)


def _db_instance(version: str = "16.3") -> dict:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "sanvi-production-db",
                "DBInstanceArn": ARN,
                "Engine": "postgres",
                "EngineVersion": version,
                "AutoMinorVersionUpgrade": False,
            }
        ]
    }


def test_rds_pending_maintenance_and_newer_minor_are_findings_with_actions() -> None:
    client = _client("rds")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_pending_maintenance_actions",
            {
                "PendingMaintenanceActions": [
                    {
                        "ResourceIdentifier": ARN,
                        "PendingMaintenanceActionDetails": [
                            {
                                "Action": "system-update",
                                "Description": "New Operating System update is available",
                                "AutoAppliedAfterDate": datetime(2026, 12, 10, tzinfo=UTC),
                                "ForcedApplyDate": datetime(2026, 12, 20, tzinfo=UTC),
                                "OptInStatus": "pending",
                            }
                        ],
                    }
                ]
            },
            {},
        )
        stub.add_response(
            "describe_db_instances", _db_instance(), {"DBInstanceIdentifier": "sanvi-production-db"}
        )
        stub.add_response(
            "describe_db_engine_versions",
            {
                "DBEngineVersions": [
                    {
                        "Engine": "postgres",
                        "EngineVersion": "16.3",
                        "ValidUpgradeTarget": [
                            {"Engine": "postgres", "EngineVersion": "16.4", "IsMajorVersionUpgrade": False},
                            {"Engine": "postgres", "EngineVersion": "16.11", "IsMajorVersionUpgrade": False},
                            {"Engine": "postgres", "EngineVersion": "17.7", "IsMajorVersionUpgrade": True},
                        ],
                    }
                ]
            },
            {"Engine": "postgres", "EngineVersion": "16.3"},
        )
        results = {r.check: r for r in review_rds(client, ["sanvi-production-db"])}
        stub.assert_no_pending_responses()

    pending = results["rds.pending_maintenance[sanvi-production-db]"]
    assert pending.status is Status.WARNING and pending.observed == 1
    assert "system-update" in pending.summary and "2026-12-20" in pending.summary
    assert (
        "apply-pending-maintenance-action" in pending.details["action"] and ARN in pending.details["action"]
    )
    engine = results["rds.engine_version[sanvi-production-db]"]
    assert engine.status is Status.WARNING
    assert engine.details["newest"] == "16.11"  # the major upgrade to 17 is not a patch
    assert "--engine-version 16.11" in engine.summary


def test_rds_current_instance_is_ok_and_api_error_is_a_clear_result() -> None:
    client = _client("rds")
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_pending_maintenance_actions", "AccessDenied", "not authorized to perform it", 403
        )
        stub.add_response("describe_db_instances", _db_instance("16.11"))
        stub.add_response(
            "describe_db_engine_versions",
            {
                "DBEngineVersions": [
                    {"Engine": "postgres", "EngineVersion": "16.11", "ValidUpgradeTarget": []}
                ]
            },
        )
        results = {r.check: r for r in review_rds(client, ["sanvi-production-db"])}
    pending = results["rds.pending_maintenance[sanvi-production-db]"]
    assert pending.status is Status.ERROR and "DescribePendingMaintenanceActions" in pending.summary
    assert "AccessDenied" in pending.summary
    assert results["rds.engine_version[sanvi-production-db]"].status is Status.OK


def test_elasticache_engine_and_service_updates() -> None:
    client = _client("elasticache")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_cache_clusters",
            {
                "CacheClusters": [
                    {"CacheClusterId": "sanvi-production-redis", "Engine": "redis", "EngineVersion": "7.0.7"}
                ]
            },
            {"CacheClusterId": "sanvi-production-redis"},
        )
        stub.add_response(
            "describe_cache_engine_versions",
            {
                "CacheEngineVersions": [
                    {"Engine": "redis", "EngineVersion": "6.2.6"},
                    {"Engine": "redis", "EngineVersion": "7.0.7"},
                    {"Engine": "redis", "EngineVersion": "7.1.0"},
                ]
            },
            {"Engine": "redis"},
        )
        stub.add_response(
            "describe_update_actions",
            {
                "UpdateActions": [
                    {
                        "CacheClusterId": "sanvi-production-redis",
                        "ServiceUpdateName": "elc-20261101-001",
                        "ServiceUpdateSeverity": "important",
                        "ServiceUpdateType": "security-update",
                        "ServiceUpdateRecommendedApplyByDate": datetime(2026, 12, 1, tzinfo=UTC),
                        "UpdateActionStatus": "not-applied",
                        "SlaMet": "no",
                    }
                ]
            },
            {"CacheClusterIds": ["sanvi-production-redis"], "UpdateActionStatus": OPEN_UPDATE_STATUSES},
        )
        results = {r.check: r for r in review_elasticache(client, ["sanvi-production-redis"])}
        stub.assert_no_pending_responses()
    engine = results["elasticache.engine_version[sanvi-production-redis]"]
    assert engine.status is Status.WARNING and engine.details["newest"] == "7.1.0"
    updates = results["elasticache.service_updates[sanvi-production-redis]"]
    assert updates.status is Status.WARNING and "elc-20261101-001" in updates.summary
    assert "important" in updates.summary and "batch-apply-update-action" in updates.details["action"]


def test_newest_postgres_minor_from_rds_engine_versions() -> None:
    client = _client("rds")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_engine_versions",
            {
                "DBEngineVersions": [
                    {"Engine": "postgres", "EngineVersion": v} for v in ("15.15", "16.9", "16.11", "17.7")
                ]
            },
            {"Engine": "postgres"},
        )
        assert newest_postgres_minor_from_rds(client, 16) == 11
