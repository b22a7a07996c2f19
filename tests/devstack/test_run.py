"""The local stack (`make run`) without Airflow: app seed, demo HTTP server + Slack sink, config, env.

Everything here talks to real servers: the session's PostgreSQL, the demo HTTP server over real
HTTP (slack_sdk's own WebClient against the sink), real child processes for the stop logic.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from devstack import run
from devstack.demo_http import DemoHTTPServer, make_server
from devstack.seed_app import seed_app_db
from sanvi_ops.core.config import load_config

pytestmark = pytest.mark.integration

#: Row counts of the deterministic demo seed (devstack/sql/app/002_seed.sql).
EXPECTED_ROWS = {
    "audit_log": 60000,
    "customers": 5000,
    "inventory": 24000,
    "invoices": 37620,
    "machine_models": 60,
    "machines": 20000,
    "parts": 3000,
    "service_order_parts": 76040,
    "service_orders": 40000,
    "users": 250,
    "warehouses": 8,
}


# ---------------------------------------------------------------------------------------------
# The application database seed
# ---------------------------------------------------------------------------------------------


def _orphans(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows whose (single-column) foreign key points at nothing, per constraint."""
    fks = conn.execute(
        """
        SELECT c.conname, c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, af.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
        """
    ).fetchall()
    found = {}
    for name, child, col, parent, pcol in fks:
        query = sql.SQL(
            "SELECT count(*) FROM {child} c WHERE c.{col} IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{col})"
        ).format(
            child=sql.Identifier(child),
            col=sql.Identifier(col),
            parent=sql.Identifier(parent),
            pcol=sql.Identifier(pcol),
        )
        found[name] = conn.execute(query).fetchone()[0]
    return found


def test_seed_app_db_creates_the_schema_and_seeds_it_once(make_db: Callable[[str], str]) -> None:
    dsn = make_db("app")
    started = time.monotonic()
    assert seed_app_db(dsn) == EXPECTED_ROWS
    seeded_in = time.monotonic() - started
    assert seed_app_db(dsn) == EXPECTED_ROWS  # idempotent: schema IF NOT EXISTS, seed only when empty
    assert seeded_in < 30, f"seeding took {seeded_in:.1f}s"  # generous bound; ~2 s on 2 cores

    with psycopg.connect(dsn) as conn:
        orphans = _orphans(conn)
        assert len(orphans) == 13  # every foreign key of the schema
        assert {k: v for k, v in orphans.items() if v} == {}
        # Deterministic: no random(), no now() in the data.
        total = conn.execute("SELECT sum(total_amount)::text FROM invoices").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM service_orders GROUP BY 1").fetchall())
        assert statuses == {
            "cancelled": 1980,
            "completed": 37620,
            "open": 133,
            "scheduled": 134,
            "in_progress": 133,
        }
        assert total == conn.execute("SELECT sum(total_amount)::text FROM invoices").fetchone()[0]
        # Identity sequences continue after the seeded ids: the application can insert again.
        new_id = conn.execute(
            "INSERT INTO users (email, full_name, role, password_hash) "
            "VALUES ('new@sanvi-machinery.example', 'New User', 'sales', 'x') RETURNING id"
        ).fetchone()[0]
        assert new_id == 251
        # Realistic shape: indexes beyond the primary keys, timestamps, jsonb details.
        n_indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'").fetchone()[0]
        assert n_indexes > 25


# ---------------------------------------------------------------------------------------------
# The demo HTTP server and its Slack sink
# ---------------------------------------------------------------------------------------------

