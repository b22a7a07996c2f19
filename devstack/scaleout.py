"""``make run EXECUTOR=celery``: the local stack with CeleryExecutor and two Celery workers.

The same stack as ``make run`` (``devstack.run``), with the executor the shipped
deployment uses (``docker-compose.yaml``): CeleryExecutor from ``apache-airflow-providers-celery``,
the stack's Redis as the broker (database 1; the health check reads database 0) and the stack's
PostgreSQL (the Airflow metadata database) as the result backend. Two workers,
``sanvi-worker-1`` and ``sanvi-worker-2``, run the tasks. Each is what a separate machine would
be, as far as one machine allows:

- its own working directory (``.local/workers/<name>/work``) and temp directory (``TMPDIR``, a
  fresh ``sanvi-<name>-*`` directory in the system's temp directory, removed when the stack
  stops): a task that leaves a file in its working or temp directory for the next task finds
  nothing when the next task runs on the other worker. The temp directory's path stays short
  on purpose: the restore test's scratch server puts its Unix socket under it, and a socket path
  may not exceed 107 bytes;
- its own host name: Celery's (``--celery-hostname``) and the one Airflow records on each task
  instance (``[core] hostname_callable`` → :func:`worker_hostname`), so the UI and the REST API
  show which worker ran what;
- its own task processes: every task is parsed again from its DAG file in a process of its
  worker, never in the process that parsed the DAG for the scheduler.

The workers are started with ``--skip-serve-logs``. Airflow's worker log server
(``airflow.utils.serve_logs.serve_logs``) binds every interface (uvicorn ``host=""``, i.e.
``0.0.0.0``/``::``) and ``[logging]`` has no bind-address setting, and nothing of this stack may
listen beyond 127.0.0.1. The api-server reads the task logs from the log folder the workers
share (``[logging] base_log_folder``, as a shared volume or remote logging would in production),
just as it does for the scheduler and triggerer, which run with ``--skip-serve-logs`` too. Each
worker is still given its own ``[logging] worker_log_server_port`` so that turning the log server
on can never make two workers fight over one port.

The executor is chosen with ``SANVI_EXECUTOR`` (``local``, the default, or ``celery``); the
Makefile sets it from ``make run EXECUTOR=...``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

EXECUTOR_ENV = "SANVI_EXECUTOR"
#: ``SANVI_EXECUTOR`` value → Airflow's ``[core] executor``.
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
WORKER_HOSTNAME_ENV = "SANVI_WORKER_HOSTNAME"
WORKER_NAMES = ("sanvi-worker-1", "sanvi-worker-2")
#: Task slots per worker: two workers x 2 on a 2-core laptop; each task is its own process.
WORKER_CONCURRENCY = 2
#: Redis database of the Celery broker (database 0 is the one the health check reads).
BROKER_DB = 1


class ExecutorChoiceError(ValueError):
    """``SANVI_EXECUTOR`` names no executor the local stack can run."""


def executor_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``local`` (default) or ``celery``, from ``SANVI_EXECUTOR``; anything else is refused."""
    raw = (os.environ if environ is None else environ).get(EXECUTOR_ENV, "").strip().lower()
    if not raw:
        return "local"
    if raw not in EXECUTORS:
        raise ExecutorChoiceError(
            f"{EXECUTOR_ENV} (make run EXECUTOR=...): must be one of {', '.join(EXECUTORS)}, got {raw!r}"
        )
    return raw


def executor_settings(
    executor: str,
    *,
    host: str,
    redis_port: int,
    redis_password: str,
    postgres_port: int,
    postgres_password: str,
    airflow_db: str,
) -> dict[str, str]:
    """Airflow's settings for ``executor`` (environment variables). Celery's URLs carry the
    generated passwords: they go only to the Airflow processes' environment, like the connections."""
    settings = {"AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor]}
    if executor != "celery":
        return settings
    redis_pw = quote(redis_password, safe="")
    pg_pw = quote(postgres_password, safe="")
    settings.update(
        {
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:{redis_pw}@{host}:{redis_port}/{BROKER_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": (
                f"db+postgresql+psycopg2://postgres:{pg_pw}@{host}:{postgres_port}/{airflow_db}"
            ),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # As in docker-compose.yaml: each worker imports the project once, before its pool forks.
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "sanvi_ops.airflow_kit.celery_config.CELERY_CONFIG",
            # Longer than any task's execution timeout (a task still running when it passes is
            # handed to the other worker); set, so the provider does not warn in every task log.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
            # Flower is not started; should someone start it, it stays on loopback.
            "AIRFLOW__CELERY__FLOWER_HOST": host,
        }
    )
    return settings


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the local workers: the worker's own name, so each task
    instance records which worker ran it (both run on this one machine, with one FQDN)."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


@dataclass(frozen=True)
class Worker:
    """One Celery worker of the local stack: its name, directories and log server port."""

    name: str
    root: Path
    tmpdir: Path
    log_server_port: int

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    def prepare(self) -> Worker:
        """Create the working directory afresh: nothing a task left last time carries over."""
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, mode=0o700)
        self.tmpdir.mkdir(mode=0o700, exist_ok=True)
        return self

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The stack's Airflow environment with this worker's host name and directories."""
        env = dict(base)
        env.update(
            {
                WORKER_HOSTNAME_ENV: self.name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
                "TMPDIR": str(self.tmpdir),
                "TMP": str(self.tmpdir),
                "TEMP": str(self.tmpdir),
                "PWD": str(self.workdir),
            }
        )
        return env

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "airflow",
            "celery",
            "worker",
            "--celery-hostname",
            self.name,  # Celery's node name becomes celery@<name>
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--skip-serve-logs",  # see the module docstring: it would bind every interface
            "--without-mingle",  # two local workers need not sync revoked-task lists at start
        ]


def plan_workers(state_dir: Path, free_port: Callable[[], int]) -> list[Worker]:
    """The workers under ``state_dir/workers``, each with a new temp directory (short path, see
    the module docstring; the caller removes it) and a free loopback port of its own."""
    import tempfile

    return [
        Worker(name, state_dir / "workers" / name, Path(tempfile.mkdtemp(prefix=f"{name}-")), free_port())
        for name in WORKER_NAMES
    ]
