"""The approval gate of a destructive DAG: manual runs that are safe to start.

::

    gate = approval_gate(maintenance_window=lambda cfg: cfg.tasks.database_maintenance.settings.window)

    @task(trigger_rule="none_failed")
    def vacuum_analyze() -> ...:
        policy = run_policy(get_current_context())   # change? dry run? refused, and why
        ...

    gate >> vacuum_analyze()

``approval_gate`` adds ``decide_run`` (the rules of :func:`sanvi_ops.core.run_policy.decide`: scheduled
runs change things; a manual run outside the DAG's maintenance window and the environment's
deployment window is a dry run unless started with ``dry_run: no``, which then needs approval)
and one :class:`~sanvi_ops.airflow_kit.signoff.RecordedApproval` per approver of the environment
(``deployment_windows.<env>.approvers``: Product Owner and CTO for production). An approval
task is skipped unless the decision needs it; otherwise it stores the request, mentions the
approver in Slack with the link to *Required actions*, and waits at most
``tasks.<dag_id>.approval.deadline``. Rejections and timeouts do not fail anything: the work
task reads the run's :class:`~sanvi_ops.core.run_policy.RunPolicy` (:func:`run_policy`) and reports
a clean ``skipped`` result naming who refused.

The DAG needs the ``dry_run`` Param (:func:`dry_run_param`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sanvi_ops.core.config import DeploymentWindow, MaintenanceConfig
from sanvi_ops.core.run_policy import DRY_RUN_CHOICES, RunPolicy, approver_task_id, decide

DECIDE_TASK_ID = "decide_run"

WindowOf = Callable[[MaintenanceConfig], DeploymentWindow | None]


def approval_spec(key: str, contact: Any) -> dict[str, Any]:
    """The recorded-approval spec of one approver (``contacts.<key>``): asked by name in Slack, a
    timeout is a warning, never escalated nor a result of its own, a rejection does not fail."""
    return {
        "kind": "approval",
        "team": key,
        "team_name": contact.role,
        "mention": contact.slack,
        "on_timeout": "warning",
        "escalate": False,
        "as_result": False,
        "fail_on_reject": False,
    }


def window_approvers(cfg: MaintenanceConfig, environment: str, key: str) -> list[str]:
    """Keys of ``contacts`` who approve changes to ``environment`` (its deployment window's
    approvers); a bad environment is an error naming the config ``key`` that chose it."""
    try:
        return list(cfg.deployment_windows[environment].approvers)
    except KeyError:
        raise KeyError(
            f"{key}: {environment!r} is not a key of deployment_windows ({', '.join(cfg.deployment_windows)})"
        ) from None


def dry_run_param() -> Any:
    """The ``dry_run`` trigger-form field every gated DAG declares."""
    from airflow.sdk import Param

    return Param(
        "auto",
        type="string",
        enum=list(DRY_RUN_CHOICES),
        title="Dry run",
        description=(
            "auto: a run started by hand outside the maintenance window and the production "
            "deployment window only reports what it would do; scheduled and in-window runs change "
            "things. yes: always a dry run. no: change things; outside the windows this waits for "
            "the approval of the deployment-window table's approvers (Product Owner & CTO)."
        ),
    )


def _gate_config(cfg: MaintenanceConfig, dag_id: str) -> tuple[str, Any, dt.timedelta]:
    gate = cfg.tasks[dag_id].approval if dag_id in cfg.tasks else None
    if gate is None:
        configured = sorted(t for t, spec in cfg.tasks.items() if spec.approval is not None)
        raise KeyError(
            f"tasks.{dag_id}.approval: DAG {dag_id!r} has an approval gate but no entry "
            f"(configured: {', '.join(configured) or 'none'})"
        )
    try:
        policy = cfg.deployment_windows[gate.environment]
    except KeyError:
        raise KeyError(
            f"tasks.{dag_id}.approval.environment: {gate.environment!r} is not a key of "
            f"deployment_windows ({', '.join(cfg.deployment_windows)})"
        ) from None
    return gate.environment, policy, gate.deadline


def decide_for_run(
    cfg: MaintenanceConfig,
    dag_id: str,
    params: Mapping[str, Any],
    run_type: str,
    now: dt.datetime,
    maintenance_window: WindowOf | None = None,
) -> RunPolicy:
    """:func:`sanvi_ops.core.run_policy.decide` with this DAG's config, Params and run type."""
    environment, policy, _ = _gate_config(cfg, dag_id)
    return decide(
        dry_run=str(params.get("dry_run") or "auto"),
        scheduled=str(run_type).lower().endswith("scheduled"),
        now=now,
        timezone=cfg.timezone,
        environment=environment,
        policy=policy,
        maintenance_window=maintenance_window(cfg) if maintenance_window else None,
    )


