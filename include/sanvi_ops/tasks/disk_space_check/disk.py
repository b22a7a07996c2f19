"""Weekly disk space check: filesystems, RDS storage and PostgreSQL sizes, with a forecast.

Sources (each independent; one that fails becomes a result that says so):

- Filesystems: node_exporter's ``node_filesystem_size_bytes`` / ``node_filesystem_avail_bytes``
  from Prometheus (:func:`filesystem_usage`). Used = size − avail, i.e. what non-root users
  cannot write any more, which is what fills up an application.
- RDS: ``FreeStorageSpace`` from CloudWatch against the instance's ``AllocatedStorage``
  (:func:`rds_usage`).
- PostgreSQL: every database's size and the largest tables (:func:`database_sizes`).

Each target with a capacity is graded (:func:`grade_usage`): used % against warning / critical
(the guide's > 80 % / > 90 %), and a days-until-full estimate from a least-squares line through
the samples earlier runs kept in the results store plus this run's (:func:`days_until_full`).
A forecast of "full within ``full_within_days``" is a warning even below 80 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types, denied_result, is_denied
from sanvi_ops.core.prometheus import PrometheusClient
from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status, grade

__all__ = [
    "FILESYSTEM_AVAIL_QUERY",
    "FILESYSTEM_SIZE_QUERY",
    "Usage",
    "database_sizes",
    "days_until_full",
    "filesystem_usage",
    "grade_usage",
    "load_samples",
    "rds_usage",
    "save_samples",
]

SQL_DIR = Path(__file__).resolve().parent / "sql"
APPLICATION_NAME = "sanvi-ops-disk"
GIB = 1024**3

#: node_exporter series, pseudo filesystems left out.
FILESYSTEM_SIZE_QUERY = 'node_filesystem_size_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'
FILESYSTEM_AVAIL_QUERY = 'node_filesystem_avail_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'


_sql = query_loader(SQL_DIR)


@dataclass(frozen=True)
class Usage:
    """Space used on one target now.

    :param target: stable id, also the store's key (``fs:db-1:/var/lib/postgresql``,
        ``rds:sanvi-production-db``, ``postgres:sanvi``).
    :param check: the result's check name.
    :param size_bytes: capacity; ``None`` when the target has none of its own (a database).
    """

    target: str
    check: str
    component: str
    label: str
    used_bytes: float
    size_bytes: float | None
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def used_pct(self) -> float | None:
        if not self.size_bytes:
            return None
        return 100.0 * self.used_bytes / self.size_bytes


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


# -- forecast ----------------------------------------------------------------------------------


def growth_per_day(samples: Sequence[tuple[datetime, float]]) -> float | None:
    """Least-squares slope of used bytes over time, in bytes per day; ``None`` under two samples
    or when all samples share one instant."""
    if len(samples) < 2:
        return None
    t0 = min(t for t, _ in samples)
    xs = [(t - t0).total_seconds() / 86400.0 for t, _ in samples]
    ys = [float(v) for _, v in samples]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def days_until_full(
    samples: Sequence[tuple[datetime, float]], size_bytes: float, used_now: float
) -> float | None:
    """Days until ``used_now`` reaches ``size_bytes`` at the fitted growth; ``None`` when there
    is no growth to extrapolate (too few samples, flat or shrinking)."""
    slope = growth_per_day(samples)
    if slope is None or slope <= 0:
        return None
    return max(0.0, (size_bytes - used_now) / slope)


def grade_usage(
    usage: Usage,
    history: Sequence[tuple[datetime, float]],
    *,
    warning_pct: float,
    critical_pct: float,
    full_within_days: float = 30.0,
) -> CheckResult:
    """One result for one target: used % against the thresholds, plus the forecast.

    ``history``: earlier samples (time, used bytes) of this target; this run's is added here.
    """
    samples = sorted([*((t, v) for t, v in history if t < usage.at), (usage.at, usage.used_bytes)])
    slope = growth_per_day(samples)
    details: dict[str, Any] = dict(usage.details) | {
        "used_bytes": usage.used_bytes,
        "size_bytes": usage.size_bytes,
        "samples": len(samples),
        "growth_bytes_per_day": None if slope is None else round(slope, 1),
    }
    pct = usage.used_pct
    if pct is None or usage.size_bytes is None:
        growth = "" if slope is None else f", growing {_gib(slope * 7)} per week"
        return CheckResult(
            check=usage.check,
            status=Status.OK,
            summary=f"{usage.label}: {_gib(usage.used_bytes)}{growth}",
            metric="used_bytes",
            observed=usage.used_bytes,
            unit="bytes",
            details=details,
            component=usage.component,
        )
    days = days_until_full(samples, usage.size_bytes, usage.used_bytes)
    details["days_until_full"] = None if days is None else round(days, 1)
    status = grade(pct, warning_pct, critical_pct)
    soon = days is not None and days < full_within_days
    if status is Status.OK and soon:
        status = Status.WARNING
    if days is None:
        forecast = "no growth trend yet (one sample)" if len(samples) < 2 else "not growing"
    else:
        forecast = f"full in ~{days:.0f} days at {_gib(slope or 0.0)}/day"
    return CheckResult(
        check=usage.check,
        status=status,
        summary=(
            f"{usage.label}: {pct:.1f} % used ({_gib(usage.used_bytes)} of {_gib(usage.size_bytes)}); {forecast}"
            + (f" — within {full_within_days:g} days" if soon else "")
        ),
        metric="disk_used_pct",
        observed=round(pct, 2),
        unit="%",
        thresholds={"warning": warning_pct, "critical": critical_pct, "full_within_days": full_within_days},
        details=details,
        severity="P2" if status is Status.CRITICAL else None,
        component=usage.component,
    )


# -- sources -------------------------------------------------------------------------------------


def filesystem_usage(
    prom: PrometheusClient,
    at: datetime,
    *,
    size_query: str = FILESYSTEM_SIZE_QUERY,
    avail_query: str = FILESYSTEM_AVAIL_QUERY,
) -> list[Usage]:
    """One :class:`Usage` per (instance, mountpoint) with both a size and an avail series.

    :raises PrometheusError: as :meth:`PrometheusClient.query` (the caller reports it).
    """

    def key(labels: Mapping[str, str]) -> tuple[str, str, str]:
        return (labels.get("instance", "?"), labels.get("mountpoint", "?"), labels.get("device", ""))

    sizes = {key(s.labels): s.value for s in prom.query(size_query, at=at)}
    avails = {key(s.labels): s.value for s in prom.query(avail_query, at=at)}
    out: list[Usage] = []
    for k in sorted(sizes.keys() & avails.keys()):
        instance, mountpoint, device = k
        size, avail = sizes[k], avails[k]
        if size <= 0:
            continue
        out.append(
            Usage(
                target=f"fs:{instance}:{mountpoint}",
                check=f"disk.filesystem[{instance}:{mountpoint}]",
                component=instance,
                label=f"{instance} {mountpoint}",
                used_bytes=size - avail,
                size_bytes=size,
                at=at,
                details={"instance": instance, "mountpoint": mountpoint, "device": device},
            )
        )
    return out


def rds_usage(rds: Any, cloudwatch: Any, instances: Iterable[str], at: datetime) -> list[Usage | CheckResult]:
    """Allocated storage (RDS) and free storage (CloudWatch ``FreeStorageSpace``, the newest
    5-minute average of the last 3 hours) per instance.

    An instance that is missing or has no datapoints becomes a ``warning`` / ``error`` result;
    AWS errors (throttling after botocore's retries, access denied) an ``error`` result.
    """
    from botocore.exceptions import ClientError

    out: list[Usage | CheckResult] = []
    for name in instances:
        check = f"disk.rds[{name}]"
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"]
            allocated_gib = float(found[0]["AllocatedStorage"])
            stats = cloudwatch.get_metric_statistics(
                Namespace="AWS/RDS",
                MetricName="FreeStorageSpace",
                Dimensions=[{"Name": "DBInstanceIdentifier", "Value": name}],
                StartTime=at - timedelta(hours=3),
                EndTime=at,
                Period=300,
                Statistics=["Average"],
            )
        except ClientError as exc:
            if is_denied(exc):
                # rds:DescribeDBInstances or cloudwatch:GetMetricStatistics, by the refused call
                service = "rds" if exc.operation_name == "DescribeDBInstances" else "cloudwatch"
                out.append(denied_result(check, exc, service=service, component="rds"))
                continue
            code = exc.response.get("Error", {}).get("Code", "")
            status = Status.WARNING if code == "DBInstanceNotFound" else Status.ERROR
            out.append(
                CheckResult(
                    check=check,
                    status=status,
                    summary=f"RDS {name}: {code or 'error'}: {exc.response.get('Error', {}).get('Message', exc)}",
                    component="rds",
                )
            )
            continue
        except aws_error_types() as exc:
            out.append(
                CheckResult(
                    check=check,
                    status=Status.ERROR,
                    summary=f"RDS {name}: {aws_error_text(exc)}",
                    component="rds",
                )
            )
            continue
        points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
        if not points:
            out.append(
                CheckResult(
                    check=check,
                    status=Status.WARNING,
                    summary=f"RDS {name}: CloudWatch has no FreeStorageSpace datapoints in the last 3 hours",
                    component="rds",
                )
            )
            continue
        size = allocated_gib * GIB
        free = float(points[-1]["Average"])
        out.append(
            Usage(
                target=f"rds:{name}",
                check=check,
                component="rds",
                label=f"RDS {name}",
                used_bytes=max(0.0, size - free),
                size_bytes=size,
                at=at,
                details={
                    "allocated_gib": allocated_gib,
                    "free_bytes": free,
                    "datapoint_at": str(points[-1]["Timestamp"]),
                },
            )
        )
    return out


def database_sizes(
    dsn: str, at: datetime, *, top_tables: int = 10, timeout_s: float = 30
) -> tuple[list[Usage], CheckResult]:
    """Each database's size (a :class:`Usage` without capacity, for the growth record) and one
    ``postgres.largest_tables`` result for the connected database.

    :raises psycopg.Error: the caller reports it.
    """
    with psycopg.connect(
        dsn,
        connect_timeout=max(1, int(timeout_s)),
        application_name=APPLICATION_NAME,
        autocommit=True,
        row_factory=dict_row,
    ) as conn:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout_s * 1000)}ms"])
        dbs = conn.execute(_sql("database_sizes.sql")).fetchall()
        tables = conn.execute(_sql("largest_tables.sql"), {"limit": top_tables}).fetchall()
        current = conn.execute("SELECT current_database() AS db").fetchone()
    usages = [
        Usage(
            target=f"postgres:{r['database']}",
            check=f"postgres.database_size[{r['database']}]",
            component="postgres",
            label=f"database {r['database']}",
            used_bytes=float(r["bytes"]),
            size_bytes=None,
            at=at,
        )
        for r in dbs
    ]
    items = [dict(r) for r in tables]
    db = current["db"] if current else "?"
    top = ", ".join(f"{r['schema']}.{r['table']} {_gib(r['bytes'])}" for r in items[:3])
    result = CheckResult(
        check="postgres.largest_tables",
        status=Status.OK,
        summary=f"largest tables in {db}: {top}" if items else f"database {db} has no tables",
        metric="largest_table_bytes",
        observed=float(items[0]["bytes"]) if items else 0.0,
        unit="bytes",
        details={"database": db, "tables": items},
        component="postgres",
    )
    return usages, result


# -- the store's samples ---------------------------------------------------------------------------


def save_samples(store_dsn: str, run_id: str, usages: Iterable[Usage]) -> None:
    """Keep this run's measurements (idempotent per ``(target, run_id)``)."""
    rows = [(u.target, run_id, u.at, u.used_bytes, u.size_bytes) for u in usages]
    if not rows:
        return
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME) as conn, conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO disk_samples (target, run_id, sampled_at, used_bytes, size_bytes)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (target, run_id) DO UPDATE
            SET sampled_at = EXCLUDED.sampled_at, used_bytes = EXCLUDED.used_bytes,
                size_bytes = EXCLUDED.size_bytes
            """,
            rows,
        )


def load_samples(
    store_dsn: str, targets: Iterable[str], since: datetime, *, exclude_run_id: str | None = None
) -> dict[str, list[tuple[datetime, float]]]:
    """Earlier samples per target since ``since`` (oldest first), other runs' only."""
    wanted = sorted(set(targets))
    out: dict[str, list[tuple[datetime, float]]] = {t: [] for t in wanted}
    if not wanted:
        return out
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME, row_factory=dict_row) as conn:
        rows = conn.execute(
            """
            SELECT target, sampled_at, used_bytes FROM disk_samples
            WHERE target = ANY(%s) AND sampled_at >= %s AND run_id IS DISTINCT FROM %s
            ORDER BY sampled_at
            """,
            [wanted, since, exclude_run_id],
        ).fetchall()
    for r in rows:
        out[r["target"]].append((r["sampled_at"], float(r["used_bytes"])))
    return out
