"""A small, typed client for the Prometheus HTTP API, and PromQL for "held for a duration".

Why our own client: we need three calls (``/api/v1/query``, ``/api/v1/query_range``,
``/-/ready``), typed results, and errors a person can act on — the URL path, the HTTP status,
Prometheus's own ``errorType``/``error`` text and the query that failed — with no credentials in
them. httpx (already a runtime dependency) does the transport.

The guide's alert thresholds are written "CPU > 70 % for 15m". Checking only the current value
would page on every short spike; :func:`sustained_min` and :func:`sustained_above` evaluate the
condition with real PromQL subqueries (``min_over_time((expr)[15m:1m])``), so "for 15m" means
what an alerting rule's ``for: 15m`` means: the condition held at every step of the window.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx

log = logging.getLogger(__name__)

#: A PromQL duration literal: one or more ``<int><unit>`` terms, largest unit first (``1h30m``).
_DURATION_RE = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_UNITS_MS: list[tuple[str, int]] = [
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
]
_UNIT_MS = dict(_UNITS_MS) | {"y": 365 * 24 * 3600 * 1000}


class PrometheusError(RuntimeError):
    """A Prometheus API call failed.

    The message names the method and URL path, the HTTP status and Prometheus's ``errorType`` /
    ``error`` when it sent them, and the PromQL expression, so a bad query in the configuration
    can be fixed from the message alone. The base URL is shown without credentials.

    :ivar path: URL path that was called (``/api/v1/query``).
    :ivar status_code: HTTP status, ``None`` when no response arrived.
    :ivar error_type: Prometheus's ``errorType`` (``bad_data``, ``execution``, ``timeout``, ...).
    :ivar error: Prometheus's ``error`` text (or the transport error).
    :ivar expr: the PromQL expression, when the call was a query.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        status_code: int | None = None,
        error_type: str | None = None,
        error: str | None = None,
        expr: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.status_code = status_code
        self.error_type = error_type
        self.error = error
        self.expr = expr


