"""Airflow Connections → the plain clients the checks take.

Only this module knows that credentials come from Airflow (env ``AIRFLOW_CONN_*`` or a secrets
backend); everything in ``sanvi_ops`` below it takes ready DSNs and clients. Errors name the
connection id and never echo a password.

Every PostgreSQL connection the project makes (application database, results store, scratch
database, the Maintenance page) is built by the Postgres provider's ``PostgresHook``
(:func:`postgres_params`), so whatever a user's Airflow connection carries reaches libpq the way
the hook would pass it: ``options``, ``sslmode`` and the other ``ssl*`` keys, ``keepalives*``,
``target_session_attrs``, and ``iam: true`` (an RDS IAM authentication token, generated through
the connection named by ``aws_conn_id``, used as the password). Redis connections are read by the
Redis provider's ``RedisHook`` (:func:`redis_url`: ``db``, ``ssl``, ``ssl_cert_reqs``,
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from typing import Any
from urllib.parse import quote, urlencode


class ConnectionMissing(LookupError):
    """An Airflow connection the task needs is not defined."""

    def __init__(self, message: str, conn_id: str = "") -> None:
        super().__init__(message)
        self.conn_id = conn_id


class ConnectionUnparseable(ValueError):
    """An Airflow connection is defined but cannot be read (a URI with port ``notaport``,
    JSON that is not JSON, ...). A ``ValueError``: callers that report a defined-but-unusable
    connection as an error handle it as such, never as "not configured"."""

    def __init__(self, message: str, conn_id: str = "") -> None:
        super().__init__(message)
        self.conn_id = conn_id


def env_var_name(conn_id: str) -> str:
    """The environment variable that defines ``conn_id`` (``AIRFLOW_CONN_<ID>``)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


_USERINFO = re.compile(r"//([^@/?#]*)@")


def _scrub(text: str, raw: str) -> str:
    """``text`` without the credentials ``raw`` (a connection URI or JSON) carries."""
    secrets: list[str] = [m.group(1) for m in _USERINFO.finditer(raw)]
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        secrets += [str(doc[k]) for k in ("password", "login") if doc.get(k)]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _parse_problem(conn_id: str) -> str | None:
    """Why the ``AIRFLOW_CONN_*`` value of ``conn_id`` does not parse, or ``None`` when there is no
    such variable or it parses.

    The Task SDK's lookup logs a secrets backend's failure at debug level and goes on to say the
    connection "isn't defined"; parsing the variable again here tells "defined but unreadable"
    apart from "not defined".
    """
    raw = os.environ.get(env_var_name(conn_id))
    if raw is None:
        return None
    from airflow.sdk import Connection

    try:
        if raw.lstrip().startswith("{"):
            Connection.from_json(raw, conn_id=conn_id)
        else:
            conn = Connection.from_uri(raw, conn_id=conn_id)
            if not conn.conn_type:
                return "not a connection URI (expected <type>://[login:password@]host[:port][/schema])"
    except Exception as exc:  # noqa: BLE001 - any parse failure is the reason we report
        return _scrub(" ".join(str(exc).split()) or type(exc).__name__, raw)
    return None


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``.

    :raises ConnectionMissing: nothing defines it (naming the variable to set).
    :raises ConnectionUnparseable: ``AIRFLOW_CONN_<ID>`` is set but cannot be parsed:
        "cannot parse connection X: <reason>".
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        problem = _parse_problem(conn_id)
        if problem is not None:
            raise ConnectionUnparseable(
                f"cannot parse connection {conn_id!r}: {problem} (fix {env_var_name(conn_id)})", conn_id
            ) from None
        raise ConnectionMissing(
            f"Airflow connection {conn_id!r} is not defined (set {env_var_name(conn_id)} "
            "or add it in Admin → Connections)",
            conn_id,
        ) from None


def connection_exists(conn_id: str) -> bool:
    """Whether ``conn_id`` is defined (an unparseable definition raises: it is not "absent")."""
    try:
        get_connection(conn_id)
    except ConnectionMissing:
        return False
    return True


# ------------------------------------------------------------------------------------------
# PostgreSQL: PostgresHook builds the parameters
# ------------------------------------------------------------------------------------------

#: Keys the hook passes to the driver that are not libpq connection parameters.
_DRIVER_ONLY = frozenset({"row_factory", "cursor_factory"})


