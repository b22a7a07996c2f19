"""The daily Log Review: error events of the last 24 h, grouped into signatures, judged.

From each CloudWatch Logs group in config, ``filter_log_events`` with the error filter pattern
(paginated, bounded) gives the ERROR/CRITICAL/FATAL events of the review window; the level is
re-checked locally (a filter pattern matches terms anywhere, the level word must stand on its
own). Each message becomes a *signature* (:func:`signature`: numbers, ids, UUIDs, hex,
timestamps, IP addresses and quoted values replaced by placeholders), so a thousand
"timeout after 3012 ms for order 8812" lines are one line of the report with a count.

The results store keeps every signature with the time it was first seen
(:class:`SignatureStore`, table ``log_signatures``), so a signature first seen within the last
week is called out as new. A source's first review is the baseline, not news.

The error rate is held to the guide's ``thresholds.error_rate`` (in % of all events) when the
group's total in the window is known (counted up to a bound), else errors per minute are held to
``tasks.log_review.settings.errors_per_minute``.

CloudWatch throttling is retried by botocore (adaptive mode, see :func:`logs_client_config`);
when it persists, the group's review is an ``error`` result saying so, never a crash.

The PostgreSQL server log is read with ``pg_current_logfile()`` / ``pg_read_file()`` when the
role may (superuser, or granted ``pg_read_server_files`` and ``pg_monitor``); otherwise the
check is skipped with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sanvi_ops.core.aws_errors import DENIED_CODES, aws_error_text, aws_error_types, denied_result, is_denied
from sanvi_ops.core.config import Threshold
from sanvi_ops.core.results import CheckResult, Status, grade

COMPONENT: Final = "logs"
#: Incident level when a day's error rate crosses the critical threshold ("Performance degraded").
ERROR_RATE_SEVERITY: Final = "P3"
#: Error codes CloudWatch uses for "slow down".
THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
SIGNATURE_MAX_CHARS: Final = 500
SAMPLE_MAX_CHARS: Final = 300

LEVEL_RE: Final = re.compile(r"\b(CRITICAL|FATAL|PANIC|ERROR)\b")
_LEVEL_RANK: Final = {"ERROR": 0, "CRITICAL": 1, "FATAL": 2, "PANIC": 3}

# Order matters: the most specific shapes first, so a UUID is not eaten as numbers.
_NORMALISERS: Final[list[tuple[re.Pattern[str], str]]] = [
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2}| ?[A-Z]{3,4})?\b"
        ),
        "<ts>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (
        re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
        "<uuid>",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b"), "<hex>"),
    (re.compile(r"'[^']*'"), "'<str>'"),
    (re.compile(r'"[^"]{0,200}"'), '"<str>"'),
    (re.compile(r"\b[A-Za-z]+[-_]?\d[\w-]*\b"), "<id>"),
    (re.compile(r"-?\b\d+(?:\.\d+)?\b"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def signature(message: str) -> str:
    """A message with its variable parts normalised away (stable across occurrences)."""
    text = message.strip()
    for pattern, repl in _NORMALISERS:
        text = pattern.sub(repl, text)
    return text.strip()[:SIGNATURE_MAX_CHARS]


def level_of(message: str) -> str | None:
    """The most severe level word standing on its own in ``message`` (``None`` = not an error)."""
    found = LEVEL_RE.findall(message)
    return max(found, key=_LEVEL_RANK.__getitem__) if found else None


@dataclass
class Signature:
    """One signature's occurrences within a review window."""

    signature: str
    level: str
    count: int
    first_ts: datetime
    last_ts: datetime
    sample: str
    first_seen: datetime | None = None  # from the store (earliest ever)
    new: bool = False

    def as_detail(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "level": self.level,
            "count": self.count,
            "first_in_window": self.first_ts.isoformat(),
            "last_in_window": self.last_ts.isoformat(),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "new": self.new,
            "sample": self.sample,
        }


