"""The tail every maintenance DAG shares: record → notify.

``record`` gathers the check tasks' results (a check task that crashed becomes an ``error``
result naming it, so one dead component never hides the others), stores them, opens or
resolves incidents and writes the Slack messages to the outbox — all before anything is
announced. ``notify`` then delivers everything pending in the outbox (also what earlier runs
could not deliver), and finally fails the run when a result was critical or in error, so the
Airflow grid shows red exactly when the report does. That failure is not reported again by
the failure callback.

When the results store cannot be reached, ``record`` does not fail (and wait for its retries):
it keeps the run in the spool (Airflow Variables, :mod:`sanvi_ops.airflow_kit.spool`) and posts what
the run found straight to Slack, marked "not recorded: store down", within seconds; ``notify``
then marks the run red. Before recording its own run, ``record`` replays whatever is spooled
(so does the watchdog every 15 minutes): :mod:`sanvi_ops.core.notify.store_down`.

The store's schema is migrated at deploy and start (``python -m sanvi_ops migrate``), never here:
``record`` only checks that no migration is missing (one read) and fails naming the store
connection and the missing migrations when one is (:class:`~sanvi_ops.core.store.SchemaBehind`).
"""

from __future__ import annotations

import logging
from typing import Any

from sanvi_ops.core.results import CheckResult, Status, worst

log = logging.getLogger(__name__)


class FindingsReported(Exception):
    """The run found critical/error results; they are stored and reported, so don't retry."""


def run_url(dag_id: str, run_id: str) -> str:
    """Link to a run in the Airflow UI (``[api] base_url``)."""
    from urllib.parse import quote

    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def results_store(cfg: Any, *, check: bool = True) -> Any:
    """The results store behind the config's ``connections.store``, named after that connection.

    :param check: refuse a store whose schema is behind this code
        (:meth:`~sanvi_ops.core.store.ResultStore.require_current`: one read, never a migration).
    :raises SchemaBehind: naming the connection and the missing migrations.
    """
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.store import ResultStore

    conn_id = cfg.connections.store
    store = ResultStore(postgres_dsn(conn_id), name=f"results store (connection {conn_id!r})")
    if check:
        store.require_current()
    return store


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
    """Store results, incidents and outbox messages for one run (idempotent per run and check).

    Spooled runs of any DAG are replayed first, so an outage's runs keep their place in time.
    With the store unreachable the run is spooled and announced directly (see the module doc);
    the returned summary then says ``spooled`` and why.
    """
    from datetime import UTC, datetime

    from sanvi_ops.airflow_kit.spool import AirflowVariableSpool
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.notify.pipeline import process_run
    from sanvi_ops.core.store import SchemaBehind, StoreError

    cfg = load_config()
    store = results_store(cfg, check=False)  # checked below: a store that is down spools the run
    spool = AirflowVariableSpool()
    detected_at = datetime.now(UTC)
    url = run_url(dag_id, run_id)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    status = worst(results)
    summary: dict[str, Any] = {"status": status.value, "counts": counts}
    try:
        store.require_current()
        _replay_first(store, cfg, spool)
        process_run(store, cfg, dag_id, run_id, logical_date, results, url, now=detected_at)
    except SchemaBehind:
        raise  # a deploy that skipped the migrate step: fail loudly, nothing is lost by waiting
    except StoreError as exc:
        summary.update(_spool_and_announce(cfg, spool, dag_id, run_id, logical_date, results, url,
                                           detected_at, str(exc)))  # fmt: skip
    log.info(
        "%s %s: %s (%s)%s",
        dag_id,
        run_id,
        status.value,
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
        " — NOT RECORDED: results store down; spooled" if summary.get("spooled") else "",
    )
    return summary


def _replay_first(store: Any, cfg: Any, spool: Any) -> None:
    """Record what earlier runs spooled before this run (a spool that cannot be read is logged,
    never a reason to lose this run's record; a store error propagates: this run is spooled too)."""
    from sanvi_ops.core.notify.store_down import replay
    from sanvi_ops.core.store import StoreError

    try:
        replayed = replay(store, cfg, spool)
    except StoreError:
        raise
    except Exception:  # noqa: BLE001 - e.g. the Variable API refused: the spool waits for the watchdog
        log.exception("could not replay the store-down spool; it stays for the next run or the watchdog")
        return
    if replayed.replayed or replayed.skipped or replayed.locked_out:
        log.warning(replayed.describe())


