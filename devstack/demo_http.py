"""The local stack's one HTTP server on 127.0.0.1: the demo application and a Slack sink.

``make run`` has no Sanvi application and no Slack workspace, yet the System Health Check
probes a frontend and a backend per environment and reports to Slack. This server stands in
for both, so the whole loop runs for real over HTTP:

- the demo application: ``/<environment>/`` (the frontend, an HTML page) and
  ``/<environment>/api/health`` (the backend, JSON) for each environment (production, staging).
  ``POST /_demo/state`` with ``{"environment", "component", "status", "delay_ms"}`` makes one of
  them fail or slow down, so an operator can watch an incident open and resolve;
- a Slack-Web-API-compatible sink: ``POST /api/chat.postMessage`` (and ``/api/auth.test``) with
  the sink's bot token (``Authorization: Bearer`` or a ``token`` field), answering like Slack
  (HTTP 200, ``ok``/``error``, ``ts``, ``channel``). Messages are kept in a JSON-lines file so
  they survive restarts; ``GET /slack`` lists them, newest first, and ``GET /slack/messages.json``
  returns them as JSON.

The same application is served under its real host names (``app.sanvi-machinery.com`` …) for
the Security Scan and Penetration Testing checks: :func:`make_tls_server` starts an HTTPS
listener with the local certificate (:mod:`devstack.tls`) that routes by ``Host``
(``/`` the frontend with its security headers, ``/api/health`` the backend); on the plain
listener such a ``Host`` is redirected to HTTPS, as a real frontend does.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Environments the demo application serves (``/production/``, ``/staging/``).
DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("production", "staging")
COMPONENTS: tuple[str, ...] = ("frontend", "backend")
#: Security headers of the demo frontends per environment. Staging has no Content-Security-Policy
#: yet: the Penetration Testing's header check reports it (a warning, part of the demo's story).
FRONTEND_HEADERS: dict[str, dict[str, str]] = {
    "production": {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    },
    "staging": {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    },
}
#: TLS handshake bound per connection (a port scan connects and leaves without one).
TLS_HANDSHAKE_TIMEOUT_S = 10.0
#: Largest request body accepted (Slack's own limit for chat.postMessage is far below this).
MAX_BODY_BYTES = 1_000_000


def is_channel_id(name: str) -> bool:
    """``C0123ABCD`` (what Slack answers with) rather than ``#sanvi-ops``."""
    return len(name) > 1 and name[0] in "CDG" and name[1:].isalnum() and name.upper() == name


def channel_id(name: str) -> str:
    """A stable Slack-like channel id (``C`` + 10 upper-case hex) for a channel name or id."""
    if is_channel_id(name):
        return name
    return "C" + hashlib.sha256(name.lstrip("#").encode()).hexdigest()[:10].upper()