@dataclass
class ErrorDigest:
    """Error events of one source grouped by signature."""

    signatures: dict[str, Signature] = field(default_factory=dict)
    events: int = 0

    def add(self, message: str, ts: datetime, level: str) -> None:
        sig = signature(message)
        self.events += 1
        known = self.signatures.get(sig)
        if known is None:
            self.signatures[sig] = Signature(sig, level, 1, ts, ts, message.strip()[:SAMPLE_MAX_CHARS])
            return
        known.count += 1
        known.first_ts = min(known.first_ts, ts)
        known.last_ts = max(known.last_ts, ts)
        if _LEVEL_RANK[level] > _LEVEL_RANK[known.level]:
            known.level = level

    def ranked(self) -> list[Signature]:
        """Most severe level first, then most frequent."""
        return sorted(self.signatures.values(), key=lambda s: (-_LEVEL_RANK[s.level], -s.count, s.signature))

    def count_at_least(self, level: str) -> int:
        return sum(s.count for s in self.signatures.values() if _LEVEL_RANK[s.level] >= _LEVEL_RANK[level])


def utc(when: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC, as the store and Airflow write them)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class LogsReadError(Exception):
    """CloudWatch Logs refused a read; :attr:`code` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _events(
    client: Any, group: str, start: datetime, end: datetime, pattern: str | None, limit: int
) -> Iterable[dict[str, Any]]:
    """Events of ``group`` in [start, end), following ``nextToken``, at most ``limit``."""
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": _ms(start), "endTime": _ms(end) - 1}
    if pattern:
        kwargs["filterPattern"] = pattern
    seen = 0
    while True:
        try:
            page = client.filter_log_events(**kwargs, limit=min(10_000, max(1, limit - seen + 1)))
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise LogsReadError(str(err.get("Code", "ClientError")), str(err.get("Message", ""))) from exc
        for event in page.get("events", []):
            yield event
            seen += 1
            if seen > limit:
                return
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token


def read_errors(
    client: Any, group: str, start: datetime, end: datetime, *, pattern: str, limit: int
) -> tuple[ErrorDigest, bool]:
    """The group's error events grouped by signature, and whether ``limit`` cut the read short."""
    digest = ErrorDigest()
    read = 0
    for event in _events(client, group, start, end, pattern, limit):
        read += 1
        if read > limit:
            return digest, True
        message = str(event.get("message", ""))
        level = level_of(message)
        if level is not None:
            digest.add(message, _from_ms(int(event.get("timestamp", _ms(start)))), level)
    return digest, False


def count_events(client: Any, group: str, start: datetime, end: datetime, limit: int) -> int | None:
    """All events of the group in the window, or ``None`` when there are more than ``limit``."""
    if limit <= 0:
        return None
    total = 0
    for _event in _events(client, group, start, end, None, limit):
        total += 1
        if total > limit:
            return None
    return total


# --------------------------------------------------------------------------------------------
# First-seen memory in the results store
# --------------------------------------------------------------------------------------------


class SignatureStore:
    """``log_signatures`` and ``log_sources`` in the results store (migration ``005_log_signatures.sql``)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def remember(self, source: str, run_id: str, digest: ErrorDigest, *, new_since: datetime) -> bool:
        """UPSERT the digest's signatures; fill in ``first_seen``/``new``; return whether it was
        the source's baseline review (nothing known from earlier runs)."""
        import psycopg

        with psycopg.connect(self._dsn, connect_timeout=10) as conn:
            conn.execute(
                "INSERT INTO log_sources (source, first_run_id) VALUES (%s, %s) ON CONFLICT (source) DO NOTHING",
                (source, run_id),
            )
            row = conn.execute("SELECT first_run_id FROM log_sources WHERE source = %s", (source,)).fetchone()
            baseline = bool(row and row[0] == run_id)
            for sig in digest.signatures.values():
                stored = conn.execute(
                    """
                    INSERT INTO log_signatures AS s
                        (source, signature, level, sample, first_seen, last_seen, last_count, last_run_id, baseline)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (source, signature) DO UPDATE SET
                        level = EXCLUDED.level,
                        sample = EXCLUDED.sample,
                        first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
                        last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
                        last_count = EXCLUDED.last_count,
                        last_run_id = EXCLUDED.last_run_id
                    RETURNING first_seen, baseline
                    """,
                    (
                        source,
                        sig.signature,
                        sig.level,
                        sig.sample,
                        sig.first_ts,
                        sig.last_ts,
                        sig.count,
                        run_id,
                        baseline,
                    ),
                ).fetchone()
                assert stored is not None
                sig.first_seen = utc(stored[0])
                sig.new = (not stored[1]) and sig.first_seen >= utc(new_since)
        return baseline


