"""
# Disk Space Check (weekly, Thursday 10:30)

*The guide: "Verify sufficient disk space on all systems" — DevOps.*

| task | what | held to |
|---|---|---|
| `check_filesystems` | every filesystem node_exporter reports (Prometheus `sanvi_prometheus`: `node_filesystem_size_bytes` − `node_filesystem_avail_bytes`) | used > 80 % warning, > 90 % critical (`thresholds.disk`) |
| `check_rds_storage` | each RDS instance in `tasks.system_health_check.settings.rds_instances`: CloudWatch `FreeStorageSpace` vs `AllocatedStorage` (`aws_default`) | as above |
| `check_database_sizes` | the application database (`sanvi_app_db`): every database's size and growth, the largest tables | reported |

Every run stores one sample per target in the results store (`disk_samples`); the
days-until-full estimate is a least-squares line through the samples of the last 90 days. A
forecast of "full within 30 days" is a warning even below 80 %. Settings: `tasks.disk_space_check.settings` in
`include/config/maintenance.yaml`.

Started by hand (trigger form): `checks` (filesystems, RDS, database sizes; one left out reports
`<task>.not_selected` as skipped), `evaluate_at` (ISO time, UTC: measure at that time instead of
the scheduled one), `mount_points` (only filesystems matching these patterns), `top_tables` (how
many of the largest tables to list). See the README, "Starting a DAG by hand".

## When it is yellow or red
1. Read the result: it names the host and mount point (or RDS instance), the % used and the
   forecast.
2. Filesystem: find what grew (`du -xh --max-depth=2 <mount> | sort -h`), rotate logs, clean
   old artefacts, or grow the volume.
3. RDS: enable storage autoscaling or raise `AllocatedStorage` (no downtime); check the largest
   tables (`check_database_sizes`) and bloat (the Wednesday VACUUM report).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import (
    checks_param,
    iso_time_param,
    optional_int_param,
    string_list_param,
    when_selected,
)
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.disk_space_check import airflow_tasks as disk_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = ("check_filesystems", "check_rds_storage", "check_database_sizes")


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "checks": checks_param(CHECKS),
        "evaluate_at": iso_time_param(
            title="Evaluate at",
            description="ISO time (UTC) to measure at; empty = the run's scheduled time.",
        ),
        "mount_points": string_list_param(
            title="Mount points",
            description=(
                "Check only filesystems whose mount point matches one of these shell patterns "
                "(e.g. /var/lib/*); empty = every filesystem, as scheduled."
            ),
        ),
        "top_tables": optional_int_param(
            title="Largest tables",
            description=(
                "How many of the largest tables check_database_sizes lists (1–100); "
                "empty = tasks.disk_space_check.settings.top_tables (10), as scheduled."
            ),
            minimum=1,
            maximum=100,
        ),
    },
)
def disk_space_check() -> None:
    @task
    @when_selected
    def check_filesystems() -> list[dict[str, Any]]:
        """Filesystem use per host and mount point from Prometheus node metrics, with a forecast."""
        return disk_tasks.filesystems(get_current_context())

    @task
    @when_selected
    def check_rds_storage() -> list[dict[str, Any]]:
        """RDS free storage (CloudWatch) against allocated storage, with a forecast."""
        return disk_tasks.rds(get_current_context())

    @task
    @when_selected
    def check_database_sizes() -> list[dict[str, Any]]:
        """Database sizes with their growth, and the largest tables."""
        return disk_tasks.postgres(get_current_context())

    publish(check_filesystems(), check_rds_storage(), check_database_sizes())


disk_space_check()
