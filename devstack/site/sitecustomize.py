"""Run by Python at start-up in the local stack's Airflow processes, and only there.

``make run`` puts this directory on the ``PYTHONPATH`` of the Airflow processes it starts (never
of anything else, never in a deployment): the application's host names then resolve to the local
demo server (see ``devstack.hosts``).
"""

import os

if os.environ.get("SANVI_LOCAL_CONNECT_TO"):
    from devstack.hosts import install_from_env

    install_from_env()
