"""`make run EXECUTOR=celery`'s settings, without starting anything (the e2e run is test_scaleout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.scaleout import (
    WORKER_NAMES,
    ExecutorChoiceError,
    executor_from_env,
    executor_settings,
    plan_workers,
    worker_hostname,
)

pytestmark = pytest.mark.unit

ARGS = {
    "host": "127.0.0.1",
    "redis_port": 6390,
    "redis_password": "r/p@ss",
    "postgres_port": 5499,
    "postgres_password": "p:g#pw",
    "airflow_db": "airflow",
}


def test_default_executor_is_local_and_a_bad_one_is_refused_by_name() -> None:
    assert executor_from_env({}) == "local"
    assert executor_from_env({"SANVI_EXECUTOR": " Celery "}) == "celery"
    with pytest.raises(ExecutorChoiceError, match=r"SANVI_EXECUTOR \(make run EXECUTOR=...\).*'kubernetes'"):
        executor_from_env({"SANVI_EXECUTOR": "kubernetes"})


def test_local_executor_needs_no_celery_settings() -> None:
    assert executor_settings("local", **ARGS) == {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}


def test_celery_uses_the_stacks_redis_and_postgres_on_loopback_with_quoted_passwords() -> None:
    env = executor_settings("celery", **ARGS)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:r%2Fp%40ss@127.0.0.1:6390/1"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
        "db+postgresql+psycopg2://postgres:p%3Ag%23pw@127.0.0.1:5499/airflow"
    )
    assert env["AIRFLOW__CELERY__FLOWER_HOST"] == "127.0.0.1"


def test_each_worker_has_its_own_name_directories_and_log_port(tmp_path: Path) -> None:
    ports = iter([40001, 40002])
    workers = plan_workers(tmp_path, lambda: next(ports))
    try:
        assert [w.name for w in workers] == list(WORKER_NAMES)
        envs = [w.prepare().env({"PATH": "/usr/bin"}) for w in workers]
        for key in ("SANVI_WORKER_HOSTNAME", "TMPDIR", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "PWD"):
            assert envs[0][key] != envs[1][key], key
        for w, env in zip(workers, envs, strict=True):
            assert w.workdir.is_dir() and w.tmpdir.is_dir()
            assert len(str(w.tmpdir)) < 40  # room for the restore test's Unix socket path (107 bytes)
            assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "devstack.scaleout.worker_hostname"
            cmd = w.command()
            assert cmd[cmd.index("--celery-hostname") + 1] == w.name
            assert "--skip-serve-logs" in cmd  # Airflow's log server would bind every interface
    finally:
        for w in workers:
            w.tmpdir.rmdir()


def test_worker_hostname_is_the_workers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANVI_WORKER_HOSTNAME", "sanvi-worker-2")
    assert worker_hostname() == "sanvi-worker-2"
    monkeypatch.delenv("SANVI_WORKER_HOSTNAME")
    assert worker_hostname()  # the machine's name outside a local worker
