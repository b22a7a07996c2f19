"""One configuration backup run: read the sources, compare digests, keep a changed snapshot in
S3 and git (no Airflow import: clients and plain values in, results out).

Order, so that the two copies converge after any failure:

1. every source is read; if one cannot be, nothing is written (a snapshot missing a source
   would read as "everything in it was deleted") and the run is in ``error`` naming it;
2. S3's newest snapshot says its digest and whether git got it (metadata ``git-commit``); the
   same digest with git done (or not configured) → "no change", stop;
3. git first: commit and push (an unchanged tree makes no commit);
4. then S3: a new version of ``snapshot.json`` whose metadata records the commit, or
   ``pending`` when git failed, so the next run pushes again even though the digest is the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.configuration_backup import snapshot as snap
from sanvi_ops.tasks.configuration_backup.git_repo import GitCredentials, GitError, commit_files
from sanvi_ops.tasks.configuration_backup.sources import read_ecs, read_secrets, read_ssm

__all__ = ["BackupPlan", "Outcome", "collect", "git_files", "run_backup"]

COMPONENT = "configuration"
#: ``git-commit`` metadata: git was not configured / the push failed (retry next run).
NOT_CONFIGURED, PENDING = "not-configured", "pending"


@dataclass(frozen=True)
class BackupPlan:
    """Everything a run needs, resolved from the config."""

    bucket: str
    prefix: str
    retention_days: int
    ssm_paths: Sequence[str] = ()
    secret_prefixes: Sequence[str] = ()
    ecs_cluster: str | None = None
    ecs_services: Sequence[str] = ()
    maintenance_yaml: Path | None = None
    repository: str | None = None
    branch: str = "main"
    author: str = "Sanvi Ops"
    email: str = "sanvi-ops@sanvi-machinery.com"
    creds: GitCredentials | None = None
    git_timeout: float = 120.0
    #: Where the repository setting lives, for the finding when it is missing.
    repository_key: str = "configuration_backups.git.repository"


@dataclass
class Outcome:
    results: list[CheckResult]
    changed: bool = False
    digest: str | None = None
    version_id: str | None = None
    commit: str | None = None
    diff: list[str] = field(default_factory=list)


def _failure(check: str, what: str, exc: Exception) -> CheckResult:
    return CheckResult(check, Status.ERROR, f"{what} failed: {aws_error_text(exc)}", component=COMPONENT)


def collect(clients: Callable[[str], Any], plan: BackupPlan) -> tuple[dict[str, Any], list[str], list[str]]:
    """Read every configured source: ``(sources, counts, problems)``; ``problems`` names each
    source that could not be read (then ``sources`` must not be kept)."""
    sources: dict[str, Any] = {}
    counts: list[str] = []
    problems: list[str] = []
    aws_errors = aws_error_types(OSError)
    if plan.ssm_paths:
        try:
            sources["ssm"] = {
                "paths": sorted(plan.ssm_paths),
                "parameters": read_ssm(clients("ssm"), plan.ssm_paths),
            }
            counts.append(f"{len(sources['ssm']['parameters'])} SSM parameters")
        except aws_errors as exc:
            problems.append(
                f"ssm:DescribeParameters/GetParameters under {', '.join(plan.ssm_paths)}: {aws_error_text(exc)}"
            )
    if plan.secret_prefixes:
        try:
            secrets = read_secrets(clients("secretsmanager"), plan.secret_prefixes)
            sources["secretsmanager"] = {"prefixes": sorted(plan.secret_prefixes), "secrets": secrets}
            counts.append(f"{len(secrets)} secrets (metadata)")
        except aws_errors as exc:
            problems.append(f"secretsmanager:ListSecrets: {aws_error_text(exc)}")
    if plan.ecs_cluster and plan.ecs_services:
        try:
            ecs = read_ecs(clients("ecs"), plan.ecs_cluster, plan.ecs_services)
            sources["ecs"] = ecs
            counts.append(
                f"{len(ecs['services'])} ECS services, {len(ecs['task_definitions'])} task definitions"
            )
            if ecs["missing_services"]:
                problems.append(
                    f"ecs: services not found in cluster {plan.ecs_cluster}: {', '.join(ecs['missing_services'])}"
                )
        except aws_errors as exc:
            problems.append(
                f"ecs:DescribeServices/DescribeTaskDefinition ({plan.ecs_cluster}): {aws_error_text(exc)}"
            )
    if plan.maintenance_yaml is not None:
        try:
            text = plan.maintenance_yaml.read_text(encoding="utf-8")
            sources["maintenance_yaml"] = {"name": plan.maintenance_yaml.name, "text": text}
            counts.append(plan.maintenance_yaml.name)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"maintenance.yaml ({plan.maintenance_yaml}): {exc}")
    return sources, counts, problems


def git_files(snapshot: dict[str, Any]) -> dict[str, bytes]:
    """The repository's files: one JSON per source (readable diffs), ``maintenance.yaml`` as
    text, ``DIGEST``."""
    files: dict[str, bytes] = {}
    for name, section in snapshot["sources"].items():
        if name == "maintenance_yaml":
            files["maintenance.yaml"] = str(section["text"]).encode("utf-8")
        else:
            files[f"{name}.json"] = snap.pretty_json(section).encode("utf-8")
    files["DIGEST"] = f"{snapshot['digest']}\n".encode()
    return files


def _commit_message(snapshot: dict[str, Any], diff: list[str], run_id: str) -> str:
    head = diff[0] if len(diff) == 1 else f"{len(diff)} sources changed"
    body = "\n".join(f"- {line}" for line in diff)
    return (f"Configuration snapshot {snapshot['taken_at']}: {head}\n\n{body}\n\n"
            f"Digest: {snapshot['digest']}\nRun: {run_id}\n")  # fmt: skip


def run_backup(
    clients: Callable[[str], Any], plan: BackupPlan, *, now: dt.datetime | None = None, run_id: str = ""
) -> Outcome:
    """One run; see the module docstring. ``clients(service)`` returns a boto3 client."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    where = f"s3://{plan.bucket}/{snap.snapshot_key(plan.prefix)}"
    sources, counts, problems = collect(clients, plan)
    if problems:
        return Outcome([CheckResult(
            "configuration.sources", Status.ERROR,
            f"{len(problems)} configuration source(s) could not be read; no snapshot taken: {problems[0]}",
            component=COMPONENT, details={"problems": problems, "read": counts},
        )])  # fmt: skip
    if not sources:
        return Outcome([CheckResult(
            "configuration.sources", Status.ERROR,
            "no configuration source is configured (configuration_backups.sources)", component=COMPONENT,
        )])  # fmt: skip
    results = [CheckResult("configuration.sources", Status.OK, f"read {', '.join(counts)}", component=COMPONENT,
                           details={"sources": sorted(sources)})]  # fmt: skip
    snapshot = snap.make_snapshot(sources, moment.isoformat())
    s3 = clients("s3")
    try:
        status, summary, details = snap.ensure_retention(s3, plan.bucket, plan.prefix, plan.retention_days)
        results.append(CheckResult("configuration.retention", Status(status), summary, component=COMPONENT,
                                   details=details, severity="P3" if status == "critical" else None))  # fmt: skip
        stored = snap.read_stored(s3, plan.bucket, plan.prefix)
    except aws_error_types(OSError) as exc:
        results.append(_failure("configuration.snapshot", f"S3 ({where})", exc))
        return Outcome(results, digest=snapshot["digest"])
    git_wanted = plan.repository is not None
    git_done = (
        stored is not None
        and stored.git_commit not in (PENDING, None)
        and (stored.git_commit != NOT_CONFIGURED or not git_wanted)
    )
    out = Outcome(results, digest=snapshot["digest"])
    if stored is not None and stored.digest == snapshot["digest"] and git_done:
        results.append(CheckResult(
            "configuration.snapshot", Status.OK,
            f"no change since the last snapshot ({snapshot['digest'][:19]}…, {where} version {stored.version_id})",
            component=COMPONENT, details={"digest": snapshot["digest"], "changed": False, "version_id": stored.version_id},
        ))  # fmt: skip
        results.append(_git_unchanged(plan, stored.git_commit))
        return out
    previous: dict[str, Any] | None = None
    if stored is not None:
        try:
            previous = snap.latest_snapshot(s3, plan.bucket, plan.prefix)["sources"]
        except aws_error_types(LookupError, ValueError) as exc:  # unreadable: diff against nothing
            out.diff.append(f"previous snapshot unreadable ({str(exc)[:120]})")
    out.diff += snap.diff_summary(previous, snapshot["sources"]) or ["git catching up (content unchanged)"]
    commit_meta = NOT_CONFIGURED
    if git_wanted:
        assert plan.repository is not None
        try:
            commit = commit_files(
                plan.repository, plan.branch, git_files(snapshot), _commit_message(snapshot, out.diff, run_id),
                author=plan.author, email=plan.email, creds=plan.creds, timeout=plan.git_timeout,
            )  # fmt: skip
            out.commit = commit
            commit_meta = commit or (
                stored.git_commit
                if stored and stored.git_commit not in (None, PENDING, NOT_CONFIGURED)
                else "unchanged"
            )
            results.append(CheckResult(
                "configuration.git", Status.OK,
                f"committed {commit[:10]} to {plan.branch}" if commit else f"{plan.branch} already holds this snapshot",
                component=COMPONENT, details={"commit": commit, "branch": plan.branch},
            ))  # fmt: skip
        except (GitError, OSError, ValueError) as exc:
            commit_meta = PENDING
            results.append(CheckResult("configuration.git", Status.ERROR,
                                       f"commit to {plan.branch} failed; retried next run: {exc}",
                                       component=COMPONENT))  # fmt: skip
    else:
        results.append(_git_unchanged(plan, None))
    try:
        out.version_id = snap.write_snapshot(s3, plan.bucket, plan.prefix, snapshot, commit_meta)
    except aws_error_types(OSError) as exc:
        results.append(_failure("configuration.snapshot", f"PutObject {where}", exc))
        return out
    out.changed = stored is None or stored.digest != snapshot["digest"]
    what = "; ".join(out.diff)
    results.append(CheckResult(
        "configuration.snapshot", Status.OK,
        (f"changed: {what}" if out.changed else f"re-written for git: {what}")[:400]
        + f" → {where} version {out.version_id or '(unversioned)'}",
        component=COMPONENT,
        details={"digest": snapshot["digest"], "changed": out.changed, "version_id": out.version_id,
                 "commit": out.commit, "diff": out.diff},
    ))  # fmt: skip
    return out


def _git_unchanged(plan: BackupPlan, commit: str | None) -> CheckResult:
    if plan.repository is None:
        return CheckResult(
            "configuration.git", Status.WARNING,
            f"{plan.repository_key} is not set: snapshots are kept in S3 only (the guide asks for version control too)",
            component=COMPONENT,
        )  # fmt: skip
    return CheckResult("configuration.git", Status.OK, f"{plan.branch} holds the snapshot ({str(commit)[:10]})",
                       component=COMPONENT, details={"commit": commit})  # fmt: skip
