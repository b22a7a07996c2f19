"""One package per guide task and per job, named after its DAG id.

Each task's ``config.py`` builds its settings model from :mod:`sanvi_ops.core.config`, which in
turn assembles them into the whole file's model; importing that module first here lets a task's
config module be imported on its own.
"""

import sanvi_ops.core.config  # noqa: F401
