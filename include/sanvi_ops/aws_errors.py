"""One place that turns "AWS refused: you may not do that" into a result naming the IAM action.

A check whose AWS call is refused for want of a permission has not found anything about the
system: it is an ``error`` result that names the missing IAM action (``service:Operation``) so a
person can grant exactly that, and the other checks still run. Every module that talks to AWS
uses :func:`is_denied` / :func:`denied_result` from here instead of its own list of codes::

    try:
        page = ec2.describe_subnets()
    except ClientError as exc:
        if is_denied(exc):
            return [denied_result("architecture.network", exc, client=ec2, component="vpc")]
        raise

The action is the client's IAM prefix (its signing name: ``elasticloadbalancing`` for ``elbv2``,
``ce`` for Cost Explorer) and the ClientError's ``operation_name``; the few operations whose IAM
action has another name (``s3:ListBuckets`` is ``s3:ListAllMyBuckets``) are translated.
"""

from __future__ import annotations

import re
from typing import Any

from sanvi_ops.results import CheckResult, Status

__all__ = ["DENIED_CODES", "denied_result", "error_code", "iam_action", "is_denied"]

#: Error codes AWS answers when the caller's policies do not allow the call (the Query, JSON and
#: REST-XML protocols spell it differently; EC2 says UnauthorizedOperation, SNS/SES
#: AuthorizationError).
DENIED_CODES: frozenset[str] = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)

_XML_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")

#: ``(service name, API operation)`` → IAM action, where the action is not ``prefix:Operation``
#: (the Service Authorization Reference's "Actions defined by Amazon S3").
_ACTION_NAMES: dict[tuple[str, str], str] = {
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else).

    When botocore could not parse the error body (an XML error from a JSON-protocol endpoint,
    as moto's IAM enforcement answers) its code is the bare HTTP status and the markup is the
    message: the ``<Code>`` inside it is the real code.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    error = response.get("Error", {})
    code = str(error.get("Code", "") or "")
    if code.isdigit() and (found := _XML_CODE.search(str(error.get("Message", "")))):
        return found.group(1)
    return code


def is_denied(exc: BaseException) -> bool:
    """Whether ``exc`` is AWS refusing the call for want of a permission (a bare ``403`` without
    a code says nothing about why: bad credentials answer it too)."""
    return error_code(exc) in DENIED_CODES


def iam_action(
    exc: BaseException, *, client: Any = None, service: str | None = None, method: str | None = None
) -> str:
    """The IAM action ``exc``'s call needed, e.g. ``elasticloadbalancing:DescribeLoadBalancers``.

    :param client: the boto3 client that made the call (its signing name is the IAM prefix).
    :param service: the IAM prefix when no client is at hand (``"ec2"``, ``"rds"``).
    :param method: the client method (``describe_subnets``), used when ``exc`` carries no
        operation name.
    """
    operation = str(getattr(exc, "operation_name", "") or "")
    service_name = service or ""
    prefix = service or ""
    if client is not None:
        model = client.meta.service_model
        service_name = str(model.service_name)
        prefix = prefix or str(model.signing_name or model.endpoint_prefix)
        if not operation and method:
            operation = str(client.meta.method_to_api_mapping.get(method, method))
    if not operation:
        operation = method or "?"
    if not prefix:
        prefix = "?"
    return _ACTION_NAMES.get((service_name or prefix, operation), f"{prefix}:{operation}")


def denied_result(
    check: str,
    exc: BaseException,
    *,
    client: Any = None,
    service: str | None = None,
    method: str | None = None,
    action: str | None = None,
    component: str = "",
    control: str | None = None,
    role: str = "the DAG's AWS role",
    details: dict[str, Any] | None = None,
) -> CheckResult:
    """An ``error`` result for a refused AWS call: ``permission missing: <action>``.

    ``details["missing_action"]`` holds the action (and ``details["control"]`` the Security Hub
    control, when given). Pass ``action`` when the caller already knows it; otherwise it is
    derived from ``exc`` and ``client`` / ``service`` (see :func:`iam_action`).
    """
    missing = action or iam_action(exc, client=client, service=service, method=method)
    prefix = f"[{control}] " if control else ""
    code = error_code(exc)
    said = f" (AWS said {code})" if code else ""
    extra: dict[str, Any] = {"control": control} if control is not None else {}
    return CheckResult(
        check=check,
        status=Status.ERROR,
        summary=f"{prefix}permission missing: {missing}{said} — Action: grant it to {role}",
        details={**extra, "missing_action": missing, **(details or {})},
        component=component,
    )


def aws_error_result(
    check: str,
    exc: Exception,
    *,
    client: Any = None,
    component: str = "",
    role: str = "the DAG's AWS role",
    failed: str,
) -> CheckResult:
    """A failed AWS call as a result: refused → :func:`denied_result`; any other AWS error →
    ``error`` whose summary is ``failed.format(reason=<code: message>)``. Anything that is not an
    AWS error (a bug) is raised again.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if is_denied(exc):
        return denied_result(check, exc, client=client, component=component, role=role)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        reason = f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}"
    elif isinstance(exc, BotoCoreError):
        reason = f"{type(exc).__name__}: {exc}"
    else:
        raise exc
    return CheckResult(
        check=check, status=Status.ERROR, summary=failed.format(reason=reason), component=component
    )
