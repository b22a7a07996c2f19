"""What we post to Slack: the run summary (Block Kit) and the guide's communication templates.

Pure functions from plain values to ``(text, blocks)``: no Slack, no database, no config object,
so every template can be checked to the character. ``text`` is what notifications, screen readers
and the outbox show; ``blocks`` is the layout in the channel.

The ``[INCIDENT]``, ``[UPDATE]`` and ``[RESOLVED]`` texts are the templates of the guide's
"Communication Templates" section line by line; only the on-call mention line is added below the
initial notification, and an "Acknowledge" button. The acknowledgement ``[UPDATE]`` and the weekly
P4 ``[SUMMARY]`` (the guide's "Weekly summary") follow the same style. Everything that came from a
check or an exception goes through :func:`scrub` (no DSN passwords, tokens or keys ever reach
Slack) and :func:`escape` (Slack mrkdwn control characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sanvi_ops.core.results import SEVERITY_ORDER, CheckResult, Status, missing_setting, run_status

Blocks = list[dict[str, Any]]

STATUS_EMOJI: Final[dict[Status, str]] = {
    Status.OK: ":white_check_mark:",
    Status.SKIPPED: ":fast_forward:",
    Status.WARNING: ":warning:",
    Status.ERROR: ":x:",
    Status.CRITICAL: ":rotating_light:",
}

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): 50 blocks per message,
# 3000 characters per section text, 150 per header, 75 per button label.
MAX_BLOCKS: Final = 50
MAX_SECTION_CHARS: Final = 3000
MAX_HEADER_CHARS: Final = 150
MAX_LINE_CHARS: Final = 600
MAX_ERROR_CHARS: Final = 1500

# --------------------------------------------------------------------------------- secrets

_SECRET_KEYS = (
    r"password|passwd|pwd|secret|secret[_-]?key|token|api[_-]?key|apikey|access[_-]?key|"
    r"aws_secret_access_key|client[_-]?secret|private[_-]?key|authorization|auth[_-]?token|session[_-]?token"
)
_SECRET_PATTERNS: Final[list[tuple[re.Pattern[str], str]]] = [
    # scheme://user:password@host  ->  scheme://user:***@host
    (re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s/]+@", re.IGNORECASE), r"\g<head>:***@"),
    # Authorization: Bearer xyz
    (re.compile(r"\b(?P<head>bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\g<head> ***"),
    # password=xyz, "token": "xyz", secret_key: 'xyz', --password xyz
    (
        re.compile(
            rf"(?P<head>\b(?:{_SECRET_KEYS})[\"']?\s*(?:=|:)\s*)(?:\"[^\"]*\"|'[^']*'|[^\s,;&\"'}}]+)",
            re.IGNORECASE,
        ),
        r"\g<head>***",
    ),
    (re.compile(rf"(?P<head>--(?:{_SECRET_KEYS})[ =])\S+", re.IGNORECASE), r"\g<head>***"),
    # Slack tokens, AWS access key ids, PEM private keys
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+", re.IGNORECASE), "xox*-***"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "AKIA***"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL), "***"),
]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials from free text before it is stored for Slack or posted.

    Catches DSN/URL passwords, ``key=value`` secrets, bearer tokens, Slack tokens, AWS key ids and
    PEM keys; ``secrets`` are exact values to remove as well (e.g. the connection's password).
    """
    out = text
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def escape(text: str) -> str:
    """Escape Slack mrkdwn control characters so a check's text cannot inject links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Scrubbed, escaped, one-line-per-line and at most ``limit`` characters."""
    return _truncate(escape(scrub(text)), limit)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _code(text: str) -> str:
    """Inline code span; backticks inside would end it early."""
    return "`" + escape(text.replace("`", "'")) + "`"


_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{6,}$")
_SPECIAL = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}


def mention(handle: str) -> str:
    """Slack mentions for a config handle, or several separated by spaces/commas (``"@devops @dba"``).

    Member ids (``U0123ABCD``) become ``<@U0123ABCD>``, user-group ids (``S0123ABCD``)
    ``<!subteam^S0123ABCD>``, ``@here``/``@channel`` their special form, text already in Slack
    syntax (``<@...>``) is kept, and a name (``@devops``) stays ``@devops`` (Slack links group
    handles when the message is posted with ``link_names``).
    """
    stripped = handle.strip()
    if stripped.startswith("<") and stripped.endswith(">") and " " not in stripped:
        return stripped
    return " ".join(_one_mention(part) for part in re.split(r"[\s,]+", stripped) if part)


