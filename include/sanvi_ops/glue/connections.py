"""Airflow Connections → the plain clients the checks take.

Only this module knows that credentials come from Airflow (env ``AIRFLOW_CONN_*`` or a secrets
backend); everything in ``sanvi_ops`` below it takes ready DSNs and clients. Errors name the
connection id and never echo a password.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


class ConnectionMissing(LookupError):
    """An Airflow connection the task needs is not defined."""


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``; :class:`ConnectionMissing` naming it when undefined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionMissing(
            f"Airflow connection {conn_id!r} is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
            "or add it in Admin → Connections)"
        ) from None


def connection_exists(conn_id: str) -> bool:
    try:
        get_connection(conn_id)
    except ConnectionMissing:
        return False
    return True


def postgres_dsn(conn_id: str, *, application_name: str = "sanvi_ops") -> str:
    """libpq connection string for a Postgres connection (host, port, login, password, schema = db)."""
    from psycopg.conninfo import make_conninfo

    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty")
    if not conn.schema:
        raise ValueError(f"Airflow connection {conn_id!r}: schema (the database name) is empty")
    extra = conn.extra_dejson or {}
    params: dict[str, Any] = {
        "host": conn.host,
        "port": conn.port or 5432,
        "dbname": conn.schema,
        "user": conn.login or "",
        "password": conn.password or "",
        "application_name": application_name,
        "connect_timeout": int(extra.get("connect_timeout", 10)),
    }
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"):
        if key in extra:
            params[key] = extra[key]
    return str(make_conninfo(**params))


def redis_url(conn_id: str) -> str:
    """``redis://`` (or ``rediss://`` when the extra says ``ssl``) URL for a Redis connection."""
    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty")
    extra = conn.extra_dejson or {}
    scheme = "rediss" if str(extra.get("ssl", "")).lower() in {"1", "true", "yes"} else "redis"
    auth = ""
    if conn.password:
        auth = f"{quote(conn.login or '', safe='')}:{quote(conn.password, safe='')}@"
    db = extra.get("db", 0)
    return f"{scheme}://{auth}{conn.host}:{conn.port or 6379}/{db}"


def http_base_url(conn_id: str) -> tuple[str, tuple[str, str] | None]:
    """Base URL and optional basic-auth pair of an HTTP connection (e.g. Prometheus)."""
    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty")
    host = conn.host
    if "://" not in host:
        scheme = conn.schema or "http"
        host = f"{scheme}://{host}"
    if conn.port:
        host = f"{host}:{conn.port}"
    auth = (conn.login, conn.password) if conn.login else None
    return host.rstrip("/"), auth


def aws_client(conn_id: str, service: str, region_name: str | None = None) -> Any:
    """A boto3 client through the Amazon provider's hook (honours ``endpoint_url`` in extras)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type=service)
    return hook.get_client_type(region_name=region_name)


def slack_client(conn_id: str, *, max_retries: int = 3) -> Any | None:
    """slack_sdk WebClient from the Slack provider's connection, or ``None`` when none is defined.

    Retries: 429 honours ``Retry-After``; 5xx and connection errors back off. ``None`` means the
    outbox is the sink (the caller logs that).
    """
    if not connection_exists(conn_id):
        return None
    from airflow.providers.slack.hooks.slack import SlackHook

    from sanvi_ops.notify.slack import retry_handlers

    hook = SlackHook(slack_conn_id=conn_id, retry_handlers=retry_handlers(max_retries))
    return hook.client
