"""Bodies of the Log Review's tasks: config + connections in, result dicts out.

The review window ends at the run's data interval end (the scheduled time), so a rerun of the
same run reads the same window. Signatures are remembered in the results store; when the store
cannot be reached the review still runs and says that new signatures were not tracked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.log_review.logs import utc

log = logging.getLogger(__name__)


def window_end(context: dict[str, Any]) -> datetime:
    """The end of the review window: data interval end, else logical date, else now (UTC)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if isinstance(value, datetime):
            return utc(value)
    return datetime.now(UTC)


def _signature_store(cfg: MaintenanceConfig) -> tuple[Any, CheckResult | None]:
    from sanvi_ops.airflow_kit.connections import ConnectionMissing
    from sanvi_ops.core.store import StoreError
    from sanvi_ops.tasks.log_review.logs import SignatureStore

    try:
        dsn = results_store(cfg).dsn
    except (ConnectionMissing, StoreError, ValueError) as exc:
        log.warning("log signatures not tracked: %s", exc)
        return None, CheckResult(
            check="logs.signature_memory",
            status=Status.WARNING,
            summary=f"new signatures not tracked (results store unavailable: {exc})",
            component="logs",
        )
    return SignatureStore(dsn), None


def cloudwatch_logs(
    run_id: str, end: datetime, *, hours: int | None = None, groups: Sequence[str] | None = None
) -> ResultDicts:
    """Review the configured log groups over ``tasks.log_review.settings.lookback`` before ``end``.

    :param hours: the manual run's ``hours`` Param: look back this many hours instead.
    :param groups: the manual run's ``log_groups`` Param: review only these groups.
    """
    from sanvi_ops.tasks.log_review.logs import limits_from, logs_client_config, review_group

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        lr = cfg.tasks.log_review.settings
        window = lr.lookback if hours is None else timedelta(hours=hours)
        chosen = list(lr.log_groups) if not groups else list(groups)
        if not chosen:
            return [
                CheckResult(
                    check="logs.groups",
                    status=Status.SKIPPED,
                    summary="nothing to review: tasks.log_review.settings.log_groups is empty in the maintenance config",
                    component="logs",
                )
            ]
        from sanvi_ops.airflow_kit.connections import aws_hook, get_connection

        get_connection(cfg.connections.aws)  # ConnectionMissing names it
        hook = aws_hook(cfg.connections.aws, "logs")
        ours = logs_client_config(lr.aws_max_attempts)
        base = hook.config  # the connection's own botocore settings, if any; ours win on retries
        client = hook.get_client_type(config=base.merge(ours) if base is not None else ours)
        store, note = _signature_store(cfg)
        results = [note] if note else []
        for group in chosen:
            results.extend(
                review_group(
                    client,
                    group,
                    end=end,
                    window=window,
                    pattern=lr.filter_pattern,
                    max_events=lr.max_events_per_group,
                    max_total_events=lr.max_total_events_per_group,
                    limits=limits_from(cfg.thresholds.error_rate, lr.errors_per_minute),
                    store=store,
                    run_id=run_id,
                    new_window=lr.new_signature_window,
                    top=lr.top_signatures,
                    attempts=lr.aws_max_attempts,
                )
            )
        return results

    return guard("logs", Status.ERROR, run)


def postgres_log(run_id: str, end: datetime) -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.log_review.logs import review_postgres_log

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        lr = cfg.tasks.log_review.settings
        if not lr.postgres_log:
            return [
                CheckResult(
                    check="postgres.server_log",
                    status=Status.SKIPPED,
                    summary="turned off (tasks.log_review.settings.postgres_log: false)",
                    component="postgres",
                )
            ]
        store, _note = _signature_store(cfg)
        return [
            review_postgres_log(
                postgres_dsn(cfg.connections.app_db),
                end=end,
                max_bytes=lr.postgres_log_max_bytes,
                store=store,
                run_id=run_id,
                new_window=lr.new_signature_window,
                top=lr.top_signatures,
            )
        ]

    return guard("postgres", Status.ERROR, run)
