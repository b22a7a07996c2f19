"""A Docker Registry HTTP API v2 stand-in on 127.0.0.1: ``GET /v2/`` and ``/v2/<repo>/tags/list``.

Serves only tag lists (what the Dependency Updates' image review reads), with ``n``/``last``
pagination and a ``Link`` header like the real API. Used by ``make run`` and the tests.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        owner.requests.append(self.path)
        if owner.fail_status:
            self._send(owner.fail_status, {"errors": [{"code": "UNAVAILABLE"}]})
            return
        if parts.path.rstrip("/") == "/v2":
            self._send(200, {})
            return
        if not (parts.path.startswith("/v2/") and parts.path.endswith("/tags/list")):
            self._send(404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        repo = parts.path[len("/v2/") : -len("/tags/list")]
        tags = sorted(owner.tags.get(repo, []))
        if repo not in owner.tags:
            self._send(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
            return
        q = parse_qs(parts.query)
        n = int(q.get("n", ["100"])[0])
        last = q.get("last", [""])[0]
        page = [t for t in tags if t > last][:n] if last else tags[:n]
        headers = {}
        if page and page[-1] != tags[-1]:
            headers["Link"] = f'</v2/{repo}/tags/list?n={n}&last={page[-1]}>; rel="next"'
        self._send(200, {"name": repo, "tags": page}, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ImageRegistryStandIn) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class ImageRegistryStandIn:
    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.tags = {k: list(v) for k, v in tags.items()}
        self.requests: list[str] = []
        self.fail_status: int | None = None
        self._httpd = _Server(self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="image-registry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
