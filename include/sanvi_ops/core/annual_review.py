"""What the four annual reviews share: their settings, the year of evidence, the report.

The guide's "Compliance Reviews" (annual external security assessment, annual business
continuity testing) and "Vendor Assessment" (annual security assessment of critical vendors,
annual contract and pricing review) are DAGs under ``dags/annual/``. Each one:

1. reads the evidence the project already keeps in the results store over the last
   ``lookback_days`` (a year): :func:`stored_results` (``check_results``),
   :func:`recovery_tests` (every drill and its RTO), :func:`signoff_rows` (the pen-test forms,
   the quarterly sign-offs);
2. turns it into results, a finding (``warning``) for each gap, the evidence in their ``details``
   (its own ``tasks/<dag_id>/`` module);
3. writes the run's results as a report, JSON and Markdown, to the versioned evidence bucket
   (:func:`build_report`, :func:`render_markdown`, :func:`write_report`, which reuses the
   compliance audit's evidence writer);
4. waits for the responsible team's sign-off, a form whose findings are stored
   (:func:`review_findings`).

Pure apart from the store queries (psycopg) and the S3 client handed in; no Airflow import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sanvi_ops.core.config import AnnualReviewConfig
from sanvi_ops.core.results import SEVERITY_ORDER, CheckResult, Status

__all__ = [
    "AnnualReviewConfig",
    "annual_evidence",
    "Period",
    "build_report",
    "recovery_tests",
    "render_markdown",
    "report_keys",
    "review_findings",
    "review_period",
    "signoff_rows",
    "stored_results",
    "write_report",
]

REPORT_FORMAT = "sanvi-ops/annual-review/v1"
#: Severities of a finding entered in the sign-off form, most severe first.
FINDING_SEVERITIES = ("critical", "high", "medium", "low")
#: The sign-off form's verdicts.
VERDICTS = ("accepted", "accepted_with_actions", "not_accepted")


@dataclass(frozen=True)
class Period:
    """The review's window ``[start, end)``; ``label`` is the year it closes in."""

    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        return f"{self.end.year}"

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


def review_period(end: dt.datetime, days: int) -> Period:
    """The ``days`` before ``end`` (the run's logical date), aware UTC."""
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    end = end.astimezone(dt.UTC)
    return Period(end - dt.timedelta(days=days), end)


# --------------------------------------------------------------------------------- evidence


def _rows(dsn: str, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, connect_timeout=10, row_factory=dict_row) as conn:
        return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def stored_results(
    dsn: str, dag_id: str, period: Period, *, check_like: str | None = None
) -> list[dict[str, Any]]:
    """``check_results`` of ``dag_id`` in the period (by logical date, else recorded time), oldest
    first; ``check_like`` a SQL LIKE pattern on the check name (``compliance.vendor_sla[%``)."""
    return _rows(
        dsn,
        """
        SELECT dag_id, run_id, check_name, status, summary, observed, unit, details,
               COALESCE(logical_date, recorded_at) AS at
        FROM check_results
        WHERE dag_id = %(dag_id)s
          AND COALESCE(logical_date, recorded_at) >= %(start)s
          AND COALESCE(logical_date, recorded_at) < %(end)s
          AND (%(like)s::text IS NULL OR check_name LIKE %(like)s::text)
        ORDER BY at, run_id, position
        """,
        {"dag_id": dag_id, "start": period.start, "end": period.end, "like": check_like},
    )


def recovery_tests(dsn: str, period: Period) -> list[dict[str, Any]]:
    """Every recovery test (restore tests, DR drills of each scope) started in the period."""
    return _rows(
        dsn,
        """
        SELECT dag_id, run_id, kind, backup_id, started_at, status, rto_seconds, rpo_seconds
        FROM recovery_tests
        WHERE started_at >= %(start)s AND started_at < %(end)s
        ORDER BY started_at
        """,
        {"start": period.start, "end": period.end},
    )


def signoff_rows(dsn: str, dag_id: str, period: Period) -> list[dict[str, Any]]:
    """Sign-offs and forms of ``dag_id`` requested in the period, oldest first."""
    return _rows(
        dsn,
        """
        SELECT dag_id, run_id, task_id, kind, team, subject, requested_at, deadline, outcome,
               responded_at, responder, form
        FROM signoffs
        WHERE dag_id = %(dag_id)s AND requested_at >= %(start)s AND requested_at < %(end)s
        ORDER BY requested_at
        """,
        {"dag_id": dag_id, "start": period.start, "end": period.end},
    )