def _hook_connect_args(conn_id: str) -> dict[str, Any]:
    """The keyword arguments ``PostgresHook(postgres_conn_id=conn_id).get_conn()`` would pass to
    ``psycopg.connect``: host, port, user, password (an RDS IAM token when the connection says
    ``iam: true``), dbname, and every extra the hook forwards.

    The provider has no public method that returns them without connecting; ``get_conn`` is the
    only place that assembles them, so its last step (``_create_connection``, which calls
    ``psycopg.connect``) is replaced by one that keeps the arguments. A provider release that
    renamed that step would make ``get_conn`` connect for real: that is refused here rather than
    opening a connection nobody closes.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    if not callable(getattr(PostgresHook, "_create_connection", None)):  # pragma: no cover
        raise RuntimeError(
            "apache-airflow-providers-postgres changed: PostgresHook._create_connection is gone; "
            "sanvi_ops.airflow_kit.connections needs updating"
        )

    class _ArgsOnly(PostgresHook):  # type: ignore[misc]
        captured: dict[str, Any] | None = None

        def _create_connection(self, conn_args: dict[str, Any]) -> Any:
            self.captured = dict(conn_args)
            return None

    hook = _ArgsOnly(postgres_conn_id=conn_id)
    hook.get_conn()
    assert hook.captured is not None
    return hook.captured


def _libpq_value(value: Any) -> Any:
    if isinstance(value, bool):  # JSON true/false (keepalives, ...): libpq wants 1/0
        return int(value)
    return value


def postgres_params(conn_id: str, *, application_name: str = "sanvi_ops") -> dict[str, Any]:
    """libpq parameters of a Postgres connection, as ``PostgresHook`` builds them.

    ``application_name`` and ``connect_timeout`` (10 s) are defaults: the connection's extras win.

    :raises ConnectionMissing: the connection is not defined.
    :raises ConnectionUnparseable: its definition cannot be parsed.
    :raises ValueError: host or database empty, an extra libpq does not know, or the IAM token
        could not be generated (each naming the connection).
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty")
    if not conn.schema:
        raise ValueError(f"Airflow connection {conn_id!r}: schema (the database name) is empty")
    try:
        args = _hook_connect_args(conn_id)
    except (ConnectionMissing, ValueError):
        raise
    except Exception as exc:  # IAM token: no AWS connection, no credentials, ...
        if (conn.extra_dejson or {}).get("iam"):
            aws = (conn.extra_dejson or {}).get("aws_conn_id", "aws_default")
            raise ValueError(
                f"Airflow connection {conn_id!r}: iam is true but no RDS IAM auth token could be "
                f"generated through AWS connection {aws!r}: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())}"
            ) from None
        raise
    params: dict[str, Any] = {
        k: _libpq_value(v) for k, v in args.items() if k not in _DRIVER_ONLY and v is not None
    }
    params.setdefault("port", 5432)
    params.setdefault("application_name", application_name)
    params.setdefault("connect_timeout", 10)
    params.setdefault("password", "")
    try:
        make_conninfo(**params)  # libpq rejects keys it does not know: say which connection
    except psycopg.ProgrammingError as exc:
        raise ValueError(
            f"Airflow connection {conn_id!r}: an extra is not a libpq connection parameter "
            f"({' '.join(str(exc).split())})"
        ) from None
    return params