class PrometheusUnreachable(PrometheusError):
    """No HTTP response at all: connection refused, DNS failure, TLS failure or timeout."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels (``__name__`` included when present) and value."""

    labels: dict[str, str]
    value: float
    timestamp: datetime | None = None


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and its ``(time, value)`` points in time order."""

    labels: dict[str, str]
    points: list[tuple[datetime, float]] = field(default_factory=list)


def redact_url(url: str) -> str:
    """``url`` without user info (``https://user:secret@host`` → ``https://host``), for messages."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    if parsed.userinfo:
        parsed = parsed.copy_with(username=None, password=None)
    return str(parsed)


def promql_duration(value: timedelta | str) -> str:
    """A PromQL duration literal for ``value`` (``timedelta(minutes=90)`` → ``"1h30m"``).

    Strings are validated and passed through. Durations must be positive and whole milliseconds
    (PromQL's resolution).

    :raises ValueError: on a non-positive duration or a string that is not a PromQL duration.
    """
    if isinstance(value, str):
        text = value.strip()
        if not _DURATION_RE.match(text):
            raise ValueError(f"not a PromQL duration: {value!r} (expected e.g. '15m', '1h30m', '30s')")
        if duration_ms(text) <= 0:
            raise ValueError(f"duration must be positive, got {value!r}")
        return text
    total_ms = value / timedelta(milliseconds=1)
    if total_ms <= 0 or total_ms != int(total_ms):
        raise ValueError(f"duration must be a positive whole number of milliseconds, got {value!r}")
    remaining = int(total_ms)
    parts: list[str] = []
    for unit, size in _UNITS_MS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def duration_ms(value: timedelta | str) -> int:
    """Length of a duration in milliseconds (``"1h30m"`` → ``5_400_000``)."""
    if isinstance(value, timedelta):
        return int(value / timedelta(milliseconds=1))
    text = value.strip()
    if not _DURATION_RE.match(text):
        raise ValueError(f"not a PromQL duration: {value!r} (expected e.g. '15m', '1h30m', '30s')")
    return sum(int(n) * _UNIT_MS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def _wrap(expr: str) -> str:
    """``expr`` in parentheses; a ``#`` comment in it must not swallow the closing parenthesis."""
    text = expr.strip()
    if not text:
        raise ValueError("PromQL expression must not be empty")
    return f"({text}\n)" if "#" in text else f"({text})"


def _number(value: float) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"threshold must be a finite number, got {value!r}")
    return repr(number)


def window_points(duration: timedelta | str, step: timedelta | str = "1m") -> int:
    """How many subquery steps a window of ``duration`` holds at least (``15m`` at ``1m`` → 15).

    A subquery over ``[15m:1m]`` yields 15 or 16 points depending on the evaluation time's
    alignment (Prometheus 2 closes the range on both ends, 3 only on the right), never fewer when
    the series existed for the whole window.
    """
    d_ms, s_ms = duration_ms(duration), duration_ms(step)
    if s_ms <= 0 or d_ms <= 0:
        raise ValueError("duration and step must be positive")
    if d_ms < s_ms:
        raise ValueError(
            f"window {promql_duration(duration)} is shorter than its step {promql_duration(step)}"
        )
    return d_ms // s_ms


def sustained_min(expr: str, duration: timedelta | str, step: timedelta | str = "1m") -> str:
    """PromQL: per series, the lowest value of ``expr`` over the last ``duration``.

    Sampled every ``step`` by a subquery. A series counts only when it had a value at every step of
    the window (``count_over_time`` ≥ :func:`window_points`): a host that appeared five minutes ago
    has not been above anything "for 15 minutes". "``expr`` > X for D" is then exactly
    "``sustained_min(expr, D)`` > X".
    """
    window = f"{_wrap(expr)}[{promql_duration(duration)}:{promql_duration(step)}]"
    points = window_points(duration, step)
    return f"(min_over_time({window}) and count_over_time({window}) >= {points})"


def sustained_above(
    expr: str, threshold: float, duration: timedelta | str, step: timedelta | str = "1m"
) -> str:
    """PromQL returning the series for which ``expr`` > ``threshold`` held for the whole ``duration``.

    E.g. ``sustained_above(cpu, 70, "15m")`` is the guide's "CPU > 70 % for 15m"; each returned
    sample's value is the window's minimum.
    """
    return f"{sustained_min(expr, duration, step)} > {_number(threshold)}"


def _to_unix(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware, got naive {at.isoformat()}")
    return f"{at.timestamp():.3f}"


def _from_unix(ts: float) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=UTC)


def parse_samples(data: dict[str, Any]) -> list[Sample]:
    """The ``data`` object of an instant-query response as samples.

    ``vector`` → one sample per series; ``scalar`` → one sample without labels. A ``matrix`` (an
    instant query of a range selector such as ``up[5m]``) is refused: use :meth:`query_range` or
    wrap it in a ``*_over_time`` function.
    """
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "vector":
        return [
            Sample(
                labels=dict(item.get("metric", {})),
                value=float(item["value"][1]),
                timestamp=_from_unix(item["value"][0]),
            )
            for item in result or []
        ]
    if result_type == "scalar" and isinstance(result, list):
        return [Sample(labels={}, value=float(result[1]), timestamp=_from_unix(result[0]))]
    raise ValueError(
        f"expected an instant vector or scalar, got resultType {result_type!r}"
        + (
            " (a range selector: wrap it in a *_over_time function or use query_range)"
            if result_type == "matrix"
            else ""
        )
    )


def parse_matrix(data: dict[str, Any]) -> list[RangeSeries]:
    """The ``data`` object of a range-query response as series."""
    if data.get("resultType") != "matrix":
        raise ValueError(f"expected a range vector (matrix), got resultType {data.get('resultType')!r}")
    return [
        RangeSeries(
            labels=dict(item.get("metric", {})),
            points=[(_from_unix(ts), float(v)) for ts, v in item.get("values", [])],
        )
        for item in data.get("result") or []
    ]


class PrometheusClient:
    """Talks to one Prometheus (or a Prometheus-compatible API: Thanos, Mimir, AMP behind a proxy).

    :param base_url: the server's root, with any path prefix (``http://127.0.0.1:9090`` or
        ``https://metrics.example.com/prometheus``).
    :param timeout_s: per-request timeout, connect and read. Also sent as the query ``timeout``
        so Prometheus gives up on its side as well.
    :param auth: ``(user, password)`` for basic auth, or any ``httpx.Auth``.
    :param headers: extra headers, e.g. ``{"Authorization": "Bearer …"}``.
    :param verify: TLS verification (``False`` or a CA bundle path).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10,
        auth: tuple[str, str] | httpx.Auth | None = None,
        *,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        if not base_url or not base_url.strip():
            raise ValueError("Prometheus base_url must not be empty")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.base_url = base_url.strip().rstrip("/")
        self.timeout_s = float(timeout_s)
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout_s),
            auth=auth,
            headers=headers,
            verify=verify,
        )

    @property
    def display_url(self) -> str:
        """The base URL without credentials, safe for logs, results and Slack."""
        return redact_url(self.base_url)

    def __repr__(self) -> str:
        return f"PrometheusClient({self.display_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- API ---------------------------------------------------------------------------------

    def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        """Evaluate ``expr`` at ``at`` (server's now when ``None``); one :class:`Sample` per series.

        :raises PrometheusError: bad PromQL, HTTP error or an unexpected response.
        :raises PrometheusUnreachable: no response (refused, DNS, TLS, timeout).
        """
        params = {"query": self._expr(expr), "timeout": f"{max(1, int(self.timeout_s * 1000))}ms"}
        if at is not None:
            params["time"] = _to_unix(at)
        data = self._api("/api/v1/query", params, expr=expr)
        try:
            return parse_samples(data)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise self._error("/api/v1/query", f"unexpected result: {exc}", expr=expr) from exc

    def query_range(
        self, expr: str, start: datetime, end: datetime, step: timedelta | str = "1m"
    ) -> list[RangeSeries]:
        """Evaluate ``expr`` at every ``step`` from ``start`` to ``end`` (both timezone-aware).

        :raises ValueError: ``end`` before ``start`` or a bad step.
        :raises PrometheusError: as :meth:`query`.
        """
        if end < start:
            raise ValueError(f"query_range: end {end.isoformat()} is before start {start.isoformat()}")
        params = {
            "query": self._expr(expr),
            "start": _to_unix(start),
            "end": _to_unix(end),
            "step": f"{duration_ms(promql_duration(step)) / 1000:g}s",
            "timeout": f"{max(1, int(self.timeout_s * 1000))}ms",
        }
        data = self._api("/api/v1/query_range", params, expr=expr)
        try:
            return parse_matrix(data)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise self._error("/api/v1/query_range", f"unexpected result: {exc}", expr=expr) from exc

    def ready(self) -> bool:
        """``True`` when ``/-/ready`` answers 200 (the TSDB is loaded); never raises."""
        try:
            return self._client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _expr(expr: str) -> str:
        if not isinstance(expr, str) or not expr.strip():
            raise ValueError("PromQL expression must not be empty")
        return expr.strip()

    def _error(
        self,
        path: str,
        detail: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        error: str | None = None,
        expr: str | None = None,
        unreachable: bool = False,
    ) -> PrometheusError:
        message = f"Prometheus {self.display_url}{path}: {detail}"
        if expr is not None:
            message += f" (query: {' '.join(expr.split())})"
        cls = PrometheusUnreachable if unreachable else PrometheusError
        return cls(
            message,
            path=path,
            status_code=status_code,
            error_type=error_type,
            error=error or detail,
            expr=expr,
        )

    def _api(self, path: str, params: dict[str, str], *, expr: str | None) -> dict[str, Any]:
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise self._error(
                path,
                f"no answer within {self.timeout_s:g}s ({type(exc).__name__})",
                expr=expr,
                unreachable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise self._error(
                path, f"unreachable: {exc or type(exc).__name__}", expr=expr, unreachable=True
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            snippet = " ".join(response.text.split())[:200]
            raise self._error(
                path,
                f"HTTP {response.status_code}, not a Prometheus API response: {snippet!r}",
                status_code=response.status_code,
                expr=expr,
            )
        if body.get("status") != "success":
            error_type = str(body.get("errorType") or "unknown")
            error = str(body.get("error") or "no error message")
            raise self._error(
                path,
                f"HTTP {response.status_code} {error_type}: {error}",
                status_code=response.status_code,
                error_type=error_type,
                error=error,
                expr=expr,
            )
        for warning in body.get("warnings") or []:
            log.warning("Prometheus %s%s warned: %s", self.display_url, path, warning)
        data = body.get("data")
        if not isinstance(data, dict):
            raise self._error(
                path, "response has no data object", status_code=response.status_code, expr=expr
            )
        return data