def _spool_and_announce(
    cfg: Any,
    spool: Any,
    dag_id: str,
    run_id: str,
    logical_date: Any,
    results: list[CheckResult],
    url: str,
    detected_at: Any,
    error: str,
) -> dict[str, Any]:
    """The store is down: keep the run in the spool, then post what it found straight to Slack."""
    from sanvi_ops.core.notify.store_down import announce, spool_run

    log.error("%s %s: results store unreachable: %s", dag_id, run_id, error)
    entry = spool_run(spool, cfg, dag_id, run_id, _aware(logical_date), results, url,
                      detected_at=detected_at, store_error=error)  # fmt: skip
    posted = announce(spool, entry, _sender(cfg))
    for line in posted:
        log.warning("store-down announcement: %s", line)
    return {"spooled": entry.spool_key, "store_error": error, "announced": posted}


def _aware(value: Any) -> Any:
    """Airflow hands a pendulum DateTime (or None); the spool keeps an aware stdlib datetime."""
    from datetime import UTC, datetime

    if value is None or not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sender(cfg: Any) -> Any:
    from sanvi_ops.airflow_kit.connections import slack_client
    from sanvi_ops.core.notify.slack import SlackSender

    client = slack_client(cfg.connections.slack)
    if client is None:
        log.warning(
            "No Slack connection %r: messages stay in the outbox (the results store) as the sink",
            cfg.connections.slack,
        )
        return None
    return SlackSender(client)


def deliver(dag_id: str, *, replay_spool: bool = False) -> dict[str, Any]:
    """Send everything pending in the outbox, oldest first; report what was (not) delivered.

    :param replay_spool: first record runs spooled while the store was down (the watchdog does).
    :raises StoreDeliveryInterrupted: the results store failed mid-flush (the task retries; the
        retry looks up any message whose post may have landed before posting it).
    """
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.notify.slack import deliver_pending

    cfg = load_config()
    store = results_store(cfg, check=False)
    if replay_spool:
        from sanvi_ops.airflow_kit.spool import AirflowVariableSpool
        from sanvi_ops.core.notify.store_down import replay

        store.require_current()
        log.info("%s: %s", dag_id, replay(store, cfg, AirflowVariableSpool()).describe())
    report = deliver_pending(store, _sender(cfg))
    log.info("%s: outbox delivery: %s", dag_id, report)
    if report.store_down:
        raise StoreDeliveryInterrupted(report.describe())
    return report.as_dict()


class StoreDeliveryInterrupted(RuntimeError):
    """The results store failed during delivery; nothing was lost (a retry resumes it)."""


def publish(*checks: Any, changes: Any = False) -> Any:
    """Wire ``record`` and ``notify`` after the given check tasks (TaskFlow XComArgs).

    :param changes: the tasks change production: ``True``, or a callable of the run's Params and
        the work's results that says whether this run did. Adds the change record and, for an emergency change, the
        post-implementation review after ``record`` (:mod:`sanvi_ops.airflow_kit.changes`).
    """
    from airflow.sdk import TriggerRule, task

    from sanvi_ops.airflow_kit.frame import task_retries

    task_ids = [c.operator.task_id for c in checks]

    # record retries 3 times (a store blip must not lose a run); the tests' flag turns it off too.
    @task(trigger_rule=TriggerRule.ALL_DONE, retries=task_retries(default=3))
    def record(**context: Any) -> dict[str, Any]:
        """Store every check's result (and incidents, and the outbox) before announcing anything."""
        results = collect_results(context["ti"], task_ids)
        dag_run = context["dag_run"]
        return record_run(dag_run.dag_id, dag_run.run_id, context.get("logical_date"), results)

    @task
    def notify(summary: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Deliver the outbox to Slack; then make the run red if anything was critical."""
        if summary.get("spooled"):
            from airflow.sdk.exceptions import AirflowFailException

            # Announced by record already; the outbox is in the store that is down.
            raise AirflowFailException(
                f"{FindingsReported.__name__}: results not recorded: store down "
                f"({summary.get('store_error')}); the run is spooled as {summary['spooled']} and "
                f"recorded when the store is back; overall status {summary['status']} ({summary['counts']})"
            )
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
    if changes:
        from sanvi_ops.airflow_kit.changes import change_tasks

        change_tasks(checks, recorded, changes)
    return notify(recorded)  # type: ignore[arg-type]