def postgres_extras(conn_id: str) -> dict[str, Any]:
    """The libpq parameters a Postgres connection's extras add (``sslmode``, ``options``,
    keepalives, ...), as ``PostgresHook`` forwards them, for a caller that supplies host, port and
    credentials itself (a restored RDS instance's endpoint). No IAM token: the caller logs in."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    extra = get_connection(conn_id).extra_dejson or {}
    return {
        k: _libpq_value(v)
        for k, v in extra.items()
        if k not in PostgresHook.ignored_extra_options and k not in _DRIVER_ONLY and v is not None
    }


def postgres_dsn(conn_id: str, *, application_name: str = "sanvi_ops") -> str:
    """libpq connection string of a Postgres connection, built by ``PostgresHook`` (see
    :func:`postgres_params`): every extra the hook forwards and RDS IAM authentication included.

    With ``iam: true`` the password is a token valid for 15 minutes: build the DSN when it is
    needed, not once per long task.
    """
    from psycopg.conninfo import make_conninfo

    return str(make_conninfo(**postgres_params(conn_id, application_name=application_name)))


# ------------------------------------------------------------------------------------------
# Redis: RedisHook reads the connection
# ------------------------------------------------------------------------------------------

#: redis-py keyword arguments that ``redis://`` URLs carry as query parameters.
_REDIS_URL_QUERY = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


def redis_url(conn_id: str) -> str:
    """``redis://`` (``rediss://`` with the ``ssl`` extra) URL of a Redis connection, as the Redis
    provider's ``RedisHook`` reads it: login/password, ``db``, and the SSL extras
    (``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_check_hostname``) as the URL's query, which ``redis.Redis.from_url`` reads back.

    :raises ValueError: empty host, or cluster mode (the health check talks to one node).
    """
    from airflow.providers.redis.hooks.redis import RedisHook

    conn = get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"Airflow connection {conn_id!r}: host is empty")
    hook = RedisHook(redis_conn_id=conn_id)
    client = hook.get_conn()  # type: ignore[no-untyped-call]  # builds it; connects on first use
    if hook.cluster:
        raise ValueError(
            f"Airflow connection {conn_id!r}: cluster mode is set; the health check needs one node "
            "(point the connection at the configuration endpoint's primary)"
        )
    pool = client.connection_pool
    kw: dict[str, Any] = pool.connection_kwargs
    import redis

    tls = issubclass(pool.connection_class, redis.SSLConnection)
    auth = ""
    if kw.get("password"):
        auth = f"{quote(kw.get('username') or '', safe='')}:{quote(str(kw['password']), safe='')}@"
    elif kw.get("username"):
        auth = f"{quote(kw['username'], safe='')}@"
    query: dict[str, str] = {}
    for key in _REDIS_URL_QUERY if tls else ():
        value = kw.get(key)
        if value is not None:
            query[key] = str(value).lower() if isinstance(value, bool) else str(value)
    url = f"{'rediss' if tls else 'redis'}://{auth}{kw.get('host') or conn.host}:{kw.get('port') or 6379}"
    url += f"/{int(kw.get('db') or 0)}"
    if query:
        url += "?" + urlencode(query)
    return url


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
    return aws_hook(conn_id, service).get_client_type(region_name=region_name)


def aws_hook(conn_id: str, service: str, config: Any = None) -> Any:
    """The Amazon provider's ``AwsBaseHook`` for ``service`` (``config``: a botocore ``Config``),
    whose sessions share one botocore data loader per process (:func:`share_botocore_loader`)."""
    return _shared_loader_hook()(aws_conn_id=conn_id, client_type=service, config=config)


@functools.cache
def _shared_loader_hook() -> type:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    class SharedLoaderAwsHook(AwsBaseHook):  # type: ignore[misc]
        def get_session(self, region_name: str | None = None, deferrable: bool = False) -> Any:
            session = super().get_session(region_name=region_name, deferrable=deferrable)
            share_botocore_loader(session)
            return session

    return SharedLoaderAwsHook


#: One botocore data loader per process (per ``AWS_DATA_PATH``), the first session's own.
_LOADERS: dict[Any, Any] = {}
_LOADERS_LOCK = threading.Lock()


def share_botocore_loader(session: Any) -> None:
    """Give ``session`` (boto3's or botocore's) the process's shared botocore data loader.

    Every session the hook makes has a loader of its own, which reads and parses the service's
    JSON model and ``endpoints.json`` again for each client: about 0.1 s of CPU per client, and a
    task makes several. The loader only caches botocore's read-only data files, which botocore
    already shares between the clients of one session; credentials stay per session."""
    core = getattr(session, "_session", session)  # boto3's Session wraps botocore's
    if not hasattr(core, "register_component"):
        return
    path = core.get_config_variable("data_path")
    with _LOADERS_LOCK:
        if path not in _LOADERS:
            _LOADERS[path] = core.get_component("data_loader")
        loader = _LOADERS[path]
    core.register_component("data_loader", loader)


def slack_client(conn_id: str, *, max_retries: int = 3) -> Any | None:
    """slack_sdk WebClient from the Slack provider's connection, or ``None`` when none is defined.

    Retries: 429 honours ``Retry-After``; 5xx and connection errors back off. ``None`` means the
    outbox is the sink (the caller logs that).
    """
    if not connection_exists(conn_id):
        return None
    from airflow.providers.slack.hooks.slack import SlackHook

    from sanvi_ops.core.notify.slack import retry_handlers

    hook = SlackHook(slack_conn_id=conn_id, retry_handlers=retry_handlers(max_retries))
    return hook.client