def _one_mention(handle: str) -> str:
    if handle.startswith("<") and handle.endswith(">"):
        return handle
    if handle.lower() in _SPECIAL:
        return _SPECIAL[handle.lower()]
    bare = handle.lstrip("@")
    if _USER_ID.match(bare):
        return f"<@{bare}>"
    if _GROUP_ID.match(bare):
        return f"<!subteam^{bare}>"
    return "@" + escape(bare)


_mention = mention  # for functions whose ``mention`` parameter shadows the function


# ------------------------------------------------------------------------------- numbers


def format_number(value: float) -> str:
    """Readable precision: ``1234`` → ``1234``, ``85.25`` → ``85.2``, ``0.0123`` → ``0.0123``."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def format_value(value: float | None, unit: str = "") -> str:
    """``85.25, "%"`` → ``85.2%``; ``234, "ms"`` → ``234 ms``; ``None`` → ``n/a``."""
    if value is None:
        return "n/a"
    number = format_number(value)
    if unit in ("", "count"):
        return number
    if unit == "%":
        return f"{number}%"
    return f"{number} {unit}"


def format_thresholds(thresholds: dict[str, float], unit: str = "") -> str:
    """``{"warning": 80, "critical": 90}`` → ``warning 80%, critical 90%`` (warning first)."""
    order = {"warning": 0, "critical": 1}
    items = sorted(thresholds.items(), key=lambda kv: (order.get(kv[0], 2), kv[0]))
    return ", ".join(f"{escape(str(name))} {format_value(float(limit), unit)}" for name, limit in items)


def format_duration(delta: timedelta) -> str:
    """``1 d 2 h``, ``1 h 5 min``, ``7 min``, ``30 s``: how long an incident lasted."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


# ---------------------------------------------------------------------------- run summary


def check_line(result: CheckResult) -> str:
    """``:warning: *postgres.connections*: 85% (warning 80%, critical 90%) — 85 of 100 in use``."""
    parts = [f"{STATUS_EMOJI[result.status]} *{escape(result.check)}*"]
    measured = ""
    if result.observed is not None:
        measured = format_value(result.observed, result.unit)
        if result.thresholds:
            measured += f" (limits: {format_thresholds(result.thresholds, result.unit)})"
    line = parts[0] + (f": {measured}" if measured else "")
    if result.summary:
        line += f" — {escape(scrub(result.summary))}"
    return _truncate(line, MAX_LINE_CHARS)


def status_counts(results: Sequence[CheckResult]) -> str:
    """``5 checks: 3 ok, 1 warning, 1 critical`` (worst last, zero counts left out)."""
    counts = {status: 0 for status in Status}
    for result in results:
        counts[result.status] += 1
    parts = [
        f"{n} {status.value}"
        for status, n in sorted(counts.items(), key=lambda kv: SEVERITY_ORDER[kv[0]])
        if n
    ]
    noun = "check" if len(results) == 1 else "checks"
    return f"{len(results)} {noun}" + (f": {', '.join(parts)}" if parts else "")


def not_configured_note(results: Sequence[CheckResult]) -> str:
    """``2 optional checks not configured (set tasks.backup_testing.settings.smoke_queries, tasks.backup_testing.settings.rpo_column)``,
    or ``""`` when every skipped check was skipped for another reason."""
    keys = list(dict.fromkeys(k for r in results if (k := missing_setting(r))))
    count = sum(1 for r in results if missing_setting(r))
    if not count:
        return ""
    noun = "check" if count == 1 else "checks"
    return f"{count} optional {noun} not configured (set {', '.join(keys)})"


def _worst_first(results: Sequence[CheckResult]) -> list[CheckResult]:
    return sorted(results, key=lambda r: -SEVERITY_ORDER[r.status])  # stable: ties keep run order


