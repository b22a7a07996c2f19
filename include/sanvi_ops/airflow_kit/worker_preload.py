"""Imported by Celery in each worker's main process before it forks its pool (``imports`` in
:data:`sanvi_ops.airflow_kit.celery_config.CELERY_CONFIG`): runs the preload
(:func:`sanvi_ops.airflow_kit.preload.preload`) so every task is forked with the project loaded.
Nothing else imports this module: importing it is the preload."""

from __future__ import annotations

from sanvi_ops.airflow_kit.preload import preload

#: What failed to import (each one logged); the worker starts either way.
FAILED = preload()
