"""Delivering the outbox to Slack with ``slack_sdk``.

The notifier never posts directly: :mod:`sanvi_ops.notify.pipeline` writes each message to the
outbox first, and :func:`deliver_pending` sends what is pending, oldest first:

- HTTP 429 honours ``Retry-After`` (``slack_sdk``'s rate-limit handler sleeps for it), up to
  :attr:`RetryPolicy.max_retry_after` seconds; a longer wait is left to a later run.
- HTTP 5xx, connection errors and timeouts are retried a bounded number of times with
  exponential backoff; still failing, the message stays pending and delivery stops there, so a
  later run sends it and everything after it in the original order.
- ``invalid_auth`` and the other token/permission errors (HTTP 200, ``ok: false``) are not
  retried: the error is recorded on the message, delivery stops, the report says what to fix,
  and the messages go out once the connection is fixed.
- Errors about one message (``channel_not_found``, ``invalid_blocks``, ...) are final for that
  message: it is kept with the error and delivery moves on.
- Two flushers never send the same message: one holds ``pg_try_advisory_lock``, the other
  returns at once.
- No Slack connection: the outbox is the sink and the report says so.

A reply (``[RESOLVED]`` in an incident's thread) waits until its parent has a ``ts``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from http.client import HTTPException, RemoteDisconnected
from typing import TYPE_CHECKING, Any, Final
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from sanvi_ops.notify.render import scrub

if TYPE_CHECKING:
    from sanvi_ops.store import OutboxMessage, ResultStore

log = logging.getLogger(__name__)

#: The token is wrong: every message would fail the same way, so stop and keep them pending.
TOKEN_ERRORS: Final = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)
#: The app lacks a scope or a channel membership: fixable without touching the messages.
PERMISSION_ERRORS: Final = frozenset(
    {
        "no_permission",
        "missing_scope",
        "not_in_channel",
        "access_denied",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)
#: Slack's own trouble reported inside an HTTP 200: try again with a later run.
TRANSIENT_ERRORS: Final = frozenset(
    {"ratelimited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)
# Anything else (channel_not_found, is_archived, invalid_blocks, msg_too_long, ...) is about the
# message itself: it is kept with the error and no longer sent.


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for one Slack call.

    :param max_retries: retries per kind of failure (429, 5xx, connection/timeout).
    :param backoff_factor: first backoff in seconds for 5xx and connection errors (doubles each retry).
    :param max_retry_after: longest ``Retry-After`` we sleep for inside a task; longer waits are
        left to a later run (the message stays pending).
    """

    max_retries: int = 3
    backoff_factor: float = 0.5
    max_retry_after: float = 60.0

    def handlers(self) -> list[RetryHandler]:
        return retry_handlers(
            self.max_retries, backoff_factor=self.backoff_factor, max_retry_after=self.max_retry_after
        )


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """``slack_sdk``'s 429 handler (sleeps ``Retry-After``), but never for longer than a cap."""

    def __init__(self, max_retry_count: int, max_retry_after: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_retry_after = max_retry_after

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response.headers)
        return wait is None or wait <= self.max_retry_after