# --------------------------------------------------------------------------------------------
# Judging one source
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimits:
    """The thresholds an error rate is held to."""

    percent: Threshold  # the guide's thresholds.error_rate (% of all events)
    per_minute: Threshold  # tasks.log_review.settings.errors_per_minute, when the total is unknown


def judge_source(
    source: str,
    digest: ErrorDigest,
    *,
    window: timedelta,
    total: int | None,
    truncated: bool,
    baseline: bool,
    limits: RateLimits,
    top: int,
    component: str = COMPONENT,
) -> list[CheckResult]:
    """Two results for one source: the error rate, and its signatures (new ones called out)."""
    hours = window.total_seconds() / 3600
    minutes = max(window.total_seconds() / 60, 1e-9)
    errors = digest.events
    cut = " (stopped at the read bound: more errors exist)" if truncated else ""
    if total:
        pct = 100.0 * errors / total
        status = grade(pct, limits.percent.warning, limits.percent.critical)
        rate = CheckResult(
            check=f"logs.error_rate[{source}]",
            status=status,
            summary=(
                f"{source}: {errors} error event(s) of {total} in the last {hours:g} h = {pct:.2f} %{cut} "
                f"(warning > {limits.percent.warning:g} %, critical > {limits.percent.critical:g} %)"
            ),
            metric="error_events_pct",
            observed=round(pct, 4),
            unit="%",
            thresholds=limits.percent.as_dict(),
            details={"errors": errors, "total_events": total, "truncated": truncated},
            severity=ERROR_RATE_SEVERITY if status is Status.CRITICAL else None,
            component=component,
        )
    else:
        per_min = errors / minutes
        status = grade(per_min, limits.per_minute.warning, limits.per_minute.critical)
        why = "no events at all" if total == 0 else "total events beyond the counting bound"
        rate = CheckResult(
            check=f"logs.error_rate[{source}]",
            status=status,
            summary=(
                f"{source}: {errors} error event(s) in the last {hours:g} h = {per_min:.3f}/min{cut} "
                f"({why}; warning > {limits.per_minute.warning:g}/min, "
                f"critical > {limits.per_minute.critical:g}/min)"
            ),
            metric="error_events_per_minute",
            observed=round(per_min, 6),
            unit="errors/min",
            thresholds=limits.per_minute.as_dict(),
            details={"errors": errors, "total_events": total, "truncated": truncated},
            severity=ERROR_RATE_SEVERITY if status is Status.CRITICAL else None,
            component=component,
        )

    ranked = digest.ranked()
    new = [s for s in ranked if s.new]
    severe = digest.count_at_least("CRITICAL")
    listed = (new + [s for s in ranked if not s.new])[:top]
    details: dict[str, Any] = {
        "signatures": [s.as_detail() for s in listed],
        "signature_count": len(ranked),
        "new_signatures": len(new),
        "critical_or_fatal_events": severe,
        "baseline": baseline,
    }
    parts = [f"{source}: {len(ranked)} error signature(s)"]
    if baseline and ranked:
        parts.append("first review, recorded as the baseline")
    if new:
        parts.append(
            f"{len(new)} NEW since last week: "
            + "; ".join(f"{s.signature[:120]} (x{s.count})" for s in new[:3])
        )
    if severe:
        parts.append(f"{severe} CRITICAL/FATAL event(s)")
    if ranked and not new:
        top_sig = ranked[0]
        parts.append(f"top: {top_sig.signature[:120]} (x{top_sig.count})")
    needs_look = bool(new or severe)
    if needs_look:
        details["action"] = (
            "read the samples; open a ticket for each new signature with its owner (backend/frontend), "
            "and page on-call if a CRITICAL/FATAL is still occurring"
        )
    sig_result = CheckResult(
        check=f"logs.signatures[{source}]",
        status=Status.WARNING if needs_look else Status.OK,
        summary=", ".join(parts),
        metric="new_signatures",
        observed=len(new),
        unit="count",
        details=details,
        component=component,
    )
    return [rate, sig_result]


