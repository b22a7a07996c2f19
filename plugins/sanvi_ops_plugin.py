"""Sanvi Ops Airflow plugin: the "Maintenance" page in the Airflow UI.

A FastAPI app mounted by the API server under ``/sanvi-ops`` and a top-level nav entry (an external
view shown in the UI's frame at ``/plugin/maintenance``). What the page shows, how it is read from
the results store, the silence writes and the HTML (Jinja2 templates with autoescape) live in
:mod:`sanvi_ops.page`; this file only wires Airflow to it.

Authentication is Airflow's own: every route depends on the core API's ``get_user`` (the JWT in the
``Authorization: Bearer`` header or the UI's ``_token`` cookie, validated by the auth manager), so
without a logged-in user there is no data: the JSON route answers 401 and a browser asking for the
HTML page is sent to the auth manager's login page. Rows are limited to the DAGs the auth manager
lets the user read; adding or lifting a silence needs edit (PUT) access to the DAG it silences (all
DAGs for a silence of every DAG). Forms carry a token derived from the session cookie, and the
cookie itself is ``SameSite=Lax``, so another site cannot post them on the user's behalf. The one
route without an Airflow user is the Slack app's interactivity URL: Slack signs those requests
(see "Incidents" below).

When the page cannot do its job — the results store is down or its connection undefined, or the
maintenance config is broken — every route (the page, its JSON API, the silence forms) answers
HTTP 503 with the page's own error panel (JSON ``{"detail": reason}`` for API callers) naming the
reason, never a 500 or a dropped connection. The page itself still shows the calendar under the
panel when only the store is down.

Imports of ``sanvi_ops`` and of Airflow's API security happen inside the handlers: the scheduler,
DAG processor and workers also load plugins and need none of this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

log = logging.getLogger(__name__)

URL_PREFIX = "/sanvi-ops"
PAGE_PATH = "/maintenance/"
_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
_CSRF_CONTEXT = b"sanvi-ops maintenance page forms"


class Unavailable(Exception):
    """The page cannot do what was asked (store down, config broken): HTTP 503 with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _config() -> Any:
    """The maintenance config, or :class:`Unavailable` naming what is wrong with the file."""
    from sanvi_ops.core.config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        raise Unavailable(f"the maintenance config cannot be used: {exc}") from None


def _wants_html(request: Request) -> bool:
    """Browsers (and the page's own forms) get HTML; scripts get JSON."""
    accept = request.headers.get("accept", "")
    form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/")
    )
    return "text/html" in accept or form or (request.method == "POST" and "json" not in accept)


def _unavailable_response(request: Request, reason: str, user: str | None = None) -> Response:
    from sanvi_ops.page import render_unavailable

    headers = {"Cache-Control": "no-store", "Retry-After": "60"}
    if _wants_html(request):
        back = "../../" if request.url.path.endswith(("/lift", "/ack", "/resolve")) else "./"
        return HTMLResponse(
            render_unavailable(reason, user=user, retry_url=back), status_code=503, headers=headers
        )
    return JSONResponse({"detail": reason}, status_code=503, headers=headers)