def _pack_sections(lines: list[str], max_sections: int) -> Blocks:
    """Pack lines into section blocks of at most 3000 characters, at most ``max_sections`` of them."""
    sections: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_SECTION_CHARS:
            sections.append(current)
            current = line
        else:
            current = candidate
    if current:
        sections.append(current)
    if len(sections) > max_sections:
        kept = sections[: max_sections - 1]
        shown = sum(section.count("\n") + 1 for section in kept)
        kept.append(f"…and {len(lines) - shown} more checks: open the run in Airflow for all of them.")
        sections = kept
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in sections]


def link_button(label: str, url: str | None, action_id: str) -> Blocks:
    if not url:
        return []
    return [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": label[:75], "emoji": True},
                    "url": url[:3000],
                    "action_id": action_id,
                }
            ],
        }
    ]


def summary_message(
    dag_id: str,
    run_id: str,
    title: str,
    team: str,
    results: Sequence[CheckResult],
    run_url: str | None,
    silenced: Mapping[str, str] | None = None,
) -> tuple[str, Blocks]:
    """One message per DAG run: overall status, a line per check, the team, a link.

    The headline is :func:`sanvi_ops.core.results.run_status`: the worst result of the checks that
    *ran*; a skipped check (an optional one not configured) never sets it, and the summary says
    how many optional checks are not configured and which config keys to set.

    Lines are ordered worst first so problems are on screen without scrolling; a run with more
    checks than one message holds ends with a pointer to the run in Airflow.

    :param silenced: check name → ``"silenced until … (reason)"`` for critical results a silence
        covers: their line says so (no incident was announced for them).
    """
    silenced = silenced or {}

    def line(r: CheckResult) -> str:
        text = check_line(r)
        note = silenced.get(r.check)
        return _truncate(f"{text} :mute: _{escape(note)}_", MAX_LINE_CHARS) if note else text

    overall = run_status(list(results))
    emoji = STATUS_EMOJI[overall]
    headline = f"{title}: {overall.value.upper()}"
    counts = status_counts(results)
    unset = not_configured_note(results)
    if unset:
        counts = f"{counts} · {unset}"
    context = f"*Team:* {escape(team)}  ·  *DAG:* {_code(dag_id)}  ·  *Run:* {_code(run_id)}  ·  {counts}"
    lines = [line(r) for r in _worst_first(results)] or ["No checks ran in this run."]
    fixed: Blocks = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _truncate(f"{emoji} {headline}", MAX_HEADER_CHARS),
                "emoji": True,
            },
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(context, MAX_SECTION_CHARS)}]},
    ]
    button = link_button("Open the run in Airflow", run_url, "open_run")
    sections = _pack_sections(lines, MAX_BLOCKS - len(fixed) - len(button))
    blocks = [*fixed, *sections, *button]

    problems = [line(r) for r in _worst_first(results) if r.status not in (Status.OK, Status.SKIPPED)]
    text_lines = [
        f"{emoji} {escape(headline)} ({counts}) — {_code(dag_id)} run {_code(run_id)}",
        *problems[:10],
    ]
    if len(problems) > 10:
        text_lines.append(f"…and {len(problems) - 10} more problems")
    return _truncate("\n".join(text_lines), MAX_SECTION_CHARS), blocks


# ---------------------------------------------------------------------- incident templates


