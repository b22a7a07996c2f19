"""The shared AccessDenied → ``error`` result helper.

The refusals are real botocore ``ClientError``s raised by botocore's ``Stubber`` with the error
shape AWS returns (``add_client_error`` with the service's own code: ``AccessDenied`` for
query/REST-XML services, ``AccessDeniedException`` for JSON ones, ``UnauthorizedOperation`` for
EC2). A moto server refusing through an IAM policy is in tests/tasks/architecture_review/test_architecture_aws.py.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from sanvi_ops.core.aws_errors import denied_result, iam_action, is_denied
from sanvi_ops.core.results import Status


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _refused(client, method: str, code: str, status: int = 403, **kwargs) -> ClientError:
    with Stubber(client) as stub:
        stub.add_client_error(
            method, service_error_code=code, service_message="not authorized", http_status_code=status
        )
        with pytest.raises(ClientError) as info:
            getattr(client, method)(**kwargs)
    return info.value


@pytest.mark.parametrize(
    ("service", "method", "code", "kwargs", "action"),
    [
        (
            "elbv2",
            "describe_load_balancers",
            "AccessDenied",
            {},
            "elasticloadbalancing:DescribeLoadBalancers",
        ),
        ("ec2", "describe_subnets", "UnauthorizedOperation", {}, "ec2:DescribeSubnets"),
        ("logs", "describe_log_groups", "AccessDeniedException", {}, "logs:DescribeLogGroups"),
        ("ce", "get_cost_and_usage", "AccessDeniedException", None, "ce:GetCostAndUsage"),
        ("s3", "list_buckets", "AccessDenied", {}, "s3:ListAllMyBuckets"),
        (
            "s3",
            "get_bucket_lifecycle_configuration",
            "AccessDenied",
            {"Bucket": "b"},
            "s3:GetLifecycleConfiguration",
        ),
        ("iam", "list_users", "AccessDenied", {}, "iam:ListUsers"),
        ("sns", "list_topics", "AuthorizationError", {}, "sns:ListTopics"),
    ],
)
def test_a_refusal_names_the_iam_action(service, method, code, kwargs, action) -> None:
    client = _client(service)
    if kwargs is None:  # Cost Explorer needs its request shape even for a stubbed error
        kwargs = {
            "TimePeriod": {"Start": "2026-01-01", "End": "2026-04-01"},
            "Granularity": "MONTHLY",
            "Metrics": ["UnblendedCost"],
        }
    exc = _refused(client, method, code, **kwargs)
    assert is_denied(exc)
    assert iam_action(exc, client=client) == action
    result = denied_result("area.check", exc, client=client, component="aws")
    assert result.status is Status.ERROR
    assert result.details == {"missing_action": action}
    assert result.summary.startswith(f"permission missing: {action} (AWS said {code})")


def test_without_the_client_the_service_prefix_is_given() -> None:
    exc = _refused(_client("rds"), "describe_db_instances", "AccessDenied")
    assert iam_action(exc, service="rds") == "rds:DescribeDBInstances"
    r = denied_result("rds.instances", exc, service="rds", control="RDS.2", role="the scan's role")
    assert r.details == {"control": "RDS.2", "missing_action": "rds:DescribeDBInstances"}
    assert r.summary.startswith("[RDS.2] permission missing: rds:DescribeDBInstances")
    assert r.summary.endswith("grant it to the scan's role")


def test_other_errors_are_not_permission_errors() -> None:
    throttled = _refused(_client("logs"), "describe_log_groups", "ThrottlingException", 400)
    missing = _refused(_client("s3"), "head_bucket", "404", 404, Bucket="b")
    assert not is_denied(throttled) and not is_denied(missing)
    assert not is_denied(ValueError("AccessDenied"))


def test_a_bare_403_is_only_a_refusal_when_its_body_says_so() -> None:
    s3 = _client("s3")
    bare = _refused(s3, "head_bucket", "403", 403, Bucket="b")  # HEAD: no body, bad keys answer it too
    assert not is_denied(bare)
    logs = _client("logs")
    with Stubber(logs) as stub:  # an XML error on a JSON endpoint: botocore keeps the status as the code
        stub.add_client_error(
            "describe_log_groups",
            service_error_code="403",
            service_message="<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
            http_status_code=403,
        )
        with pytest.raises(ClientError) as info:
            logs.describe_log_groups()
    assert is_denied(info.value) and iam_action(info.value, client=logs) == "logs:DescribeLogGroups"


def test_every_aws_failure_kind_is_caught_and_described_without_the_raw_body():
    """``ResponseParserError`` (an HTTP 500 page botocore cannot read) is not a ``BotoCoreError``:
    the one list of AWS errors must hold it, and its text must not be the HTML."""
    from botocore.exceptions import BotoCoreError, EndpointConnectionError
    from botocore.parsers import ResponseParserError

    from sanvi_ops.core.aws_errors import aws_error_result, aws_error_text, aws_error_types, is_aws_error

    assert not issubclass(ResponseParserError, BotoCoreError)
    page = (
        "Unable to parse response (syntax error: line 1, column 0), invalid XML received. Further "
        "retries may succeed:\nb'<!doctype html>\\n<html lang=en>\\n<title>500 Internal Server Error</title>"
        "\\n<h1>Internal Server Error</h1>'"
    )
    unreadable = ResponseParserError(page)
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    refused = _refused(_client("ec2"), "describe_subnets", "UnauthorizedOperation")
    for exc in (unreadable, unreachable, refused):
        assert is_aws_error(exc) and isinstance(exc, aws_error_types())
    assert aws_error_text(unreadable) == (
        "unreadable answer (HTTP 500 Internal Server Error): the endpoint may not implement this API"
    )
    assert "http://127.0.0.1:9" in aws_error_text(unreachable)
    assert aws_error_text(refused) == "UnauthorizedOperation: not authorized"
    result = aws_error_result("x.y", unreadable, component="rds", failed="listing failed: {reason}")
    assert result.status is Status.ERROR and "<" not in result.summary
    assert result.details["aws_error"] == "ResponseParserError"
    assert not is_aws_error(KeyError("a bug"))
    with pytest.raises(KeyError):
        aws_error_result("x.y", KeyError("a bug"), failed="{reason}")