def annual_evidence(dsn: str, dag_ids: Sequence[str], now: dt.datetime, days: int = 366) -> dict[str, Any]:
    """The annual reviews' record for the compliance audit's evidence pack: per review DAG, its
    newest run of the last ``days`` (results by status, the report's S3 key, version and SHA-256)
    and its sign-offs (who answered, when, the verdict and the number of findings entered), or
    ``"reviewed": false`` when it has not run in that year (the pack shows the gap). ``now`` is
    included."""
    period = review_period(now + dt.timedelta(seconds=1), days)
    out: dict[str, Any] = {}
    for dag_id in dag_ids:
        results = stored_results(dsn, dag_id, period)
        if not results:
            out[dag_id] = {"reviewed": False, "period": [period.start.isoformat(), period.end.isoformat()]}
            continue
        latest = results[-1]["run_id"]
        mine = [r for r in results if r["run_id"] == latest]
        counts: dict[str, int] = {}
        for r in mine:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        report = next((r for r in mine if r["check_name"] == "review.report"), None)
        details = (report or {}).get("details") or {}
        forms = [s for s in signoff_rows(dsn, dag_id, period) if s["run_id"] == latest]
        out[dag_id] = {
            "reviewed": True,
            "run_id": latest,
            "at": jsonable(mine[-1])["at"],
            "counts": counts,
            "report": {k: details.get(k) for k in ("bucket", "key", "version_id", "sha256", "markdown_key")}
            if report
            else None,
            "signoffs": [
                {
                    "task_id": f["task_id"],
                    "team": f["team"],
                    "outcome": f["outcome"],
                    "responder": f["responder"],
                    "responded_at": jsonable(f)["responded_at"],
                    "verdict": (f.get("form") or {}).get("verdict"),
                    "findings": {
                        sev: int((f.get("form") or {}).get(f"findings_{sev}") or 0)
                        for sev in FINDING_SEVERITIES
                    },
                }
                for f in forms
            ],
        }
    return out


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A store row with its times as ISO strings (it goes into result details and the report)."""
    return {k: v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for k, v in row.items()}


# ------------------------------------------------------------------------------- sign-off


def review_findings(task_id: str, form: Mapping[str, Any], *, what: str) -> CheckResult:
    """The team's entered verdict and findings as a result: ``not_accepted`` or a critical
    finding is critical, ``accepted_with_actions`` or a high finding a warning, else ok."""
    verdict = str(form.get("verdict") or "").strip().lower()
    counts = {sev: max(0, int(form.get(f"findings_{sev}") or 0)) for sev in FINDING_SEVERITIES}
    listed = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n) or "none"
    if verdict == "not_accepted" or counts["critical"]:
        status = Status.CRITICAL
    elif verdict not in VERDICTS:
        status, verdict = Status.WARNING, "no verdict given (re-run the DAG to record it)"
    elif verdict == "accepted_with_actions" or counts["high"]:
        status = Status.WARNING
    else:
        status = Status.OK
    summary = f"{what}: {verdict.replace('_', ' ')}; findings: {listed}"
    report = str(form.get("report_url") or "").strip()
    if report:
        summary += f"; report {report}"
    return CheckResult(
        check=f"{task_id}.findings",
        status=status,
        summary=summary,
        metric="findings",
        observed=float(sum(counts.values())),
        details={"form": dict(form), "counts": counts},
        component="review",
    )


# --------------------------------------------------------------------------------- report


def build_report(
    *,
    dag_id: str,
    title: str,
    run_id: str,
    period: Period,
    generated_at: dt.datetime,
    results: Iterable[tuple[str, CheckResult]],
) -> dict[str, Any]:
    """The report: every result of the run (task, check, status, summary, evidence in details)."""
    rows = [{"task_id": task_id, **r.to_dict()} for task_id, r in results]
    return {
        "format": REPORT_FORMAT,
        "dag_id": dag_id,
        "title": title,
        "run_id": run_id,
        "period": period.as_dict(),
        "generated_at": generated_at.isoformat(),
        "results": rows,
        "counts": {s.value: sum(1 for x in rows if x["status"] == s.value) for s in Status},
        "findings": [
            {"check": x["check"], "status": x["status"], "summary": x["summary"]}
            for x in sorted(rows, key=lambda x: -SEVERITY_ORDER[Status(x["status"])])
            if x["status"] not in ("ok", "skipped")
        ],
    }


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report for people: headline, findings first, then every result."""
    period = report["period"]
    lines = [
        f"# {report['title']} ({period['label']})",
        "",
        f"Period {period['start'][:10]} – {period['end'][:10]} · run `{report['run_id']}` · "
        f"generated {report['generated_at'][:19]} UTC",
        "",
        "## Findings",
        "",
    ]
    findings = report["findings"]
    lines += [f"- **{f['status']}** `{f['check']}`: {_cell(f['summary'])}" for f in findings] or ["- none"]
    lines += ["", "## Evidence", "", "| task | check | status | summary |", "|---|---|---|---|"]
    lines += [
        f"| {r['task_id']} | `{r['check']}` | {r['status']} | {_cell(r['summary'])} |"
        for r in report["results"]
    ]
    lines += ["", "The JSON beside this file holds each result's evidence (`details`).", ""]
    return "\n".join(lines)


