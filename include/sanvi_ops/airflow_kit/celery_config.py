"""The Celery app's configuration (``[celery] celery_config_options``): Airflow's own, plus the
worker preload (:mod:`sanvi_ops.airflow_kit.worker_preload`), which Celery imports in each
worker's main process before it forks its pool. The scheduler reads this too and imports
nothing more for it."""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: Set as ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` (docker-compose.yaml, ``make run EXECUTOR=celery``;
#: the Helm values run the KubernetesExecutor, a pod per task, where there is no pool to fork).
CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": ("sanvi_ops.airflow_kit.worker_preload",),
}
