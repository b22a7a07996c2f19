"""MFA for all admin access (the guide's "Access Control"), a check of the monthly Security Scan.

- :func:`check_admin_mfa` (IAM):
  - the root account has MFA (``iam:GetAccountSummary`` ``AccountMFAEnabled``; Security Hub
    IAM.9/IAM.6): without it, **critical**;
  - every IAM user with admin rights (``AdministratorAccess``, or a customer-managed policy that
    allows ``*`` on ``*``, attached to the user or to one of its groups) and a console password (a login profile) has an MFA device
    (``iam:ListMFADevices``): without one, **critical** (IAM.5 for an admin).
- :func:`check_security_hub_mfa`: when Security Hub is enabled, its failed, active findings of
  the controls IAM.5 (console users without MFA) and IAM.6 (root without hardware MFA): each a
  finding naming the resource (IAM.6 critical, IAM.5 warning). Not enabled: ``skipped``, saying so.

A refused call is an ``error`` naming the IAM action (never green by omission).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_types, is_denied
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.security_scan.security import _call, _Denied, _error, _finding

ADMIN_POLICY_ARNS = frozenset({"arn:aws:iam::aws:policy/AdministratorAccess"})
#: Security Hub controls about MFA (AWS Foundational Security Best Practices).
MFA_CONTROLS = ("IAM.5", "IAM.6")
_CONTROL_SEVERITY = {"IAM.5": Status.WARNING, "IAM.6": Status.CRITICAL}


def _allows_everything(document: Any) -> bool:
    """A policy document with an ``Allow`` of action ``*`` on resource ``*`` (full admin)."""
    import json
    from urllib.parse import unquote

    if isinstance(document, str):
        document = json.loads(unquote(document))
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        resources = st.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if st.get("Effect") == "Allow" and "*" in actions and "*" in resources:
            return True
    return False


class _AdminPolicies:
    """Is a managed policy admin? ``AdministratorAccess`` (or ``admin_arns``), or any policy
    whose default version allows ``*`` on ``*``; each policy read once."""

    def __init__(self, iam: Any, admin_arns: frozenset[str]) -> None:
        self.iam, self.admin_arns, self.seen = iam, admin_arns, dict[str, bool]()

    def __call__(self, arns: Iterable[str]) -> bool:
        return any(self.is_admin(arn) for arn in arns)

    def is_admin(self, arn: str) -> bool:
        if arn in self.admin_arns:
            return True
        if arn not in self.seen:
            if arn.startswith("arn:aws:iam::aws:policy/"):
                self.seen[arn] = False  # AWS-managed: only the listed ones are full admin
            else:
                version = _call(self.iam, "get_policy", PolicyArn=arn)["Policy"]["DefaultVersionId"]
                doc = _call(self.iam, "get_policy_version", PolicyArn=arn, VersionId=version)
                self.seen[arn] = _allows_everything(doc["PolicyVersion"].get("Document", {}))
        return self.seen[arn]


def _admin_via(iam: Any, user: str, is_admin: _AdminPolicies) -> str | None:
    """How ``user`` gets admin rights (``"attached"`` / ``"group <name>"``), ``None`` if not."""
    attached = [
        p["PolicyArn"]
        for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=user)
        for p in page.get("AttachedPolicies", [])
    ]
    if is_admin(attached):
        return "attached"
    groups = [
        g["GroupName"]
        for page in iam.get_paginator("list_groups_for_user").paginate(UserName=user)
        for g in page.get("Groups", [])
    ]
    for group in groups:
        arns = {
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_group_policies").paginate(GroupName=group)
            for p in page.get("AttachedPolicies", [])
        }
        if is_admin(arns):
            return f"group {group}"
    return None


def check_admin_mfa(iam: Any, *, admin_policy_arns: Iterable[str] = ADMIN_POLICY_ARNS) -> list[CheckResult]:
    """Root MFA, and MFA of every admin user with console access."""
    is_admin = _AdminPolicies(iam, frozenset(admin_policy_arns))
    out: list[CheckResult] = []
    try:
        summary = _call(iam, "get_account_summary").get("SummaryMap", {})
        if summary.get("AccountMFAEnabled") == 1:
            out.append(CheckResult("iam.root_mfa", Status.OK, "root account: MFA enabled", component="iam"))
        else:
            out.append(
                _finding(
                    "iam.root_mfa",
                    "iam",
                    "IAM.9",
                    Status.CRITICAL,
                    "the root account has no MFA",
                    "enable a hardware MFA device on the root user (sign in as root → Security "
                    "credentials → Assign MFA device); the guide: MFA for all admin access",
                )
            )
    except aws_error_types(_Denied) as exc:
        out.append(_error("iam.root_mfa", "iam", "IAM.9", exc))
    try:
        users = [
            u["UserName"]
            for page in iam.get_paginator("list_users").paginate()
            for u in page.get("Users", [])
        ]
        admins, missing = [], []
        for name in users:
            via = _admin_via(iam, name, is_admin)
            if via is None:
                continue
            if _call(iam, "get_login_profile", ("NoSuchEntity",), UserName=name) is None:
                admins.append({"user": name, "via": via, "console": False})
                continue  # no console password: programmatic only (keys are rotated and reviewed elsewhere)
            devices = _call(iam, "list_mfa_devices", UserName=name).get("MFADevices", [])
            admins.append({"user": name, "via": via, "console": True, "mfa_devices": len(devices)})
            if not devices:
                missing.append(name)
                out.append(
                    _finding(
                        f"iam.admin_mfa[{name}]",
                        "iam",
                        "IAM.5",
                        Status.CRITICAL,
                        f"admin IAM user {name} (admin policy via {via}) signs in to the console without MFA",
                        f"enable MFA for {name} now, or remove the login profile; the guide: MFA for all "
                        "admin access",
                        user=name,
                        via=via,
                    )
                )
        if not missing:
            out.append(
                CheckResult(
                    "iam.admin_mfa",
                    Status.OK,
                    f"{len(admins)} admin IAM user(s) of {len(users)}: every one with console access has MFA",
                    details={"admins": admins},
                    component="iam",
                )
            )
    except aws_error_types(_Denied) as exc:
        out.append(_error("iam.admin_mfa", "iam", "IAM.5", exc))
    return out


def _not_enabled(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    err = exc.response.get("Error", {})
    return (
        err.get("Code") == "InvalidAccessException" or "not subscribed" in str(err.get("Message", "")).lower()
    )


def check_security_hub_mfa(securityhub: Any) -> list[CheckResult]:
    """Security Hub's failed, active IAM.5 / IAM.6 findings (client-side filtered as well)."""
    check = "securityhub.mfa"
    filters = {
        "ComplianceSecurityControlId": [{"Value": c, "Comparison": "EQUALS"} for c in MFA_CONTROLS],
        "ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    }
    try:
        findings: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = securityhub.get_findings(**kwargs)
            findings += page.get("Findings", [])
            token = page.get("NextToken")
            if not token:
                break
    except aws_error_types() as exc:
        if _not_enabled(exc) and not is_denied(exc):
            return [
                CheckResult(
                    check,
                    Status.SKIPPED,
                    "Security Hub is not enabled in this account/region: IAM.5/IAM.6 read from IAM "
                    "directly instead (iam.root_mfa, iam.admin_mfa)",
                    component="securityhub",
                )
            ]
        return [_error(check, "securityhub", "IAM.5", exc)]
    out = []
    for f in findings:
        control = (f.get("Compliance") or {}).get("SecurityControlId") or ""
        if control not in MFA_CONTROLS or (f.get("Compliance") or {}).get("Status") != "FAILED":
            continue
        if f.get("RecordState", "ACTIVE") != "ACTIVE":
            continue
        resource = ((f.get("Resources") or [{}])[0]).get("Id", "?")
        out.append(
            _finding(
                f"securityhub.{control}[{resource}]",
                "securityhub",
                control,
                _CONTROL_SEVERITY[control],
                f"Security Hub: {f.get('Title') or control} — {resource}",
                "enable MFA for the resource named, then the control passes at Security Hub's next check",
                resource=resource,
                finding_id=f.get("Id"),
            )
        )
    return out or [
        CheckResult(check, Status.OK, "Security Hub: no failed IAM.5/IAM.6 finding", component="securityhub")
    ]