def review_group(
    client: Any,
    group: str,
    *,
    end: datetime,
    window: timedelta,
    pattern: str,
    max_events: int,
    max_total_events: int,
    limits: RateLimits,
    store: SignatureStore | None,
    run_id: str,
    new_window: timedelta,
    top: int,
    attempts: int = 1,
) -> list[CheckResult]:
    """Read, group, remember and judge one CloudWatch Logs group; never raises for AWS errors."""
    start = end - window
    try:
        digest, truncated = read_errors(client, group, start, end, pattern=pattern, limit=max_events)
        total = count_events(client, group, start, end, max_total_events)
    except LogsReadError as exc:
        return [_read_error(group, exc, attempts)]
    except aws_error_types() as exc:
        return [
            CheckResult(
                check=f"logs.read[{group}]",
                status=Status.ERROR,
                summary=f"{group}: CloudWatch Logs unreachable ({aws_error_text(exc)})",
                component=COMPONENT,
            )
        ]
    baseline, memory = _remember(store, group, run_id, digest, end - new_window)
    return memory + judge_source(
        group,
        digest,
        window=window,
        total=total,
        truncated=truncated,
        baseline=baseline,
        limits=limits,
        top=top,
    )


def _remember(
    store: SignatureStore | None, source: str, run_id: str, digest: ErrorDigest, new_since: datetime
) -> tuple[bool, list[CheckResult]]:
    """(baseline?, [a result saying the store failed]); a store failure never hides the review."""
    import psycopg

    if store is None:
        return False, []
    try:
        return store.remember(source, run_id, digest, new_since=new_since), []
    except psycopg.Error as exc:
        return False, [
            CheckResult(
                check=f"logs.signature_memory[{source}]",
                status=Status.ERROR,
                summary=(
                    f"{source}: could not record signatures in the results store ({type(exc).__name__}: "
                    f"{str(exc).strip()[:200]}); new signatures were not called out"
                ),
                component=COMPONENT,
            )
        ]


def _read_error(group: str, exc: LogsReadError, attempts: int) -> CheckResult:
    if is_denied(exc.__cause__ or exc) or exc.code in DENIED_CODES:
        return denied_result(
            f"logs.read[{group}]",
            exc.__cause__ or exc,
            service="logs",
            method="FilterLogEvents",
            component=COMPONENT,
            details={"error_code": exc.code, "log_group": group},
        )
    if exc.code in THROTTLING_CODES:
        summary = (
            f"{group}: CloudWatch Logs throttled the review ({exc.code}) after {attempts} attempt(s) with "
            "adaptive backoff; this group was not reviewed. Rerun the task later; if it recurs, raise the "
            "FilterLogEvents quota or lower tasks.log_review.settings.max_total_events_per_group"
        )
    elif exc.code == "ResourceNotFoundException":
        summary = f"{group}: log group not found; fix tasks.log_review.settings.log_groups in the maintenance config"
    elif exc.code == "UnrecognizedClientException":
        summary = f"{group}: AWS does not know the connection's credentials ({exc}); fix the AWS connection"
    else:
        summary = f"{group}: CloudWatch Logs refused the read ({exc})"
    return CheckResult(
        check=f"logs.read[{group}]",
        status=Status.ERROR,
        summary=summary,
        component=COMPONENT,
        details={"error_code": exc.code},
    )