def _needs(approver: str) -> Callable[[Mapping[str, Any]], str | None]:
    def precheck(context: Mapping[str, Any]) -> str | None:
        decided = RunPolicy.from_dict(context["ti"].xcom_pull(task_ids=DECIDE_TASK_ID))
        if approver in decided.approvers:
            return None
        return f"no approval needed: {decided.reason}"

    return precheck


def approval_gate(*, maintenance_window: WindowOf | None = None, dag_id: str | None = None) -> list[Any]:
    """Add ``decide_run`` and the approval tasks; returns them for ``gate >> work``.

    :param maintenance_window: the DAG's own window from the config (``lambda cfg:
        cfg.tasks.database_maintenance.settings.window``); a manual run inside it changes things without approval.
    :param dag_id: whose ``tasks.<dag_id>.approval`` applies; default the DAG being defined.
    """
    from airflow.sdk import get_current_context, task

    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.signoff import TASK_TIMEOUT, RecordedApproval, extend_for_wait, hitl_users
    from sanvi_ops.core.config import load_config

    cfg = load_config()
    current = DagContext.get_current()
    dag_id = dag_id or (current.dag_id if current is not None else None)
    if not dag_id:
        raise ValueError("approval_gate() needs dag_id= when called outside a DAG definition")
    environment, policy, deadline = _gate_config(cfg, dag_id)

    @task(task_id=DECIDE_TASK_ID)
    def decide_run() -> dict[str, Any]:
        """Change, dry run, or wait for approval: the deployment-window rules for this run."""
        import logging

        context = get_current_context()
        policy = decide_for_run(
            load_config(),
            dag_id,
            context["params"],
            str(context["dag_run"].run_type),
            dt.datetime.now(dt.UTC),
            maintenance_window,
        )
        logging.getLogger(__name__).info("%s: %s", policy.action, policy.reason)
        return policy.as_dict()

    decided = decide_run()
    approvals = []
    for key in policy.approvers:
        contact = cfg.contacts[key]
        approval = RecordedApproval(
            task_id=approver_task_id(key),
            subject=f"Approve a change to {environment} outside its deployment window: {dag_id}",
            body=(
                f"A manual run of **{dag_id}** asks to change **{environment}** outside the "
                f"deployment window. The guide requires the approval of "
                f"{' & '.join(cfg.contacts[a].role for a in policy.approvers)}; you answer as "
                f"**{contact.role}**.\n\nRun Params: `{{{{ params | tojson }}}}`\n\n"
                "Reject (or leave unanswered) and nothing is changed."
            ),
            spec=approval_spec(key, contact),
            precheck=_needs(key),
            assigned_users=hitl_users(cfg.approvals.responders.get(key, [])),
            response_timeout=deadline,
            execution_timeout=TASK_TIMEOUT,
            doc_md=f"Approval by the {contact.role} of a manual change outside the {environment} "
            "deployment window; skipped when none is needed.",
        )
        decided >> approval
        approvals.append(approval)
    extend_for_wait(current, deadline)
    return [decided, *approvals]


def run_policy(context: Mapping[str, Any]) -> RunPolicy:
    """In the work task: the run's policy as decided, with the approvals' answers folded in.

    The task then applies its own window with :meth:`RunPolicy.at_start
    <sanvi_ops.core.run_policy.RunPolicy.at_start>` when it starts working.
    """
    ti = context["ti"]
    decided = RunPolicy.from_dict(ti.xcom_pull(task_ids=DECIDE_TASK_ID))
    answers = {a: ti.xcom_pull(task_ids=approver_task_id(a), default=None) for a in decided.approvers}
    return decided.answered(answers)