async def _user(request: Request) -> BaseUser:
    """The logged-in user, exactly as the core API resolves it (bearer header, else the cookie)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPBearer

    bearer = await HTTPBearer(auto_error=False)(request)
    return await get_user(request, None, bearer)


UserDep = Annotated["BaseUser", Depends(_user)]


def _csrf_token(request: Request) -> str:
    """A token only the holder of the session cookie can compute (empty for bearer-token callers)."""
    cookie = request.cookies.get(_COOKIE, "")
    if not cookie:
        return ""
    return hmac.new(cookie.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _check_csrf(request: Request, token: str) -> None:
    expected = _csrf_token(request)
    if expected and not hmac.compare_digest(expected, token or ""):
        raise HTTPException(403, "The form token does not match this session; reload the page and try again")


def _dag_access(user: BaseUser) -> tuple[list[str], set[str], set[str]]:
    """(every DAG the page knows, those the user may read, those the user may edit)."""
    from airflow.api_fastapi.app import get_auth_manager

    from sanvi_ops.page import all_dag_ids

    known = all_dag_ids(_config())
    am = get_auth_manager()
    readable = am.filter_authorized_dag_ids(dag_ids=set(known), user=user, method="GET")
    editable = am.filter_authorized_dag_ids(dag_ids=set(known), user=user, method="PUT")
    return known, set(readable), set(editable)


def _store() -> tuple[str, str]:
    """(DSN, name) of the results store, from the connection the config names.

    :raises LookupError, ValueError: the connection is missing or unusable.
    """
    from sanvi_ops.airflow_kit.connections import postgres_dsn

    conn_id = _config().connections.store
    return postgres_dsn(conn_id, application_name="sanvi-ops-page"), f"results store (connection {conn_id!r})"


def _writable_store() -> tuple[str, str]:
    """(DSN, name) of the store for a write, or :class:`Unavailable` saying why there is none."""
    try:
        return _store()
    except (LookupError, ValueError) as exc:
        raise Unavailable(f"results store: {exc}") from None


def _load(user: BaseUser) -> tuple[Any, list[str], set[str]]:
    from sanvi_ops.page import load_page, page_without_store

    known, readable, editable = _dag_access(user)
    cfg = _config()
    try:
        dsn, name = _store()
    except (LookupError, ValueError) as exc:  # connection missing or incomplete: say so on the page
        return page_without_store(cfg, f"results store: {exc}", readable_dag_ids=readable), known, editable
    return load_page(dsn, cfg, readable_dag_ids=readable, store_name=name), known, editable


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _add_silence(
    request: Request, user: BaseUser, reason: str, hours: float, dag_id: str, check_pattern: str, csrf: str
) -> RedirectResponse:
    """The silence form: a bad field goes back to the page naming it; a store that is down is a 503."""
    from sanvi_ops.page import SilencesUnavailable, StoreUnavailable, add_silence

    _check_csrf(request, csrf)
    known, _readable, editable = _dag_access(user)
    needed = {dag_id} if dag_id else set(known)
    if not needed <= editable:
        raise HTTPException(403, "Adding this silence needs edit access to " + (dag_id or "every DAG"))
    dsn, name = _writable_store()
    try:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
        sid = add_silence(
            dsn,
            dag_id=dag_id or None,
            check_pattern=check_pattern or None,
            reason=reason,
            created_by=user.get_name(),
            expires_at=expires,
            known_dag_ids=known,
            max_duration=_config().silence_max_duration,
        )
    except StoreUnavailable as exc:
        raise Unavailable(f"{name}: {exc}") from None
    except (ValueError, OverflowError, SilencesUnavailable, LookupError) as exc:
        return RedirectResponse(f"./?err={quote(str(exc))}#silences", status_code=303)
    return RedirectResponse(f"./?msg={quote(f'Silence #{sid} added')}#silences", status_code=303)


def _lift_silence(request: Request, user: BaseUser, silence_id: int, csrf: str) -> RedirectResponse:
    """The lift button: refusals are 403, a store that is down is a 503."""
    from sanvi_ops.page import SilencesUnavailable, StoreUnavailable, lift_silence

    _check_csrf(request, csrf)
    known, _readable, editable = _dag_access(user)
    dsn, name = _writable_store()
    try:
        lifted = lift_silence(
            dsn, silence_id, by=user.get_name(), editable_dag_ids=editable, known_dag_ids=known
        )
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    except StoreUnavailable as exc:
        raise Unavailable(f"{name}: {exc}") from None
    except (SilencesUnavailable, LookupError, ValueError) as exc:
        return RedirectResponse(f"../../?err={quote(str(exc))}#silences", status_code=303)
    text = f"Silence #{silence_id} lifted" if lifted else f"Silence #{silence_id} was not active"
    return RedirectResponse(f"../../?msg={quote(text)}#silences", status_code=303)


# ------------------------------------------------------------------------------------------------
# Incidents (issue 14): acknowledge and resolve from the page, acknowledge from Slack.
#
# The page's forms are role-checked like the silence forms: edit (PUT) access to the incident's
# DAG, the session's form token, POST only. The Slack route has no Airflow user: Slack signs every
# interactivity request with the app's signing secret (Airflow connection
# ``slack_signing_secret``, see sanvi_ops.core.incidents.signing_secret); an unsigned, wrongly
# signed or stale (> 5 min) request is refused with 401, and so is a replay of one already acted
# on (its signature is kept in the store's ``slack_requests_seen``, written in the same transaction
# as the acknowledgement, so every API server worker sees it). Nothing changes on a refusal.

SLACK_PATH = "/slack/interactivity"


def _incident_form(
    request: Request, user: BaseUser, incident_id: int, note: str, csrf: str, action: str
) -> RedirectResponse:
    """The Acknowledge / Resolve forms: refusals are 403, a bad request goes back to the page
    naming it, a store that is down is a 503."""
    from sanvi_ops.page import StoreUnavailable, acknowledge_incident, resolve_incident

    _check_csrf(request, csrf)
    known, _readable, editable = _dag_access(user)
    dsn, name = _writable_store()
    kwargs: dict[str, Any] = {
        "by": user.get_name(),
        "note": note,
        "editable_dag_ids": editable,
        "known_dag_ids": known,
    }
    try:
        if action == "ack":
            created = acknowledge_incident(dsn, _config(), incident_id, **kwargs)
            text = (
                f"Incident #{incident_id} acknowledged"
                if created
                else f"Incident #{incident_id} was already acknowledged"
            )
        else:
            resolve_incident(dsn, _config(), incident_id, **kwargs)
            text = f"Incident #{incident_id} resolved"
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    except StoreUnavailable as exc:
        raise Unavailable(f"{name}: {exc}") from None
    except (ValueError, LookupError) as exc:
        return RedirectResponse(f"../../?err={quote(str(exc))}#incidents", status_code=303)
    from starlette.background import BackgroundTask

    from sanvi_ops.core.store import ResultStore

    # The acknowledgement's [UPDATE] (or the [RESOLVED]) is in the outbox: send it now, after the
    # answer, rather than at the watchdog's next flush; a failure leaves it there for the watchdog.
    store = ResultStore(dsn, name=name, connect_timeout=5)
    return RedirectResponse(
        f"../../?msg={quote(text)}#incidents",
        status_code=303,
        background=BackgroundTask(_deliver_outbox, store, _config(), "Incident form"),
    )


def _slack_refused(reason: str, status: int = 401) -> JSONResponse:
    log.warning("Slack interactivity request refused (%d): %s", status, reason)
    return JSONResponse({"detail": reason}, status_code=status)


def _slack_acknowledge(body: bytes, timestamp: str, signature: str) -> Response:
    """Verify, then acknowledge (runs in a worker thread: it reads the store)."""
    from slack_sdk.signature import SignatureVerifier

    from sanvi_ops.core.incidents import (
        IncidentNotOpen,
        Replayed,
        acknowledge_and_announce,
        parse_slack_action,
        signing_secret,
    )
    from sanvi_ops.core.store import ResultStore, StoreError

    if not timestamp or not signature:
        return _slack_refused(
            "unsigned request (X-Slack-Signature and X-Slack-Request-Timestamp are required)"
        )
    cfg = _config()
    try:
        secret = signing_secret()
    except (LookupError, ValueError) as exc:
        raise Unavailable(f"Slack interactivity is not set up: {exc}") from None
    try:
        valid = SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except ValueError:  # a timestamp that is not a number
        valid = False
    if not valid:
        return _slack_refused(
            "bad or stale signature (signed more than 5 minutes ago, or not with this app's secret)"
        )
    try:
        incident_id, slack_user = parse_slack_action(body)
    except ValueError as exc:
        return _slack_refused(str(exc), 400)
    dsn, name = _writable_store()
    store = ResultStore(dsn, name=name, connect_timeout=5)
    try:
        ack, created = acknowledge_and_announce(
            store,
            cfg,
            incident_id,
            by=slack_user,
            source="slack",
            request_signature=signature,
        )
    except Replayed as exc:
        return _slack_refused(str(exc))
    except IncidentNotOpen as exc:
        return JSONResponse({"ok": False, "detail": str(exc)})
    except StoreError as exc:
        raise Unavailable(str(exc)) from None
    from starlette.background import BackgroundTask

    log.info("Incident #%d acknowledged from Slack by %s (new: %s)", incident_id, slack_user, created)
    return JSONResponse(
        {"ok": True, "incident": incident_id, "acknowledged_by": ack.by, "new": created},
        background=BackgroundTask(_deliver_outbox, store, cfg, "Slack acknowledgement"),
    )


def _add_incident_routes(app: FastAPI) -> None:
    from starlette.concurrency import run_in_threadpool

    @app.post(PAGE_PATH + "incidents/{incident_id}/ack")
    def acknowledge(
        request: Request,
        user: UserDep,
        incident_id: int,
        note: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        """Acknowledge an open incident (stops its escalation; the response time is graded)."""
        return _incident_form(request, user, incident_id, note, csrf, "ack")

    @app.post(PAGE_PATH + "incidents/{incident_id}/resolve")
    def resolve(
        request: Request,
        user: UserDep,
        incident_id: int,
        note: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        """Resolve an open incident by hand (``[RESOLVED]`` says who and why)."""
        return _incident_form(request, user, incident_id, note, csrf, "resolve")

    @app.post(SLACK_PATH)
    async def slack_interactivity(request: Request) -> Response:
        """The Slack app's Interactivity Request URL: the "Acknowledge" button of ``[INCIDENT]``."""
        body = await request.body()
        return await run_in_threadpool(
            _slack_acknowledge,
            body,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        )