TOKEN = "xoxb-local-test-token"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoHTTPServer]:
    server = make_server(tmp_path / "slack-messages.jsonl", TOKEN)
    yield server
    server.stop()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _post_json(url: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _slack(server: DemoHTTPServer, token: str = TOKEN) -> Any:
    from slack_sdk import WebClient

    return WebClient(token=token, base_url=f"{server.url}/api/", timeout=5)


def test_demo_server_binds_loopback_only(demo: DemoHTTPServer, tmp_path: Path) -> None:
    assert demo.server_address[0] == "127.0.0.1"
    assert urlsplit(demo.url).hostname == "127.0.0.1"
    with pytest.raises(ValueError, match="loopback only"):
        DemoHTTPServer(demo.sink, demo.app, host="0.0.0.0")  # noqa: S104 - the refusal under test


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_demo_app_serves_frontend_and_backend(demo: DemoHTTPServer, environment: str) -> None:
    status, ctype, body = _get(f"{demo.url}/{environment}/")
    assert (status, ctype.split(";")[0]) == (200, "text/html")
    assert "Sanvi Machinery" in body
    status, ctype, body = _get(f"{demo.url}/{environment}/api/health")
    assert (status, ctype.split(";")[0]) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"
    assert json.loads(body)["environment"] == environment


def test_demo_app_unknown_paths_are_404(demo: DemoHTTPServer) -> None:
    for path in ("/development/", "/production/admin", "/nope"):
        assert _get(f"{demo.url}{path}")[0] == 404


def test_demo_app_can_be_broken_and_healed(demo: DemoHTTPServer) -> None:
    health = f"{demo.url}/production/api/health"
    assert _post_json(
        f"{demo.url}/_demo/state", {"environment": "production", "component": "backend", "status": 503}
    ) == (
        200,
        {"ok": True},
    )
    status, _, body = _get(health)
    assert status == 503 and json.loads(body)["status"] == "error"
    assert _get(f"{demo.url}/staging/api/health")[0] == 200  # only the one endpoint

    _post_json(
        f"{demo.url}/_demo/state", {"environment": "production", "component": "backend", "delay_ms": 300}
    )
    started = time.monotonic()
    assert _get(health)[0] == 200
    assert time.monotonic() - started >= 0.3

    _post_json(f"{demo.url}/_demo/state", {"environment": "production", "component": "backend"})
    assert _get(health)[0] == 200

    status, answer = _post_json(f"{demo.url}/_demo/state", {"environment": "mars", "component": "backend"})
    assert status == 400 and "environment: unknown 'mars'" in answer["error"]


def test_slack_sink_answers_like_slack(demo: DemoHTTPServer) -> None:
    client = _slack(demo)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*all green*"}}]
    first = client.chat_postMessage(channel="#sanvi-ops", text="summary", blocks=blocks)
    assert first["ok"] is True
    assert first["channel"].startswith("C") and first["channel"] != "#sanvi-ops"
    assert float(first["ts"]) > 0
    # A thread reply goes to the channel id Slack answered with, like a real client does.
    reply = client.chat_postMessage(channel=first["channel"], text="[RESOLVED] #1", thread_ts=first["ts"])
    assert reply["channel"] == first["channel"]
    assert float(reply["ts"]) > float(first["ts"])
    assert client.auth_test()["ok"] is True

    newest, oldest = demo.sink.messages()
    assert newest["thread_ts"] == first["ts"] and newest["channel_name"] == "#sanvi-ops"
    assert oldest["blocks"] == blocks


def test_slack_sink_rejects_a_bad_or_missing_token(demo: DemoHTTPServer) -> None:
    from slack_sdk.errors import SlackApiError

    with pytest.raises(SlackApiError) as bad:
        _slack(demo, token="xoxb-wrong").chat_postMessage(channel="#sanvi-ops", text="hello")
    assert bad.value.response.status_code == 200  # like Slack: HTTP 200 with ok=false
    assert bad.value.response["error"] == "invalid_auth"

    status, answer = _post_json(f"{demo.url}/api/chat.postMessage", {"channel": "#x", "text": "hi"})
    assert (status, answer) == (200, {"ok": False, "error": "not_authed"})
    status, answer = _post_json(f"{demo.url}/api/chat.postMessage", {"token": TOKEN, "text": "hi"})
    assert answer == {"ok": False, "error": "channel_not_found"}
    status, answer = _post_json(f"{demo.url}/api/chat.delete", {"token": TOKEN})
    assert (status, answer["error"]) == (404, "unknown_method")
    assert demo.sink.messages() == []


def test_slack_sink_accepts_form_posts(demo: DemoHTTPServer) -> None:
    body = f"token={TOKEN}&channel=%23sanvi-ops&text=from+curl".encode()
    req = urllib.request.Request(f"{demo.url}/api/chat.postMessage", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    assert demo.sink.messages()[0]["text"] == "from curl"


def test_slack_page_lists_messages_newest_first_escaped(demo: DemoHTTPServer) -> None:
    client = _slack(demo)
    client.chat_postMessage(channel="#sanvi-ops", text="first <b>message</b>")
    client.chat_postMessage(channel="#sanvi-ops", text="second <script>alert(1)</script>")
    status, ctype, page = _get(f"{demo.url}/slack")
    assert status == 200 and ctype.startswith("text/html")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index("second &lt;script") < page.index("first &lt;b&gt;")
    status, _, data = _get(f"{demo.url}/slack/messages.json")
    assert [m["text"] for m in json.loads(data)["messages"]] == [
        "second <script>alert(1)</script>",
        "first <b>message</b>",
    ]


def test_slack_sink_persists_across_restarts_and_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "slack-messages.jsonl"
    server = make_server(path, TOKEN)
    try:
        client = _slack(server)
        errors: list[BaseException] = []

        def post(i: int) -> None:
            try:
                client.chat_postMessage(channel="#sanvi-ops", text=f"message {i}")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
    finally:
        server.stop()

    lines = path.read_text().splitlines()
    assert len(lines) == 20
    assert len({json.loads(line)["ts"] for line in lines}) == 20  # unique ts, as Slack's are

    again = make_server(path, TOKEN)
    try:
        kept = again.sink.messages()
        assert sorted(m["text"] for m in kept) == sorted(f"message {i}" for i in range(20))
        newer = _slack(again).chat_postMessage(channel="#sanvi-ops", text="after restart")
        assert float(newer["ts"]) > max(float(m["ts"]) for m in kept)
    finally:
        again.stop()


# ---------------------------------------------------------------------------------------------
# The generated config, the secrets and the environment Airflow gets
# ---------------------------------------------------------------------------------------------

DEMO_URL = "http://127.0.0.1:45678"


def _addresses(prometheus: bool = True) -> run.Addresses:
    return run.Addresses(
        postgres_port=45432,
        redis_port=46379,
        moto_url="http://127.0.0.1:45000",
        demo_url=DEMO_URL,
        prometheus_url="http://127.0.0.1:49090" if prometheus else None,
        ui_port=48080,
    )


def test_local_config_points_only_at_the_demo_server(tmp_path: Path) -> None:
    target = run.write_local_config(run.SHIPPED_CONFIG, tmp_path / "maintenance.yaml", DEMO_URL)
    local, shipped = load_config(target), load_config(run.SHIPPED_CONFIG)
    urls = {e.name: str(e.url) for e in local.tasks.system_health_check.settings.endpoints}
    assert urls == {
        "production-frontend": f"{DEMO_URL}/production/",
        "production-backend": f"{DEMO_URL}/production/api/health",
        "staging-frontend": f"{DEMO_URL}/staging/",
        "staging-backend": f"{DEMO_URL}/staging/api/health",
    }
    assert {urlsplit(u).hostname for u in urls.values()} == {"127.0.0.1"}
    # A cold moto under start-up load answers in tens of seconds: the local budget says so.
    assert local.tasks.system_health_check.settings.component_timeout_seconds == run.LOCAL_COMPONENT_TIMEOUT_S
    assert local.tasks.security_scan.settings.tls_ca_file is None  # no CA given, none set
    # The restore test and DR drill validate the demo application with its own smoke queries.
    assert [q.name for q in local.tasks.backup_testing.settings.smoke_queries] == [
        q["name"] for q in run.LOCAL_SMOKE_QUERIES
    ]
    # The DR drill's scratch environment: the demo application and the demo's DR site.
    fs, site = local.tasks.dr_testing.settings.full_system, local.tasks.dr_testing.settings.dr_site
    assert fs.app_command and fs.app_command[-1].endswith("devstack/demo_app.py") and fs.cache_query
    assert (
        site.url == "https://dr.sanvi-machinery.com/api/health"
        and site.point_url == f"{DEMO_URL}/_demo/upstream"
    )
    # ...from the DR region's copies the stack's moto replicates to (devstack.s3_replication).
    replicas = local.tasks.dr_testing.settings.replica_buckets
    assert replicas.backups == "sanvi-machinery-backups-dr" and replicas.files == "sanvi-machinery-files-dr"
    # Everything else is the shipped config, unchanged.
    a, b = local.model_dump(), shipped.model_dump()
    for cfg in (a, b):
        cfg["tasks"]["system_health_check"]["settings"].pop("component_timeout_seconds")
        cfg["tasks"]["backup_testing"]["settings"].pop("smoke_queries")
        for key in ("full_system", "dr_site", "replica_buckets"):
            cfg["tasks"]["dr_testing"]["settings"].pop(key)
        for endpoint in cfg["tasks"]["system_health_check"]["settings"]["endpoints"]:
            endpoint.pop("url")
    assert a == b
    assert run.endpoint_environments(target) == ["production", "staging"]


def test_secrets_are_generated_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = run.load_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run.load_secrets(path) == first
    data = json.loads(path.read_text())
    del data["jwt_secret"]
    path.write_text(json.dumps(data))
    refilled = run.load_secrets(path)
    assert refilled.postgres_password == first.postgres_password and refilled.jwt_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _conn_ids() -> dict[str, str]:
    return load_config(run.SHIPPED_CONFIG).connections.model_dump()


def _connections(env: dict[str, str]) -> dict[str, Any]:
    from airflow.sdk import Connection

    prefix = "AIRFLOW_CONN_"
    return {
        k.removeprefix(prefix).lower(): Connection.from_json(v, conn_id=k.removeprefix(prefix).lower())
        for k, v in env.items()
        if k.startswith(prefix)
    }


def test_connection_env_parses_into_airflow_connections() -> None:
    sec = run.Secrets.generate()
    conns = _connections(run.connection_env(_addresses(), sec, _conn_ids()))
    assert set(conns) == {
        "sanvi_app_db",
        "sanvi_ops_store",
        "sanvi_scratch_db",
        "sanvi_redis",
        "aws_default",
        "slack_api_default",
        "sanvi_prometheus",
    }
    for conn_id, db in [
        ("sanvi_app_db", "sanvi_app"),
        ("sanvi_ops_store", "sanvi_ops_store"),
        ("sanvi_scratch_db", "sanvi_scratch"),
    ]:
        c = conns[conn_id]
        assert (c.conn_type, c.host, c.port, c.login, c.password, c.schema) == (
            "postgres",
            "127.0.0.1",
            45432,
            "postgres",
            sec.postgres_password,
            db,
        )
    r = conns["sanvi_redis"]
    assert (r.conn_type, r.host, r.port, r.password, r.extra_dejson) == (
        "redis",
        "127.0.0.1",
        46379,
        sec.redis_password,
        {"db": 0},
    )
    a = conns["aws_default"]
    assert a.conn_type == "aws"
    assert a.extra_dejson == {"endpoint_url": "http://127.0.0.1:45000", "region_name": "us-east-1"}
    s = conns["slack_api_default"]
    assert (s.conn_type, s.password, s.extra_dejson) == (
        "slack",
        sec.slack_token,
        {"base_url": f"{DEMO_URL}/api/"},
    )
    p = conns["sanvi_prometheus"]
    assert (p.conn_type, p.host, p.port, p.schema) == ("http", "127.0.0.1", 49090, "http")


def test_connections_resolve_through_the_glue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DAGs' own lookup (glue.connections) turns the env into the URLs the checks use."""
    from sanvi_ops.airflow_kit.connections import http_base_url, postgres_dsn, redis_url

    sec = run.Secrets.generate()
    for key, value in run.connection_env(_addresses(), sec, _conn_ids()).items():
        monkeypatch.setenv(key, value)
    assert http_base_url("sanvi_prometheus") == ("http://127.0.0.1:49090", None)
    assert redis_url("sanvi_redis").endswith("@127.0.0.1:46379/0")
    dsn = postgres_dsn("sanvi_app_db")
    assert "host=127.0.0.1" in dsn and "port=45432" in dsn and "dbname=sanvi_app" in dsn


def test_no_prometheus_means_no_prometheus_connection() -> None:
    env = run.connection_env(_addresses(prometheus=False), run.Secrets.generate(), _conn_ids())
    assert "AIRFLOW_CONN_SANVI_PROMETHEUS" not in env


def test_exported_slack_token_means_the_real_slack(tmp_path: Path) -> None:
    sec = run.Secrets.generate()
    base = {"PATH": "/usr/bin", "SLACK_API_TOKEN": "xoxb-real-workspace"}
    env = run.child_env(_addresses(), sec, tmp_path, tmp_path / "m.yaml", _conn_ids(), base)
    slack = _connections(env)["slack_api_default"]
    assert slack.password == "xoxb-real-workspace"
    assert "base_url" not in slack.extra_dejson


def test_airflow_env_is_loopback_only_and_complete(tmp_path: Path) -> None:
    sec = run.Secrets.generate()
    base = {"PATH": "/usr/bin", "AWS_PROFILE": "prod", "AIRFLOW_CONN_STRAY": "postgres://x"}
    env = run.child_env(_addresses(), sec, tmp_path, tmp_path / "m.yaml", _conn_ids(), base)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "48080"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:48080"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://postgres:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:45432/airflow")
    assert env["SANVI_OPS_CONFIG"] == str(tmp_path / "m.yaml")
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(run.REPO / "include"),
        str(run.REPO / "plugins"),
        str(run.REPO),
    ]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert "AWS_PROFILE" not in env and "AIRFLOW_CONN_STRAY" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    # The components that would start log servers on every interface are told not to.
    assert "--skip-serve-logs" in run.AIRFLOW_COMPONENTS["scheduler"]
    assert "--skip-serve-logs" in run.AIRFLOW_COMPONENTS["triggerer"]


