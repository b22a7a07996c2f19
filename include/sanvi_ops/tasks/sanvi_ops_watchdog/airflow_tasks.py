"""Bodies of the watchdog DAG's tasks (``dags/meta/sanvi_ops_watchdog.py``).

``ping_heartbeat``: request the dead man's switch URL from the Airflow connection
``meta_monitoring.watchdog.heartbeat_connection`` and record a heartbeat row in the store. No
connection is a supported set-up (recorded, logged as a warning, the task succeeds); a failed ping
is recorded and then raised, so the task retries and, at its last try, the failure callback says
so in Slack.

``sweep_incidents``: :func:`sanvi_ops.core.escalation.sweep` (escalations of unacknowledged
incidents, incidents resolved when their DAG no longer reports them, the weekly P4 summary).

``flush_outbox``: record the runs spooled while the results store was down (with their detection
time; :mod:`sanvi_ops.core.notify.store_down`), then deliver everything pending, so a message Slack
refused earlier goes out within minutes even when no other DAG runs.
"""

from __future__ import annotations

import logging
from typing import Any

from sanvi_ops.airflow_kit.publish import results_store

log = logging.getLogger(__name__)


class HeartbeatFailed(RuntimeError):
    """The outside monitor did not take the ping (recorded; the task retries)."""


def heartbeat_url(conn_id: str) -> str:
    """The ping URL of an HTTP connection: ``host`` holding the full URL, or scheme/host/port with
    the path in ``extra.path`` (or ``schema``, as Airflow's URI form stores a URL's path there)."""
    from sanvi_ops.airflow_kit.connections import get_connection

    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty (put the ping URL there)")
    extra = conn.extra_dejson or {}
    host = str(conn.host)
    if "://" in host:
        base = host
    else:
        scheme = str(extra.get("scheme") or "https")
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        path = str(extra.get("path") or conn.schema or "")
        if path:
            base = base.rstrip("/") + "/" + path.lstrip("/")
    return base


def ping_heartbeat(dag_id: str, run_id: str) -> dict[str, Any]:
    from sanvi_ops.airflow_kit.connections import ConnectionMissing
    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.sanvi_ops_watchdog.heartbeat import ping

    cfg = load_config()
    settings = cfg.meta_monitoring.watchdog
    try:
        url: str | None = heartbeat_url(settings.heartbeat_connection)
    except ConnectionMissing as exc:
        url, detail = None, f"no heartbeat ping: {exc}; nothing outside Airflow notices a dead scheduler"
    if url is not None:
        result = ping(url, timeout_s=settings.timeout_seconds, body=f"{dag_id} {run_id}")
        pinged, detail = result.ok, result.detail
    else:
        pinged = False
    store = results_store(cfg)
    store.record_heartbeat(dag_id, run_id, pinged=pinged, detail=detail)
    if url is None:
        log.warning(detail)
        return {"pinged": False, "detail": detail}
    if not pinged:
        raise HeartbeatFailed(detail)
    log.info(detail)
    return {"pinged": True, "detail": detail}


def sweep_incidents(dag_id: str, run_id: str) -> dict[str, Any]:
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.escalation import sweep

    cfg = load_config()
    store = results_store(cfg)
    return sweep(store, cfg, source=dag_id, run_id=run_id).as_dict()


def flush_outbox(dag_id: str) -> dict[str, Any]:
    from sanvi_ops.airflow_kit.publish import deliver

    return deliver(dag_id, replay_spool=True)
