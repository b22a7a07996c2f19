"""Answers the local moto server gives to the AWS calls moto 5.2 does not implement.

The weekly Security Patch Review asks RDS for pending maintenance actions and engine versions
and ElastiCache for engine versions and open service updates; moto answers those with HTTP 500
("not yet implemented"). The ``make run`` stack's moto process (:mod:`.moto_state`) adds them,
so the review reads a realistic account instead of failing for a reason of the stack:

- ``rds:DescribePendingMaintenanceActions``: nothing pending;
- ``rds:DescribeDBEngineVersions``: the engine versions of :data:`RDS_VERSIONS`, each with its
  newer same-major minors as upgrade targets (the demo instance's 16.4 has 16.8 waiting: a
  warning in the review, part of the demo's story);
- ``elasticache:DescribeCacheEngineVersions``: :data:`ELASTICACHE_VERSIONS`;
- ``elasticache:DescribeUpdateActions``: no open service update.

Only the local stack loads this; the tests run plain moto (where the checks must report these
calls as ``error``) and production talks to AWS.
"""

from __future__ import annotations

from typing import Any

#: Engine versions the local RDS offers, per engine (oldest first).
RDS_VERSIONS: dict[str, list[str]] = {
    "postgres": ["15.10", "16.4", "16.6", "16.8", "17.2", "17.4"],
}
#: Engine versions the local ElastiCache offers, per engine.
ELASTICACHE_VERSIONS: dict[str, list[tuple[str, str]]] = {
    "redis": [("6.2.6", "redis6.x"), ("7.0.7", "redis7"), ("7.1", "redis7")],
}


def _major(version: str) -> str:
    return version.split(".")[0]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def rds_engine_versions(engine: str | None, version: str | None) -> list[dict[str, Any]]:
    """``DBEngineVersions`` for ``engine`` (all when ``None``), one version when given."""
    out = []
    for eng, versions in RDS_VERSIONS.items():
        if engine and engine != eng:
            continue
        for v in versions:
            if version and v != version:
                continue
            targets = [
                {
                    "Engine": eng,
                    "EngineVersion": t,
                    "IsMajorVersionUpgrade": _major(t) != _major(v),
                    "AutoUpgrade": False,
                }
                for t in versions
                if _key(t) > _key(v)
            ]
            out.append(
                {
                    "Engine": eng,
                    "EngineVersion": v,
                    "DBParameterGroupFamily": f"{eng}{_major(v)}",
                    "DBEngineDescription": "PostgreSQL",
                    "DBEngineVersionDescription": f"PostgreSQL {v}",
                    "ValidUpgradeTarget": targets,
                    "Status": "available",
                }
            )
    return out


def install() -> None:
    """Add the four actions to moto's RDS and ElastiCache responses (this process only)."""
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse
    from moto.rds.responses import RDSResponse

    def describe_pending_maintenance_actions(self: Any) -> Any:
        return ActionResult({"PendingMaintenanceActions": []})

    def describe_db_engine_versions(self: Any) -> Any:
        versions = rds_engine_versions(self._get_param("Engine"), self._get_param("EngineVersion"))
        return ActionResult({"DBEngineVersions": versions})

    def describe_cache_engine_versions(self: Any) -> Any:
        engine = self._get_param("Engine")
        versions = [
            {
                "Engine": eng,
                "EngineVersion": v,
                "CacheParameterGroupFamily": family,
                "CacheEngineDescription": eng.capitalize(),
                "CacheEngineVersionDescription": f"{eng.capitalize()} {v}",
            }
            for eng, items in ELASTICACHE_VERSIONS.items()
            if not engine or engine == eng
            for v, family in items
        ]
        return ActionResult({"CacheEngineVersions": versions})

    def describe_update_actions(self: Any) -> Any:
        return ActionResult({"UpdateActions": []})

    for cls, name, fn in (
        (RDSResponse, "describe_pending_maintenance_actions", describe_pending_maintenance_actions),
        (RDSResponse, "describe_db_engine_versions", describe_db_engine_versions),
        (ElastiCacheResponse, "describe_cache_engine_versions", describe_cache_engine_versions),
        (ElastiCacheResponse, "describe_update_actions", describe_update_actions),
    ):
        if not hasattr(cls, name):  # a newer moto implements it: keep moto's
            setattr(cls, name, fn)