def test_secrets_appear_only_where_airflow_needs_them(tmp_path: Path) -> None:
    sec = run.Secrets.generate()
    before = dict(os.environ)
    env = run.child_env(_addresses(), sec, tmp_path, tmp_path / "m.yaml", _conn_ids(), os.environ)
    assert dict(os.environ) == before  # the parent's own environment is untouched
    holding = {k for k, v in env.items() if any(s in v for s in sec.values())}
    assert holding == {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW_CONN_SANVI_APP_DB",
        "AIRFLOW_CONN_SANVI_OPS_STORE",
        "AIRFLOW_CONN_SANVI_SCRATCH_DB",
        "AIRFLOW_CONN_SANVI_REDIS",
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
    }
    assert sec.ui_password not in json.dumps(env)  # the UI password lives in the passwords file only


def test_printed_banner_shows_no_secret_but_the_ui_login(tmp_path: Path) -> None:
    sec = run.Secrets.generate()
    text = run.banner(_addresses(), sec, tmp_path, app_rows=265978, slack_real=False)
    lines_with_secrets = [line for line in text.splitlines() if any(s in line for s in sec.values())]
    assert lines_with_secrets == [f"  UI login     admin / {sec.ui_password}"]
    assert "http://127.0.0.1:48080" in text and f"{DEMO_URL}/slack" in text
    no_prom = run.banner(_addresses(prometheus=False), sec, tmp_path, 1, slack_real=True)
    assert "'skipped'" in no_prom and "real Slack workspace" in no_prom