class SlackSink:
    """Thread-safe store of the messages posted to the sink, persisted as JSON lines.

    :param path: the JSON-lines file; loaded when it exists, appended to on every message.
    :param token: the only bot token accepted.
    """

    def __init__(self, path: Path, token: str) -> None:
        if not token:
            raise ValueError("SlackSink: token must not be empty")
        self.path = path
        self._token = token
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = self._load()
        self._last_ts = max((float(m["ts"]) for m in self._messages), default=0.0)
        #: channel id → name, so a reply posted to the id Slack returned still shows the name.
        self._names: dict[str, str] = {}
        for m in self._messages:
            if not is_channel_id(str(m["channel_name"])):
                self._names.setdefault(str(m["channel"]), str(m["channel_name"]))
        for m in self._messages:
            m["channel_name"] = self._names.get(str(m["channel"]), m["channel_name"])

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        messages = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    messages.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash; the rest is still good
        return messages

    def token_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self._token.encode())

    def _next_ts(self) -> str:
        ts = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = ts
        return f"{ts:.6f}"

    def post_message(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Store one ``chat.postMessage`` call; return Slack's answer (``ok``/``error``)."""
        channel = str(payload.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        text = payload.get("text")
        blocks = payload.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except json.JSONDecodeError:
                return {"ok": False, "error": "invalid_blocks"}
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        with self._lock:
            cid = channel_id(channel)
            name = self._names.setdefault(cid, channel)
            message = {
                "ts": self._next_ts(),
                "channel": cid,
                "channel_name": name,
                "text": str(text or ""),
                "blocks": blocks or [],
                "thread_ts": payload.get("thread_ts"),
                "received_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            }
            self._messages.append(message)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(message, sort_keys=True) + "\n")
        return {
            "ok": True,
            "channel": message["channel"],
            "ts": message["ts"],
            "message": {"type": "message", "text": message["text"], "ts": message["ts"]},
        }

    def messages(self) -> list[dict[str, Any]]:
        """Every stored message, newest first."""
        with self._lock:
            return list(reversed(self._messages))


@dataclass
class DemoApp:
    """The demo application's health: per (environment, component) status code and delay."""

    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    _overrides: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    #: environment → the instance that serves its backend (the DR drill points ``dr`` at its own)
    _upstreams: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, environment: str, component: str, status: int = 200, delay_ms: float = 0) -> None:
        """Make one endpoint answer ``status`` after ``delay_ms`` (200 and 0 restore it)."""
        if environment not in self.environments:
            raise ValueError(f"environment: unknown {environment!r} (known: {', '.join(self.environments)})")
        if component not in COMPONENTS:
            raise ValueError(f"component: must be one of {', '.join(COMPONENTS)}, got {component!r}")
        if not 100 <= status <= 599:
            raise ValueError(f"status: must be an HTTP status 100..599, got {status}")
        if not 0 <= delay_ms <= 60_000:
            raise ValueError(f"delay_ms: must be 0..60000, got {delay_ms}")
        with self._lock:
            if status == 200 and delay_ms == 0:
                self._overrides.pop((environment, component), None)
            else:
                self._overrides[(environment, component)] = (status, delay_ms / 1000.0)

    def set_upstream(self, environment: str, upstream: str | None) -> None:
        """Serve ``environment``'s backend from ``upstream`` (a loopback ``http://127.0.0.1:port``:
        the DR drill's recovered instance) or, with ``None``, from this server again (fail back)."""
        if upstream is not None:
            parts = urlsplit(upstream)
            if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
                raise ValueError(f"upstream: must be http://127.0.0.1:<port>, got {upstream!r}")
        with self._lock:
            if upstream is None:
                self._upstreams.pop(environment, None)
            else:
                self._upstreams[environment] = upstream.rstrip("/")

    def upstream(self, environment: str) -> str | None:
        with self._lock:
            return self._upstreams.get(environment)

    def state(self, environment: str, component: str) -> tuple[int, float]:
        with self._lock:
            return self._overrides.get((environment, component), (200, 0.0))

    def route(self, path: str) -> tuple[str, str] | None:
        """``/production/api/health`` → ("production", "backend"); ``None`` when not an app path."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in self.environments:
            return None
        rest = parts[1:]
        if rest == []:
            return parts[0], "frontend"
        if rest == ["api", "health"]:
            return parts[0], "backend"
        return None


class DemoHTTPServer(ThreadingHTTPServer):
    """The server; :attr:`sink` and :attr:`app` hold its state. Binds 127.0.0.1 only."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 makes bursts of probes wait for SYN retries

    def __init__(
        self,
        sink: SlackSink,
        app: DemoApp,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        vhosts: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"DemoHTTPServer binds loopback only, not {host!r}")
        self.sink = sink
        self.app = app
        #: host name (lower case) → environment, for requests that arrive under the app's names.
        self.vhosts = {h.lower(): env for h, env in (vhosts or {}).items()}
        self.tls = tls
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshake in the request's own thread, so a slow or silent client blocks no one."""
        if self.tls is not None:
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except OSError:  # a port scan, a refused protocol or cipher: nothing to serve
                return
        super().finish_request(request, client_address)

    def start(self) -> DemoHTTPServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="demo-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(10)
            self._thread = None
        self.server_close()


def make_server(
    messages_file: Path,
    slack_token: str,
    port: int = 0,
    environments: Iterable[str] = DEFAULT_ENVIRONMENTS,
    vhosts: Mapping[str, str] | None = None,
) -> DemoHTTPServer:
    """A started server on 127.0.0.1 (``port=0``: a free port; see ``.url``)."""
    sink = SlackSink(messages_file, slack_token)
    return DemoHTTPServer(sink, DemoApp(tuple(environments)), port=port, vhosts=vhosts).start()


def make_tls_server(
    plain: DemoHTTPServer, cert_file: Path, key_file: Path, vhosts: Mapping[str, str], port: int = 0
) -> DemoHTTPServer:
    """A started HTTPS listener on 127.0.0.1 serving ``plain``'s application under ``vhosts``
    (host name → environment) with the certificate in ``cert_file`` / ``key_file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return DemoHTTPServer(plain.sink, plain.app, port=port, vhosts=vhosts, tls=ctx).start()


class _Handler(BaseHTTPRequestHandler):
    server: DemoHTTPServer
    server_version = "SanviDemo/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server API
        pass  # quiet: the stack's terminal is for the stack's own messages

    # -- responses --------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8")

    def _html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    # -- routing ----------------------------------------------------------------------------

    def _vhost(self) -> str | None:
        """The environment when the request came for one of the application's host names."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return self.server.vhosts.get(host.strip("[]").lower())

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = urlsplit(self.path).path
        environment = self._vhost()
        if environment is not None and self.server.tls is None:
            self.send_response(301)
            self.send_header("Location", f"https://{self.headers['Host'].rsplit(':', 1)[0]}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif environment is not None:
            if path in ("/", "/api/health"):
                self._serve_app(environment, "frontend" if path == "/" else "backend")
            else:
                self._json(404, {"error": "not found", "path": path})
        elif self.server.tls is not None:
            self._json(404, {"error": "unknown host", "host": self.headers.get("Host", "")})
        elif path == "/":
            self._html(200, _index_page(self.server.app.environments))
        elif path in ("/slack", "/slack/"):
            self._html(200, _slack_page(self.server.sink.messages()))
        elif path == "/slack/messages.json":
            self._json(200, {"messages": self.server.sink.messages()})
        elif (target := self.server.app.route(path)) is not None:
            self._serve_app(*target)
        else:
            self._json(404, {"error": "not found", "path": path})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        path = urlsplit(self.path).path
        try:
            payload = self._read_payload()
        except ValueError as exc:
            self._json(400, {"ok": False, "error": "invalid_form_data", "detail": str(exc)})
            return
        if path.startswith("/api/"):
            self._slack_api(path.removeprefix("/api/"), payload)
        elif path == "/_demo/state":
            self._set_demo_state(payload)
        elif path == "/_demo/upstream":
            try:
                upstream = payload.get("upstream")
                self.server.app.set_upstream(
                    str(payload.get("environment", "")), str(upstream) if upstream else None
                )
            except ValueError as exc:
                self._json(400, {"ok": False, "error": str(exc)})
                return
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "not found", "path": path})

    # -- the demo application ---------------------------------------------------------------

    def _proxy(self, upstream: str, path: str) -> None:
        """The backend of an environment pointed elsewhere (the DR drill's recovered instance)."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{upstream}{path}", timeout=10) as resp:  # noqa: S310 - loopback only
                status, body = int(resp.status), resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            status, body = int(exc.code), exc.read(1 << 20)
        except OSError as exc:
            self._json(502, {"status": "error", "error": f"upstream {upstream}: {exc}"})
            return
        try:
            data = json.loads(body)
            if isinstance(data, dict):
                data["served_by"] = upstream
            self._json(status, data)
        except ValueError:
            self._send(status, body, "application/octet-stream")

    def _serve_app(self, environment: str, component: str) -> None:
        upstream = self.server.app.upstream(environment)
        if upstream is not None and component == "backend":
            self._proxy(upstream, "/api/health")
            return
        status, delay_s = self.server.app.state(environment, component)
        if delay_s:
            time.sleep(delay_s)
        healthy = 200 <= status < 400
        if component == "backend":
            self._json(
                status,
                {
                    "status": "ok" if healthy else "error",
                    "environment": environment,
                    "service": "sanvi-backend",
                    "checks": {"database": "ok" if healthy else "unreachable", "cache": "ok"},
                },
            )
        else:
            headers = FRONTEND_HEADERS.get(environment, {}) if self.server.tls is not None else {}
            self._send(
                status, _frontend_page(environment, healthy).encode(), "text/html; charset=utf-8", headers
            )

    def _set_demo_state(self, payload: Mapping[str, Any]) -> None:
        try:
            self.server.app.set_state(
                str(payload.get("environment", "")),
                str(payload.get("component", "")),
                int(payload.get("status", 200)),
                float(payload.get("delay_ms", 0)),
            )
        except (TypeError, ValueError) as exc:
            self._json(400, {"ok": False, "error": str(exc)})
            return
        self._json(200, {"ok": True})

    # -- the Slack sink ---------------------------------------------------------------------

    def _slack_api(self, method: str, payload: Mapping[str, Any]) -> None:
        if method not in ("chat.postMessage", "auth.test"):
            self._json(404, {"ok": False, "error": "unknown_method"})
            return
        token = self._bearer_token() or (str(payload["token"]) if "token" in payload else None)
        if token is None:
            self._json(200, {"ok": False, "error": "not_authed"})
        elif not self.server.sink.token_ok(token):
            self._json(200, {"ok": False, "error": "invalid_auth"})
        elif method == "auth.test":
            self._json(
                200,
                {"ok": True, "url": f"{self.server.url}/slack", "team": "Sanvi (local)", "user": "sanvi-ops"},
            )
        else:
            self._json(200, self.server.sink.post_message(payload))

    def _bearer_token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return None

    def _read_payload(self) -> dict[str, Any]:
        """JSON or form-encoded body (slack_sdk sends JSON; curl users send forms)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError(f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not raw:
            return {}
        if content_type == "application/json":
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("JSON body must be an object")
            return data
        return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()}


