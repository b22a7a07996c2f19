"""Run one component's checks so that a missing or unusable connection becomes a result, never a crash.

A check task that raised would hide what the other components found and leave the run summary
to say "task returned no results". :func:`guard` turns the two ways a connection can be wrong into
results naming the connection, so every component is still checked and reported:

- absent (:class:`~sanvi_ops.airflow_kit.connections.ConnectionMissing`): ``status_if_missing``;
  ``warning`` reads "not configured" (:func:`not_configured`), for components a deployment may
  leave out on purpose;
- defined but unusable (empty host, unparseable URI: ``ValueError``): ``error``.
"""

from __future__ import annotations

from collections.abc import Callable

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

__all__ = ["connection_result", "guard", "not_configured"]


def not_configured(component: str, exc: ConnectionMissing, consequence: str = "") -> CheckResult:
    """A component whose connection is deliberately absent: ``warning`` "not configured", naming
    the connection id and the variable that defines it. Never ``skipped``: a skipped result
    does not colour the run, and a deployment missing a piece must say so."""
    from sanvi_ops.airflow_kit.connections import env_var_name

    conn_id = exc.conn_id
    hint = f"set {env_var_name(conn_id)} or add connection {conn_id!r} in Admin → Connections"
    return CheckResult(
        check=f"{component}.connection",
        status=Status.WARNING,
        summary=f"{component} not configured: Airflow connection {conn_id!r} is not defined"
        + (f"; {consequence}" if consequence else "")
        + f" ({hint})",
        details={"not_configured": True, "connection": conn_id, "fix": hint},
        component=component,
    )


def connection_result(component: str, exc: Exception, status: Status) -> ResultDicts:
    """The one result of a component whose connection could not be used: ``<component>.connection``
    with ``status``, the exception's message as the summary."""
    return [
        CheckResult(
            check=f"{component}.connection", status=status, summary=str(exc), component=component
        ).to_dict()
    ]


def guard(
    component: str,
    status_if_missing: Status,
    fn: Callable[[MaintenanceConfig], list[CheckResult]],
    *,
    consequence: str = "",
) -> ResultDicts:
    """Run ``fn`` with the loaded config; a missing connection becomes a result with
    ``status_if_missing`` (``warning`` reads "not configured"), an unusable one (empty host,
    unparseable URI) an ``error``."""
    cfg = load_config()
    try:
        results = fn(cfg)
    except ConnectionMissing as exc:
        if status_if_missing is Status.WARNING:
            return [not_configured(component, exc, consequence).to_dict()]
        return connection_result(component, exc, status_if_missing)
    except ValueError as exc:  # defined but unusable (empty host, unparseable URI, ...)
        return connection_result(component, exc, Status.ERROR)
    return [r.to_dict() for r in results]