def test_printed_messages_never_show_a_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors and log tails pass through ``say``; a secret in them is masked."""
    sec = run.Secrets.generate()
    monkeypatch.setenv("SLACK_API_TOKEN", "xoxb-real-secret")
    run.hide_secrets(sec)
    run.say(
        f"error: could not connect with {sec.postgres_password} / {sec.redis_password} / xoxb-real-secret"
    )
    out = capsys.readouterr().out
    assert out == "error: could not connect with *** / *** / ***\n"


def test_generated_config_and_airflow_home_hold_no_secret(tmp_path: Path) -> None:
    sec = run.Secrets.generate()
    config = run.write_local_config(run.SHIPPED_CONFIG, tmp_path / "maintenance.yaml", DEMO_URL)
    assert not any(s in config.read_text() for s in sec.values())
    run.prepare_airflow_home(tmp_path, sec)
    pw_file = tmp_path / "airflow" / "simple_auth_manager_passwords.json"
    assert json.loads(pw_file.read_text()) == {"admin": sec.ui_password}  # SimpleAuthManager's format
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------------------
# Stopping what was started
# ---------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_stop_group_ends_the_process_and_its_children(tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {child_file}; wait"
    proc = run.spawn("group", ["sh", "-c", script], {"PATH": os.defpath}, tmp_path)
    try:
        for _ in range(100):
            if child_file.exists() and child_file.read_text().strip():
                break
            time.sleep(0.05)
        child = int(child_file.read_text())
        assert os.getpgid(child) == proc.pid  # its own process group, led by the spawned process
        run.stop_group(proc, timeout=5)
        assert proc.poll() is not None
        for _ in range(50):
            if not _alive(child):
                break
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        child_file.unlink(missing_ok=True)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_leftovers_of_a_killed_run_are_stopped_but_a_reused_pid_is_not(tmp_path: Path) -> None:
    pids = run.StalePids(tmp_path / "run.pids")
    leftover = subprocess.Popen(["sleep", "301"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "302"])
    try:
        pids.record("moto", leftover.pid, group=True)
        pids.record("redis", bystander.pid, group=False)
        # The pid file now claims the bystander ran something else (its pid was reused).
        data = json.loads(pids.path.read_text())
        data["redis"]["cmdline"] = "redis-server /somewhere/redis.conf"
        pids.path.write_text(json.dumps(data))
        pids.stop_leftovers()
        assert leftover.wait(10) == -signal.SIGTERM
        assert bystander.poll() is None
        assert not pids.path.exists()
    finally:
        for p in (leftover, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_process_recorded_the_moment_it_starts_is_stopped_as_a_leftover(tmp_path: Path) -> None:
    """``Popen`` can return before ``/proc/<pid>/cmdline`` shows the new program (it reads empty
    then); recorded that way, a killed stack's leftover was never stopped by the next start."""
    pids = run.StalePids(tmp_path / "run.pids")
    started = [subprocess.Popen(["sleep", "303"], start_new_session=True) for _ in range(40)]
    try:
        for i, proc in enumerate(started):
            pids.record(f"part-{i}", proc.pid, group=True)
        assert all(entry["cmdline"] == "sleep 303" for entry in json.loads(pids.path.read_text()).values())
        pids.stop_leftovers()
        assert [proc.wait(10) for proc in started] == [-signal.SIGTERM] * len(started)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_busy_ui_port_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("SANVI_UI_PORT", str(busy.getsockname()[1]))
        with pytest.raises(run.StartupError, match="is in use"):
            run.run_stack(tmp_path / ".local")
    assert not (tmp_path / ".local").exists()
    monkeypatch.setenv("SANVI_UI_PORT", "http")
    with pytest.raises(run.StartupError, match="SANVI_UI_PORT"):
        run.ui_port_from_env()


