"""Data classification: every S3 bucket and RDS instance is classified and meets its class's rules.

The guide's four classes (Public, Internal, Confidential, Restricted) are
``tasks.compliance_audit.settings.data_classification``: the tag that carries the class
(``DataClassification``) and, per class, its rules (:class:`ClassRules`). Confidential and
Restricted need, by default:

| rule | S3 bucket | RDS instance |
|---|---|---|
| ``own_kms_key`` | default encryption SSE-KMS with a customer-managed key no other bucket uses | storage encrypted with a customer-managed key (not ``aws/rds``) |
| ``no_public_access`` | Block Public Access: all four settings on | ``PubliclyAccessible`` false |
| ``access_logging`` | server access logging on | CloudWatch Logs exports enabled |
| ``access_log_retention_days`` (1095) | the log bucket's lifecycle expires the logs after ≥ 1095 days | each exported log group keeps ≥ 1095 days |

:func:`check_classification` returns one finding (``warning``) per violation, named
``classification.<rule>[s3:<bucket>]`` / ``[rds:<instance>]``, a missing or unknown tag as
``classification.tag[...]``; an AWS call that fails is an ``error`` for that resource and rule
(never green by omission). All in order: one ``ok`` result counting what was checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_result, aws_error_types
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.compliance_audit.config import ClassRules, DataClassificationConfig

ROLE = "the audit's role"
PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _finding(rule: str, resource: str, text: str, action: str, **details: Any) -> CheckResult:
    return CheckResult(
        check=f"classification.{rule}[{resource}]",
        status=Status.WARNING,
        summary=f"{resource}: {text} — Action: {action}",
        details={"resource": resource, "rule": rule, **details},
        component="classification",
    )


def _failed(rule: str, resource: str, client: Any, what: str, exc: Exception) -> CheckResult:
    return aws_error_result(
        f"classification.{rule}[{resource}]",
        exc,
        client=client,
        component="classification",
        role=ROLE,
        failed=f"{resource}: {what} could not be read ({{reason}})",
    )


def _key_id(key: str | None) -> str | None:
    """A KMS key id, ARN or alias → a comparable name (the part after ``key/`` or ``alias/``)."""
    if not key:
        return None
    return key.rsplit(":", 1)[-1]


class _Kms:
    """Customer-managed or not, per key (``kms:DescribeKey``), read once."""

    def __init__(self, kms: Any) -> None:
        self.kms, self.seen = kms, dict[str, str]()

    def manager(self, key: str) -> str:
        if key not in self.seen:
            meta = self.kms.describe_key(KeyId=key)["KeyMetadata"]
            self.seen[key] = str(meta.get("KeyManager") or "CUSTOMER")
        return self.seen[key]


def _classify(
    tags: Mapping[str, str], cfg: DataClassificationConfig, resource: str
) -> tuple[str | None, CheckResult | None]:
    value = next((v for k, v in tags.items() if k.lower() == cfg.tag_key.lower()), None)
    classes = ", ".join(c.capitalize() for c in cfg.classes)
    if value is None:
        return None, _finding(
            "tag",
            resource,
            f"no {cfg.tag_key} tag",
            f"tag it with {cfg.tag_key} = one of {classes}",
        )
    if value.strip().lower() not in cfg.classes:
        return None, _finding(
            "tag",
            resource,
            f"{cfg.tag_key} = {value!r} is not a data class",
            f"use one of {classes}",
            value=value,
        )
    return value.strip().lower(), None


# ------------------------------------------------------------------------------------- S3


def _bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        tagset = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except aws_error_types() as exc:
        if _code(exc) in {"NoSuchTagSet", "NoSuchTagSetError"}:
            return {}
        raise
    return {t["Key"]: t["Value"] for t in tagset}


def _bucket_kms_key(s3: Any, bucket: str) -> str | None:
    """The bucket's default SSE-KMS key (as configured), ``None`` when not SSE-KMS with a key."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except aws_error_types() as exc:
        if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
            return str(default["KMSMasterKeyID"])
    return None


def _log_expiration_days(s3: Any, bucket: str, prefix: str) -> int | None:
    """Days after which the enabled lifecycle rule covering ``prefix`` expires objects (the
    shortest if several), ``None`` when no rule expires them."""
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except aws_error_types() as exc:
        if _code(exc) == "NoSuchLifecycleConfiguration":
            return None
        raise
    days = []
    for rule in rules:
        if rule.get("Status") != "Enabled" or "Days" not in rule.get("Expiration", {}):
            continue
        scope = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
        if prefix.startswith(scope or ""):
            days.append(int(rule["Expiration"]["Days"]))
    return min(days, default=None)


