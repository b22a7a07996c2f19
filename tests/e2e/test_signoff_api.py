"""Sign-offs and approvals end to end, answered through the Airflow REST API.

A real ``airflow api-server`` process (core API only) listens on 127.0.0.1 on a free port and
shares this test session's metadata database (SQLite in ``AIRFLOW_HOME``). It authenticates with
the simple auth manager: users made for the test, each logging in with ``POST /auth/token`` and
answering with its bearer token, so ``assigned_users`` are enforced by Airflow itself (403 for
anyone else). The DAG runs with ``dag.test()`` in the main thread; Airflow 3.3's ``dag.test()``
keeps a run alive while a human-in-the-loop task is ``awaiting_input``, and a "person" thread
waits for the request to appear (``GET .../hitlDetails``), checks that the request is stored as
``pending`` and was announced in Slack, then answers it with ``PATCH
/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/-1/hitlDetails`` — the call the UI's
*Required actions* page makes. The API server resumes the task, ``dag.test()`` runs its
``execute_complete`` and the outcome is stored (PostgreSQL) and posted (the Slack test server).

Timeouts: Airflow resolves an unanswered request in the scheduler's ``awaiting_input`` sweep
(``SchedulerJobRunner.check_awaiting_input_timeouts``); no scheduler runs here (it would schedule
the run itself), so the person thread calls that same method once the deadline has passed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.fixtures.e2e import load_dag, task_states
from tests.tasks.compliance_audit.test_e2e import audit_env  # noqa: F401 - fixture
from tests.tasks.cost_optimization.test_e2e import cost_env  # noqa: F401 - fixture
from tests.tasks.database_maintenance.test_e2e import maint_env  # noqa: F401 - fixture
from tests.tasks.penetration_testing.test_e2e import pentest_env  # noqa: F401 - fixture
from tests.tasks.penetration_testing.test_exposure_probes import header_server  # noqa: F401 - fixture
from tests.tasks.security_scan.test_security_tls import ca  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
USERS = {
    "finance-lead": "fin-pass-1",
    "security-lead": "sec-pass-1",
    "product-owner": "po-pass-1",
    "cto": "cto-pass-1",
    "legal-lead": "legal-pass-1",
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AirflowApi:
    """The API server and a token per user."""

    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.tokens[user]}"}, timeout=20
        )


@pytest.fixture(scope="module")
def airflow_api(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    home = tmp_path_factory.mktemp("api-server")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(USERS))
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:admin" for u in USERS),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "signoff-test-secret-0123456789abcdef",
    }
    log = (home / "api-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port), "--apps", "core"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (home / "api-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home / "api-server.log").read_text()[-3000:]
            time.sleep(0.5)
        api = AirflowApi(base)
        for user, password in USERS.items():
            resp = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=20)
            assert resp.status_code == 201, resp.text
            api.tokens[user] = resp.json()["access_token"]
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def links_to(airflow_api: AirflowApi, monkeypatch: pytest.MonkeyPatch) -> str:
    """Links in messages point at the API server (``[api] base_url``)."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", airflow_api.base_url)
    return airflow_api.base_url


def _edit_config(edit: Callable[[dict[str, Any]], None]) -> None:
    from sanvi_ops.core.config import clear_config_cache

    path = Path(os.environ["SANVI_OPS_CONFIG"])
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    clear_config_cache()


@dataclass
class Person:
    """Someone answering requests through the REST API in a thread, while ``dag.test()`` runs."""

    api: AirflowApi
    dag_id: str
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, httpx.Response] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def waiting(self, task_id: str, user: str, timeout: float = 60) -> dict[str, Any]:
        """The task's HITL detail once its task instance is ``awaiting_input``."""
        deadline = time.monotonic() + timeout
        with self.api.client(user) as http:
            while True:
                resp = http.get(
                    f"/api/v2/dags/{self.dag_id}/dagRuns/~/hitlDetails", params={"task_id": task_id}
                )
                resp.raise_for_status()
                for detail in resp.json()["hitl_details"]:
                    ti = detail["task_instance"]
                    if ti["state"] == "awaiting_input" and not detail["response_received"]:
                        return detail
                if time.monotonic() > deadline:
                    raise AssertionError(f"{task_id} never waited for input: {resp.json()}")
                time.sleep(0.3)

    def answer(
        self, task_id: str, user: str, chosen: list[str], params_input: dict[str, Any] | None = None
    ) -> httpx.Response:
        detail = self.seen[task_id]
        run_id = detail["task_instance"]["dag_run_id"]
        with self.api.client(user) as http:
            resp = http.patch(
                f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
                json={"chosen_options": chosen, "params_input": params_input or {}},
            )
        self.answers[f"{task_id}:{user}"] = resp
        return resp

    def start(self, script: Callable[[Person], None]) -> None:
        def run() -> None:
            try:
                script(self)
            except BaseException as exc:  # reported by finish()
                self.errors.append(exc)
                _fail_running_runs(self.dag_id)  # else dag.test() would wait for input forever

        self._thread = threading.Thread(target=run, name="person", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=60)
        if self.errors:
            raise self.errors[0]


