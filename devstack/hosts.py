"""The application's host names, resolved to the demo server inside the local stack only.

The checks probe ``https://app.sanvi-machinery.com`` and its siblings by name: TLS with that
name as SNI and certificate name, HTTP with that ``Host``, a TCP connect scan of its ports.
``make run`` has no such hosts, and must not edit ``/etc/hosts``. Like ``curl --connect-to``,
the stack gives its own Airflow processes a map ``host → {port: "127.0.0.1:<demo port>"}``
(environment variable :data:`ENV_VAR`, JSON), and :func:`install` makes
``socket.getaddrinfo`` answer from it:

- a mapped ``(host, port)`` resolves to the demo server's address and port (the HTTPS demo
  for 443, the plain demo for 80);
- any other port of a mapped host resolves to a loopback port that is bound but never listens
  (``closed``), so a connect is refused exactly as by a host with only 80 and 443 open;
- every other name resolves as usual.

It is installed at interpreter start by ``devstack/site/sitecustomize.py``, which only the
stack's Airflow processes have on their ``PYTHONPATH``: nothing else on the machine, and no
deployment, sees it. Everything after name resolution (TCP, TLS, HTTP) is real.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

ENV_VAR = "SANVI_LOCAL_CONNECT_TO"
#: Key of the map's entry naming the refusing port.
CLOSED = "closed"

_original_getaddrinfo = socket.getaddrinfo


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def parse(raw: str) -> tuple[dict[str, dict[int, tuple[str, int]]], tuple[str, int]]:
    """``{"closed": "127.0.0.1:P", "hosts": {host: {port: "127.0.0.1:Q"}}}`` → (hosts, closed).

    Every target must be a loopback address: the map can only ever point at this machine.
    """
    data = json.loads(raw)
    closed = _split(str(data[CLOSED]))
    hosts: dict[str, dict[int, tuple[str, int]]] = {}
    for host, ports in dict(data["hosts"]).items():
        hosts[str(host).lower().rstrip(".")] = {int(p): _split(str(t)) for p, t in dict(ports).items()}
    for target in [closed, *(t for ports in hosts.values() for t in ports.values())]:
        if target[0] not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"{ENV_VAR}: {target[0]!r} is not a loopback address")
    return hosts, closed


def encode(hosts: Mapping[str, Mapping[int, str]], closed: str) -> str:
    """The environment variable's value for ``hosts`` (host → port → "127.0.0.1:port")."""
    return json.dumps(
        {CLOSED: closed, "hosts": {h: {str(p): t for p, t in ports.items()} for h, ports in hosts.items()}},
        sort_keys=True,
    )


def _port_number(port: Any) -> int | None:
    if port is None:
        return None
    if isinstance(port, int):
        return port
    text = port.decode() if isinstance(port, bytes) else str(port)
    if text.isdigit():
        return int(text)
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        return None


def install(hosts: Mapping[str, Mapping[int, tuple[str, int]]], closed: tuple[str, int]) -> None:
    """Make ``socket.getaddrinfo`` resolve the mapped host names (see the module docstring)."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = (host.decode() if isinstance(host, bytes) else str(host or "")).lower().rstrip(".")
        ports = hosts.get(name)
        if ports is None:
            return _original_getaddrinfo(host, port, *args, **kwargs)
        number = _port_number(port)
        target = ports.get(number, closed) if number is not None else closed
        return _original_getaddrinfo(target[0], target[1], *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def install_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """:func:`install` from :data:`ENV_VAR` when it is set; returns whether it was."""
    raw = environ.get(ENV_VAR)
    if not raw:
        return False
    hosts, closed = parse(raw)
    install(hosts, closed)
    return True
