"""Security Patch Review against real servers: ECR on the moto server, the PostgreSQL server.

ECR ``DescribeImages`` / ``DescribeImageScanFindings`` are served by moto; the scan results are
set through moto's own API (``/moto-api/static/ecr/scan-finding-results``). The RDS and
ElastiCache answers moto does not implement are covered with ``Stubber`` in
tests/tasks/security_patch_review/test_patches.py; what moto *does* answer for them (an HTTP 500 page, which botocore
cannot parse: ``ResponseParserError``) is tested here against the real server, since that is
what the local stack's weekly run meets.
"""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_patch_review.patches import (
    review_ecr,
    review_elasticache,
    review_postgres_server,
    review_rds,
    server_version,
)

pytestmark = pytest.mark.integration

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "digest": "sha256:" + "a" * 64,
            "size": 1,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        },
        "layers": [],
    }
)


def _set_findings(endpoint: str, repo: str, counts: dict[str, int], findings: list[dict]) -> None:
    body = {
        "results": [
            {
                "registryId": "123456789012",
                "repositoryName": repo,
                "imageId": {},
                "imageScanStatus": {
                    "status": "COMPLETE",
                    "description": "The scan was completed successfully.",
                },
                "imageScanFindings": {"findings": findings, "findingSeverityCounts": counts},
            }
        ],
        "region": "us-east-1",
    }
    req = urllib.request.Request(
        f"{endpoint}/moto-api/static/ecr/scan-finding-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback moto server
        resp.read()


def _repo(ecr, name: str, *, push: bool = True, scan: bool = True) -> None:
    ecr.create_repository(repositoryName=name)
    if push:
        ecr.put_image(repositoryName=name, imageManifest=MANIFEST, imageTag="latest")
        if scan:
            ecr.start_image_scan(repositoryName=name, imageId={"imageTag": "latest"})


def test_ecr_findings_graded_with_actions(aws_endpoint, boto_client) -> None:
    ecr = boto_client("ecr")
    for name in ("sanvi-backend", "sanvi-frontend", "sanvi-worker", "sanvi-clean"):
        _repo(ecr, name, scan=name != "sanvi-worker")
    _repo(ecr, "sanvi-empty", push=False)
    _set_findings(
        aws_endpoint,
        "sanvi-backend",
        {"CRITICAL": 2, "HIGH": 1, "MEDIUM": 4},
        [
            {
                "name": "CVE-2026-0001",
                "severity": "CRITICAL",
                "uri": "https://nvd.nist.gov/vuln/detail/CVE-2026-0001",
                "attributes": [
                    {"key": "package_name", "value": "openssl"},
                    {"key": "package_version", "value": "3.0.1"},
                ],
            },
            {
                "name": "CVE-2026-0002",
                "severity": "CRITICAL",
                "attributes": [{"key": "package_name", "value": "zlib"}],
            },
            {"name": "CVE-2026-0003", "severity": "HIGH", "attributes": []},
            {"name": "CVE-2026-0004", "severity": "MEDIUM", "attributes": []},
        ],
    )
    _set_findings(aws_endpoint, "sanvi-clean", {"LOW": 3}, [])

    results = {
        r.check: r
        for r in review_ecr(
            ecr,
            [
                "sanvi-backend",
                "sanvi-frontend",
                "sanvi-worker",
                "sanvi-clean",
                "sanvi-empty",
                "sanvi-missing",
            ],
        )
    }
    backend = results["ecr.image_findings[sanvi-backend]"]
    assert backend.status is Status.CRITICAL and backend.severity == "P3" and backend.observed == 3
    assert "2 CRITICAL, 1 HIGH" in backend.summary and "CVE-2026-0001" in backend.summary
    assert "openssl" in backend.details["action"] and "zlib" in backend.details["action"]
    assert [f["name"] for f in backend.details["findings"]] == [
        "CVE-2026-0001",
        "CVE-2026-0002",
        "CVE-2026-0003",
    ]

    # moto's default scan result: one HIGH finding.
    assert results["ecr.image_findings[sanvi-frontend]"].status is Status.WARNING
    never = results["ecr.image_findings[sanvi-worker]"]
    assert never.status is Status.WARNING and "never scanned" in never.summary
    assert "start-image-scan" in never.details["action"]
    assert results["ecr.image_findings[sanvi-clean]"].status is Status.OK
    assert results["ecr.image_findings[sanvi-empty]"].status is Status.SKIPPED
    missing = results["ecr.image_findings[sanvi-missing]"]
    assert missing.status is Status.ERROR and "RepositoryNotFoundException" in missing.summary


def test_postgres_server_minor_against_config_and_rds(make_db) -> None:
    dsn = make_db("ver")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    major, minor = server_version(int(row[0]))

    behind = review_postgres_server(dsn, {major: minor + 1})
    assert behind.status is Status.WARNING and f"{major}.{minor + 1}" in behind.summary
    assert behind.details["source"] == "config" and "Action:" in behind.summary

    current = review_postgres_server(dsn, {major: minor})
    assert current.status is Status.OK

    asked: list[int] = []
    from_rds = review_postgres_server(dsn, {}, rds_lookup=lambda m: asked.append(m) or minor + 2)
    assert asked == [major] and from_rds.status is Status.WARNING and from_rds.details["source"] == "rds"

    unknown = review_postgres_server(dsn, {}, rds_lookup=None)
    assert unknown.status is Status.SKIPPED and "postgres_newest_minor" in unknown.summary

    def boom(_m: int) -> int:
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com/")

    failed = review_postgres_server(dsn, {}, rds_lookup=boom)
    assert failed.status is Status.ERROR and "EndpointConnectionError" in failed.summary
    assert "rds.us-east-1.amazonaws.com" in failed.summary

    def bug(_m: int) -> int:
        raise KeyError("not an AWS failure")

    with pytest.raises(KeyError):  # a bug is not reported as an AWS problem
        review_postgres_server(dsn, {}, rds_lookup=bug)


def test_postgres_unreachable_is_an_error_result(pg) -> None:
    r = review_postgres_server(
        "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2", {18: 1}, timeout_s=2
    )
    assert r.status is Status.ERROR and "cannot read" in r.summary


def test_apis_moto_does_not_implement_are_error_results_naming_the_api(aws_endpoint, boto_client) -> None:
    """moto answers DescribePendingMaintenanceActions, DescribeDBEngineVersions,
    DescribeCacheEngineVersions and DescribeUpdateActions with an HTTP 500 page: each check that
    needs one is an ``error`` naming the API, the others still report, nothing is raised."""
    rds = boto_client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="sanvi-production-db",
        Engine="postgres",
        EngineVersion="16.3",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="sanvi",
        MasterUserPassword="not-a-secret-1",
    )
    ec = boto_client("elasticache")
    ec.create_cache_cluster(
        CacheClusterId="sanvi-redis", Engine="redis", EngineVersion="7.0", CacheNodeType="cache.t3.micro",
        NumCacheNodes=1,
    )  # fmt: skip

    found = {r.check: r for r in review_rds(rds, ["sanvi-production-db", "sanvi-gone"])}
    pending = found["rds.pending_maintenance[sanvi-production-db]"]
    assert pending.status is Status.ERROR
    assert pending.summary.startswith(
        "rds:DescribePendingMaintenanceActions failed: unreadable answer (HTTP 500"
    )
    assert pending.details["aws_error"] == "ResponseParserError" and "<" not in pending.summary
    engine = found["rds.engine_version[sanvi-production-db]"]
    assert engine.status is Status.ERROR and "rds:DescribeDBEngineVersions" in engine.summary
    gone = found["rds.patches[sanvi-gone]"]  # implemented by moto: a real AWS error code
    assert gone.status is Status.ERROR and "DBInstanceNotFound" in gone.summary

    found = {r.check: r for r in review_elasticache(ec, ["sanvi-redis"])}
    version = found["elasticache.engine_version[sanvi-redis]"]
    assert version.status is Status.ERROR
    assert "elasticache:DescribeCacheEngineVersions failed: unreadable answer" in version.summary
    updates = found["elasticache.service_updates[sanvi-redis]"]
    assert updates.status is Status.ERROR and "elasticache:DescribeUpdateActions" in updates.summary


def test_patch_tasks_report_moto_gaps_instead_of_crashing(aws_endpoint, boto_client, monkeypatch) -> None:
    """The Airflow task bodies (what crashed three tries in a row on the local stack) return
    results; ``aws_default`` points at the moto server, the shipped config names the resources."""
    from sanvi_ops.tasks.security_patch_review import airflow_tasks as patch_tasks
    from tests.fixtures.connections import aws_conn

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn(aws_endpoint))
    boto_client("rds").create_db_instance(
        DBInstanceIdentifier="sanvi-production-db", Engine="postgres", EngineVersion="16.3",
        DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="sanvi",
        MasterUserPassword="not-a-secret-1",
    )  # fmt: skip
    boto_client("elasticache").create_cache_cluster(
        CacheClusterId="sanvi-production-redis", Engine="redis", EngineVersion="7.0",
        CacheNodeType="cache.t3.micro", NumCacheNodes=1,
    )  # fmt: skip
    for task, api in (
        (patch_tasks.rds, "rds:DescribePendingMaintenanceActions"),
        (patch_tasks.elasticache, "elasticache:DescribeCacheEngineVersions"),
    ):
        results = task()
        errors = [r for r in results if r["status"] == "error"]
        assert any(api in r["summary"] for r in errors), results