def logs_client_config(max_attempts: int) -> Any:
    """botocore config: adaptive retry mode (client-side rate limiting + backoff on throttling)."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "total_max_attempts": max_attempts}, connect_timeout=10, read_timeout=30
    )


# --------------------------------------------------------------------------------------------
# PostgreSQL server log
# --------------------------------------------------------------------------------------------

_PG_LINE: Final = re.compile(r"\b(ERROR|FATAL|PANIC):\s+(.*)$")


def parse_postgres_log(text: str, default_ts: datetime) -> ErrorDigest:
    """ERROR/FATAL/PANIC lines of a PostgreSQL ``stderr`` log, grouped by signature.

    The ``log_line_prefix`` (time, pid, user, …) is dropped: the signature starts at the level.
    A line's time is read from its prefix when it starts with one, else ``default_ts``.
    """
    digest = ErrorDigest()
    for line in text.splitlines():
        match = _PG_LINE.search(line)
        if not match:
            continue
        level, message = match.group(1), match.group(2)
        ts = default_ts
        stamp = re.match(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.\d+)?", line)
        if stamp:
            try:
                ts = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                ts = default_ts
        digest.add(f"{level}: {message}", ts, level)
    return digest


def read_postgres_log(dsn: str, max_bytes: int) -> tuple[str | None, str, str]:
    """(log text or ``None``, the file or the reason it was not read, the database name)."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        dbname = conn.info.dbname
        try:
            row = conn.execute("SELECT pg_current_logfile()").fetchone()
        except errors.InsufficientPrivilege:
            return None, "the role may not call pg_current_logfile() (grant pg_monitor)", dbname
        path = row[0] if row else None
        if not path:
            setting = conn.execute("SELECT current_setting('logging_collector')").fetchone()
            collector = setting[0] if setting else "?"
            return (
                None,
                f"no server log file is readable from SQL (logging_collector = {collector}; the log goes to "
                "stderr/syslog — review it where the server's logs are shipped)",
                dbname,
            )
        try:
            size_row = conn.execute("SELECT (pg_stat_file(%s)).size", (path,)).fetchone()
            size = int(size_row[0]) if size_row else 0
            offset = max(0, size - max_bytes)
            text_row = conn.execute("SELECT pg_read_file(%s, %s, %s)", (path, offset, max_bytes)).fetchone()
        except errors.InsufficientPrivilege:
            conn.rollback()
            return None, f"the role may not read {path} (grant pg_read_server_files)", dbname
        text = str(text_row[0]) if text_row and text_row[0] is not None else ""
        if offset:
            text = text.split("\n", 1)[1] if "\n" in text else ""  # drop the partial first line
        return text, str(path), dbname


def review_postgres_log(
    dsn: str,
    *,
    end: datetime,
    max_bytes: int,
    store: SignatureStore | None,
    run_id: str,
    new_window: timedelta,
    top: int,
) -> CheckResult:
    """Errors in the tail of the PostgreSQL server log; skipped (with the reason) when unreadable."""
    import psycopg

    check = "postgres.server_log"
    try:
        text, where, dbname = read_postgres_log(dsn, max_bytes)
    except psycopg.Error as exc:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"cannot read the PostgreSQL server log: {type(exc).__name__}: {str(exc).strip()[:300]}",
            component="postgres",
        )
    if text is None:
        return CheckResult(
            check=check,
            status=Status.SKIPPED,
            summary=f"PostgreSQL server log: {where}",
            component="postgres",
        )
    digest = parse_postgres_log(text, end)
    source = f"postgres:{dbname}"
    baseline, memory = _remember(store, source, run_id, digest, end - new_window)
    ranked = digest.ranked()
    new = [s for s in ranked if s.new]
    panics = digest.count_at_least("PANIC")
    fatal = digest.count_at_least("FATAL") - panics
    status = Status.WARNING if (fatal or panics or new or memory) else Status.OK
    parts = [f"PostgreSQL server log ({where}, last {max_bytes // 1024} KiB): {digest.events} error line(s)"]
    parts.append(f"{len(ranked)} signature(s)")
    if fatal or panics:
        parts.append(f"{fatal} FATAL, {panics} PANIC")
    if new:
        parts.append(f"{len(new)} new: " + "; ".join(s.signature[:100] for s in new[:3]))
    if baseline and ranked:
        parts.append("first review, recorded as the baseline")
    if memory:
        parts.append(memory[0].summary.split(": ", 1)[1])
    return CheckResult(
        check=check,
        status=status,
        summary=", ".join(parts),
        metric="error_lines",
        observed=digest.events,
        unit="count",
        details={
            "file": where,
            "signatures": [s.as_detail() for s in (new + [s for s in ranked if not s.new])[:top]],
            "baseline": baseline,
        },
        component="postgres",
    )


def limits_from(thresholds_error_rate: Threshold, per_minute: Threshold) -> RateLimits:
    return RateLimits(percent=thresholds_error_rate, per_minute=per_minute)
