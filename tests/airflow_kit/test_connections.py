"""Airflow connections → clients, through the provider hooks, against the real servers.

PostgreSQL: ``PostgresHook`` builds the parameters, so a user's extras (``options``, ``sslmode``,
keepalives) and RDS IAM authentication reach libpq and the server. Redis: ``RedisHook`` reads
the SSL extras. A connection that does not parse is told apart from one that is not defined.
"""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest
from psycopg import sql

from sanvi_ops.airflow_kit.connections import (
    ConnectionMissing,
    ConnectionUnparseable,
    get_connection,
    postgres_dsn,
    postgres_params,
    redis_url,
)
from sanvi_ops.core.results import Status
from tests.fixtures.connections import conn_env

pytestmark = pytest.mark.integration


def _pg_conn(pg, dbname: str = "postgres", *, login: str = "postgres", password=None, **extra) -> str:
    return conn_env(
        "postgres",
        host=pg.host,
        port=pg.port,
        login=login,
        password=pg.password if password is None else password,
        schema=dbname,
        extra=extra or None,
    )


# ---------------------------------------------------------------------------------- PostgreSQL


def test_options_extra_reaches_the_server(pg, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_T_OPTIONS",
        _pg_conn(pg, options="-c search_path=sanvi_probe,public -c statement_timeout=4321"),
    )
    with psycopg.connect(postgres_dsn("t_options", application_name="sanvi-test")) as conn:
        assert conn.execute("SHOW search_path").fetchone() == ("sanvi_probe,public",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
        assert conn.execute("SHOW application_name").fetchone() == ("sanvi-test",)


def test_sslmode_extra_reaches_libpq(pg, monkeypatch):
    """``disable`` connects without TLS (pg_stat_ssl says so); ``require`` against this server,
    which has no TLS, is refused by libpq: both prove the extra is used, not dropped."""
    monkeypatch.setenv("AIRFLOW_CONN_T_SSL", _pg_conn(pg, sslmode="disable"))
    with psycopg.connect(postgres_dsn("t_ssl")) as conn:
        assert conn.info.get_parameters().get("sslmode", "disable") == "disable"
        used = {o.keyword.decode(): (o.val or b"").decode() for o in conn.pgconn.info}
        assert used["sslmode"] == "disable"
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (False,)

    monkeypatch.setenv("AIRFLOW_CONN_T_SSL", _pg_conn(pg, sslmode="require"))
    with pytest.raises(psycopg.OperationalError, match="SSL"):
        psycopg.connect(postgres_dsn("t_ssl")).close()


def test_keepalives_and_target_session_attrs_reach_libpq(pg, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_T_KA",
        _pg_conn(pg, keepalives=True, keepalives_idle=17, target_session_attrs="read-write"),
    )
    with psycopg.connect(postgres_dsn("t_ka")) as conn:
        used = {o.keyword.decode(): (o.val or b"").decode() for o in conn.pgconn.info}
    assert used["keepalives"] == "1" and used["keepalives_idle"] == "17"
    assert used["target_session_attrs"] == "read-write"


def test_rds_iam_token_is_the_password(pg, monkeypatch):
    """``iam: true``: PostgresHook asks the AWS connection for an RDS auth token and uses it as
    the password. ``generate_db_auth_token`` is a SigV4 presigner, computed locally with no API
    call (so neither moto nor a Stubber is involved); the credentials are fake and offline. The
    server role is given that token as its password, so logging in proves the token is what
    libpq sent."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_T_AWS_IAM",
        conn_env("aws", login="AKIDEXAMPLE", password="fake-secret", extra={"region_name": "eu-west-1"}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_T_IAM",
        _pg_conn(pg, login="sanvi_iam_user", password="", iam=True, aws_conn_id="t_aws_iam"),
    )
    params = postgres_params("t_iam")
    token = params["password"]
    assert token.startswith(f"{pg.host}:{pg.port}/?Action=connect&DBUser=sanvi_iam_user")
    assert "X-Amz-Signature=" in token and "X-Amz-Credential=AKIDEXAMPLE" in token
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS sanvi_iam_user")
        admin.execute(sql.SQL("CREATE ROLE sanvi_iam_user LOGIN PASSWORD {}").format(sql.Literal(token)))
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("sanvi_iam_user",)
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("DROP ROLE IF EXISTS sanvi_iam_user")


def test_iam_without_aws_credentials_names_the_connections(pg, monkeypatch, tmp_path):
    """No AWS connection is fine for the hook (boto3's own chain: an instance role); no
    credentials anywhere is an error naming both connections, not an empty password."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AIRFLOW_CONN_T_IAM2", _pg_conn(pg, password="", iam=True, aws_conn_id="t_no_aws"))
    with pytest.raises(ValueError, match=r"'t_iam2'.*iam is true.*'t_no_aws'"):
        postgres_params("t_iam2")


def test_unknown_extra_is_named(pg, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_T_BAD_EXTRA", _pg_conn(pg, sslmdoe="require"))
    with pytest.raises(ValueError, match=r"'t_bad_extra'.*sslmdoe"):
        postgres_dsn("t_bad_extra")


def test_backup_tools_get_the_extras_through_a_service_file(pg, monkeypatch):
    """PgTarget keeps the connection's libpq parameters and the libpq tools (pg_basebackup,
    psql, ...) receive them: a real ``psql`` sees the ``options`` extra."""
    from sanvi_ops.core.backups import PgTarget, libpq_env, resolve_pg_bin

    monkeypatch.setenv("AIRFLOW_CONN_T_TOOLS", _pg_conn(pg, options="-c search_path=tools_probe"))
    target = PgTarget.from_dsn(postgres_dsn("t_tools"))
    assert dict(target.params)["options"] == "-c search_path=tools_probe"
    assert pg.password not in repr(target)
    with libpq_env(target) as env:
        out = subprocess.run(
            [resolve_pg_bin("psql"), "-X", "-A", "-t", "-w", "-d", "postgres", "-c", "SHOW search_path"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    assert out.stdout.strip() == "tools_probe"


# ---------------------------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://ops:hunter2-secret@db.example:notaport/app",
        json.dumps({"conn_type": "postgres", "host": "h", "port": "notaport", "password": "hunter2-secret"}),
        '{"conn_type": "postgres", "password": "hunter2-secret", ',
    ],
)
def test_unparseable_connection_is_not_reported_as_undefined(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW_CONN_T_BROKEN", value)
    with pytest.raises(ConnectionUnparseable) as err:
        get_connection("t_broken")
    text = str(err.value)
    assert text.startswith("cannot parse connection 't_broken': ")
    assert "AIRFLOW_CONN_T_BROKEN" in text and "not defined" not in text
    assert "hunter2-secret" not in text
    with pytest.raises(ConnectionUnparseable):
        postgres_dsn("t_broken")


def test_undefined_connection_says_not_defined(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_T_ABSENT", raising=False)
    with pytest.raises(ConnectionMissing, match=r"'t_absent' is not defined.*AIRFLOW_CONN_T_ABSENT"):
        get_connection("t_absent")


def test_health_check_reports_an_unparseable_app_db_as_an_error(monkeypatch):
    from sanvi_ops.tasks.system_health_check import airflow_tasks as health_tasks

    monkeypatch.setenv("AIRFLOW_CONN_SANVI_APP_DB", "postgresql://u:p@db:notaport/app")
    (result,) = health_tasks.postgres()
    assert result["status"] == Status.ERROR.value
    assert result["summary"].startswith("cannot parse connection 'sanvi_app_db'")


# ---------------------------------------------------------------------------------- Redis


def test_redis_ssl_extras_are_read_by_the_hook(monkeypatch, tmp_path):
    import redis

    ca = tmp_path / "ca.pem"
    monkeypatch.setenv(
        "AIRFLOW_CONN_T_REDIS_TLS",
        conn_env(
            "redis",
            host="cache.example",
            port=6380,
            password="p@ss/word",
            extra={"ssl": True, "ssl_cert_reqs": "none", "ssl_ca_certs": str(ca), "db": 2},
        ),
    )
    url = redis_url("t_redis_tls")
    assert url.startswith("rediss://")
    client = redis.Redis.from_url(url)
    pool = client.connection_pool
    assert issubclass(pool.connection_class, redis.SSLConnection)
    kw = pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"], kw["password"]) == ("cache.example", 6380, 2, "p@ss/word")
    assert kw["ssl_cert_reqs"] == "none" and kw["ssl_ca_certs"] == str(ca)


def test_redis_ssl_extra_is_used_against_a_real_server(redis_server, monkeypatch):
    """The session's Redis speaks plain TCP: with ``ssl: true`` the check fails in the TLS
    handshake (TLS was attempted); without it the same server answers."""
    from sanvi_ops.tasks.system_health_check.health.redis import check_redis

    base = {"host": "127.0.0.1", "port": redis_server.port, "password": redis_server.password}
    monkeypatch.setenv("AIRFLOW_CONN_T_REDIS", conn_env("redis", **base))
    guide = {"timeout_s": 3, "memory_warning_pct": 80, "memory_critical_pct": 90}
    assert check_redis(redis_url("t_redis"), **guide)[0].status is Status.OK

    monkeypatch.setenv(
        "AIRFLOW_CONN_T_REDIS", conn_env("redis", **base, extra={"ssl": True, "ssl_cert_reqs": "none"})
    )
    avail = check_redis(redis_url("t_redis"), **guide)[0]
    assert avail.status is Status.CRITICAL
    assert redis_server.password not in avail.summary


def test_postgres_extras_leave_out_what_the_hook_consumes(monkeypatch):
    """For a caller that brings its own endpoint (a restored RDS instance): the libpq extras only."""
    from sanvi_ops.airflow_kit.connections import postgres_extras

    monkeypatch.setenv(
        "AIRFLOW_CONN_T_EXTRAS",
        conn_env(
            "postgres",
            login="scratch",
            extra={"sslmode": "verify-full", "options": "-c work_mem=8MB", "iam": True, "aws_conn_id": "a"},
        ),
    )
    assert postgres_extras("t_extras") == {"sslmode": "verify-full", "options": "-c work_mem=8MB"}


def test_a_newline_in_a_libpq_extra_cannot_inject_service_file_lines():
    """Hostile extra: ``options`` with a newline would add a line to the service file."""
    from sanvi_ops.core.backups import PgTarget, libpq_env

    target = PgTarget("127.0.0.1", 5432, "u", "p", "db", params=(("options", "-c a=b\nhost=evil"),))
    with pytest.raises(ValueError, match="newline"), libpq_env(target):
        pass


def test_aws_hooks_share_one_botocore_loader_and_keep_their_own_credentials(aws_endpoint, monkeypatch):
    """Each hook session reads no botocore model a session before it has read (~0.3 s of CPU per
    client otherwise); what is shared is botocore's own data files, never credentials."""
    from sanvi_ops.airflow_kit.connections import aws_client, aws_hook

    for name in ("a", "b"):
        extra = {"endpoint_url": aws_endpoint, "region_name": "us-east-1"}
        monkeypatch.setenv(
            f"AIRFLOW_CONN_AWS_{name.upper()}",
            conn_env("aws", login=f"key-{name}", password=f"secret-{name}", extra=extra),
        )
    one, two = aws_hook("aws_a", "s3").get_session(), aws_hook("aws_b", "s3").get_session()
    assert one._session.get_component("data_loader") is two._session.get_component("data_loader")
    assert one.get_credentials().access_key == "key-a"
    assert two.get_credentials().access_key == "key-b"
    aws_client("aws_a", "s3").create_bucket(Bucket="shared-loader")
    assert [b["Name"] for b in aws_client("aws_b", "s3").list_buckets()["Buckets"]] == ["shared-loader"]