def test_airflow_health_connection_points_at_the_local_api_server() -> None:
    """`make run` gives the System Health Check's `check_airflow` the local api-server."""
    ids = {**_conn_ids(), "airflow_api": "sanvi_airflow_api"}
    conns = _connections(run.connection_env(_addresses(), run.Secrets.generate(), ids))
    c = conns["sanvi_airflow_api"]
    assert (c.conn_type, c.host, c.port, c.schema) == ("http", "127.0.0.1", 48080, "http")
    assert run._conn_ids(run.SHIPPED_CONFIG)["airflow_api"] == "sanvi_airflow_api"


# ---------------------------------------------------------------------------------------------
# The first start's story: fixed demo port, app host names over TLS, seeded AWS, kept AWS state
# ---------------------------------------------------------------------------------------------


def test_demo_port_is_fixed_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANVI_DEMO_PORT", raising=False)
    assert run.demo_port_from_env() == run.DEFAULT_DEMO_PORT == 8081
    monkeypatch.setenv("SANVI_DEMO_PORT", "18081")
    assert run.demo_port_from_env() == 18081
    monkeypatch.setenv("SANVI_DEMO_PORT", "81; rm -rf /")
    with pytest.raises(run.StartupError, match="SANVI_DEMO_PORT: must be a TCP port"):
        run.demo_port_from_env()


