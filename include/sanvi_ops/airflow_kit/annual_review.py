"""The Airflow side the four annual reviews share (``dags/annual/``).

::

    @maintenance_dag(__file__, __doc__)
    def vendor_contract_review() -> None:
        @task
        def review_cost_reviews() -> list[dict[str, Any]]:
            return contract_tasks.cost_reviews(get_current_context())

        report_and_sign_off(review_cost_reviews(), what="Annual contract and pricing review")

:func:`report_and_sign_off` adds ``write_report`` (every result of the given tasks, JSON and
Markdown, to the versioned evidence bucket: :mod:`sanvi_ops.core.annual_review`), ``record`` and
``notify`` (:func:`~sanvi_ops.airflow_kit.publish.publish`), then ``sign_off``: the responsible
team (``signoffs.dags.<dag_id>``) fills in a form (verdict, findings by severity, notes, report
URL) that is stored with the run (a ``sign_off.findings`` result).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def review_period(context: Mapping[str, Any], settings: Any) -> Any:
    """The year the run reviews: ``settings.lookback_days`` up to the run's logical date."""
    from sanvi_ops.core.annual_review import review_period as period
    from sanvi_ops.tasks.cost_optimization.airflow_tasks import run_date

    return period(run_date(dict(context)), settings.lookback_days)


def store_dsn(cfg: MaintenanceConfig) -> str:
    from sanvi_ops.airflow_kit.publish import results_store

    return str(results_store(cfg).dsn)


def from_store(check: str, fn: Callable[[MaintenanceConfig], list[CheckResult]]) -> ResultDicts:
    """``fn`` under :func:`~sanvi_ops.airflow_kit.guard.guard`; an unreadable results store is an
    ``error`` result ``check`` naming it (the evidence could not be read, never green)."""
    import psycopg

    from sanvi_ops.airflow_kit.guard import guard
    from sanvi_ops.core.store import StoreError

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        try:
            return fn(cfg)
        except (psycopg.Error, StoreError) as exc:
            return [
                CheckResult(
                    check=check,
                    status=Status.ERROR,
                    summary=f"evidence not readable from the results store "
                    f"({cfg.connections.store!r}): {' '.join(str(exc).split())[:300]}",
                    component="store",
                )
            ]

    return guard("store", Status.ERROR, run)


def write_report(
    task_ids: list[str], context: Mapping[str, Any], settings_of: Callable[[Any], Any]
) -> ResultDicts:
    """Every result of ``task_ids`` as the review's report (JSON + Markdown) in the evidence bucket."""
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.airflow_kit.guard import guard
    from sanvi_ops.airflow_kit.publish import collect_results
    from sanvi_ops.core import annual_review as ar

    ti, dag_run = context["ti"], context["dag_run"]

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        settings = settings_of(cfg)
        period = review_period(context, settings)
        results: list[tuple[str, CheckResult]] = []
        for task_id in task_ids:
            results += [(task_id, r) for r in collect_results(ti, [task_id])]
        spec = cfg.tasks[dag_run.dag_id]
        report = ar.build_report(
            dag_id=dag_run.dag_id,
            title=spec.title,
            run_id=dag_run.run_id,
            period=period,
            generated_at=dt.datetime.now(dt.UTC),
            results=results,
        )
        ev = cfg.tasks.compliance_audit.settings.evidence
        return [
            ar.write_report(
                aws_client(cfg.connections.aws, "s3"),
                report,
                ar.render_markdown(report),
                bucket=settings.evidence_bucket or ev.bucket,
                keys=ar.report_keys(settings.evidence_prefix, dag_run.dag_id, period),
                sse=ev.sse,
                kms_key_id=ev.kms_key_id,
                check="review.report",
            )
        ]

    return guard("review", Status.ERROR, run)


def findings_form() -> dict[str, Any]:
    """The sign-off form: verdict, findings by severity, notes and the report's URL."""
    from airflow.sdk import Param

    from sanvi_ops.core.annual_review import FINDING_SEVERITIES, VERDICTS

    form: dict[str, Any] = {
        # No value until someone enters one (the penetration test's form does the same): Airflow
        # validates Params when the task starts; an empty verdict is a warning when it comes back.
        "verdict": Param(
            None,
            type=["null", "string"],
            enum=[None, *VERDICTS],
            title="Verdict",
            description="accepted / accepted_with_actions (findings have owners) / not_accepted",
        ),
    }
    for sev in FINDING_SEVERITIES:
        form[f"findings_{sev}"] = Param(
            0, type="integer", minimum=0, title=f"Findings: {sev}", description=f"Number of {sev} findings"
        )
    form["notes"] = Param(
        "", type="string", title="Findings", description="Each finding, its owner and due date"
    )
    form["report_url"] = Param(
        "", type="string", title="Report URL", description="The assessor's or the team's full report, if any"
    )
    return form


def report_and_sign_off(*checks: Any, what: str, body: str, settings_of: Callable[[Any], Any]) -> Any:
    """``write_report`` after ``checks`` (however they ended), ``publish``, then the sign-off form."""
    from airflow.sdk import TriggerRule, get_current_context, task

    from sanvi_ops.airflow_kit.publish import publish
    from sanvi_ops.airflow_kit.signoff import sign_off
    from sanvi_ops.core.annual_review import review_findings

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_report_task(task_ids: list[str]) -> list[dict[str, Any]]:
        """Every result above, JSON and Markdown, to the versioned evidence bucket."""
        return write_report(task_ids, dict(get_current_context()), settings_of)

    report = write_report_task.override(task_id="write_report")([c.operator.task_id for c in checks])
    for c in checks:
        c >> report
    reported = publish(*checks, report)
    return sign_off(
        reported,
        subject=f"{what}: sign-off and findings",
        body=body,
        form=findings_form(),
        form_results=lambda task_id, form: [review_findings(task_id, form, what=what)],
    )