def next_update_at(now: datetime, update_every: timedelta) -> datetime:
    """When the next incident update is due, to the minute, in ``now``'s time zone.

    A cadence of whole days (P3 daily, P4 weekly) keeps the wall-clock time across a DST change
    (an update promised "daily" comes at the same hour); a shorter one (P1 30 min, P2 2 h) is
    elapsed time. Both are computed through UTC so the result is always a real local time.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if update_every <= timedelta(0):
        raise ValueError(f"update_every must be positive, got {update_every}")
    if update_every % timedelta(days=1) == timedelta(0):
        due = (now + update_every).astimezone(UTC).astimezone(now.tzinfo)
    else:
        due = (now.astimezone(UTC) + update_every).astimezone(now.tzinfo)
    return due.replace(second=0, microsecond=0)


def format_next_update(now: datetime, update_every: timedelta) -> str:
    """The template's ``HH:MM`` in ``now``'s time zone; the date is added when it is not today.

    P1 (every 30 min) and P2 (every 2 h) usually stay ``HH:MM``; a daily (P3) or weekly (P4)
    update reads ``09:00 on 16/01/2026`` so nobody waits for the wrong day.
    """
    due = next_update_at(now, update_every)
    if due.date() == now.date():
        return due.strftime("%H:%M")
    return f"{due:%H:%M} on {due:%d/%m/%Y}"


def _headline(tag: str, ref: str, severity: str, service: str) -> str:
    return f"[{tag}] {ref} - Severity: {severity} - Service: {clean(service, 200)}"


def _template_blocks(text: str, run_url: str | None, label: str = "Open the run in Airflow") -> Blocks:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, MAX_SECTION_CHARS)}},
        *link_button(label, run_url, "open_run"),
    ]


def incident_message(
    ref: str,
    severity: str,
    service: str,
    issue: str,
    impact: str,
    *,
    now: datetime,
    update_every: timedelta,
    on_call: Sequence[str] = (),
    run_url: str | None = None,
    ack_id: int | None = None,
    next_digest: datetime | None = None,
) -> tuple[str, Blocks]:
    """The guide's "Initial Notification", then the on-call mention on its own line::

        [INCIDENT] #12 - Severity: P1 - Service: postgres
        Issue: PostgreSQL at 127.0.0.1:5432 did not answer: connection refused
        Impact: Critical business impact: postgres unavailable
        Status: Investigation in progress
        Next update: 09:30
        On-call: @alice (secondary: @bob)

    :param now: when the message is written, in the time zone ``Next update`` is read in.
    :param update_every: the severity's communication cadence (P1: 30 min, P2: 2 h, ...).
    :param on_call: handles, primary first (see :func:`mention`).
    :param ack_id: the incident's id: adds an "Acknowledge" button (``action_id``
        :data:`ACK_ACTION_ID`, value the id) that the Slack app's interactivity URL receives.
    :param next_digest: for a level whose updates are the weekly summary (P4): when that summary
        comes, instead of a per-incident update time.
    """
    next_update = format_next_update(now, update_every)
    if next_digest is not None:
        next_update = f"in the weekly summary, {next_digest:%H:%M} on {next_digest:%d/%m/%Y}"
    lines = [
        _headline("INCIDENT", ref, severity, service),
        f"Issue: {clean(issue)}",
        f"Impact: {clean(impact)}",
        "Status: Investigation in progress",
        f"Next update: {next_update}",
    ]
    on_call_line = _on_call_line(on_call)
    if on_call_line:
        lines.append(on_call_line)
    text = "\n".join(lines)
    blocks = _template_blocks(text, run_url)
    if ack_id is not None:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
            "style": "primary",
            "action_id": ACK_ACTION_ID,
            "value": str(int(ack_id)),
        }
        if blocks[-1]["type"] == "actions":
            blocks[-1]["elements"].append(button)
        else:
            blocks.append({"type": "actions", "elements": [button]})
    return text, blocks


#: The ``action_id`` of the "Acknowledge" button (:mod:`sanvi_ops.core.incidents` reads it back).
ACK_ACTION_ID: Final = "ack_incident"


def _on_call_line(on_call: Sequence[str]) -> str:
    handles = [mention(h) for h in on_call if h and h.strip()]
    if not handles:
        return ""
    line = f"On-call: {handles[0]}"
    if len(handles) > 1:
        line += f" (secondary: {', '.join(handles[1:])})"
    return line


def update_message(
    ref: str,
    severity: str,
    service: str,
    status: str,
    actions: str,
    impact: str,
    *,
    now: datetime,
    update_every: timedelta,
    run_url: str | None = None,
) -> tuple[str, Blocks]:
    """The guide's "Update" template (posted in the incident's thread)."""
    text = "\n".join(
        [
            _headline("UPDATE", ref, severity, service),
            f"Status: {clean(status)}",
            f"Actions: {clean(actions)}",
            f"Impact: {clean(impact)}",
            f"Next update: {format_next_update(now, update_every)}",
        ]
    )
    return text, _template_blocks(text, run_url)


def acknowledged_message(
    ref: str,
    severity: str,
    service: str,
    *,
    by: str,
    source: str,
    note: str,
    response: timedelta,
    target: timedelta,
    now: datetime,
    update_every: timedelta,
) -> tuple[str, Blocks]:
    """The guide's "Update" template, posted in the thread when someone acknowledges the incident::

        [UPDATE] #12 - Severity: P1 - Service: postgres
        Status: Acknowledged by <@U0123ABCD> (Slack); investigation in progress
        Actions: Escalation stopped. Note: failing over to the replica
        Impact: Response time 7 min against the P1 target of 15 min (within target)
        Next update: 09:37

    :param by: a Slack user id (mentioned) or an Airflow user name (shown as text).
    """
    who = f"<@{by}>" if source == "slack" and _USER_ID.match(by) else clean(by, 100)
    where = "Slack" if source == "slack" else "the Maintenance page"
    verdict = "within target" if response <= target else "over target"
    text = "\n".join(
        [
            _headline("UPDATE", ref, severity, service),
            f"Status: Acknowledged by {who} ({where}); investigation in progress",
            "Actions: Escalation stopped" + (f". Note: {clean(note)}" if note else ""),
            f"Impact: Response time {format_duration(response)} against the {clean(severity, 10)} "
            f"target of {format_duration(target)} ({verdict})",
            f"Next update: {format_next_update(now, update_every)}",
        ]
    )
    return text, _template_blocks(text, None)


def digest_message(
    severity: str,
    week_of: date,
    incidents: Sequence[Mapping[str, Any]],
    *,
    next_digest: datetime,
) -> tuple[str, Blocks]:
    """The guide's "Weekly summary" for the lowest level: one message listing its open incidents::

        [SUMMARY] Weekly summary of open P4 incidents - week of 30/11/2026 - 2 open
        #7 - Service: disk - open 9 d - acknowledged by alice - Disk /var at 91%
        #9 - Service: tls - open 2 d - not acknowledged - Certificate expires in 20 days
        Next summary: 09:00 on 07/12/2026

    Each item: ``ref``, ``service``, ``open_for`` (timedelta), ``acknowledged_by`` (or empty) and
    ``summary``.
    """
    count = len(incidents)
    lines = [
        f"[SUMMARY] Weekly summary of open {clean(severity, 10)} incidents - week of {week_of:%d/%m/%Y}"
        f" - {count} open"
    ]
    for item in incidents:
        acked = item.get("acknowledged_by")
        ack = f"acknowledged by {clean(str(acked), 100)}" if acked else "not acknowledged"
        lines.append(
            f"{clean(str(item['ref']), 20)} - Service: {clean(str(item['service']), 200)} - "
            f"open {format_duration(item['open_for'])} - {ack} - {clean(str(item['summary']), 300)}"
        )
    lines.append(f"Next summary: {next_digest:%H:%M} on {next_digest:%d/%m/%Y}")
    text = "\n".join(lines)
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _truncate(lines[0], MAX_HEADER_CHARS)}},
        *_pack_sections(lines[1:], MAX_BLOCKS - 1),
    ]
    return _truncate(text, 40000), blocks


def postmortem_date(resolved_at: datetime, business_days: int = 2) -> date:
    """The post-mortem date the ``[RESOLVED]`` note announces: ``business_days`` working days later."""
    day = resolved_at.date()
    left = business_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def resolved_message(
    ref: str,
    severity: str,
    service: str,
    resolution: str,
    root_cause: str,
    impact: str,
    postmortem_on: date,
    *,
    run_url: str | None = None,
) -> tuple[str, Blocks]:
    """The guide's "Resolution" template (posted in the incident's thread)."""
    text = "\n".join(
        [
            _headline("RESOLVED", ref, severity, service),
            f"Resolution: {clean(resolution)}",
            f"Root cause: {clean(root_cause)}",
            f"Impact: {clean(impact)}",
            f"Follow-up: Post-mortem scheduled for {postmortem_on:%d/%m/%Y}",
        ]
    )
    return text, _template_blocks(text, run_url)


def escalation_message(
    ref: str,
    severity: str,
    service: str,
    *,
    level_role: str,
    level_handle: str,
    open_for: timedelta,
    escalate_after: timedelta,
    summary: str,
    on_call: Sequence[str] = (),
    run_url: str | None = None,
) -> tuple[str, Blocks]:
    """The guide's escalation path (On-Call → Team Lead → CTO) as a reply in the incident's thread::

    [ESCALATION] #12 - Severity: P1 - Service: postgres
    Open for 35 min, longer than the 30 min after which a P1 is escalated
    Escalated to: Team Lead @devops-lead
    Issue: PostgreSQL at 127.0.0.1:5432 did not answer: connection refused
    On-call: @alice (secondary: @bob)
    """
    lines = [
        _headline("ESCALATION", ref, severity, service),
        f"Open for {format_duration(open_for)}, longer than the {format_duration(escalate_after)} "
        f"after which a {clean(severity, 10)} is escalated",
        f"Escalated to: {clean(level_role, 100)} {mention(level_handle)}",
        f"Issue: {clean(summary)}",
    ]
    on_call_line = _on_call_line(on_call)
    if on_call_line:
        lines.append(on_call_line)
    text = "\n".join(lines)
    return text, _template_blocks(text, run_url)


def deadline_message(
    dag_id: str,
    run_id: str,
    title: str,
    *,
    queued_at: datetime | None,
    deadline_at: datetime,
    allowed: timedelta,
    state: str | None,
    team_handle: str | None = None,
    timezone_name: str = "UTC",
    run_url: str | None = None,
) -> tuple[str, Blocks]:
    """A run that has not finished in the time its cadence allows (an Airflow Deadline Alert)::

    :hourglass: Overdue: System Health Check (`system_health_check`) @devops
    Run `scheduled__…` queued at 09:00 has not finished after 1 h (deadline 10:00 UTC); state: running
    A stuck worker, a full pool or a hung check: open the run and look at the task that is not done.
    """
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone_name)
    who = f" {mention(team_handle)}" if team_handle else ""
    queued = f" queued at {queued_at.astimezone(tz):%H:%M %d/%m/%Y}" if queued_at is not None else ""
    lines = [
        f":hourglass: Overdue: {clean(title, 200)} ({_code(dag_id)}){who}",
        f"Run {_code(run_id)}{queued} has not finished after {format_duration(allowed)} "
        f"(deadline {deadline_at.astimezone(tz):%H:%M %d/%m/%Y} {escape(timezone_name)}); "
        f"state: {escape(state or 'unknown')}",
        "A stuck worker, a full pool or a hung check: open the run and look at the task that is not done.",
    ]
    text = "\n".join(lines)
    return text, _template_blocks(text, run_url)


# --------------------------------------------------------------------------- task failure


def describe_error(error: BaseException | str | None) -> str:
    """``ExceptionClass: message``, scrubbed of secrets and cut to a readable length."""
    if error is None:
        return "unknown error (no exception was passed to the callback)"
    if isinstance(error, BaseException):
        message = str(error).strip()
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    else:
        text = error.strip() or "unknown error"
    return _truncate(scrub(text), MAX_ERROR_CHARS)


def failure_message(
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    exception: BaseException | str | None,
    log_url: str | None,
    *,
    max_tries: int | None = None,
    team: str | None = None,
    mention: str | None = None,
) -> tuple[str, Blocks]:
    """A task that crashed (the failure callback): where, which try, what was raised, the log.

    The exception text is scrubbed: driver errors like to quote DSNs.

    :param mention: the responsible team's handle, mentioned on the first line (see :func:`mention`).
    """
    attempt = ""
    if try_number is not None:
        attempt = f"try {try_number}" + (f" of {max_tries}" if max_tries else "")
    error_text = escape(describe_error(exception).replace("```", "'''"))
    where = f"{_code(dag_id)} › {_code(task_id)}"
    who = _mention(mention) if mention else ""  # the parameter shadows the function
    lines = [
        f":boom: Task failed: {where}" + (f" {who}" if who else ""),
        f"Run: {_code(run_id)}"
        + (f" · {attempt}" if attempt else "")
        + (f" · Team: {escape(team)}" if team else ""),
        f"Error: {error_text}",
    ]
    if log_url:
        lines.append(f"Log: <{log_url}|open the task log>")
    text = _truncate("\n".join(lines), MAX_SECTION_CHARS)
    blocks: Blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _truncate("\n".join(lines[:2]), MAX_SECTION_CHARS)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{error_text}```"}},
        *link_button("Open the task log", log_url, "open_log"),
    ]
    return text, blocks
