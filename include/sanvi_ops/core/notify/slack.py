"""Delivering the outbox to Slack with ``slack_sdk``, each message exactly once.

The notifier never posts directly: :mod:`sanvi_ops.core.notify.pipeline` writes each message to the
outbox first, and :func:`deliver_pending` sends what is pending, oldest first:

- Exactly once: before each ``chat.postMessage`` the row is marked "sending" with a client-side
  idempotency key (:meth:`~sanvi_ops.core.store.ResultStore.mark_sending`), and the key travels with
  the message as Block Kit ``metadata`` (``{"event_type": "sanvi_ops_outbox", "event_payload":
  {"key": …}}``). When the outcome of a post is unknown (HTTP 5xx, a read timeout, a connection
  reset after the request was sent, or a worker or results store that died between the post and
  ``mark_sent``), the row stays "sending"; before posting it again, the sender looks the message
  up in the channel (``conversations.history``, or ``conversations.replies`` for a thread reply,
  from the first doubtful attempt, ``include_all_metadata``) and, found, marks it sent with that
  ``ts`` instead of posting a second copy. A lookup that cannot be done (Slack down, a missing
  ``channels:history`` scope) leaves the message pending: never posted blind.
- No ``slack_sdk`` retry handler re-posts a request Slack may have accepted: only HTTP 429 (the
  request was refused) and connection errors raised before the request was written (refused,
  DNS, connect timeout, TLS) are retried inside the client. 5xx and timeouts are retried here,
  with backoff and a lookup before each new post, at most :attr:`RetryPolicy.max_retries` times.
- HTTP 429 honours ``Retry-After`` (seconds, fractional seconds or an HTTP date; anything else
  means :data:`DEFAULT_RETRY_AFTER`), up to :attr:`RetryPolicy.max_retry_after` seconds; a longer
  wait is left to a later run and recorded on the message.
- ``invalid_auth`` and the other token/permission errors (HTTP 200, ``ok: false``) are not
  retried: the error is recorded on the message, delivery stops, the report says what to fix,
  and the messages go out once the connection is fixed.
- Errors about one message (``channel_not_found``, ``invalid_blocks``, ...) are final for that
  message: it is kept with the error and delivery moves on.
- Two flushers never send the same message: one holds ``pg_try_advisory_lock``, the other
  returns at once.
- Nothing raises out of :func:`deliver_pending` for a message: an unexpected error is recorded on
  the message (as "in doubt", so it is looked up before any new post) and delivery stops there.
  A results store that dies mid-flush ends the flush with ``store_down`` in the report.
- No Slack connection: the outbox is the sink and the report says so.

A reply (``[RESOLVED]`` in an incident's thread) waits until its parent has a ``ts``.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, Final
from urllib.error import HTTPError, URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from sanvi_ops.core.notify.render import scrub
from sanvi_ops.core.store import StoreError

if TYPE_CHECKING:
    from sanvi_ops.core.store import OutboxMessage, ResultStore

log = logging.getLogger(__name__)

#: Block Kit ``metadata.event_type`` of every message we post; ``event_payload.key`` is the
#: outbox row's idempotency key (what a lookup after an ambiguous failure matches).
METADATA_EVENT_TYPE: Final = "sanvi_ops_outbox"
#: Seconds to wait on a 429 whose ``Retry-After`` is missing, negative or unreadable.
DEFAULT_RETRY_AFTER: Final = 1.0
#: Longest ``Retry-After`` taken at its word (a bogus "wait a year" is recorded as this).
MAX_RETRY_AFTER: Final = 3600.0
#: A lookup searches from this many seconds before the first doubtful attempt (clock skew
#: between the results store, which stamps the attempt, and Slack, which stamps the ``ts``).
LOOKUP_SKEW_SECONDS: Final = 300.0
#: Pages of history a lookup reads at most (200 messages each) before it gives up.
LOOKUP_MAX_PAGES: Final = 10
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")

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
#: Of those, the ones after which Slack says "some aspect of the operation may have succeeded":
#: the message is looked up before it is posted again.
IN_DOUBT_ERRORS: Final = frozenset({"service_unavailable", "fatal_error", "internal_error"})
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


def parse_retry_after(value: Any, *, default: float = DEFAULT_RETRY_AFTER, maximum: float = MAX_RETRY_AFTER,
                      now: datetime | None = None) -> float:  # fmt: skip
    """Seconds a ``Retry-After`` value asks for; never raises.

    Seconds (``"30"``, ``"1.5"``) or an HTTP date (RFC 9110: ``"Wed, 21 Oct 2026 07:28:00 GMT"``,
    counted from ``now``) are honoured; the result is clamped to ``maximum``. Missing, negative,
    non-finite or unreadable values mean ``default``; a date in the past means 0.
    """
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    text = str(value).strip()
    if not text:
        return default
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _http_date_seconds(text, now)
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return default
    return min(seconds, maximum)


def _http_date_seconds(text: str, now: datetime | None) -> float | None:
    if len(text) > 64:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_seconds(headers: Any, *, default: float | None = None) -> float | None:
    """``Retry-After`` from a header mapping whose values are strings or lists of strings; ``default``
    when there is none or it is unreadable (see :func:`parse_retry_after`)."""
    raw = retry_after_header(headers)
    if raw is None:
        return default
    parsed = parse_retry_after(raw, default=-1.0)
    return default if parsed < 0 else parsed


def retry_after_header(headers: Any) -> str | None:
    """The raw ``Retry-After`` value (first one), or ``None``; never raises."""
    if not headers:
        return None
    try:
        items = dict(headers).items()
    except (TypeError, ValueError):
        return None
    for key, value in items:
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            return None if raw is None else str(raw)[:100]
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """429 only (Slack refused the request, so sending it again cannot duplicate it): sleeps the
    ``Retry-After`` it can read (:func:`parse_retry_after`; ``slack_sdk``'s own handler calls
    ``int()`` on it and raises on ``1.5`` or a date), never longer than a cap; a longer wait is not
    retried inside the task."""

    def __init__(
        self, max_retry_count: int, max_retry_after: float, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_retry_after = max_retry_after
        #: The policy these handlers were built from (:class:`SlackSender` reuses it).
        self.policy = policy or RetryPolicy(max_retries=max_retry_count, max_retry_after=max_retry_after)

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
        return self._wait(response) <= self.max_retry_after

    @staticmethod
    def _wait(response: HttpResponse) -> float:
        return parse_retry_after(retry_after_header(response.headers))

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        wait = (
            min(self._wait(response), self.max_retry_after) if response is not None else DEFAULT_RETRY_AFTER
        )
        time.sleep(wait + 0.1 * random.random())  # noqa: S311 - jitter, not cryptography
        state.increment_current_attempt()


class NotSentConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """Connection errors raised before the request was written, and only those.

    ``urllib`` wraps every error of connecting and sending (``h.request``: refused, DNS, connect
    timeout, TLS handshake, reset while writing) in ``URLError``; an error while waiting for or
    reading the answer (``RemoteDisconnected``, ``ConnectionResetError``, a read timeout) comes
    unwrapped, and by then Slack may have the message: those are left to the caller, which looks
    the message up before posting again. ``HTTPError`` (a ``URLError`` too) is an answer, not a
    connection error.
    """

    def __init__(self, max_retry_count: int, interval_calculator: Any) -> None:
        super().__init__(max_retry_count=max_retry_count, interval_calculator=interval_calculator,
                         error_types=[URLError])  # fmt: skip

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is None and error_not_sent(error)


def error_not_sent(error: BaseException | None) -> bool:
    """True when ``error`` happened before the request reached Slack (see the handler above)."""
    return isinstance(error, URLError) and not isinstance(error, HTTPError)


class ProportionalJitter(Jitter):
    """Adds up to 50 % of the interval (slack_sdk's default adds up to a whole second to any
    interval, which makes a short configured backoff pointless)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + 0.5 * random.random())  # noqa: S311 - jitter, not cryptography


