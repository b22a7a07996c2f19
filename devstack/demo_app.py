"""The demo application as a process of its own, for the DR drill's scratch environment.

``python devstack/demo_app.py`` (no package import: runs by path with the venv's Python) serves on
``127.0.0.1:$SANVI_APP_PORT``:

- ``GET /api/health``: reads ``$SANVI_APP_ENV_FILE`` (``KEY=value`` lines, re-read on every
  request, so the drill can point it at the restored database once that answers), then
  ``SELECT count(*) FROM machines`` (falls back to ``SELECT 1``) on ``DATABASE_URL`` and ``PING`` +
  ``DBSIZE`` on ``REDIS_URL``. 200 with ``{"status": "ok", "checks": {"database": "ok", ...}}``
  when the database answers, else 503 saying what is wrong.
- ``GET /``: a small page naming the environment (``APP_ENVIRONMENT`` from the env file).

It stands in for the real application in ``make run`` and the tests; the drill starts it with
``tasks.dr_testing.settings.full_system.app_command``.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Run by path, this file's folder is sys.path[0], and its redis.py would shadow redis-py.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if (str(Path(p).resolve()) if p else "") != _HERE]


def read_env(path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return env
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            env[key.strip()] = value
    return env


def health(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    checks: dict[str, Any] = {"config": "ok" if env.get("SANVI_SNAPSHOT_SHA256") else "defaults"}
    answer: dict[str, Any] = {
        "service": "sanvi-backend",
        "environment": env.get("APP_ENVIRONMENT", "scratch"),
    }
    dsn = env.get("DATABASE_URL")
    if not dsn:
        checks["database"] = "not configured"
    else:
        try:
            import psycopg

            with psycopg.connect(dsn, connect_timeout=3) as conn:
                try:
                    row = conn.execute("SELECT count(*) FROM machines").fetchone()
                    answer["machines"] = row[0] if row else 0
                except psycopg.Error:
                    conn.rollback()
                    conn.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unreachable: {type(exc).__name__}"
    url = env.get("REDIS_URL")
    if not url:
        checks["cache"] = "not configured"
    else:
        try:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=2)
            client.ping()
            answer["cache_keys"] = int(client.dbsize())
            checks["cache"] = "ok"
            client.close()
        except Exception as exc:  # noqa: BLE001
            checks["cache"] = f"unreachable: {type(exc).__name__}"
    answer["checks"] = checks
    answer["status"] = "ok" if checks["database"] == "ok" else "error"
    return (200 if checks["database"] == "ok" else 503), answer


class _Handler(BaseHTTPRequestHandler):
    server_version = "SanviDemoApp/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        env = read_env(os.environ.get("SANVI_APP_ENV_FILE", ""))
        if self.path.split("?")[0] == "/api/health":
            status, data = health(env)
            body = json.dumps(data).encode()
            ctype = "application/json"
        elif self.path.split("?")[0] == "/":
            status, ctype = 200, "text/html; charset=utf-8"
            body = f"<!doctype html><title>Sanvi ({env.get('APP_ENVIRONMENT', 'scratch')})</title>".encode()
        else:
            status, ctype, body = 404, "application/json", b'{"error": "not found"}'
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> int:
    port = int(os.environ.get("SANVI_APP_PORT", "0"))
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    print(f"demo app on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
