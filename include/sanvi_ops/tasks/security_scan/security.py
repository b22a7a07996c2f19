"""The monthly Security Scan's checks: AWS configuration and TLS endpoints against the guide.

Each function takes a ready boto3 client (or a host and port) and returns :class:`CheckResult`
objects, one per finding plus one ``ok`` line per area when nothing was found. Every finding
names the AWS Security Hub control it corresponds to, in ``details["control"]`` and at the
start of its summary (``[S3.8] bucket X: …``). Critical exposure (a database port open to the
internet, a public database, an expired certificate) is ``critical`` with severity ``P2``.

A call the credentials may not make (``AccessDenied``) becomes an ``error`` result naming the
missing IAM action; the other checks still run.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_types, denied_result, iam_action, is_aws_error, is_denied
from sanvi_ops.core.results import CheckResult, Status

__all__ = [
    "HIGH_RISK_PORTS",
    "check_elasticache",
    "check_iam",
    "check_rds",
    "check_s3_account",
    "check_s3_buckets",
    "check_security_groups",
    "check_tls_endpoint",
]

#: Ports whose exposure to the internet is critical (Security Hub EC2.19's list, narrowed to
#: remote administration and databases): SSH, RDP, PostgreSQL, MySQL, MSSQL, Oracle, Redis,
#: MongoDB, Elasticsearch, Memcached, CIFS/SMB.
HIGH_RISK_PORTS: frozenset[int] = frozenset(
    {
        20,
        21,
        22,
        23,
        445,
        1433,
        1434,
        1521,
        3306,
        3389,
        5432,
        5500,
        5601,
        6379,
        8080,
        9200,
        9300,
        11211,
        27017,
    }
)
_OPEN = ("0.0.0.0/0", "::/0")


class _Denied(Exception):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(message)
        self.action = action


def _call(client: Any, method: str, missing: Iterable[str] = (), **kwargs: Any) -> Any:
    """Call ``client.method``; ``None`` for an error code in ``missing``; :class:`_Denied` for
    a permission error; any other ClientError propagates."""
    from botocore.exceptions import ClientError

    try:
        return getattr(client, method)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in set(missing):
            return None
        if is_denied(exc):
            action = iam_action(exc, client=client, method=method)
            raise _Denied(action, exc.response.get("Error", {}).get("Message", "")) from None
        raise


def _error(check: str, component: str, control: str | None, exc: Exception) -> CheckResult:
    prefix = f"[{control}] " if control else ""
    if isinstance(exc, _Denied) or is_denied(exc):
        # a paginated call raises the ClientError itself: the component is the IAM service
        # prefix (ec2, rds, iam, elasticache)
        action = exc.action if isinstance(exc, _Denied) else None
        return denied_result(
            check,
            exc,
            service=component,
            action=action,
            component=component,
            control=control,
            role="the scan's role",
            details={"control": control},
        )
    if is_aws_error(exc):
        response = getattr(exc, "response", {}) or {}
        err = response.get("Error", {})
        text = f"{err.get('Code', type(exc).__name__)}: {err.get('Message', exc)}"
        summary = f"{prefix}could not be checked: {text}"
        details: dict[str, Any] = {"control": control}
    else:
        raise exc
    return CheckResult(
        check=check, status=Status.ERROR, summary=summary, details=details, component=component
    )


def _finding(
    check: str,
    component: str,
    control: str | None,
    status: Status,
    text: str,
    action: str,
    **details: Any,
) -> CheckResult:
    prefix = f"[{control}] " if control else ""
    return CheckResult(
        check=check,
        status=status,
        summary=f"{prefix}{text} — Action: {action}",
        details={"control": control, **details},
        severity="P2" if status is Status.CRITICAL else None,
        component=component,
    )


def _all_clear(check: str, component: str, text: str, **details: Any) -> CheckResult:
    return CheckResult(check=check, status=Status.OK, summary=text, details=details, component=component)


def _guarded(
    check: str, component: str, control: str | None, fn: Callable[[], list[CheckResult]]
) -> list[CheckResult]:
    try:
        return fn()
    except aws_error_types(_Denied) as exc:
        return [_error(check, component, control, exc)]


# --------------------------------------------------------------------------------------------
# EC2 security groups
# --------------------------------------------------------------------------------------------


def _port_range(perm: dict[str, Any]) -> tuple[int, int] | None:
    """``(from, to)`` of a permission; ``None`` for all traffic (protocol -1)."""
    if str(perm.get("IpProtocol")) == "-1":
        return None
    return int(perm.get("FromPort", 0)), int(perm.get("ToPort", 65535))


def _default_group(group: dict[str, Any]) -> list[CheckResult]:
    inbound, outbound = len(group.get("IpPermissions", [])), len(group.get("IpPermissionsEgress", []))
    if not inbound and not outbound:
        return []
    gid, vpc = group["GroupId"], group.get("VpcId", "EC2-Classic")
    return [
        _finding(
            f"ec2.default_sg[{gid}]",
            "ec2",
            "EC2.2",
            Status.WARNING,
            f"default security group {gid} of {vpc} allows traffic ({inbound} inbound, {outbound} outbound rules)",
            "remove every rule from the default group; use dedicated groups",
            group_id=gid,
            vpc=vpc,
        )
    ]


def check_security_groups(
    ec2: Any, *, allowed_ports: Iterable[int] = (80, 443), check_default_groups: bool = True
) -> list[CheckResult]:
    """Ingress rules open to 0.0.0.0/0 or ::/0 on any port but ``allowed_ports``.

    A high-risk port (:data:`HIGH_RISK_PORTS`) or all traffic is critical (EC2.19); any other
    port is a warning (EC2.18). With ``check_default_groups``, a VPC's default security group
    with any rule is a warning (EC2.2: AWS creates it allowing traffic; nothing should use it).
    """
    allowed = set(allowed_ports)

    def run() -> list[CheckResult]:
        found: list[CheckResult] = []
        count = 0
        for page in ec2.get_paginator("describe_security_groups").paginate():
            for group in page.get("SecurityGroups", []):
                count += 1
                gid, name = group["GroupId"], group.get("GroupName", "")
                if check_default_groups and name == "default":
                    found += _default_group(group)
                for perm in group.get("IpPermissions", []):
                    cidrs = [r.get("CidrIp") for r in perm.get("IpRanges", [])]
                    cidrs += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
                    open_to = [c for c in cidrs if c in _OPEN]
                    if not open_to:
                        continue
                    rng = _port_range(perm)
                    if rng is not None and rng[0] == rng[1] and rng[0] in allowed:
                        continue
                    label = (
                        "all traffic"
                        if rng is None
                        else (f"port {rng[0]}" if rng[0] == rng[1] else f"ports {rng[0]}-{rng[1]}")
                    )
                    risky = rng is None or any(rng[0] <= p <= rng[1] for p in HIGH_RISK_PORTS)
                    control = "EC2.19" if risky else "EC2.18"
                    found.append(
                        _finding(
                            f"ec2.sg_open[{gid}:{label.replace(' ', '_')}]",
                            "ec2",
                            control,
                            Status.CRITICAL if risky else Status.WARNING,
                            f"security group {gid} ({name}): {label} open to {', '.join(open_to)}",
                            "restrict the source to known CIDRs or a security group",
                            group_id=gid,
                            port_range=list(rng) if rng else None,
                            cidrs=open_to,
                        )
                    )
        return found or [
            _all_clear(
                "ec2.security_groups",
                "ec2",
                f"{count} security groups: nothing open to the internet beyond ports {sorted(allowed)}",
                groups=count,
            )
        ]

    return _guarded("ec2.security_groups", "ec2", "EC2.19", run)


# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------

_PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _pab_off(config: dict[str, Any] | None) -> list[str]:
    if not config:
        return list(_PAB_KEYS)
    return [k for k in _PAB_KEYS if not config.get(k)]


def check_s3_account(s3control: Any, account_id: str) -> list[CheckResult]:
    """The account-wide S3 Block Public Access setting (S3.1): all four flags on."""

    def run() -> list[CheckResult]:
        resp = _call(
            s3control,
            "get_public_access_block",
            ("NoSuchPublicAccessBlockConfiguration",),
            AccountId=account_id,
        )
        off = _pab_off(None if resp is None else resp.get("PublicAccessBlockConfiguration"))
        if off:
            return [
                _finding(
                    "s3.account_public_access_block",
                    "s3",
                    "S3.1",
                    Status.WARNING,
                    f"account {account_id}: S3 block public access off ({', '.join(off)})",
                    "turn on all four account-level Block Public Access settings",
                    off=off,
                )
            ]
        return [
            _all_clear(
                "s3.account_public_access_block", "s3", f"account {account_id}: S3 block public access on"
            )
        ]

    return _guarded("s3.account_public_access_block", "s3", "S3.1", run)


def _denies_insecure_transport(policy_text: str | None) -> bool:
    if not policy_text:
        return False
    try:
        policy = json.loads(policy_text)
    except ValueError:
        return False
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if st.get("Effect") != "Deny":
            continue
        cond = st.get("Condition", {})
        for op in ("Bool", "BoolIfExists"):
            value = cond.get(op, {}).get("aws:SecureTransport")
            if str(value).lower() in {"false", "['false']"} or value == ["false"]:
                return True
    return False


def check_s3_buckets(s3: Any, buckets: Iterable[str] | None = None) -> list[CheckResult]:
    """Per bucket: block public access (S3.8), default encryption (S3.4), TLS-only policy (S3.5).

    :param buckets: the buckets to check; ``None`` checks every bucket of the account.
    """

    results: list[CheckResult] = []
    try:
        names = (
            list(buckets)
            if buckets is not None
            else [b["Name"] for b in _call(s3, "list_buckets").get("Buckets", [])]
        )
    except aws_error_types(_Denied) as exc:
        return [_error("s3.buckets", "s3", None, exc)]
    per_bucket: list[tuple[str, str, Callable[[Any, str], CheckResult | None]]] = [
        ("public_access_block", "S3.8", _bucket_pab),
        ("encryption", "S3.4", _bucket_encryption),
        ("tls_only", "S3.5", _bucket_tls),
    ]
    for name in names:
        for key, control, fn in per_bucket:
            try:
                finding = fn(s3, name)
            except aws_error_types(_Denied) as exc:
                finding = _error(f"s3.{key}[{name}]", "s3", control, exc)
            if finding is not None:
                results.append(finding)
    flagged = [r for r in results if r.status is not Status.OK]
    if not flagged:
        return [
            _all_clear(
                "s3.buckets",
                "s3",
                f"{len(names)} buckets: public access blocked, encrypted, TLS only",
                buckets=names,
            )
        ]
    return flagged


def _bucket_pab(s3: Any, name: str) -> CheckResult | None:
    resp = _call(s3, "get_public_access_block", ("NoSuchPublicAccessBlockConfiguration",), Bucket=name)
    off = _pab_off(None if resp is None else resp.get("PublicAccessBlockConfiguration"))
    if not off:
        return None
    return _finding(
        f"s3.public_access_block[{name}]",
        "s3",
        "S3.8",
        Status.WARNING,
        f"bucket {name}: public access block off ({', '.join(off)})",
        "turn on all four Block Public Access settings on the bucket",
        bucket=name,
        off=off,
    )


def _bucket_encryption(s3: Any, name: str) -> CheckResult | None:
    resp = _call(
        s3, "get_bucket_encryption", ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name
    )
    rules = [] if resp is None else resp.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    if any(algos):
        return None
    return _finding(
        f"s3.encryption[{name}]",
        "s3",
        "S3.4",
        Status.WARNING,
        f"bucket {name}: no default encryption",
        "set default encryption (SSE-KMS or AES256)",
        bucket=name,
    )


def _bucket_tls(s3: Any, name: str) -> CheckResult | None:
    resp = _call(s3, "get_bucket_policy", ("NoSuchBucketPolicy",), Bucket=name)
    if _denies_insecure_transport(None if resp is None else resp.get("Policy")):
        return None
    return _finding(
        f"s3.tls_only[{name}]",
        "s3",
        "S3.5",
        Status.WARNING,
        f"bucket {name}: policy does not deny requests without TLS",
        'add a Deny statement with Condition {"Bool": {"aws:SecureTransport": "false"}}',
        bucket=name,
    )


# --------------------------------------------------------------------------------------------
# RDS
# --------------------------------------------------------------------------------------------


def check_rds(rds: Any) -> list[CheckResult]:
    """Every DB instance: not public (RDS.2), storage encrypted (RDS.3), automated backups (RDS.11);
    every manual and automated snapshot encrypted (RDS.4)."""

    def instances() -> list[CheckResult]:
        found: list[CheckResult] = []
        count = 0
        for page in rds.get_paginator("describe_db_instances").paginate():
            for db in page.get("DBInstances", []):
                count += 1
                ident = db["DBInstanceIdentifier"]
                if db.get("PubliclyAccessible"):
                    found.append(
                        _finding(
                            f"rds.public[{ident}]",
                            "rds",
                            "RDS.2",
                            Status.CRITICAL,
                            f"DB instance {ident} is publicly accessible",
                            "set PubliclyAccessible false (modify-db-instance)",
                            instance=ident,
                        )
                    )
                if not db.get("StorageEncrypted"):
                    found.append(
                        _finding(
                            f"rds.storage_encrypted[{ident}]",
                            "rds",
                            "RDS.3",
                            Status.WARNING,
                            f"DB instance {ident}: storage not encrypted",
                            "restore an encrypted copy of a snapshot and switch over",
                            instance=ident,
                        )
                    )
                if int(db.get("BackupRetentionPeriod", 0)) <= 0:
                    found.append(
                        _finding(
                            f"rds.backups[{ident}]",
                            "rds",
                            "RDS.11",
                            Status.CRITICAL,
                            f"DB instance {ident}: automated backups off (retention 0 days)",
                            "set BackupRetentionPeriod to the guide's retention",
                            instance=ident,
                        )
                    )
        return found or [
            _all_clear("rds.instances", "rds", f"{count} DB instances: private, encrypted, backed up")
        ]

    def snapshots() -> list[CheckResult]:
        found: list[CheckResult] = []
        count = 0
        for page in rds.get_paginator("describe_db_snapshots").paginate():
            for snap in page.get("DBSnapshots", []):
                count += 1
                if not snap.get("Encrypted"):
                    ident = snap["DBSnapshotIdentifier"]
                    found.append(
                        _finding(
                            f"rds.snapshot_encrypted[{ident}]",
                            "rds",
                            "RDS.4",
                            Status.WARNING,
                            f"DB snapshot {ident} is not encrypted",
                            "copy it with a KMS key and delete the unencrypted one",
                            snapshot=ident,
                        )
                    )
        return found or [_all_clear("rds.snapshots", "rds", f"{count} DB snapshots: all encrypted")]

    return _guarded("rds.instances", "rds", "RDS.2", instances) + _guarded(
        "rds.snapshots", "rds", "RDS.4", snapshots
    )


# --------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------


def _age_days(then: dt.datetime | None, now: dt.datetime) -> float | None:
    if then is None:
        return None
    return (now - then).total_seconds() / 86400


def check_iam(
    iam: Any,
    *,
    key_max_age_days: int = 90,
    unused_days: int = 90,
    now: dt.datetime | None = None,
) -> list[CheckResult]:
    """Console users without MFA (IAM.5), active access keys older than ``key_max_age_days``
    (IAM.3, the guide's 90-day rotation) and credentials unused for ``unused_days`` (IAM.8)."""
    now = now or dt.datetime.now(dt.UTC)

    def run() -> list[CheckResult]:
        found: list[CheckResult] = []
        users = [u for page in iam.get_paginator("list_users").paginate() for u in page.get("Users", [])]
        for user in users:
            name = user["UserName"]
            has_console = _call(iam, "get_login_profile", ("NoSuchEntity",), UserName=name) is not None
            if has_console:
                mfa = _call(iam, "list_mfa_devices", UserName=name).get("MFADevices", [])
                if not mfa:
                    found.append(
                        _finding(
                            f"iam.mfa[{name}]",
                            "iam",
                            "IAM.5",
                            Status.WARNING,
                            f"IAM user {name} has a console password and no MFA",
                            "enable MFA for the user (the guide: MFA for all admin access)",
                            user=name,
                        )
                    )
                used = _age_days(user.get("PasswordLastUsed"), now)
                created = _age_days(user.get("CreateDate"), now) or 0
                if (used if used is not None else created) > unused_days:
                    found.append(
                        _finding(
                            f"iam.unused_password[{name}]",
                            "iam",
                            "IAM.8",
                            Status.WARNING,
                            f"IAM user {name}: console password unused for > {unused_days} days",
                            "remove the login profile",
                            user=name,
                            last_used=None if used is None else round(used, 1),
                        )
                    )
            keys = _call(iam, "list_access_keys", UserName=name).get("AccessKeyMetadata", [])
            for key in keys:
                if key.get("Status") != "Active":
                    continue
                kid = key["AccessKeyId"]
                age = _age_days(key.get("CreateDate"), now) or 0
                masked = f"…{kid[-4:]}"
                if age > key_max_age_days:
                    found.append(
                        _finding(
                            f"iam.key_age[{name}:{masked}]",
                            "iam",
                            "IAM.3",
                            Status.WARNING,
                            f"IAM user {name}: access key {masked} is {int(age)} days old (> {key_max_age_days})",
                            "rotate the key (the guide: credential rotation every 90 days)",
                            user=name,
                            key=masked,
                            age_days=round(age, 1),
                        )
                    )
                last = _call(iam, "get_access_key_last_used", AccessKeyId=kid).get("AccessKeyLastUsed", {})
                used = _age_days(last.get("LastUsedDate"), now)
                if (used if used is not None else age) > unused_days:
                    found.append(
                        _finding(
                            f"iam.unused_key[{name}:{masked}]",
                            "iam",
                            "IAM.8",
                            Status.WARNING,
                            f"IAM user {name}: access key {masked} unused for > {unused_days} days",
                            "deactivate and delete the key",
                            user=name,
                            key=masked,
                        )
                    )
        return found or [
            _all_clear("iam.users", "iam", f"{len(users)} IAM users: MFA, key age and use in order")
        ]

    return _guarded("iam.users", "iam", "IAM.5", run)


# --------------------------------------------------------------------------------------------
# ElastiCache
# --------------------------------------------------------------------------------------------


def check_elasticache(elasticache: Any) -> list[CheckResult]:
    """Replication groups and stand-alone clusters: encryption at rest (ElastiCache.4) and in
    transit (ElastiCache.5). A field missing from the response counts as off."""

    def run() -> list[CheckResult]:
        found: list[CheckResult] = []
        items: list[tuple[str, dict[str, Any]]] = []
        for page in elasticache.get_paginator("describe_replication_groups").paginate():
            items += [(g["ReplicationGroupId"], g) for g in page.get("ReplicationGroups", [])]
        for page in elasticache.get_paginator("describe_cache_clusters").paginate():
            items += [
                (c["CacheClusterId"], c)
                for c in page.get("CacheClusters", [])
                if not c.get("ReplicationGroupId")
            ]
        for ident, item in items:
            if not item.get("AtRestEncryptionEnabled"):
                found.append(
                    _finding(
                        f"elasticache.at_rest[{ident}]",
                        "elasticache",
                        "ElastiCache.4",
                        Status.WARNING,
                        f"ElastiCache {ident}: encryption at rest off",
                        "create an encrypted replacement and migrate",
                        cluster=ident,
                    )
                )
            if not item.get("TransitEncryptionEnabled"):
                found.append(
                    _finding(
                        f"elasticache.in_transit[{ident}]",
                        "elasticache",
                        "ElastiCache.5",
                        Status.WARNING,
                        f"ElastiCache {ident}: encryption in transit off",
                        "enable in-transit encryption (TransitEncryptionMode preferred → required)",
                        cluster=ident,
                    )
                )
        return found or [
            _all_clear(
                "elasticache.encryption",
                "elasticache",
                f"{len(items)} ElastiCache groups/clusters: encrypted at rest and in transit",
            )
        ]

    return _guarded("elasticache.encryption", "elasticache", "ElastiCache.4", run)


# --------------------------------------------------------------------------------------------
# TLS on the public endpoints
# --------------------------------------------------------------------------------------------

_PROTOCOL_RANK = {"TLSv1": 10, "TLSv1.1": 11, "TLSv1.2": 12, "TLSv1.3": 13}


def _legacy_accepted(host: str, port: int, timeout_s: float) -> bool | None:
    """Whether the server completes a TLS 1.0/1.1 handshake; ``None`` when this machine's OpenSSL
    cannot offer those versions (then it was not tested)."""
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, ctx.wrap_socket(sock) as tls:
            return tls.version() in ("TLSv1", "TLSv1.1")
    except ssl.SSLError as exc:
        if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "no protocols available" in str(exc):
            return None
        return False
    except OSError:
        return False


def _expiry(
    name: str, host: str, der: bytes, base: str, now: dt.datetime, warning_days: int, critical_days: int
) -> tuple[dt.datetime, CheckResult | None]:
    """The certificate's expiry and a finding when it is near or past."""
    from cryptography import x509

    component = "tls"
    cert = x509.load_der_x509_certificate(der)
    expires = cert.not_valid_after_utc
    days_left = (expires - now).total_seconds() / 86400
    status = Status.OK
    if days_left < critical_days:
        status = Status.CRITICAL
    elif days_left < warning_days:
        status = Status.WARNING
    text = (
        f"{name} ({host}): certificate expired on {expires:%Y-%m-%d}"
        if days_left < 0
        else f"{name} ({host}): certificate expires on {expires:%Y-%m-%d} ({int(days_left)} days)"
    )
    if status is not Status.OK:
        return expires, (
            _finding(
                f"{base}.expiry",
                component,
                "ACM.1",
                status,
                text,
                "renew the certificate (ACM: check the renewal's validation records)",
                expires=expires.isoformat(),
                days_left=round(days_left, 1),
            )
        )
    return expires, None


def _verify(
    name: str, host: str, port: int, base: str, ca_file: str | None, timeout_s: float, old_protocol: bool
) -> CheckResult | None:
    """A verifying handshake: a finding when the chain or the host name does not verify."""
    component = "tls"
    ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        expired = exc.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED, reported by the expiry check
        if not expired:
            mismatch = exc.verify_code in (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH / _IP_ADDRESS_
            what = (
                "certificate does not match the host name"
                if mismatch
                else f"certificate does not verify: {exc.verify_message}"
            )
            return _finding(
                f"{base}.certificate",
                component,
                None,
                Status.CRITICAL,
                f"{name} ({host}): {what}",
                "install a certificate for this name issued by a trusted CA",
                verify_code=exc.verify_code,
            )
    except (OSError, ssl.SSLError) as exc:
        if not old_protocol:  # else: the old protocol is why
            return CheckResult(
                check=f"{base}.certificate",
                status=Status.ERROR,
                summary=f"{name} ({host}:{port}): verified handshake failed: {exc}",
                details={"control": None},
                component=component,
            )
    return None


def check_tls_endpoint(
    name: str,
    host: str,
    port: int = 443,
    *,
    ca_file: str | None = None,
    warning_days: int = 30,
    critical_days: int = 7,
    timeout_s: float = 10,
    test_legacy: bool = True,
    now: dt.datetime | None = None,
) -> list[CheckResult]:
    """A real TLS handshake with ``host:port``: protocol ≥ TLS 1.2 (and 1.0/1.1 refused), the
    certificate verifies against the system or ``ca_file`` CAs and matches ``host``, and its
    expiry (< ``warning_days`` warning, < ``critical_days`` or expired critical)."""
    now = now or dt.datetime.now(dt.UTC)
    component = "tls"
    base = f"tls[{name}]"
    results: list[CheckResult] = []
    # 1. Unverified handshake: protocol and the certificate itself, even when it would not verify.
    raw = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    raw.check_hostname = False
    raw.verify_mode = ssl.CERT_NONE
    try:  # accept what the server offers, so an old protocol is reported rather than refused
        raw.set_ciphers("DEFAULT:@SECLEVEL=0")
        raw.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError):
        pass
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as sock,
            raw.wrap_socket(sock, server_hostname=host) as tls,
        ):
            protocol = tls.version() or ""
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return [
            CheckResult(
                check=f"{base}.handshake",
                status=Status.ERROR,
                summary=f"{name} ({host}:{port}): TLS handshake failed: {exc}",
                details={"control": None, "host": host, "port": port},
                component=component,
            )
        ]
    if _PROTOCOL_RANK.get(protocol, 0) < 12:
        results.append(
            _finding(
                f"{base}.protocol",
                component,
                None,
                Status.CRITICAL,
                f"{name} ({host}:{port}) negotiated {protocol or 'unknown'} (< TLS 1.2)",
                "allow TLS 1.2 and 1.3 only (the guide: TLS 1.2+)",
                protocol=protocol,
            )
        )
    legacy = _legacy_accepted(host, port, timeout_s) if test_legacy else None
    if legacy:
        results.append(
            _finding(
                f"{base}.legacy_protocols",
                component,
                None,
                Status.WARNING,
                f"{name} ({host}:{port}) still accepts TLS 1.0/1.1",
                "disable TLS 1.0 and 1.1 on the listener (an ELBSecurityPolicy-TLS13-1-2-* policy)",
                protocol=protocol,
            )
        )
    expires: dt.datetime | None = None
    if der:
        expires, finding = _expiry(name, host, der, base, now, warning_days, critical_days)
        results += [finding] if finding else []
    old = any(r.check == f"{base}.protocol" for r in results)
    verified = _verify(name, host, port, base, ca_file, timeout_s, old)
    results += [verified] if verified else []
    if not results:
        results.append(
            _all_clear(
                base,
                component,
                f"{name} ({host}:{port}): {protocol}, certificate valid until {expires:%Y-%m-%d}"
                if expires
                else f"{name} ({host}:{port}): {protocol}",
                protocol=protocol,
                legacy_tested=legacy is not None,
                expires=None if expires is None else expires.isoformat(),
            )
        )
    return results
