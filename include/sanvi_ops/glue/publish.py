"""The tail every maintenance DAG shares: record → notify.

``record`` gathers the check tasks' results (a check task that crashed becomes an ``error``
result naming it, so one dead component never hides the others), stores them, opens or
resolves incidents and writes the Slack messages to the outbox — all before anything is
announced. ``notify`` then delivers everything pending in the outbox (also what earlier runs
could not deliver), and finally fails the run when a result was critical or in error, so the
Airflow grid shows red exactly when the report does. That failure is not reported again by
the failure callback.
"""

from __future__ import annotations

import logging
from typing import Any

from sanvi_ops.results import CheckResult, Status, worst

log = logging.getLogger(__name__)


class FindingsReported(Exception):
    """The run found critical/error results; they are stored and reported, so don't retry."""


def run_url(dag_id: str, run_id: str) -> str:
    """Link to a run in the Airflow UI (``[api] base_url``)."""
    from urllib.parse import quote

    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def collect_results(ti: Any, task_ids: list[str]) -> list[CheckResult]:
    """Results pushed by each check task; a task with nothing to give becomes an ``error`` result."""
    results: list[CheckResult] = []
    for task_id in task_ids:
        value = ti.xcom_pull(task_ids=task_id, default=None)
        if value is None:
            results.append(
                CheckResult(
                    check=f"{task_id}.task",
                    status=Status.ERROR,
                    summary=f"task {task_id} returned no results (it failed or was skipped; see its log)",
                    component=task_id,
                )
            )
            continue
        results.extend(CheckResult.from_dict(item) for item in value)
    return results


def record_run(dag_id: str, run_id: str, logical_date: Any, results: list[CheckResult]) -> dict[str, Any]:
    """Store results, incidents and outbox messages for one run (idempotent per run and check)."""
    from sanvi_ops.config import load_config
    from sanvi_ops.glue.connections import postgres_dsn
    from sanvi_ops.notify.pipeline import process_run
    from sanvi_ops.store import ResultStore

    cfg = load_config()
    store = ResultStore(postgres_dsn(cfg.connections.store))
    store.migrate()
    process_run(store, cfg, dag_id, run_id, logical_date, results, run_url(dag_id, run_id))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    status = worst(results)
    log.info(
        "%s %s: %s (%s)",
        dag_id,
        run_id,
        status.value,
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
    )
    return {"status": status.value, "counts": counts}


def deliver(dag_id: str) -> dict[str, Any]:
    """Send everything pending in the outbox, oldest first; report what was (not) delivered."""
    from sanvi_ops.config import load_config
    from sanvi_ops.glue.connections import postgres_dsn, slack_client
    from sanvi_ops.notify.slack import SlackSender, deliver_pending
    from sanvi_ops.store import ResultStore

    cfg = load_config()
    store = ResultStore(postgres_dsn(cfg.connections.store))
    client = slack_client(cfg.connections.slack)
    if client is None:
        log.warning(
            "No Slack connection %r: messages stay in the outbox (the results store) as the sink",
            cfg.connections.slack,
        )
    sender = SlackSender(client) if client is not None else None
    report = deliver_pending(store, sender)
    log.info("%s: outbox delivery: %s", dag_id, report)
    return report.as_dict() if hasattr(report, "as_dict") else dict(vars(report))


def publish(*checks: Any) -> Any:
    """Wire ``record`` and ``notify`` after the given check tasks (TaskFlow XComArgs)."""
    from airflow.sdk import TriggerRule, task

    task_ids = [c.operator.task_id for c in checks]

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3)
    def record(**context: Any) -> dict[str, Any]:
        """Store every check's result (and incidents, and the outbox) before announcing anything."""
        results = collect_results(context["ti"], task_ids)
        dag_run = context["dag_run"]
        return record_run(dag_run.dag_id, dag_run.run_id, context.get("logical_date"), results)

    @task
    def notify(summary: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Deliver the outbox to Slack; then make the run red if anything was critical."""
        report = deliver(context["dag_run"].dag_id)
        status = Status(summary["status"])
        if status in (Status.CRITICAL, Status.ERROR):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{FindingsReported.__name__}: overall status {status.value} "
                f"({summary['counts']}); results stored and reported"
            )
        return report

    recorded = record()
    for c in checks:
        c >> recorded
    return notify(recorded)  # type: ignore[arg-type]