def _fail_running_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    with create_session() as session:
        for dr in session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == DagRunState.RUNNING):
            for ti in dr.get_task_instances(session=session):
                if ti.state not in State.finished:
                    ti.set_state(TaskInstanceState.FAILED, session=session)
            dr.set_state(DagRunState.FAILED)


def _sweep_timeouts() -> None:
    """The scheduler's own sweep of ``awaiting_input`` tasks past their response deadline."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()


def _signoffs(store_dsn: str, dag_id: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(store_dsn, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM signoffs WHERE dag_id = %s", (dag_id,)).fetchall()
    return {r["task_id"]: r for r in rows}


def _results(store_dsn: str, dag_id: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def _posted(slack_api: Any, needle: str) -> list[str]:
    return [json.dumps(m, ensure_ascii=False) for m in slack_api.messages if needle in json.dumps(m)]


# ------------------------------------------------------------------------------------ tests


def test_cost_review_rejected_through_the_api_turns_the_run_red(
    request, airflow_api, links_to, slack_api
) -> None:
    env = request.getfixturevalue("cost_env")
    _edit_config(
        lambda c: (
            c.setdefault("signoffs", {})
            .setdefault("dags", {})
            .update(
                {
                    "cost_optimization": {
                        "team": "finance_devops",
                        "deadline": "1h",
                        "assigned_users": [{"id": "finance-lead", "name": "Finance Lead"}],
                    }
                }
            )
        )
    )
    person = Person(airflow_api, "cost_optimization")

    def script(p: Person) -> None:
        p.seen["sign_off"] = p.waiting("sign_off", "finance-lead")
        # Waiting: stored as pending, announced with the Required-actions link.
        pending = _signoffs(env["store_dsn"], "cost_optimization")["sign_off"]
        assert pending["outcome"] == "pending" and pending["team"] == "finance_devops"
        assert pending["deadline"] - pending["requested_at"] == timedelta(hours=1)
        asked = _posted(slack_api, "[SIGN-OFF]")
        assert asked and "@finance @devops" in asked[0] and "/required_actions" in asked[0]
        assert "Evidence from this run" in p.seen["sign_off"]["body"]
        # Only the assigned user may answer; Airflow refuses the others.
        assert p.answer("sign_off", "cto", ["Approve"], {"comment": "lgtm"}).status_code == 403
        resp = p.answer("sign_off", "finance-lead", ["Reject"], {"comment": "EBS volumes have no owner"})
        assert resp.status_code == 200, resp.text

    person.start(script)
    dag = load_dag("cost_optimization")
    dr = dag.test(logical_date=datetime.now(UTC).replace(microsecond=0) + timedelta(days=40))
    person.finish()

    states = task_states(dr)
    assert states["sign_off"] == "failed" and str(dr.state) == "failed", states
    assert states["notify"] == "success"  # the evidence itself was green
    row = _signoffs(env["store_dsn"], "cost_optimization")["sign_off"]
    assert row["outcome"] == "rejected" and row["responder"] == {"id": "finance-lead", "name": "finance-lead"}
    assert row["form"] == {"comment": "EBS volumes have no owner"} and row["responded_at"] is not None
    status, summary = _results(env["store_dsn"], "cost_optimization", dr.run_id)["signoff.sign_off"]
    assert status == "critical" and "rejected by finance-lead" in summary and "EBS volumes" in summary
    outcome = _posted(slack_api, "rejected by finance-lead")
    assert len(outcome) == 1 and '"thread_ts"' in outcome[0]  # in the request's thread


def test_pentest_findings_form_entered_through_the_api(request, airflow_api, links_to, slack_api) -> None:
    env = request.getfixturevalue("pentest_env")
    _edit_config(
        lambda c: (
            c.setdefault("signoffs", {})
            .setdefault("dags", {})
            .update(
                {
                    "penetration_testing": {
                        "team": "security",
                        "deadline": "1h",
                        "assigned_users": [{"id": "security-lead", "name": "Security Lead"}],
                    }
                }
            )
        )
    )
    form = {
        "outcome": "partial",
        "tester": "Acme Red Team",
        "report_url": "https://tickets.example/PT-7",
        "findings_critical": 0,
        "findings_high": 1,
        "findings_medium": 3,
        "findings_low": 5,
        "notes": "admin API out of scope",
    }
    person = Person(airflow_api, "penetration_testing")

    def script(p: Person) -> None:
        detail = p.seen["record_pentest_outcome"] = p.waiting("record_pentest_outcome", "security-lead")
        assert set(detail["params"]) == set(form), detail["params"]
        assert detail["params"]["outcome"]["schema"]["enum"] == [None, "pass", "fail", "partial"]
        resp = p.answer("record_pentest_outcome", "security-lead", ["OK"], form)
        assert resp.status_code == 200, resp.text

    person.start(script)
    dr = load_dag("penetration_testing").test(logical_date=datetime(2026, 11, 17, 11, 0, tzinfo=UTC))
    person.finish()

    assert all(s == "success" for s in task_states(dr).values()), task_states(dr)
    row = _signoffs(env["store_dsn"], "penetration_testing")["record_pentest_outcome"]
    assert row["outcome"] == "approved" and row["kind"] == "form" and row["form"] == form
    results = _results(env["store_dsn"], "penetration_testing", dr.run_id)
    status, summary = results["record_pentest_outcome.findings"]
    assert status == "warning" and "partial" in summary and "1 high" in summary and "PT-7" in summary
    assert results["signoff.record_pentest_outcome"][0] == "ok"
    assert _posted(slack_api, "Acme Red Team")


def test_compliance_audit_approved_through_the_api_is_stored_and_reported(
    request, airflow_api, links_to, slack_api, tmp_path, monkeypatch
) -> None:
    store_dsn = request.getfixturevalue("audit_env")
    config = tmp_path / "maintenance.yaml"
    config.write_text((REPO / "include/config/maintenance.yaml").read_text())
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(config))
    _edit_config(
        lambda c: (
            c.setdefault("signoffs", {})
            .setdefault("dags", {})
            .update(
                {
                    "compliance_audit": {
                        "team": "legal_security",
                        "deadline": "1h",
                        "on_timeout": "critical",
                        "assigned_users": [{"id": "legal-lead", "name": "Legal Lead"}],
                    }
                }
            )
        )
    )
    person = Person(airflow_api, "compliance_audit")

    def script(p: Person) -> None:
        p.seen["sign_off"] = p.waiting("sign_off", "legal-lead")
        assert "Legal & Security" in p.seen["sign_off"]["subject"]
        resp = p.answer("sign_off", "legal-lead", ["Approve"], {"comment": "Q3 findings have owners"})
        assert resp.status_code == 200, resp.text

    person.start(script)
    dr = load_dag("compliance_audit").test(logical_date=datetime(2026, 9, 9, 11, 0, tzinfo=UTC))
    person.finish()

    states = task_states(dr)
    assert states["sign_off"] == "success" and states["write_evidence_pack"] == "success", states
    row = _signoffs(store_dsn, "compliance_audit")["sign_off"]
    assert row["outcome"] == "approved" and row["responder"]["id"] == "legal-lead"
    assert row["form"] == {"comment": "Q3 findings have owners"}
    status, summary = _results(store_dsn, "compliance_audit", dr.run_id)["signoff.sign_off"]
    assert status == "ok" and "approved by legal-lead" in summary, summary
    assert _posted(slack_api, "approved by legal-lead")


def test_unanswered_signoff_times_out_is_marked_and_escalated(
    request, airflow_api, links_to, slack_api
) -> None:
    env = request.getfixturevalue("cost_env")
    _edit_config(
        lambda c: (
            c.setdefault("signoffs", {})
            .setdefault("dags", {})
            .update(
                {"cost_optimization": {"team": "finance_devops", "deadline": "2s", "on_timeout": "critical"}}
            )
        )
    )
    person = Person(airflow_api, "cost_optimization")

    def script(p: Person) -> None:
        p.seen["sign_off"] = p.waiting("sign_off", "finance-lead")
        time.sleep(2.5)
        _sweep_timeouts()

    person.start(script)
    dr = load_dag("cost_optimization").test(
        logical_date=datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    )
    person.finish()

    assert task_states(dr)["sign_off"] == "failed" and str(dr.state) == "failed"
    row = _signoffs(env["store_dsn"], "cost_optimization")["sign_off"]
    assert row["outcome"] == "timed_out" and row["responder"] is None
    status, summary = _results(env["store_dsn"], "cost_optimization", dr.run_id)["signoff.sign_off"]
    assert status == "critical" and "no answer from Finance & DevOps" in summary
    escalation = _posted(slack_api, "[ESCALATION]")
    assert len(escalation) == 1 and "@devops-lead" in escalation[0]


def _closed_windows(c: dict[str, Any]) -> None:
    other = WEEKDAYS[(datetime.now(UTC).weekday() + 3) % 7]
    c["tasks"]["database_maintenance"]["settings"]["window"] = {
        "days": [other],
        "start": "03:00",
        "end": "06:00",
    }
    c["tasks"]["database_maintenance"]["weekday"] = other  # the schedule stays inside the window
    c["deployment_windows"]["production"]["regular"] = {"days": [other], "start": "22:00", "end": "23:00"}
    c["tasks"]["database_maintenance"]["approval"] = {"environment": "production", "deadline": "1h"}
    c["approvals"] = {
        "responders": {
            "product_owner": [{"id": "product-owner", "name": "Product Owner"}],
            "cto": [{"id": "cto", "name": "CTO"}],
        },
    }


@pytest.mark.parametrize("cto_says", ["Approve", "Reject"])
def test_production_change_outside_the_window_waits_for_product_owner_and_cto(
    request, airflow_api, links_to, slack_api, cto_says
) -> None:
    env = request.getfixturevalue("maint_env")
    env["use_window"]({"anytime": True})  # writes the config file; closed below
    _edit_config(_closed_windows)
    person = Person(airflow_api, "database_maintenance")

    def script(p: Person) -> None:
        for task_id, user in (("approve_product_owner", "product-owner"), ("approve_cto", "cto")):
            p.seen[task_id] = p.waiting(task_id, user)
        asked = _posted(slack_api, "[APPROVAL]")
        assert (
            len(asked) == 2 and any("@cto" in m for m in asked) and any("@product-owner" in m for m in asked)
        )
        assert p.answer("approve_cto", "product-owner", ["Approve"]).status_code == 403  # not theirs
        assert (
            p.answer("approve_product_owner", "product-owner", ["Approve"], {"comment": "ok"}).status_code
            == 200
        )
        comment = "not during the sale" if cto_says == "Reject" else "go"
        assert p.answer("approve_cto", "cto", [cto_says], {"comment": comment}).status_code == 200

    person.start(script)
    dr = load_dag("database_maintenance").test(
        logical_date=datetime(2026, 11, 26, 4, 0, tzinfo=UTC), run_conf={"dry_run": "no"}
    )
    person.finish()

    states = task_states(dr)
    assert states["approve_product_owner"] == "success" and states["approve_cto"] == "success", states
    assert str(dr.state) == "success", states
    rows = _signoffs(env["store_dsn"], "database_maintenance")
    assert rows["approve_product_owner"]["outcome"] == "approved"
    assert rows["approve_cto"]["outcome"] == ("rejected" if cto_says == "Reject" else "approved")
    assert rows["approve_cto"]["responder"]["id"] == "cto" and rows["approve_cto"]["kind"] == "approval"
    stored = _results(env["store_dsn"], "database_maintenance", dr.run_id)
    with psycopg.connect(env["app_dsn"]) as conn:
        (dead,) = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'"
        ).fetchone()
    if cto_says == "Reject":
        status, summary = stored["vacuum.run"]
        assert status == "skipped" and "rejected by cto (cto)" in summary and "not during the sale" in summary
        assert dead >= 2000  # nothing was vacuumed
        assert _posted(slack_api, "rejected by cto")
    else:
        assert stored["vacuum.table[public.orders]"][0] == "ok"
        assert (
            "approved outside the window by product-owner (product_owner), cto (cto)"
            in stored["vacuum.run"][1]
        )
        assert dead == 0
