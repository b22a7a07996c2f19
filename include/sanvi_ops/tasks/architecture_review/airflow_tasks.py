"""Bodies of the Architecture Review's tasks: config + connections in, result dicts out.

``inventory`` reads AWS (every area guarded on its own) and returns the snapshot as the
``architecture.inventory`` result plus an ``error`` per area that could not be read; the two
comparisons take that list (by XCom) and need no AWS access of their own.
"""

from __future__ import annotations

from typing import Any

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.cost_optimization.airflow_tasks import run_date

SERVICES = ("ecs", "elbv2", "rds", "elasticache", "s3", "ec2")


def spec(cfg: MaintenanceConfig) -> Any:
    """The documented architecture (``architecture_review``) as the library's spec."""
    from sanvi_ops.tasks.architecture_review.architecture import ArchitectureSpec

    ar = cfg.tasks.architecture_review.settings
    return ArchitectureSpec(
        ecs_cluster=ar.ecs_cluster or cfg.tasks.system_health_check.settings.ecs_cluster,
        ecs_services={name: s.min_tasks for name, s in ar.ecs_services.items()},
        load_balancers={name: lb.model_dump() for name, lb in ar.load_balancers.items()},
        require_alb=ar.require_alb,
        rds_instances={name: db.model_dump() for name, db in ar.rds_instances.items()},
        cache_clusters={name: cc.model_dump() for name, cc in ar.cache_clusters.items()},
        buckets=tuple(dict.fromkeys(ar.buckets)),  # a name listed twice is one bucket
        vpc_names=tuple(dict.fromkeys(ar.vpc_names)),
        require_public_and_private_per_az=ar.require_public_and_private_per_az,
        require_nat_gateway=ar.require_nat_gateway,
        undocumented_ok=tuple(ar.undocumented_ok),
    )


def inventory(context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.architecture_review import architecture

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        documented = spec(cfg)
        clients = {s: aws_client(cfg.connections.aws, s) for s in SERVICES}
        found, errors = architecture.take_inventory(
            clients, ecs_cluster=documented.ecs_cluster, vpc_names=documented.vpc_names
        )
        return [architecture.inventory_result(found, taken_at=run_date(context)), *errors]

    return guard("aws", Status.ERROR, run)


def _inventory_of(results: ResultDicts) -> dict[str, Any] | None:
    from sanvi_ops.tasks.architecture_review.architecture import INVENTORY_CHECK

    for item in results or []:
        if item.get("check") == INVENTORY_CHECK:
            return dict(item.get("details", {}).get("inventory", {}))
    return None


def _no_inventory(check: str) -> ResultDicts:
    return [
        CheckResult(
            check=check,
            status=Status.ERROR,
            summary="no inventory to compare: take_inventory produced none (see its log)",
            component="aws",
        ).to_dict()
    ]


def documented(results: ResultDicts) -> ResultDicts:
    from sanvi_ops.tasks.architecture_review.architecture import compare_with_documented

    found = _inventory_of(results)
    if found is None:
        return _no_inventory("architecture.documented")
    return guard("aws", Status.ERROR, lambda cfg: compare_with_documented(found, spec(cfg)))


def last_quarter(results: ResultDicts, context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.architecture_review.architecture import changes_since, previous_inventory

    found = _inventory_of(results)
    if found is None:
        return _no_inventory("architecture.changes")
    dag_run = context["dag_run"]

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        dsn = results_store(cfg).dsn
        previous = previous_inventory(
            dsn, dag_id=dag_run.dag_id, run_id=dag_run.run_id, before=run_date(context)
        )
        return [changes_since(previous, found)]

    return guard("store", Status.ERROR, run)