# -- pages ----------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#1d1c1d}"
    ".msg{border-left:4px solid #4a154b;padding:.5rem 1rem;margin:1rem 0;background:#f8f8f8}"
    ".meta{color:#616061;font-size:.85rem}pre{white-space:pre-wrap;margin:.25rem 0}"
    ".reply{margin-left:2rem;border-color:#1264a3}"
)


def _index_page(environments: Iterable[str]) -> str:
    links = "".join(
        f'<li>{html.escape(env)}: <a href="/{html.escape(env)}/">frontend</a>, '
        f'<a href="/{html.escape(env)}/api/health">backend /api/health</a></li>'
        for env in environments
    )
    return (
        f"<!doctype html><html><head><title>Sanvi local stack</title><style>{_STYLE}</style></head>"
        f"<body><h1>Sanvi Machinery: local demo</h1><ul>{links}</ul>"
        '<p><a href="/slack">Slack messages received</a></p></body></html>'
    )


def _frontend_page(environment: str, healthy: bool) -> str:
    state = "All systems normal" if healthy else "Service unavailable"
    return (
        f"<!doctype html><html><head><title>Sanvi Machinery ({html.escape(environment)})</title></head>"
        f"<body><h1>Sanvi Machinery</h1><p>{html.escape(environment)}: {state}</p></body></html>"
    )