def create_app() -> FastAPI:
    app = FastAPI(title="Sanvi Ops maintenance page", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def _unauthenticated(request: Request, exc: HTTPException) -> Response:
        """A browser without a session goes to the login page (and comes back); API callers get 401."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and request.method == "GET" and wants_html:
            from airflow.api_fastapi.app import get_auth_manager

            back = str(request.url)
            return RedirectResponse(get_auth_manager().get_url_login(next_url=back), status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        """The page's own error panel (HTTP 503), whichever route could not do its job."""
        log.warning("Maintenance page unavailable (%s %s): %s", request.method, request.url.path, exc.reason)
        return _unavailable_response(request, exc.reason)

    @app.get(PAGE_PATH, response_class=HTMLResponse)
    def page(request: Request, user: UserDep, msg: str | None = None, err: str | None = None) -> HTMLResponse:
        """The Maintenance page."""
        from sanvi_ops.page import render_page

        data, _known, editable = _load(user)
        status = 503 if data.unavailable else 200  # the calendar still shows, under the reason
        body = render_page(
            data,
            user=user.get_name(),
            csrf_token=_csrf_token(request),
            may_silence=bool(editable),
            airflow_base="../../",
            action_base="",
            message=msg,
            error=err,
            ack_dag_ids=editable,
        )
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    @app.get(PAGE_PATH + "api/page")
    def page_json(user: UserDep) -> JSONResponse:
        """The same data as JSON (for scripts and tests); 503 with ``detail`` when the store is down."""
        data, _known, _editable = _load(user)
        body = _jsonable(dataclasses.asdict(data))
        if data.unavailable:
            body = {"detail": data.unavailable, **body}
            return JSONResponse(
                body, status_code=503, headers={"Cache-Control": "no-store", "Retry-After": "60"}
            )
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @app.post(PAGE_PATH + "silences")
    def add(
        request: Request,
        user: UserDep,
        reason: Annotated[str, Form()] = "",
        hours: Annotated[float, Form(gt=0)] = 0,
        dag_id: Annotated[str, Form()] = "",
        check_pattern: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        """Add a UI silence (reason and duration required; the user is the one signed in)."""
        return _add_silence(request, user, reason, hours, dag_id, check_pattern, csrf)

    @app.post(PAGE_PATH + "silences/{silence_id}/lift")
    def lift(
        request: Request, user: UserDep, silence_id: int, csrf: Annotated[str, Form()] = ""
    ) -> RedirectResponse:
        """Lift an active silence now."""
        return _lift_silence(request, user, silence_id, csrf)

    _add_incident_routes(app)

    @app.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("." + PAGE_PATH, status_code=307)

    return app


app = create_app()


class SanviOpsPlugin(AirflowPlugin):
    """The Maintenance page: a FastAPI app and its entry in the UI's navigation."""

    name = "sanvi_ops"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Sanvi Ops maintenance page"}]
    external_views = [
        {
            "name": "Maintenance",
            # Relative (no leading slash) so it works under a base_url too; shown in the UI's frame.
            "href": URL_PREFIX.lstrip("/") + PAGE_PATH,
            "url_route": "maintenance",
            "destination": "nav",
            "nav_top_level": True,
            "category": "Sanvi Ops",
        }
    ]


# ------------------------------------------------------------------------------------------------
# Alertmanager intake (issue 14): POST /sanvi-ops/alertmanager, Alertmanager's webhook_config.
# Not a user route: Alertmanager authenticates with a bearer token, the password of the Airflow
# connection ``sanvi_alertmanager`` (sanvi_ops.core.alerting.intake.CONN_ID), compared in constant
# time. Answers: 401 bad/missing token, 413 body over 1 MiB, 400 malformed body (nothing stored in
# any of these); 503 while the intake is not configured or the results store is down (Alertmanager
# retries, so nothing is lost); 200 with what was recorded. The outbox is delivered to Slack after
# the answer; what Slack refuses stays in the outbox for the watchdog. See docs/alerting.md.
# ------------------------------------------------------------------------------------------------

ALERTMANAGER_PATH = "/alertmanager"


def _json_error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=status, headers={"Cache-Control": "no-store", **headers}
    )


def _alertmanager_token() -> str:
    """The expected bearer token, or :class:`Unavailable` saying what to configure."""
    from sanvi_ops.airflow_kit.connections import get_connection
    from sanvi_ops.core.alerting.intake import CONN_ID

    try:
        token = get_connection(CONN_ID).password or ""
    except (LookupError, ValueError) as exc:
        raise Unavailable(f"Alertmanager intake not configured: {exc}") from None
    if not token:
        raise Unavailable(
            f"Alertmanager intake not configured: connection {CONN_ID!r} has no password (the bearer token)"
        )
    return token


def _bearer_matches(request: Request, expected: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` when it is longer than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _deliver_outbox(store: Any, cfg: Any, what: str = "Alertmanager intake") -> None:
    """Send what a route queued (after the answer); a failure leaves it for the watchdog."""
    import time

    from sanvi_ops.airflow_kit.connections import slack_client
    from sanvi_ops.core.notify.slack import SlackSender, deliver_pending

    try:
        client = slack_client(cfg.connections.slack)
        sender = SlackSender(client) if client is not None else None
        for _attempt in range(40):  # another flush holds the lock and may have missed ours: wait ≤ 10 s
            report = deliver_pending(store, sender)
            if not report.locked_out:
                break
            time.sleep(0.25)
        log.info("%s: outbox delivery: %s", what, report.describe())
    except Exception:  # noqa: BLE001 - the messages are in the outbox; the watchdog delivers them
        log.exception("%s: outbox delivery failed; the watchdog retries it", what)


def add_alertmanager_intake(target: FastAPI) -> None:
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool

    @target.post(ALERTMANAGER_PATH)
    async def alertmanager(request: Request) -> JSONResponse:
        """Alertmanager's webhook: alerts become incidents (sanvi_ops.core.alerting.intake)."""
        from sanvi_ops.core.alerting.intake import MAX_BODY_BYTES, PayloadError, parse_payload, record_alerts
        from sanvi_ops.core.store import ResultStore, StoreError

        retry = {"Retry-After": "30"}
        try:
            expected = await run_in_threadpool(_alertmanager_token)
        except Unavailable as exc:
            log.error("Alertmanager intake refused a notification: %s", exc.reason)
            return _json_error(503, exc.reason, **retry)
        if not _bearer_matches(request, expected):
            return _json_error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        body = await _capped_body(request, MAX_BODY_BYTES)
        if body is None:
            return _json_error(413, f"body: more than the {MAX_BODY_BYTES} bytes accepted")
        try:
            notification = parse_payload(body)
        except PayloadError as exc:
            log.warning("Alertmanager intake: malformed notification: %s", exc)
            return _json_error(400, str(exc))
        try:
            cfg = await run_in_threadpool(_config)
            dsn, name = await run_in_threadpool(_writable_store)
            store = ResultStore(dsn, name=name)
            await run_in_threadpool(store.require_current)  # a deploy that skipped `migrate`: 503, says so
            report = await run_in_threadpool(record_alerts, store, cfg, notification)
        except Unavailable as exc:
            log.error("Alertmanager intake: %s", exc.reason)
            return _json_error(503, exc.reason, **retry)
        except StoreError as exc:
            log.error("Alertmanager intake: results store down, Alertmanager will retry: %s", exc)
            return _json_error(503, f"results store unavailable: {exc}", **retry)
        return JSONResponse(
            report.as_dict(),
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(_deliver_outbox, store, cfg),  # after the answer
        )


add_alertmanager_intake(app)
