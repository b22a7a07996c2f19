"""What a Celery worker imports once, before it forks its pool (run by :mod:`.worker_preload`).

Every task runs in a process forked from its Celery worker, and parses its DAG file there before
it runs. Most of that parse is importing this project (the config models, the task modules and
what they import, the providers' asset URI handlers): about 0.4 s of CPU per task, a large part
of a short task on a small worker. Celery imports :mod:`sanvi_ops.airflow_kit.worker_preload`
(``imports`` in :data:`sanvi_ops.airflow_kit.celery_config.CELERY_CONFIG`) in the worker's main
process, which runs :func:`preload`: it imports what the DAG files import of this project (read from their source, as Airflow's DAG
processor pre-imports Airflow's own modules), so every task is forked with all of it loaded and
its parse only runs the DAG file itself.

A worker keeps the code it started with: a deploy restarts the workers (a new image), and so does
restarting ``make run``. The config file is not frozen: :func:`load_config` reads it again when
its mtime or size changes. The preload never stops a worker: what fails to import is logged, and
the task that needs it reports the real error when it parses its DAG file.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "sanvi_ops"
#: The AWS services the tasks call: their botocore models are read before the fork too, into the
#: loader every hook session shares (connections.share_botocore_loader), so a task's first client
#: of each costs ~0.05 s of CPU instead of ~0.3 s. One missing here is only read by its task.
AWS_SERVICES = (
    "s3", "kms", "rds", "ec2", "ecs", "elasticache", "elbv2", "logs", "cloudwatch", "sts", "iam",
    "ecr", "application-autoscaling", "ssm", "secretsmanager", "ce", "securityhub", "cloudtrail",
)  # fmt: skip


def project_imports(dag_files: Iterable[Path]) -> list[str]:
    """The modules of this project the DAG files import (read from their source, not run): for
    ``from sanvi_ops.x import y`` both ``sanvi_ops.x`` and, when it is a module, ``sanvi_ops.x.y``."""
    found: dict[str, None] = {}
    for path in dag_files:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # its task reports it when it parses the file
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            found.update(dict.fromkeys(n for n in names if n.split(".")[0] == PACKAGE))
    return [name for name in found if _is_module(name)]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a name imported from a module, not a module
        return False


def dag_files() -> list[Path]:
    from airflow.configuration import conf

    return sorted(Path(conf.get("core", "dags_folder")).expanduser().rglob("*.py"))


def preload(files: Iterable[Path] | None = None) -> list[str]:
    """Import what the DAG files import of this project, and what that imports at any depth
    (function-level imports too: a task body imports its logic when it runs); returns what failed
    (each one logged)."""
    failed: list[str] = []
    todo = project_imports(dag_files() if files is None else files)
    seen = set(todo)
    while todo:
        name = todo.pop(0)
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the task's own parse reports it properly
            failed.append(name)
            log.warning("worker preload: %s not imported: %s", name, exc)
            continue
        source = getattr(module, "__file__", None)
        for more in project_imports([Path(source)] if source else []):
            if more not in seen:
                seen.add(more)
                todo.append(more)
    try:
        # Asset(uri="s3://…") in a DAG file loads every provider's URI handlers (boto3 among them).
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        ProvidersManagerTaskRuntime().initialize_providers_asset_uri_resources()  # type: ignore[no-untyped-call]
        from sanvi_ops.core.config import load_config

        load_config()  # cached by the file's mtime and size: a changed file is read again
    except Exception as exc:  # noqa: BLE001
        failed.append("config")
        log.warning("worker preload: %s", exc)
    try:
        warm_botocore(AWS_SERVICES)
    except Exception as exc:  # noqa: BLE001
        failed.append("botocore")
        log.warning("worker preload: botocore models not read: %s", exc)
    return failed


def warm_botocore(services: Iterable[str]) -> None:
    """Read the services' botocore models (and the endpoint rules) into the shared loader: a
    client of each is made and dropped; no request is sent, the credentials are placeholders."""
    import boto3

    from sanvi_ops.airflow_kit.connections import share_botocore_loader

    session = boto3.session.Session(
        aws_access_key_id="preload", aws_secret_access_key="preload", region_name="us-east-1"
    )
    share_botocore_loader(session)
    for name in services:
        session.client(name)  # type: ignore[call-overload]