def _bucket_key(kms: _Kms, res: str, key: str | None, shared: Counter[str]) -> list[CheckResult]:
    out: list[CheckResult] = []
    if key is None:
        out.append(
            _finding(
                "own_kms_key",
                res,
                "default encryption is not SSE-KMS with a key",
                "put-bucket-encryption with SSE-KMS and a customer-managed key of its own",
            )
        )
    else:
        try:
            manager = kms.manager(key)
        except aws_error_types() as exc:
            out.append(_failed("own_kms_key", res, kms.kms, f"KMS key {key}", exc))
            manager = "CUSTOMER"
        others = shared[_key_id(key) or ""] - 1
        if manager != "CUSTOMER":
            out.append(
                _finding(
                    "own_kms_key",
                    res,
                    f"encrypted with the AWS-managed key {key}",
                    "create a customer-managed KMS key for this bucket and make it the default",
                    key=key,
                )
            )
        elif others > 0:
            out.append(
                _finding(
                    "own_kms_key",
                    res,
                    f"its KMS key {key} is shared with {others} other bucket(s)",
                    "give this bucket a key of its own",
                    key=key,
                )
            )
    return out


def _bucket_public(s3: Any, bucket: str, res: str) -> list[CheckResult]:
    out: list[CheckResult] = []
    try:
        pab = s3.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration", {})
    except aws_error_types() as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        pab = {}
    off = [k for k in PAB_KEYS if not pab.get(k)]
    if off:
        out.append(
            _finding(
                "no_public_access",
                res,
                f"Block Public Access not fully on ({', '.join(off)} off)",
                "put-public-access-block with all four settings true",
                off=off,
            )
        )
    return out


def _bucket_logging(s3: Any, bucket: str, res: str, rules: ClassRules) -> list[CheckResult]:
    out: list[CheckResult] = []
    logging = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
    if not logging:
        if rules.access_logging:
            out.append(
                _finding(
                    "access_logging",
                    res,
                    "server access logging is off",
                    "put-bucket-logging to a log bucket (whose lifecycle keeps the logs 3 years)",
                )
            )
    elif rules.access_log_retention_days:
        target, prefix = logging["TargetBucket"], logging.get("TargetPrefix", "")
        days = _log_expiration_days(s3, target, prefix)
        need = rules.access_log_retention_days
        if days is None or days < need:
            held = (
                "no lifecycle expiration (retention not set)" if days is None else f"expire after {days} days"
            )
            out.append(
                _finding(
                    "access_log_retention",
                    res,
                    f"its access logs (s3://{target}/{prefix}) {held}; at least {need} days required",
                    f"a lifecycle rule on {target} expiring {prefix or 'the logs'} after {need} days or more",
                    target=target,
                    days=days,
                )
            )
    return out


def _check_bucket(
    s3: Any, kms: _Kms, bucket: str, rules: ClassRules, shared: Counter[str], keys: Mapping[str, str | None]
) -> list[CheckResult]:
    res = f"s3:{bucket}"
    res = f"s3:{bucket}"
    out: list[CheckResult] = []
    if rules.own_kms_key:
        out += _bucket_key(kms, res, keys.get(bucket), shared)
    if rules.no_public_access:
        out += _bucket_public(s3, bucket, res)
    if rules.access_logging or rules.access_log_retention_days:
        out += _bucket_logging(s3, bucket, res, rules)
    return out


