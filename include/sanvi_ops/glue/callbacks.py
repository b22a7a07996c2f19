"""Failure callback attached to every task by the DAG frame (never copied into DAG files).

A task that crashes posts the guide-style failure message through the same outbox as
everything else: stored first, then sent. When the results store itself is unreachable the
message goes straight to Slack, and when that fails too, the log says so — a callback never
raises.
"""

from __future__ import annotations

import logging
from typing import Any

from sanvi_ops.glue.publish import FindingsReported, run_url

log = logging.getLogger(__name__)


def _is_findings_failure(exc: BaseException | None) -> bool:
    return exc is not None and FindingsReported.__name__ in str(exc)


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
    from sanvi_ops.config import load_config
    from sanvi_ops.glue.connections import postgres_dsn, slack_client
    from sanvi_ops.notify.pipeline import process_failure
    from sanvi_ops.notify.render import failure_message
    from sanvi_ops.notify.slack import SlackSender, deliver_pending
    from sanvi_ops.store import ResultStore

    cfg = load_config()
    ti = context["ti"]
    dag_run = context["dag_run"]
    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    exc = context.get("exception")
    error = exc if isinstance(exc, BaseException) else None
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    log_url = run_url(dag_id, run_id) + f"/tasks/{ti.task_id}"
    client = slack_client(cfg.connections.slack)
    sender = SlackSender(client) if client is not None else None
    try:
        store = ResultStore(postgres_dsn(cfg.connections.store))
        store.migrate()
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
