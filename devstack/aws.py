"""A local AWS endpoint: moto in server mode on 127.0.0.1.

Tests run it in a thread (:func:`start_moto_thread`); ``make run`` runs it as its own process
(:mod:`devstack.moto_state`, which also keeps its S3/KMS state across restarts). boto3 clients
reach it through the AWS connection's ``endpoint_url`` like any other AWS-compatible endpoint.
"""

from __future__ import annotations

import sys
from typing import Any

#: Credentials moto accepts; they are not secrets and never leave this machine.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_moto_thread() -> tuple[Any, str]:
    """Start moto's threaded server on a free 127.0.0.1 port; return (server, endpoint_url)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def moto_server_command(port: int) -> list[str]:
    """The command line of a standalone moto server bound to 127.0.0.1."""
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def reset_moto(endpoint_url: str) -> None:
    """Forget every resource the moto server holds (its own reset API)."""
    import urllib.request

    req = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback URL we built
        resp.read()