def _s3(s3: Any, kms: _Kms, cfg: DataClassificationConfig) -> tuple[list[CheckResult], int, int]:
    buckets = list(cfg.s3_buckets) or [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    out: list[CheckResult] = []
    classified: dict[str, str] = {}
    for bucket in buckets:
        try:
            cls, finding = _classify(_bucket_tags(s3, bucket), cfg, f"s3:{bucket}")
        except aws_error_types() as exc:
            out.append(_failed("tag", f"s3:{bucket}", s3, "its tags", exc))
            continue
        if finding:
            out.append(finding)
        if cls:
            classified[bucket] = cls
    keys: dict[str, str | None] = {}
    for bucket in buckets:  # every bucket's key: "not shared" counts unclassified buckets too
        try:
            keys[bucket] = _bucket_kms_key(s3, bucket)
        except aws_error_types() as exc:
            if classified.get(bucket) and cfg.classes[classified[bucket]].own_kms_key:
                out.append(_failed("own_kms_key", f"s3:{bucket}", s3, "its default encryption", exc))
            keys[bucket] = None
    shared = Counter(_key_id(k) or "" for k in keys.values() if k)
    strict = 0
    for bucket, cls in classified.items():
        rules = cfg.classes[cls]
        if rules == ClassRules():
            continue
        strict += 1
        try:
            out += _check_bucket(s3, kms, bucket, rules, shared, keys)
        except aws_error_types() as exc:
            out.append(_failed("rules", f"s3:{bucket}", s3, "its settings", exc))
    return out, len(buckets), strict


# ------------------------------------------------------------------------------------ RDS


def _check_instance(db: Mapping[str, Any], kms: _Kms, logs: Any, rules: ClassRules) -> list[CheckResult]:
    name = db["DBInstanceIdentifier"]
    res = f"rds:{name}"
    out: list[CheckResult] = []
    if rules.own_kms_key:
        key = db.get("KmsKeyId")
        if not db.get("StorageEncrypted") or not key:
            out.append(
                _finding(
                    "own_kms_key",
                    res,
                    "storage is not encrypted with a KMS key",
                    "restore a snapshot copy encrypted with a customer-managed key (encryption cannot be "
                    "turned on in place)",
                )
            )
        else:
            try:
                manager = kms.manager(str(key))
            except aws_error_types() as exc:
                out.append(_failed("own_kms_key", res, kms.kms, f"KMS key {key}", exc))
                manager = "CUSTOMER"
            if manager != "CUSTOMER":
                out.append(
                    _finding(
                        "own_kms_key",
                        res,
                        f"encrypted with the default AWS-managed key {key}",
                        "copy a snapshot with a customer-managed key and restore from it",
                        key=key,
                    )
                )
    if rules.no_public_access and db.get("PubliclyAccessible"):
        out.append(
            _finding(
                "no_public_access",
                res,
                "publicly accessible",
                f"aws rds modify-db-instance --db-instance-identifier {name} --no-publicly-accessible",
            )
        )
    exports = list(db.get("EnabledCloudwatchLogsExports") or [])
    if rules.access_logging and not exports:
        out.append(
            _finding(
                "access_logging",
                res,
                "no CloudWatch Logs exports enabled",
                "enable the engine's log exports (postgresql) with modify-db-instance "
                "--cloudwatch-logs-export-configuration, and pgaudit for data access",
            )
        )
    need = rules.access_log_retention_days or 0
    for export in exports if need else []:
        group = f"/aws/rds/instance/{name}/{export}"
        try:
            found = [
                g
                for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
                for g in page.get("logGroups", [])
                if g["logGroupName"] == group
            ]
        except aws_error_types() as exc:
            out.append(_failed("access_log_retention", res, logs, f"log group {group}", exc))
            continue
        days = found[0].get("retentionInDays") if found else None
        if days is None or int(days) < need:
            held = (
                "is missing"
                if not found
                else ("has no retention set" if days is None else f"keeps {days} days")
            )
            out.append(
                _finding(
                    "access_log_retention",
                    res,
                    f"log group {group} {held}; at least {need} days required",
                    f"aws logs put-retention-policy --log-group-name {group} --retention-in-days 1096",
                    log_group=group,
                    days=days,
                )
            )
    return out


def _rds(rds: Any, kms: _Kms, logs: Any, cfg: DataClassificationConfig) -> tuple[list[CheckResult], int, int]:
    wanted = set(cfg.rds_instances)
    dbs = [
        db
        for page in rds.get_paginator("describe_db_instances").paginate()
        for db in page.get("DBInstances", [])
        if not wanted or db["DBInstanceIdentifier"] in wanted
    ]
    out: list[CheckResult] = []
    strict = 0
    for db in dbs:
        res = f"rds:{db['DBInstanceIdentifier']}"
        tags = db.get("TagList")
        if tags is None:
            try:
                tags = rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]).get("TagList", [])
            except aws_error_types() as exc:
                out.append(_failed("tag", res, rds, "its tags", exc))
                continue
        cls, finding = _classify({t["Key"]: t["Value"] for t in tags}, cfg, res)
        if finding:
            out.append(finding)
        if cls and cfg.classes[cls] != ClassRules():
            strict += 1
            out += _check_instance(db, kms, logs, cfg.classes[cls])
    return out, len(dbs), strict


def check_classification(
    s3: Any, rds: Any, kms: Any, logs: Any, cfg: DataClassificationConfig
) -> list[CheckResult]:
    """Every bucket and instance: classified, and its class's rules met (see the module doc)."""
    k = _Kms(kms)
    out: list[CheckResult] = []
    counts: dict[str, tuple[int, int]] = {}
    for kind in ("s3", "rds"):
        try:
            found, total, strict = _s3(s3, k, cfg) if kind == "s3" else _rds(rds, k, logs, cfg)
        except aws_error_types() as exc:
            client = s3 if kind == "s3" else rds
            out.append(
                _failed(
                    "inventory",
                    kind,
                    client,
                    "the list of " + ("buckets" if kind == "s3" else "instances"),
                    exc,
                )
            )
            continue
        out += found
        counts[kind] = (total, strict)
    if not out:
        (b, bs), (i, is_) = counts["s3"], counts["rds"]
        out.append(
            CheckResult(
                check="classification.resources",
                status=Status.OK,
                summary=f"{b} bucket(s) and {i} RDS instance(s) classified; the {bs + is_} Confidential/"
                "Restricted ones meet their rules (own KMS key, no public access, access logging, 3-year logs)",
                details={"s3": {"total": b, "strict": bs}, "rds": {"total": i, "strict": is_}},
                component="classification",
            )
        )
    return out
