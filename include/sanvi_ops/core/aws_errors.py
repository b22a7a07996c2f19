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

Every AWS call site catches the same set of errors, :func:`aws_error_types` (``ClientError``,
any ``BotoCoreError`` such as ``EndpointConnectionError``, and ``ResponseParserError``, which
botocore raises when an endpoint answers with a body it cannot read: moto's HTTP 500 for an API
it does not implement, a proxy's HTML error page). ``ResponseParserError`` is *not* a
``BotoCoreError``, so a handler written as ``except (ClientError, BotoCoreError)`` lets it crash
the task; write ``except aws_error_types() as exc`` and describe it with :func:`aws_error_text`
(or turn it into a result with :func:`aws_error_result`)::

    try:
        page = rds.describe_pending_maintenance_actions()
    except aws_error_types() as exc:
        return [aws_error_result("rds.pending", exc, client=rds, failed="listing failed: {reason}")]
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sanvi_ops.core.results import CheckResult, Status

__all__ = [
    "DENIED_CODES",
    "aws_error_result",
    "aws_error_text",
    "aws_error_types",
    "denied_result",
    "error_code",
    "iam_action",
    "is_aws_error",
    "is_denied",
]

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


@functools.cache
def aws_error_types(*also: type[Exception]) -> tuple[type[Exception], ...]:
    """The exceptions an AWS call raises for an AWS-side or transport failure (catch exactly these;
    anything else is a bug and should crash), plus ``also`` (``aws_error_types(OSError)`` for a
    call that also reads a stream). botocore is imported here, not at module load."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (ClientError, BotoCoreError, ResponseParserError, *also)


def is_aws_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of :func:`aws_error_types`."""
    return isinstance(exc, aws_error_types())


_TITLE = re.compile(r"<title>\s*([^<]{1,120}?)\s*</title>", re.IGNORECASE)
_MAX_REASON = 300


def aws_error_text(exc: BaseException) -> str:
    """A one-line reason for an AWS failure, fit for a result's summary.

    ``ClientError`` → ``Code: message``; an unreadable answer (``ResponseParserError``) →
    ``unreadable answer (HTTP 500 Internal Server Error): the endpoint may not implement this
    API``; any other botocore error → ``ClassName: message``. Never the raw response body.
    """
    from botocore.parsers import ResponseParserError

    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        message = " ".join(str(response["Error"].get("Message", "")).split())
        if message.startswith("<"):  # an unparsed markup body: the code inside it, not the markup
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = f"HTTP {status}" if status else ""
        code = error_code(exc) or type(exc).__name__
        text = f"{code}: {message}" if message else code
    elif isinstance(exc, ResponseParserError):
        raw = str(exc)
        title = _TITLE.search(raw)
        status = f"HTTP {title.group(1)}" if title else raw.split(":", 1)[0].strip()
        text = f"unreadable answer ({status}): the endpoint may not implement this API"
    else:
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


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
    """A failed AWS call as a result: refused → :func:`denied_result`; any other AWS error
    (:func:`aws_error_types`) → ``error`` whose summary is ``failed.format(reason=...)`` with
    :func:`aws_error_text`'s reason. Anything that is not an AWS error (a bug) is raised again.
    """
    if is_denied(exc):
        return denied_result(check, exc, client=client, component=component, role=role)
    if not is_aws_error(exc):
        raise exc
    return CheckResult(
        check=check,
        status=Status.ERROR,
        summary=failed.format(reason=aws_error_text(exc)),
        component=component,
        details={"aws_error": type(exc).__name__},
    )
