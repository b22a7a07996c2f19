"""The configuration snapshot: canonical form, digest, diff, and where it lives in S3.

A snapshot is ``{"format": 1, "digest": …, "taken_at": …, "sources": {…}}``. The digest is the
SHA-256 of the canonical JSON of ``sources`` alone (keys sorted, no whitespace, lists of records
sorted by their key), so it changes exactly when the configuration does: not with the time of
the run nor with the order in which an API listed things.

In S3 the newest snapshot is one object, ``<prefix>snapshot.json``, in a versioned bucket: each
change is a new version of it (S3 metadata ``digest`` and ``git-commit``), and a lifecycle rule
on the prefix expires the old versions after the retention. :func:`latest_snapshot` reads it
back (the full-system drill applies it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FORMAT",
    "SNAPSHOT_NAME",
    "Stored",
    "canonical_json",
    "diff_summary",
    "digest",
    "ensure_retention",
    "latest_snapshot",
    "make_snapshot",
    "pretty_json",
    "read_stored",
    "rule_prefix",
    "snapshot_key",
    "write_snapshot",
]

FORMAT = 1
SNAPSHOT_NAME = "snapshot.json"
#: Our lifecycle rule's id (per prefix, so one bucket may hold several).
RULE_ID_PREFIX = "sanvi-configuration-"

#: Per source, the field that names a record (lists of records are sorted by it).
_RECORD_KEYS = ("Name", "name", "serviceName", "ARN", "taskDefinitionArn", "family", "Key")


def _record_name(item: Any) -> str | None:
    """The name of a record (a dict with one of :data:`_RECORD_KEYS`; a task definition's
    revision is part of it), ``None`` for anything else."""
    if isinstance(item, Mapping):
        for key in _RECORD_KEYS:
            if key in item:
                rev = item.get("revision")
                return f"{item[key]}:r{rev}" if isinstance(rev, int) else str(item[key])
    return None


def _sort_key(item: Any) -> tuple[str, int]:
    name = _record_name(item) or ""
    rev = item.get("revision") if isinstance(item, Mapping) else None
    return (name.rsplit(":r", 1)[0] if isinstance(rev, int) else name, rev if isinstance(rev, int) else 0)


def _canonical(value: Any) -> Any:
    """Dicts as they are (json sorts their keys); a list of named records sorted by name (the
    order an API lists parameters, secrets or services in means nothing); any other list kept
    in its order (a container's ``command`` means something else reordered)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_canonical(v) for v in value]
        if items and all(_record_name(v) is not None for v in items):
            items.sort(key=_sort_key)
        return items
    return value


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of ``value``: lists of named records sorted, keys sorted, no
    whitespace, UTF-8."""
    return json.dumps(
        _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def pretty_json(value: Any) -> str:
    """The same canonical order, indented: what goes to S3 and git (line diffs read well)."""
    return json.dumps(_canonical(value), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def digest(sources: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical sources."""
    return "sha256:" + hashlib.sha256(canonical_json(sources)).hexdigest()


def make_snapshot(sources: Mapping[str, Any], taken_at: str) -> dict[str, Any]:
    """A snapshot of ``sources`` (``taken_at``: ISO 8601, not part of the digest)."""
    canon = _canonical(dict(sources))
    return {"format": FORMAT, "digest": digest(canon), "taken_at": taken_at, "sources": canon}


# --------------------------------------------------------------------------------------------
# Diff: what changed, in a few lines for the commit message and Slack
# --------------------------------------------------------------------------------------------


def _records(section: Any) -> dict[str, Any]:
    """A source section as {record name: record}; a text or scalar section is one record."""
    if isinstance(section, list):
        return {_record_name(r) or json.dumps(r, sort_keys=True, default=str): r for r in section}
    if isinstance(section, Mapping):
        out: dict[str, Any] = {}
        for k, v in section.items():
            if isinstance(v, list):
                out.update({f"{k}/{name}": r for name, r in _records(v).items()})
            else:
                out[str(k)] = v
        return out
    return {"": section}


def _text_change(name: str, old: str, new: str) -> str:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"{name}: +{added}/-{removed} lines"


def diff_summary(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, limit: int = 5) -> list[str]:
    """One line per changed source: ``ssm: 1 added (/sanvi/x), 1 changed (/sanvi/y)``.

    :param old: the previous snapshot's ``sources`` (``None``: the first snapshot).
    :param limit: names listed per kind of change (the rest are counted).
    """
    if old is None:
        return [f"first snapshot: {', '.join(sorted(new))}"]
    lines: list[str] = []
    for source in sorted(set(old) | set(new)):
        if source not in old:
            lines.append(f"{source}: added")
            continue
        if source not in new:
            lines.append(f"{source}: removed")
            continue
        a, b = old[source], new[source]
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping) and isinstance(a.get("text"), str) \
                and isinstance(b.get("text"), str):  # fmt: skip
            lines.append(_text_change(source, a["text"], b["text"]))
            continue
        ra, rb = _records(a), _records(b)
        parts = []
        for label, names in (
            ("added", sorted(set(rb) - set(ra))),
            ("removed", sorted(set(ra) - set(rb))),
            ("changed", sorted(n for n in set(ra) & set(rb) if ra[n] != rb[n])),
        ):
            if names:
                shown = ", ".join(names[:limit]) + (
                    f", +{len(names) - limit} more" if len(names) > limit else ""
                )
                parts.append(f"{len(names)} {label} ({shown})")
        lines.append(f"{source}: {'; '.join(parts) or 'changed'}")
    return lines


# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------


def snapshot_key(prefix: str) -> str:
    return f"{prefix}{SNAPSHOT_NAME}"


class Stored:
    """What S3 holds for the newest snapshot (from ``HeadObject``): digest, git commit, version."""

    def __init__(self, digest: str | None, git_commit: str | None, version_id: str | None) -> None:
        self.digest, self.git_commit, self.version_id = digest, git_commit, version_id


def _code(exc: Exception) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


def read_stored(s3: Any, bucket: str, prefix: str) -> Stored | None:
    """The newest snapshot's metadata, ``None`` when there is none yet."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=snapshot_key(prefix))
    except ClientError as exc:
        if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return Stored(meta.get("digest"), meta.get("git-commit"), head.get("VersionId"))


def write_snapshot(
    s3: Any, bucket: str, prefix: str, snapshot: Mapping[str, Any], git_commit: str
) -> str | None:
    """Put the snapshot as a new version of ``<prefix>snapshot.json``; returns its version id
    (``None`` when the bucket is not versioned)."""
    body = pretty_json(snapshot).encode("utf-8")
    answer = s3.put_object(
        Bucket=bucket,
        Key=snapshot_key(prefix),
        Body=body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
        Metadata={"digest": str(snapshot["digest"]), "git-commit": git_commit},
    )
    version = answer.get("VersionId")
    return None if version in (None, "null") else str(version)


def latest_snapshot(s3: Any, bucket: str, prefix: str = "configuration/") -> dict[str, Any]:
    """The newest configuration snapshot in ``s3://<bucket>/<prefix>snapshot.json``, parsed and
    checked: its ``digest`` must match its ``sources`` (a tampered or truncated object is refused).

    :raises LookupError: no snapshot there yet.
    :raises ValueError: the object is not a snapshot this code wrote, or its digest does not match.
    """
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=snapshot_key(prefix))["Body"].read()
    except ClientError as exc:
        if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
            raise LookupError(
                f"s3://{bucket}/{snapshot_key(prefix)}: no configuration snapshot yet"
            ) from None
        raise
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"s3://{bucket}/{snapshot_key(prefix)} is not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("sources"), dict)
    ):
        raise ValueError(
            f"s3://{bucket}/{snapshot_key(prefix)} is not a format-{FORMAT} configuration snapshot"
        )
    if digest(data["sources"]) != data.get("digest"):
        raise ValueError(
            f"s3://{bucket}/{snapshot_key(prefix)}: digest mismatch (stored {str(data.get('digest'))[:20]}…, "
            f"content {digest(data['sources'])[:20]}…): the snapshot was altered"
        )
    return data


def retention_rule(prefix: str, retention_days: int) -> dict[str, Any]:
    """Old versions of the prefix expire ``retention_days`` after they were replaced; the current
    snapshot never expires (it is the configuration in force)."""
    return {
        "ID": f"{RULE_ID_PREFIX}{prefix.strip('/').replace('/', '-') or 'root'}",
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": retention_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def rule_prefix(rule: Mapping[str, Any]) -> str:
    """The key prefix a lifecycle rule applies to (``Filter.Prefix``, ``Filter.And.Prefix`` or the
    legacy top-level ``Prefix``; ``""``: the whole bucket)."""
    f = rule.get("Filter") or {}
    return str(f.get("Prefix", (f.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or "")


def _essentials(rule: Mapping[str, Any]) -> dict[str, Any]:
    prefix = rule_prefix(rule)
    nc = (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")
    return {"prefix": prefix, "status": rule.get("Status"), "noncurrent_days": nc,
            "expiration": rule.get("Expiration")}  # fmt: skip


def ensure_retention(
    s3: Any, bucket: str, prefix: str, retention_days: int
) -> tuple[str, str, dict[str, Any]]:
    """Versioning and the retention rule of ``s3://<bucket>/<prefix>``.

    The rule is created when the prefix has none; a different one is reported, never changed.
    Returns ``(status, summary, details)`` with status ``ok``/``warning``/``critical``.
    """
    from botocore.exceptions import ClientError

    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    want = retention_rule(prefix, retention_days)
    current = next((r for r in rules if r.get("ID") == want["ID"]), None) or next(
        (r for r in rules if _essentials(r)["prefix"] == prefix), None
    )
    created = False
    if current is None:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*rules, want]})
        current, created = want, True
    have, expected = _essentials(current), _essentials(want)
    details = {"versioning": versioning or "off", "rule": have, "rule_created": created}
    where = f"s3://{bucket}/{prefix}"
    if versioning != "Enabled":
        return ("critical", f"{where}: bucket versioning is {versioning or 'off'}: a change overwrites the "
                "previous snapshot (enable versioning, or set configuration_backups.bucket to a versioned "
                "bucket)", details)  # fmt: skip
    if have != expected:
        diff = {k: {"have": have[k], "want": expected[k]} for k in expected if have[k] != expected[k]}
        return ("warning", f"{where}: lifecycle rule {current.get('ID')!r} differs from the policy: "
                + ", ".join(f"{k} {v['have']} (want {v['want']})" for k, v in diff.items()),
                {**details, "difference": diff})  # fmt: skip
    verb = "created" if created else "matches"
    return (
        "ok",
        f"{where}: versioned; lifecycle rule {verb} (old versions kept {retention_days} d)",
        details,
    )