class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retry every 5xx (the built-in handler only knows 500 and 503; gateways answer 502/504)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` from a header mapping whose values are strings or lists of strings."""
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class ProportionalJitter(Jitter):
    """Adds up to 50 % of the interval (slack_sdk's default adds up to a whole second to any
    interval, which makes a short configured backoff pointless)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + 0.5 * random.random())  # noqa: S311 - jitter, not cryptography


def retry_handlers(
    max_retries: int = 3, *, backoff_factor: float = 0.5, max_retry_after: float = 60.0
) -> list[RetryHandler]:
    """Bounded retry handlers for a ``WebClient`` or ``SlackHook(retry_handlers=...)``.

    429 sleeps ``Retry-After`` (up to ``max_retry_after`` seconds); 5xx and connection errors
    or timeouts back off ``backoff_factor * 2**n`` seconds; at most ``max_retries`` retries.
    """
    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_factor, jitter=ProportionalJitter())
    return [
        BoundedRateLimitRetryHandler(max_retries, max_retry_after),
        AnyServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=backoff),
        ConnectionErrorRetryHandler(
            max_retry_count=max_retries,
            interval_calculator=backoff,
            # URLError covers refused/unreachable; TimeoutError is a read timeout on a slow server.
            error_types=[URLError, ConnectionError, RemoteDisconnected, TimeoutError],
        ),
    ]


def make_client(
    token: str,
    *,
    base_url: str = WebClient.BASE_URL,
    timeout: float = 30,
    policy: RetryPolicy | None = None,
) -> WebClient:
    """A ``WebClient`` with our retry handlers (the glue builds one from the Slack connection)."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        retry_handlers=(policy or RetryPolicy()).handlers(),
    )


class SlackDeliveryError(Exception):
    """A message could not be posted. ``final`` errors concern the message itself (never retried);
    the others concern Slack or the connection, and the message is tried again by a later run."""

    def __init__(self, message: str, *, code: str, final: bool) -> None:
        super().__init__(message)
        self.code = code
        self.final = final


@dataclass(frozen=True)
class Posted:
    """Where Slack put a message: its channel id and ``ts`` (the thread key for replies)."""

    channel: str
    ts: str


class SlackSender:
    """Posts messages with a ``slack_sdk.WebClient`` and classifies failures.

    :param client: e.g. ``SlackHook(slack_conn_id=..., retry_handlers=retry_handlers()).client``
        or :func:`make_client`.
    :param policy: retry policy to install on the client (replacing its handlers). ``None`` keeps
        the client's handlers when they already handle 429, and installs the default policy
        otherwise (a bare ``WebClient`` only retries connection errors once).
    :param connection_name: how reports name the Slack connection (``"connection 'slack_api_default'"``).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        policy: RetryPolicy | None = None,
        connection_name: str = "the Slack connection",
    ) -> None:
        self.client = client
        self.connection_name = connection_name
        if policy is not None:
            client.retry_handlers = policy.handlers()
        elif not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers = RetryPolicy().handlers()

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None = None
    ) -> Posted:
        """``chat.postMessage``; returns where it landed or raises :class:`SlackDeliveryError`."""
        secrets = [self.client.token] if self.client.token else []
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                link_names=True,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise self._api_error(exc, channel, secrets) from None
        except (SlackClientError, URLError, OSError, HTTPException) as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", secrets)
            raise SlackDeliveryError(
                f"Slack unreachable at {self.client.base_url} ({reason}); retries exhausted",
                code="unreachable",
                final=False,
            ) from None
        ts = response.get("ts")
        if not ts:
            raise SlackDeliveryError("Slack answered ok but without a ts", code="no_ts", final=False)
        return Posted(channel=str(response.get("channel") or channel), ts=str(ts))

    def upload_file(
        self,
        channel_id: str,
        filename: str,
        content: bytes,
        *,
        title: str,
        thread_ts: str | None = None,
        initial_comment: str | None = None,
    ) -> str:
        """Share a file in a channel (or a thread) the way ``files_upload_v2`` does:
        ``files.getUploadURLExternal``, POST the bytes to the returned URL, then
        ``files.completeUploadExternal``. Returns Slack's file id.

        :param channel_id: the channel's id (``C…``), as ``chat.postMessage`` returned it; Slack's
            completion step does not take channel names.
        :raises SlackDeliveryError: classified like :meth:`post`.
        """
        secrets = [self.client.token] if self.client.token else []
        try:
            response = self.client.files_upload_v2(
                channel=channel_id,
                content=content,
                filename=filename,
                title=title,
                thread_ts=thread_ts,
                initial_comment=initial_comment,
            )
        except SlackApiError as exc:
            raise self._api_error(exc, channel_id, secrets) from None
        except (SlackClientError, URLError, OSError, HTTPException) as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", secrets)
            raise SlackDeliveryError(
                f"Slack file upload to {self.client.base_url} failed ({reason})",
                code="unreachable",
                final=False,
            ) from None
        file = response.get("file") or {}
        file_id = file.get("id") if isinstance(file, dict) else None
        if not file_id:
            raise SlackDeliveryError(
                "Slack completed the upload without a file id", code="no_file", final=False
            )
        return str(file_id)

    def _api_error(self, exc: SlackApiError, channel: str, secrets: list[str]) -> SlackDeliveryError:
        status = int(getattr(exc.response, "status_code", 0) or 0)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        code = str(data.get("error") or f"http_{status}")
        if status == 429:
            wait = retry_after_seconds(exc.response.headers)
            after = f"{wait:g} s" if wait is not None else "an unspecified time"
            return SlackDeliveryError(
                f"rate limited by Slack (HTTP 429, Retry-After {after}); left for a later run",
                code="ratelimited",
                final=False,
            )
        if status >= 500:
            return SlackDeliveryError(
                f"Slack server error HTTP {status} after retries ({scrub(code, secrets)[:200]})",
                code=f"http_{status}",
                final=False,
            )
        if code in TOKEN_ERRORS:
            return SlackDeliveryError(
                f"Slack rejected the token of {self.connection_name} ({code}): fix its password (the bot "
                "token); undelivered messages stay in the outbox and go out with the next run",
                code=code,
                final=False,
            )
        if code in PERMISSION_ERRORS:
            return SlackDeliveryError(
                f"Slack refused the request ({code}) with {self.connection_name}: check the app's scopes and "
                f"that it is in {channel}; the message stays in the outbox",
                code=code,
                final=False,
            )
        if code in TRANSIENT_ERRORS:
            return SlackDeliveryError(
                f"Slack could not take the message now ({code}); left for a later run", code=code, final=False
            )
        if code == "channel_not_found":
            return SlackDeliveryError(
                f"Slack channel {channel!r} not found ({code}): fix slack.channel / slack.incident_channel in "
                "maintenance.yaml or invite the app; this message will not be retried",
                code=code,
                final=True,
            )
        return SlackDeliveryError(
            f"Slack rejected the message ({scrub(code, secrets)[:200]}); it will not be retried",
            code=code,
            final=True,
        )


@dataclass
class DeliveryReport:
    """What one flush did; :meth:`describe` is the line the notify task logs."""

    sent: int = 0
    failed: int = 0
    given_up: int = 0
    left: int = 0
    sink: bool = False
    locked_out: bool = False
    stopped_by: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable (the notify task returns it as its XCom)."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "given_up": self.given_up,
            "left": self.left,
            "sink": self.sink,
            "locked_out": self.locked_out,
            "stopped_by": self.stopped_by,
            "errors": list(self.errors),
            "message": self.describe(),
        }

    def __str__(self) -> str:
        return self.describe()

    @property
    def ok(self) -> bool:
        """True when nothing failed (a sink-only or locked-out flush is not a failure)."""
        return self.failed == 0 and self.given_up == 0

    def describe(self) -> str:
        if self.sink:
            return (
                f"No Slack connection configured: the outbox is the sink; {self.left} message(s) are kept "
                "in the results store (table notifications) and shown on the Maintenance page, not sent."
            )
        if self.locked_out:
            return (
                f"Another run is delivering the outbox right now; left {self.left} pending message(s) to it."
            )
        text = f"Slack delivery: {self.sent} sent, {self.failed} failed, {self.given_up} given up, {self.left} pending."
        if self.stopped_by:
            text += f" Stopped: {self.stopped_by}"
        return text


def deliver_pending(store: ResultStore, sender: SlackSender | None, limit: int = 100) -> DeliveryReport:
    """Send pending outbox messages in order (see the module docstring for the failure rules).

    :param sender: ``None`` when no Slack connection is configured: nothing is sent and the report
        says the outbox is the sink.
    :param limit: most messages to send in this flush; the rest wait for the next one.
    """
    report = DeliveryReport()
    if sender is None:
        report.sink = True
        report.left = store.count_pending()
        log.info(report.describe())
        return report
    with store.flush_lock() as got:
        if not got:
            report.locked_out = True
            report.left = store.count_pending()
            log.info(report.describe())
            return report
        flush = _Flush(store, sender, report)
        for message in store.pending(limit):
            if not flush.deliver(message):
                break
    report.left = store.count_pending()
    (log.warning if report.failed or report.given_up else log.info)(report.describe())
    return report


@dataclass
class _Flush:
    """One pass over the outbox; remembers what it posted so replies find parents sent moments ago."""

    store: ResultStore
    sender: SlackSender
    report: DeliveryReport
    posted: dict[str, Posted] = field(default_factory=dict)
    given_up: set[str] = field(default_factory=set)

    def _thread(self, message: OutboxMessage) -> tuple[str, str | None] | None:
        """(channel, thread_ts) to post ``message`` with, or ``None`` when its parent is not out yet."""
        parent = message.thread_parent_key
        if (
            parent is None
            or message.parent_state in ("none", "missing", "given_up")
            or parent in self.given_up
        ):
            return message.channel, None  # not a reply, or the parent will never have a ts: post on its own
        if parent in self.posted:
            return self.posted[parent].channel, self.posted[parent].ts
        if message.parent_state == "sent":
            return message.parent_channel or message.channel, message.parent_ts
        return None

    def deliver(self, message: OutboxMessage) -> bool:
        """Post one message; returns False when delivery must stop here to keep the order."""
        target = self._thread(message)
        if target is None:
            self.report.stopped_by = (
                f"message {message.id} ({message.dedupe_key}) waits for its thread parent"
            )
            return False
        channel, thread_ts = target
        try:
            posted = self.sender.post(channel, message.text, message.blocks, thread_ts=thread_ts)
        except SlackDeliveryError as exc:
            error = str(exc)
            self.store.mark_failed(message.id, error, give_up=exc.final)
            self.report.errors.append(f"{message.dedupe_key}: {error}")
            if exc.final:
                self.given_up.add(message.dedupe_key)
                self.report.given_up += 1
                log.error("Slack message %s (%s) given up: %s", message.id, message.dedupe_key, error)
                return True
            self.report.failed += 1
            self.report.stopped_by = error
            log.warning("Slack message %s (%s) not delivered: %s", message.id, message.dedupe_key, error)
            return False
        self.store.mark_sent(message.id, posted.ts, posted.channel)
        self.posted[message.dedupe_key] = posted
        self.report.sent += 1
        return True