def test_a_busy_demo_port_is_a_clear_error(tmp_path: Path) -> None:
    import contextlib

    with contextlib.ExitStack() as stack, __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(run.StartupError, match=f"127.0.0.1:{port}.*SANVI_DEMO_PORT"):
            run.start_demo_http(stack, tmp_path, run.Secrets.generate(), ["production"], port)


def test_state_dir_comes_from_sanvi_local_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SANVI_LOCAL_DIR", raising=False)
    assert run.local_dir_from_env() == run.REPO / ".local"
    monkeypatch.setenv("SANVI_LOCAL_DIR", str(tmp_path))
    assert run.local_dir_from_env() == tmp_path.resolve()


def test_banner_paths_are_the_demo_servers_real_ones(tmp_path: Path) -> None:
    """Every URL the banner prints for the demo server answers (no /api/health at the root)."""
    server = make_server(tmp_path / "m.jsonl", TOKEN)
    try:
        addr = run.Addresses(45432, 46379, "http://127.0.0.1:45000", server.url, None, 48080)
        text = run.banner(addr, run.Secrets.generate(), tmp_path, 1, slack_real=False)
        demo_line = next(line for line in text.splitlines() if line.strip().startswith("Demo app"))
        paths = ["/", *(w.rstrip(",)") for w in demo_line.split() if w.startswith("/"))]
        assert set(paths) >= {"/", "/production/", "/production/api/health", "/staging/api/health"}
        for path in paths:
            assert _get(server.url + path)[0] == 200, path
        assert _get(server.url + "/api/health")[0] == 404  # what the old banner advertised
        assert f"{run.CLI} trigger system_health_check" in text
    finally:
        server.stop()


def test_local_config_trusts_the_local_ca_for_tls_checks(tmp_path: Path) -> None:
    ca = tmp_path / "tls" / "ca.pem"
    target = run.write_local_config(run.SHIPPED_CONFIG, tmp_path / "maintenance.yaml", DEMO_URL, ca)
    assert load_config(target).tasks.security_scan.settings.tls_ca_file == str(ca)
    assert run.app_hosts(target) == {
        "app.sanvi-machinery.com": "production",
        "staging.sanvi-machinery.com": "staging",
        "dev.sanvi-machinery.com": "development",
        "dr.sanvi-machinery.com": "dr_site",
    }


@pytest.fixture
def app_tls(tmp_path: Path) -> Iterator[tuple[DemoHTTPServer, DemoHTTPServer, Any, int]]:
    """The demo server, its HTTPS listener for the app names, the certificates, a refusing port."""
    import socket

    from devstack.demo_http import make_tls_server
    from devstack.tls import ensure_certificates

    hosts = {"app.sanvi-machinery.com": "production", "staging.sanvi-machinery.com": "staging"}
    plain = make_server(tmp_path / "m.jsonl", TOKEN, vhosts=hosts)
    tls = ensure_certificates(tmp_path / "tls", hosts)
    secure = make_tls_server(plain, tls.cert_file, tls.key_file, hosts)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        yield plain, secure, tls, closed.getsockname()[1]
    finally:
        closed.close()
        secure.stop()
        plain.stop()


def _connect_env(plain: DemoHTTPServer, secure: DemoHTTPServer, closed: int) -> dict[str, str]:
    addr = run.Addresses(
        1, 2, "http://127.0.0.1:3", plain.url, None, 4,
        demo_tls_url=secure.url, closed_port=closed,
        app_hosts={"app.sanvi-machinery.com": "production", "staging.sanvi-machinery.com": "staging"},
    )  # fmt: skip
    base = {
        "PYTHONPATH": os.pathsep.join([str(run.REPO / "include"), str(run.REPO / "plugins"), str(run.REPO)])
    }
    return {**os.environ, **run.connect_to_env(addr, base)}


