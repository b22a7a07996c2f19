"""Failure callback attached to every task by the DAG frame (never copied into DAG files).

A task that crashes posts the guide-style failure message through the same outbox as
everything else: stored first, then sent. When the results store itself is unreachable the
message goes straight to Slack, and when that fails too, the log says so — a callback never
raises.
"""

from __future__ import annotations

import logging
from typing import Any

from sanvi_ops.airflow_kit.publish import FindingsReported, results_store, run_url

log = logging.getLogger(__name__)


def _is_findings_failure(exc: BaseException | None) -> bool:
    return exc is not None and FindingsReported.__name__ in str(exc)


def total_tries(max_tries: Any) -> int | None:
    """How many tries a task instance has in all: Airflow's ``ti.max_tries`` counts the *retries*
    (``task.retries``, raised by a clear), and the last try's ``try_number`` is ``max_tries + 1``;
    so a task with 3 retries fails at "try 4 of 4", not "try 4 of 3"."""
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 0:
        return None
    return max_tries + 1


def on_task_failure(context: Any) -> None:
    """Report a failed task instance (after its last retry) to Slack via the outbox."""
    exc = context.get("exception")
    if _is_findings_failure(exc if isinstance(exc, BaseException) else None):
        return  # the run's own report already said it
    try:
        _report_failure(context)
    except Exception:  # a callback must never mask the task's own failure
        log.exception("could not report the task failure")


def _report_failure(context: Any) -> None:
    from sanvi_ops.airflow_kit.connections import slack_client
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.notify.pipeline import process_failure
    from sanvi_ops.core.notify.render import failure_message
    from sanvi_ops.core.notify.slack import SlackSender, deliver_pending

    cfg = load_config()
    ti = context["ti"]
    dag_run = context["dag_run"]
    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    exc = context.get("exception")
    error = exc if isinstance(exc, BaseException) else None
    try_number = getattr(ti, "try_number", None)
    max_tries = total_tries(getattr(ti, "max_tries", None))
    log_url = run_url(dag_id, run_id) + f"/tasks/{ti.task_id}"
    client = slack_client(cfg.connections.slack)
    sender = SlackSender(client) if client is not None else None
    try:
        store = results_store(cfg)
        process_failure(
            store, cfg, dag_id, ti.task_id, run_id, try_number, error, log_url, max_tries=max_tries
        )
    except Exception:
        log.exception("results store unreachable; posting the failure straight to Slack")
        if sender is not None:
            text, blocks = failure_message(
                dag_id, ti.task_id, run_id, try_number, error, log_url, max_tries=max_tries
            )
            sender.post(cfg.slack.channel, text, blocks)
        return
    deliver_pending(store, sender)


# ------------------------------------------------------------------------------- deadlines


async def on_deadline_missed(context: dict[str, Any] | None = None, allowed_seconds: int = 0) -> str:
    """Airflow Deadline Alert callback (an ``AsyncCallback``: it runs in the triggerer).

    The scheduler calls it when a run has not finished ``allowed_seconds`` after it was queued;
    ``context`` is what Airflow passes: ``{"dag_run": <DAGRunResponse as JSON>, "deadline":
    {"id", "deadline_time"}}``. The message goes through the outbox (stored before it is sent);
    the blocking work runs in a thread so the triggerer's event loop is never held up.
    """
    import asyncio

    return await asyncio.to_thread(report_deadline_miss, context or {}, allowed_seconds)


def _when(value: Any) -> Any:
    from datetime import UTC, datetime

    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def report_deadline_miss(context: dict[str, Any], allowed_seconds: int) -> str:
    """Store and post the overdue-run message; never raises (a callback must not crash the triggerer)."""
    from datetime import UTC, datetime, timedelta

    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = str(dag_run.get("dag_id") or "unknown_dag")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "unknown_run")
    try:
        deadline_at = _when(deadline.get("deadline_time")) or datetime.now(UTC)
        queued_at = _when(dag_run.get("queued_at"))
        state = dag_run.get("state")
        allowed = timedelta(seconds=allowed_seconds)
        if not allowed_seconds and queued_at is not None:
            allowed = deadline_at - queued_at
        return _deliver_deadline(dag_id, run_id, deadline_at, queued_at, allowed, state)
    except Exception:
        log.exception("could not report the missed deadline of %s %s", dag_id, run_id)
        return "error"


def _deliver_deadline(
    dag_id: str, run_id: str, deadline_at: Any, queued_at: Any, allowed: Any, state: Any
) -> str:
    from sanvi_ops.airflow_kit.connections import slack_client
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.notify import render
    from sanvi_ops.core.notify.pipeline import process_deadline_miss
    from sanvi_ops.core.notify.slack import SlackSender, deliver_pending

    cfg = load_config()
    client = slack_client(cfg.connections.slack)
    sender = SlackSender(client) if client is not None else None
    url = run_url(dag_id, run_id)
    try:
        store = results_store(cfg)
        message_id = process_deadline_miss(
            store, cfg, dag_id, run_id, deadline_at=deadline_at, allowed=allowed, queued_at=queued_at,
            state=str(state) if state else None, run_url=url,
        )  # fmt: skip
    except Exception:
        log.exception("results store unreachable; posting the deadline alert straight to Slack")
        if sender is None:
            return "lost: no store and no Slack connection"
        text, blocks = render.deadline_message(
            dag_id, run_id, dag_id, queued_at=queued_at, deadline_at=deadline_at, allowed=allowed,
            state=str(state) if state else None, timezone_name=cfg.timezone, run_url=url,
        )  # fmt: skip
        sender.post(cfg.slack.channel, text, blocks)
        return "posted without the store"
    if message_id is None:
        return "silenced"
    report = deliver_pending(store, sender)
    log.warning("%s %s missed its deadline: queued as message %s; %s", dag_id, run_id, message_id, report)
    return f"queued {message_id}"