def report_keys(prefix: str, dag_id: str, period: Period) -> tuple[str, str]:
    """``(json key, markdown key)``: one object pair per review and year (a rerun adds versions)."""
    base = f"{prefix}{dag_id}/{period.label}/report"
    return f"{base}.json", f"{base}.md"


def write_report(
    s3: Any,
    report: Mapping[str, Any],
    markdown: str,
    *,
    bucket: str,
    keys: tuple[str, str],
    sse: str,
    kms_key_id: str | None,
    check: str,
) -> CheckResult:
    """The JSON through the compliance audit's evidence writer (versioned bucket only, SSE, read
    back by version, SHA-256), then the Markdown beside it; both version ids in the result."""
    from sanvi_ops.core.aws_errors import aws_error_result
    from sanvi_ops.tasks.compliance_audit.compliance import write_evidence_pack

    json_key, md_key = keys
    written = write_evidence_pack(
        s3, report, bucket=bucket, key=json_key, sse=sse, kms_key_id=kms_key_id, check=check
    )
    if written.status is not Status.OK:
        return written
    body = markdown.encode()
    extra: dict[str, Any] = {"ServerSideEncryption": sse}
    if sse == "aws:kms" and kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    try:
        put = s3.put_object(Bucket=bucket, Key=md_key, Body=body, ContentType="text/markdown", **extra)
    except Exception as exc:  # noqa: BLE001 — AWS errors become results
        return aws_error_result(
            check,
            exc,
            client=s3,
            component="review",
            role="the review's role",
            failed=f"report s3://{bucket}/{md_key}: not written ({{reason}})",
        )
    details = {
        **written.details,
        "markdown_key": md_key,
        "markdown_version_id": put.get("VersionId"),
        "markdown_sha256": hashlib.sha256(body).hexdigest(),
    }
    return CheckResult(
        check=check,
        status=Status.OK,
        summary=(
            f"report s3://{bucket}/{json_key} (version {details.get('version_id')}) and "
            f"{md_key.rsplit('/', 1)[-1]}: {len(report.get('results', []))} results, "
            f"{len(report.get('findings', []))} findings"
        ),
        metric=written.metric,
        observed=written.observed,
        unit=written.unit,
        details=details,
        component="review",
    )


def count_result(
    check: str,
    *,
    what: str,
    found: Sequence[Mapping[str, Any]],
    expected: int,
    action: str,
    component: str,
    extra: str = "",
) -> CheckResult:
    """``found`` items (the evidence, in details) against ``expected`` in the year: fewer is a
    finding (``warning``) with ``action``."""
    n = len(found)
    ok = n >= expected
    summary = f"{n} {what} in the year (expected at least {expected}){extra}"
    return CheckResult(
        check=check,
        status=Status.OK if ok else Status.WARNING,
        summary=summary if ok else f"{summary} — Action: {action}",
        metric="count",
        observed=float(n),
        thresholds={"min": expected},
        details={"items": [jsonable(x) for x in found]},
        component=component,
    )