def test_app_host_names_reach_the_demo_over_verified_tls_in_the_stacks_processes(app_tls: Any) -> None:
    """In a process started with the stack's environment (sitecustomize), the real checks see
    the app's names: TLS verified against the local CA with the app name as SNI, the frontend's
    security headers, 80 and 443 open and every other port closed. Outside, nothing resolves."""
    plain, secure, tls, closed = app_tls
    env = _connect_env(plain, secure, closed)
    probe = f"""
import json
from sanvi_ops.tasks.security_scan.security import check_tls_endpoint
from sanvi_ops.tasks.penetration_testing.exposure import scan_ports, check_security_headers, check_tls_ciphers
out = {{}}
out["tls"] = [r.status.value for r in check_tls_endpoint("production", "app.sanvi-machinery.com", 443, ca_file={str(tls.ca_file)!r})]
out["ciphers"] = [r.status.value for r in check_tls_ciphers("production", "app.sanvi-machinery.com", 443)]
out["ports"] = [(r.check, r.status.value) for r in scan_ports("app.sanvi-machinery.com", [22, 80, 443, 5432, 8080])]
out["prod_headers"] = [r.status.value for r in check_security_headers("production", "https://app.sanvi-machinery.com", verify={str(tls.ca_file)!r})]
out["staging_headers"] = [r.check for r in check_security_headers("staging", "https://staging.sanvi-machinery.com", verify={str(tls.ca_file)!r})]
out["untrusted"] = [r.status.value for r in check_tls_endpoint("production", "app.sanvi-machinery.com", 443)]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out["tls"]) == {"ok"}, out
    assert set(out["ciphers"]) == {"ok"}, out
    assert out["ports"] == [["ports[app.sanvi-machinery.com]", "ok"]], out
    assert out["prod_headers"] == ["ok"], out
    assert out["staging_headers"] == ["headers[staging].csp"], out  # the story's one header gap
    assert "ok" not in out["untrusted"]  # without the CA the certificate is (rightly) refused
    # The plain listener sends a browser under the app's name to HTTPS, as a real frontend does.
    req = urllib.request.Request(plain.url + "/", headers={"Host": "app.sanvi-machinery.com"})
    opener = urllib.request.build_opener(_NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(req, timeout=10)
    assert (
        redirect.value.code == 301
        and redirect.value.headers["Location"] == "https://app.sanvi-machinery.com/"
    )
    # This test process has no map: the names do not resolve here (nothing system-wide changed).
    import socket

    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("app.sanvi-machinery.com", 443)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_connect_to_map_only_points_at_loopback() -> None:
    """The map is input from the environment: a non-loopback target is refused, never used."""
    from devstack import hosts

    with pytest.raises(ValueError, match="not a loopback address"):
        hosts.parse(hosts.encode({"app.sanvi-machinery.com": {443: "10.0.0.5:443"}}, "127.0.0.1:1"))
    with pytest.raises(ValueError, match="not a loopback address"):
        hosts.parse(hosts.encode({}, "203.0.113.9:1"))
    parsed, closed = hosts.parse(
        hosts.encode({"App.Sanvi-Machinery.com.": {443: "127.0.0.1:9443"}}, "127.0.0.1:1")
    )
    assert parsed == {"app.sanvi-machinery.com": {443: ("127.0.0.1", 9443)}} and closed == ("127.0.0.1", 1)


def test_certificates_are_made_once_and_reissued_when_the_names_change(tmp_path: Path) -> None:
    from devstack.tls import ensure_certificates

    first = ensure_certificates(tmp_path, ["app.sanvi-machinery.com"])
    pem = first.cert_file.read_bytes()
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    assert ensure_certificates(tmp_path, ["app.sanvi-machinery.com"]).cert_file.read_bytes() == pem
    ca = first.ca_file.read_bytes()
    again = ensure_certificates(tmp_path, ["app.sanvi-machinery.com", "staging.sanvi-machinery.com"])
    assert again.cert_file.read_bytes() != pem and again.ca_file.read_bytes() == ca


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto_process(state: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(run.REPO / "include"), str(run.REPO)])}
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.moto_state",
                "--port",
                str(port),
                "--state",
                str(state),
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    run.wait_http(f"{url}/moto-api/data.json", 120, lambda: None if proc.poll() is None else "moto exited")
    return proc, url


def test_aws_state_survives_a_restart_of_the_stacks_moto(tmp_path: Path) -> None:
    """The stack's moto process: start, write a (KMS-encrypted) object, stop, start: it is still
    there, with its key and alias; the calls moto lacks are answered (moto_extras)."""
    import boto3

    state, log = tmp_path / "aws-state.pickle", tmp_path / "moto.log"
    kw = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    proc, url = _start_moto_process(state, log)
    try:
        s3, kms = boto3.client("s3", endpoint_url=url, **kw), boto3.client("kms", endpoint_url=url, **kw)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/sanvi-backups", TargetKeyId=key)
        s3.create_bucket(Bucket="sanvi-machinery-backups")
        body = os.urandom(3 * 1024 * 1024)
        s3.put_object(
            Bucket="sanvi-machinery-backups",
            Key="postgres/20261203T010000Z-full/base.tar",
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId="alias/sanvi-backups",
        )
        rds = boto3.client("rds", endpoint_url=url, **kw)
        assert rds.describe_pending_maintenance_actions()["PendingMaintenanceActions"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    from devstack.moto_state import objects_kept

    assert objects_kept(state) == 1
    proc, url = _start_moto_process(state, log)
    try:
        s3, kms = boto3.client("s3", endpoint_url=url, **kw), boto3.client("kms", endpoint_url=url, **kw)
        got = s3.get_object(Bucket="sanvi-machinery-backups", Key="postgres/20261203T010000Z-full/base.tar")
        assert got["Body"].read() == body
        assert kms.describe_key(KeyId="alias/sanvi-backups")["KeyMetadata"]["KeyId"] == key
        assert (
            kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"])["Plaintext"]
            == b"x"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert "loaded s3, kms" in log.read_text()


def test_an_unreadable_state_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    state, log = tmp_path / "aws-state.pickle", tmp_path / "moto.log"
    state.write_bytes(b"not a pickle")
    proc, _url = _start_moto_process(state, log)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert (tmp_path / "aws-state.pickle.unreadable").read_bytes() == b"not a pickle"
    assert "could not load" in log.read_text()


def test_seed_story_gives_the_dags_data_and_is_idempotent(aws_endpoint: str) -> None:
    """The Log Review finds its groups with a day of lines and a few errors (under 1 %), the
    Security Patch Review a scanned image per repository (one HIGH finding in the backend)."""
    import datetime as dt

    import boto3

    from devstack.aws_seed import seed_story
    from sanvi_ops.tasks.log_review.logs import count_events, read_errors
    from sanvi_ops.tasks.security_patch_review.patches import review_ecr

    url = aws_endpoint
    cfg = load_config(run.SHIPPED_CONFIG)
    first = seed_story(url, "us-east-1", cfg)
    assert all(n > 0 for n in first["log_events"].values()), first
    assert set(seed_story(url, "us-east-1", cfg)["log_events"].values()) == {0}  # no duplicates
    kw = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    logs = boto3.client("logs", **kw)
    end = dt.datetime.now(dt.UTC)
    for group in cfg.tasks.log_review.settings.log_groups:
        digest, _ = read_errors(
            logs,
            group,
            end - dt.timedelta(hours=24),
            end,
            pattern=cfg.tasks.log_review.settings.filter_pattern,
            limit=1000,
        )
        total = count_events(logs, group, end - dt.timedelta(hours=24), end, 50_000)
        assert total and 0 < digest.events < total / 100, (group, digest.events, total)
    statuses = {
        r.check: r.status.value
        for r in review_ecr(
            boto3.client("ecr", **kw), cfg.tasks.security_patch_review.settings.ecr_repositories
        )
    }
    assert statuses == {
        "ecr.image_findings[sanvi-frontend]": "ok",
        "ecr.image_findings[sanvi-backend]": "warning",
    }


def test_full_backup_exists_looks_past_newer_incrementals(
    aws_endpoint: str, boto_client: Any, tmp_path: Path
) -> None:
    """The start holds the backup DAGs only when S3 has no complete full backup: an incremental
    newer than the full must not hide it, a full without its manifest does not count."""
    from sanvi_ops.core.backups import FORMAT, MANIFEST_NAME

    config = run.write_local_config(run.SHIPPED_CONFIG, tmp_path / "maintenance.yaml", DEMO_URL)
    db = load_config(config).database_backups
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=db.bucket)

    def manifest(backup_id: str) -> None:
        body = json.dumps({"format": FORMAT, "backup_id": backup_id}).encode()
        s3.put_object(Bucket=db.bucket, Key=f"{db.prefix}{backup_id}/{MANIFEST_NAME}", Body=body)

    assert run.full_backup_exists(aws_endpoint, config) is False
    s3.put_object(Bucket=db.bucket, Key=f"{db.prefix}20261203T010000Z-full/base.tar", Body=b"half")
    assert run.full_backup_exists(aws_endpoint, config) is False  # no manifest: incomplete
    manifest("20261203T010000Z-full")
    manifest("20261203T020000Z-incr")
    assert run.full_backup_exists(aws_endpoint, config) is True


def test_the_api_client_reads_every_page() -> None:
    """Airflow's list endpoints return at most ``maximum_page_limit`` (100) items whatever
    ``limit`` asks for: the first-start check read only the first 100 task instances, and a DAG
    whose tasks fell beyond them never counted as finished (the stack waited until its timeout)."""
    from devstack.first_start import AirflowAPI

    items = [{"dag_id": "d", "task_id": f"t{i}", "dag_run_id": "r", "state": "success"} for i in range(250)]
    asked: list[str] = []

    class _API(AirflowAPI):
        def _request(self, method: str, path: str, body: Any = None) -> Any:
            asked.append(path)
            offset = int(path.rsplit("offset=", 1)[1])
            return {"task_instances": items[offset : offset + 100], "total_entries": len(items)}

    api = _API.__new__(_API)
    assert api.task_instances() == items
    assert [p.rsplit("offset=", 1)[1] for p in asked] == ["0", "100", "200"]