def _block_text(blocks: Any) -> str:
    """The readable text inside Block Kit blocks (section/header/context), one line per block."""
    lines: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        parts = [block.get("text")] + list(block.get("fields") or []) + list(block.get("elements") or [])
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                lines.append(part["text"])
    return "\n".join(lines)


def _slack_page(messages: list[dict[str, Any]]) -> str:
    items = []
    for m in messages:
        reply = " reply" if m.get("thread_ts") else ""
        thread = f" · in thread {html.escape(str(m['thread_ts']))}" if m.get("thread_ts") else ""
        body = _block_text(m.get("blocks")) or str(m.get("text", ""))
        items.append(
            f'<div class="msg{reply}"><div class="meta">{html.escape(str(m.get("channel_name", "")))} · '
            f"{html.escape(str(m.get('received_at', '')))} · ts {html.escape(str(m.get('ts', '')))}{thread}</div>"
            f"<pre>{html.escape(body)}</pre></div>"
        )
    content = "".join(items) or "<p>No messages yet. Trigger a DAG and reload.</p>"
    return (
        '<!doctype html><html><head><meta http-equiv="refresh" content="10">'
        f"<title>Slack sink ({len(messages)})</title><style>{_STYLE}</style></head>"
        f"<body><h1>Slack messages (local sink)</h1><p class=meta>{len(messages)} message(s), newest first; "
        f'reloads every 10 s. JSON: <a href="/slack/messages.json">/slack/messages.json</a></p>{content}</body></html>'
    )