def retry_handlers(
    max_retries: int = 3, *, backoff_factor: float = 0.5, max_retry_after: float = 60.0
) -> list[RetryHandler]:
    """Retry handlers for a ``WebClient`` or ``SlackHook(retry_handlers=...)`` that never repeat a
    request Slack may have accepted.

    429 sleeps ``Retry-After`` (up to ``max_retry_after`` seconds); a connection error before the
    request was sent backs off ``backoff_factor * 2**n`` seconds; at most ``max_retries`` retries
    each. There is deliberately no 5xx or read-timeout handler: :class:`SlackSender` retries those
    after looking the message up (see the module docstring).
    """
    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_factor, jitter=ProportionalJitter())
    policy = RetryPolicy(max_retries, backoff_factor, max_retry_after)
    return [
        BoundedRateLimitRetryHandler(max_retries, max_retry_after, policy),
        NotSentConnectionErrorRetryHandler(max_retries, backoff),
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
    the others concern Slack or the connection, and the message is tried again by a later run.
    ``in_doubt``: Slack may have accepted the post (5xx, timeout or reset after sending), so it is
    looked up in the channel before any new attempt."""

    def __init__(self, message: str, *, code: str, final: bool, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.final = final
        self.in_doubt = in_doubt


@dataclass(frozen=True)
class Posted:
    """Where Slack put a message: its channel id and ``ts`` (the thread key for replies)."""

    channel: str
    ts: str


class SlackSender:
    """Posts messages with a ``slack_sdk.WebClient`` and classifies failures.

    :param client: e.g. ``SlackHook(slack_conn_id=..., retry_handlers=retry_handlers()).client``
        or :func:`make_client`.
    :param policy: retry policy (default: the one :func:`retry_handlers` installed on the client,
        else :class:`RetryPolicy`). Its handlers replace the client's whatever they were, so that no handler re-posts a message Slack may have accepted (a bare
        ``WebClient`` or a ``SlackHook`` may carry ``slack_sdk``'s own, which retry resets and
        5xx); its ``max_retries`` and ``backoff_factor`` also bound the retries after a 5xx or a
        timeout, each preceded by a lookup.
    :param connection_name: how reports name the Slack connection (``"connection 'slack_api_default'"``).
    :param sleep: how to wait between those retries (tests pass a recorder).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        policy: RetryPolicy | None = None,
        connection_name: str = "the Slack connection",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.connection_name = connection_name
        installed = [h.policy for h in client.retry_handlers if isinstance(h, BoundedRateLimitRetryHandler)]
        self.policy = policy or (installed[0] if installed else RetryPolicy())
        self.sleep = sleep
        client.retry_handlers = self.policy.handlers()

    @property
    def _secrets(self) -> list[str]:
        return [self.client.token] if self.client.token else []

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1, 2, ...) after an ambiguous failure."""
        base = float(self.policy.backoff_factor) * float(2 ** max(0, attempt - 1))
        return base * (1 + 0.5 * random.random())  # noqa: S311 - jitter, not cryptography

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None = None,
        *,
        key: str | None = None,
    ) -> Posted:
        """``chat.postMessage``; returns where it landed or raises :class:`SlackDeliveryError`.

        :param key: the idempotency key, sent as Block Kit ``metadata`` so :meth:`find` can tell
            whether an earlier attempt landed.
        """
        metadata = {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key}} if key else None
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                link_names=True,
                unfurl_links=False,
                unfurl_media=False,
                metadata=metadata,
            )
        except SlackApiError as exc:
            raise self._api_error(exc, channel, self._secrets) from None
        except Exception as exc:  # noqa: BLE001 - classified: sent or not, never raised raw
            raise self._transport_error(exc, "post to") from None
        ts = response.get("ts")
        if not ts:
            raise SlackDeliveryError(
                "Slack answered ok but without a ts", code="no_ts", final=False, in_doubt=True
            )
        return Posted(channel=str(response.get("channel") or channel), ts=str(ts))

    def _transport_error(self, exc: BaseException, what: str) -> SlackDeliveryError:
        """A failure without an HTTP answer: was the request written before it happened?"""
        reason = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
        if error_not_sent(exc) or isinstance(exc, SlackRequestError):
            return SlackDeliveryError(
                f"Slack unreachable at {self.client.base_url} ({reason}); retries exhausted",
                code="unreachable",
                final=False,
            )
        if isinstance(exc, SlackClientError | OSError | HTTPException | TimeoutError):
            return SlackDeliveryError(
                f"no answer from Slack at {self.client.base_url} after the request was sent ({reason}); "
                "it may have been accepted",
                code="no_answer",
                final=False,
                in_doubt=True,
            )
        return SlackDeliveryError(
            f"unexpected error in the {what} Slack ({reason})", code="unexpected", final=False, in_doubt=True
        )

    # ---------------------------------------------------------------------------- lookup

    def channel_id(self, channel: str, known: str | None = None) -> str:
        """The id (``C…``) of ``channel`` (a name like ``#ops`` or already an id).

        :param known: an id Slack returned for this channel earlier (the outbox remembers them);
            otherwise ``conversations.list`` is asked (scope ``channels:read``/``groups:read``).
        :raises SlackDeliveryError: the channel cannot be resolved.
        """
        if _CHANNEL_ID.match(channel):
            return channel
        if known:
            return known
        name = channel.lstrip("#")
        cursor: str | None = None
        for _ in range(LOOKUP_MAX_PAGES):
            response = self._call(
                "conversations.list", types="public_channel,private_channel", exclude_archived=True,
                limit=1000, cursor=cursor,
            )  # fmt: skip
            for item in response.get("channels") or []:
                if isinstance(item, dict) and item.get("name") == name and item.get("id"):
                    return str(item["id"])
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                break
        raise SlackDeliveryError(
            f"cannot check whether Slack already has the message: channel {channel!r} not found by "
            f"conversations.list with {self.connection_name}",
            code="lookup_failed",
            final=False,
            in_doubt=True,
        )

    def find(self, channel_id: str, key: str, since: datetime, thread_ts: str | None = None) -> Posted | None:
        """The message carrying idempotency ``key`` posted since ``since`` (minus clock skew), or
        ``None``. Reads ``conversations.history`` (``conversations.replies`` in a thread) with
        ``include_all_metadata``.

        :raises SlackDeliveryError: the lookup itself failed (always ``in_doubt``: the message is
            kept, not posted blind).
        """
        oldest = f"{max(0.0, since.timestamp() - LOOKUP_SKEW_SECONDS):.6f}"
        method = "conversations.replies" if thread_ts else "conversations.history"
        cursor: str | None = None
        for _ in range(LOOKUP_MAX_PAGES):
            args: dict[str, Any] = {"channel": channel_id, "oldest": oldest, "include_all_metadata": True,
                                    "limit": 200, "cursor": cursor}  # fmt: skip
            if thread_ts:
                args["ts"] = thread_ts
            response = self._call(method, **args)
            for item in response.get("messages") or []:
                if _carries_key(item, key):
                    return Posted(channel=channel_id, ts=str(item["ts"]))
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                return None
        raise SlackDeliveryError(
            f"cannot check whether Slack already has the message: more than {LOOKUP_MAX_PAGES} pages "
            f"of {method} since {since:%Y-%m-%d %H:%M:%S %Z}",
            code="lookup_failed",
            final=False,
            in_doubt=True,
        )

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """A read-only Web API call for the lookup; any failure is a ``lookup_failed`` error."""
        params = {k: v for k, v in params.items() if v is not None}
        try:
            response = self.client.api_call(method, params=params)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            code = str(data.get("error") or f"http_{getattr(exc.response, 'status_code', 0)}")
            hint = " (the app needs channels:history/groups:history and channels:read)" if code in (
                "missing_scope", "not_in_channel") else ""  # fmt: skip
            raise SlackDeliveryError(
                f"cannot check whether Slack already has the message: {method} failed "
                f"({scrub(code, self._secrets)[:200]}){hint}; it stays pending and is not posted again blind",
                code="lookup_failed",
                final=False,
                in_doubt=True,
            ) from None
        except Exception as exc:  # noqa: BLE001 - any failure of a read: the message stays in doubt
            reason = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:300]
            raise SlackDeliveryError(
                f"cannot check whether Slack already has the message: {method} failed ({reason}); "
                "it stays pending and is not posted again blind",
                code="lookup_failed",
                final=False,
                in_doubt=True,
            ) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

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
            raw = retry_after_header(exc.response.headers)
            wait = parse_retry_after(raw)
            if raw is None:
                after = f"missing, {wait:g} s assumed"
            elif retry_after_seconds(exc.response.headers) is None:
                after = f"{scrub(raw, secrets)[:60]!r} unreadable, {wait:g} s assumed"
            else:
                after = f"{wait:g} s"
            return SlackDeliveryError(
                f"rate limited by Slack (HTTP 429, Retry-After {after}); left for a later run",
                code="ratelimited",
                final=False,
            )
        if status >= 500:
            return SlackDeliveryError(
                f"Slack server error HTTP {status} ({scrub(code, secrets)[:200]}); it may have accepted "
                "the message",
                code=f"http_{status}",
                final=False,
                in_doubt=True,
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
                f"Slack could not take the message now ({code}); left for a later run",
                code=code,
                final=False,
                in_doubt=code in IN_DOUBT_ERRORS,
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


def _carries_key(message: Any, key: str) -> bool:
    if not isinstance(message, dict) or not message.get("ts"):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("key") == key


@dataclass
class DeliveryReport:
    """What one flush did; :meth:`describe` is the line the notify task logs.

    ``recovered``: messages an earlier attempt had posted without the outbox knowing (found in the
    channel by their idempotency key and marked sent, not posted again). ``store_down``: the
    results store failed mid-flush (``stopped_by`` says how); nothing more could be recorded.
    """

    sent: int = 0
    failed: int = 0
    given_up: int = 0
    left: int = 0
    recovered: int = 0
    sink: bool = False
    locked_out: bool = False
    store_down: bool = False
    stopped_by: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable (the notify task returns it as its XCom)."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "given_up": self.given_up,
            "left": self.left,
            "recovered": self.recovered,
            "sink": self.sink,
            "locked_out": self.locked_out,
            "store_down": self.store_down,
            "stopped_by": self.stopped_by,
            "errors": list(self.errors),
            "message": self.describe(),
        }

    def __str__(self) -> str:
        return self.describe()

    @property
    def ok(self) -> bool:
        """True when nothing failed (a sink-only or locked-out flush is not a failure)."""
        return self.failed == 0 and self.given_up == 0 and not self.store_down

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
        if self.recovered:
            text += f" {self.recovered} found already in Slack (not posted again)."
        if self.store_down:
            text += (
                " The results store failed mid-flush: undelivered messages stay in the outbox, and one "
                "whose post may have landed is looked up in Slack before it is posted again."
            )
        if self.stopped_by:
            text += f" Stopped: {self.stopped_by}"
        return text


def deliver_pending(store: ResultStore, sender: SlackSender | None, limit: int = 100) -> DeliveryReport:
    """Send pending outbox messages in order (see the module docstring for the failure rules).

    :param sender: ``None`` when no Slack connection is configured: nothing is sent and the report
        says the outbox is the sink.
    :param limit: most messages to send in this flush; the rest wait for the next one.
    :raises StoreError: only when the store cannot be reached at all (before anything is sent);
        a store failing mid-flush ends the flush with ``report.store_down``.
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
        try:
            for message in store.pending(limit):
                if not flush.deliver(message):
                    break
        except StoreError as exc:
            report.store_down = True
            report.failed += 1
            report.stopped_by = str(exc)
            report.errors.append(str(exc))
    try:
        report.left = store.count_pending()
    except StoreError as exc:
        report.store_down = True
        report.stopped_by = report.stopped_by or str(exc)
    (log.warning if not report.ok else log.info)(report.describe())
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
        """Post one message exactly once; returns False when delivery must stop here (order).

        Store errors propagate (the caller ends the flush); everything else is recorded on the row.
        """
        target = self._thread(message)
        if target is None:
            self.report.stopped_by = (
                f"message {message.id} ({message.dedupe_key}) waits for its thread parent"
            )
            return False
        channel, thread_ts = target
        try:
            if message.in_doubt and message.delivery_key and message.sending_since:
                found = self._look_up(
                    message, channel, thread_ts, message.delivery_key, message.sending_since
                )
                if found is not None:
                    return self._sent(message, found, recovered=True)
            return self._post(message, channel, thread_ts)
        except SlackDeliveryError as exc:
            return self._failed(message, exc)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the message nor double it
            log.exception("Slack message %s (%s): unexpected error", message.id, message.dedupe_key)
            reason = scrub(f"{type(exc).__name__}: {exc}", self.sender._secrets)[:300]
            unexpected = SlackDeliveryError(
                f"unexpected error while delivering ({reason})", code="unexpected", final=False, in_doubt=True
            )
            return self._failed(message, unexpected)

    def _post(self, message: OutboxMessage, channel: str, thread_ts: str | None) -> bool:
        retries = 0
        while True:
            marked = self.store.mark_sending(message.id)  # durable before the post
            if marked is None:
                log.info("Slack message %s (%s) is no longer pending", message.id, message.dedupe_key)
                return True
            key, since = marked
            try:
                posted = self.sender.post(channel, message.text, message.blocks, thread_ts=thread_ts, key=key)
            except SlackDeliveryError as exc:
                if not exc.in_doubt or exc.final or retries >= self.sender.policy.max_retries:
                    raise
                retries += 1
                log.warning("Slack message %s (%s): %s; looking it up before retry %d",
                            message.id, message.dedupe_key, exc, retries)  # fmt: skip
                self.sender.sleep(self.sender.backoff(retries))
                found = self._look_up(message, channel, thread_ts, key, since)
                if found is not None:
                    return self._sent(message, found, recovered=True)
                continue
            return self._sent(message, posted)

    def _look_up(
        self, message: OutboxMessage, channel: str, thread_ts: str | None, key: str, since: datetime
    ) -> Posted | None:
        known = None if thread_ts or _CHANNEL_ID.match(channel) else self.store.known_channel_id(channel)
        channel_id = channel if thread_ts else self.sender.channel_id(channel, known)
        found = self.sender.find(channel_id, key, since, thread_ts)
        log.info("Slack message %s (%s) with key %s %s", message.id, message.dedupe_key, key,
                 f"found in {channel_id} at ts {found.ts}" if found else f"not in {channel_id}: posting it")  # fmt: skip
        return found

    def _sent(self, message: OutboxMessage, posted: Posted, *, recovered: bool = False) -> bool:
        self.store.mark_sent(message.id, posted.ts, posted.channel)
        self.posted[message.dedupe_key] = posted
        if recovered:
            self.report.recovered += 1
        else:
            self.report.sent += 1
        return True

    def _failed(self, message: OutboxMessage, exc: SlackDeliveryError) -> bool:
        error = str(exc)
        self.store.mark_failed(message.id, error, give_up=exc.final, in_doubt=exc.in_doubt)
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
