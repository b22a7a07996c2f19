"""Read the configuration sources into plain, JSON-ready data (no Airflow import).

Each reader takes a ready boto3 client and returns a list of records sorted by their key, with
only the fields that describe configuration (no read timestamps such as a secret's
``LastAccessedDate``, which change without any configuration changing). Secret values are never
read by construction:

- SSM: ``DescribeParameters`` for metadata; ``GetParameters`` (``WithDecryption=False``) only
  for the names whose type is ``String`` or ``StringList``. A SecureString's value is never
  requested.
- Secrets Manager: ``ListSecrets`` only (never ``GetSecretValue``).
- ECS: container environment values whose name looks secret are replaced by
  :data:`REDACTED` (secrets belong in ``secrets``/``valueFrom``, which are references).

Everything read is untrusted: values are kept as strings, never interpreted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "REDACTED",
    "SECRET_NAME",
    "read_ecs",
    "read_secrets",
    "read_ssm",
]

#: Put in place of a value that must not be kept.
REDACTED = "<redacted>"
#: Environment variable names whose values are not kept (a secret passed in plain text).
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|ACCESS_KEY)", re.I)

#: Parameter types whose value is configuration (SecureString's is a secret).
PLAIN_TYPES = frozenset({"String", "StringList"})


def _jsonable(value: Any) -> Any:
    """datetimes → ISO 8601 in UTC; containers recursively; the rest as is."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _pick(item: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {f: _jsonable(item[f]) for f in fields if item.get(f) is not None}


# --------------------------------------------------------------------------------------------
# SSM Parameter Store
# --------------------------------------------------------------------------------------------

_SSM_FIELDS = ("Name", "Type", "Version", "LastModifiedDate", "LastModifiedUser", "KeyId", "Tier",
               "DataType", "Description", "AllowedPattern")  # fmt: skip


def read_ssm(ssm: Any, paths: Sequence[str]) -> list[dict[str, Any]]:
    """Every parameter under ``paths`` (recursively): metadata, plus ``Value`` for String and
    StringList parameters. A SecureString's value is never requested."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        pages = ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [path]}]
        )
        for page in pages:
            for p in page.get("Parameters", []):
                found[p["Name"]] = _pick(p, _SSM_FIELDS)
    plain = sorted(n for n, p in found.items() if p.get("Type") in PLAIN_TYPES)
    for i in range(0, len(plain), 10):  # GetParameters takes at most 10 names
        answer = ssm.get_parameters(Names=plain[i : i + 10], WithDecryption=False)
        for p in answer.get("Parameters", []):
            record = found.get(p["Name"])
            if record is not None and record.get("Type") in PLAIN_TYPES and p.get("Type") in PLAIN_TYPES:
                record["Value"] = str(p.get("Value", ""))
    for record in found.values():
        if record.get("Type") not in PLAIN_TYPES:
            record.pop("Value", None)  # belt and braces: never a SecureString's value
    return [found[n] for n in sorted(found)]


# --------------------------------------------------------------------------------------------
# Secrets Manager (metadata only)
# --------------------------------------------------------------------------------------------

_SECRET_FIELDS = ("Name", "ARN", "Description", "KmsKeyId", "RotationEnabled", "RotationLambdaARN",
                  "RotationRules", "LastChangedDate", "LastRotatedDate", "DeletedDate",
                  "NextRotationDate", "PrimaryRegion", "OwningService")  # fmt: skip


def read_secrets(secretsmanager: Any, name_prefixes: Sequence[str]) -> list[dict[str, Any]]:
    """Metadata of every secret whose name starts with one of ``name_prefixes`` (``ListSecrets``
    only): ARN, rotation, last changed/rotated, version ids with their stages, tags. Never the
    value, never ``LastAccessedDate`` (reading a secret is not a change)."""
    found: dict[str, dict[str, Any]] = {}
    for prefix in name_prefixes:
        pages = secretsmanager.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": [prefix]}]
        )
        for page in pages:
            for s in page.get("SecretList", []):
                name = str(s.get("Name", ""))
                if not name.startswith(prefix):  # the filter matches words too; keep prefixes only
                    continue
                record = _pick(s, _SECRET_FIELDS)
                versions = s.get("SecretVersionsToStages") or {}
                record["Versions"] = {str(v): sorted(map(str, st)) for v, st in sorted(versions.items())}
                record["Tags"] = sorted(
                    ({"Key": str(t.get("Key")), "Value": str(t.get("Value"))} for t in s.get("Tags") or []),
                    key=lambda t: t["Key"],
                )
                found[name] = record
    return [found[n] for n in sorted(found)]


# --------------------------------------------------------------------------------------------
# ECS
# --------------------------------------------------------------------------------------------

_SERVICE_FIELDS = ("serviceName", "serviceArn", "status", "taskDefinition", "desiredCount", "launchType",
                   "platformVersion", "schedulingStrategy", "deploymentConfiguration",
                   "networkConfiguration", "loadBalancers", "serviceRegistries", "capacityProviderStrategy",
                   "placementConstraints", "placementStrategy", "healthCheckGracePeriodSeconds",
                   "enableExecuteCommand", "propagateTags")  # fmt: skip
#: Fields of a task definition that are not its configuration (who/when registered it is kept).
_TASKDEF_SKIP = frozenset({"deregisteredAt"})


def _redact_environment(container: dict[str, Any]) -> dict[str, Any]:
    env = container.get("environment")
    if not env:
        return container
    out = dict(container)
    out["environment"] = sorted(
        (
            {
                "name": str(e.get("name")),
                "value": REDACTED if SECRET_NAME.search(str(e.get("name"))) else e.get("value"),
            }
            for e in env
        ),
        key=lambda e: e["name"],
    )
    return out


def _task_definition(td: dict[str, Any]) -> dict[str, Any]:
    record = {k: _jsonable(v) for k, v in td.items() if k not in _TASKDEF_SKIP}
    record["containerDefinitions"] = sorted(
        (_redact_environment(c) for c in record.get("containerDefinitions", [])),
        key=lambda c: str(c.get("name")),
    )
    return record


def read_ecs(ecs: Any, cluster: str, services: Sequence[str]) -> dict[str, Any]:
    """The services' settings (desired count, task definition, network, load balancers, …) and
    every ACTIVE revision of their task definitions' families."""
    described: list[dict[str, Any]] = []
    missing: list[str] = []
    for i in range(0, len(services), 10):  # DescribeServices takes at most 10
        answer = ecs.describe_services(cluster=cluster, services=list(services[i : i + 10]))
        described += answer.get("services", [])
        missing += [str(f.get("arn", "")).rsplit("/", 1)[-1] for f in answer.get("failures", [])]
    records = sorted((_pick(s, _SERVICE_FIELDS) for s in described), key=lambda s: str(s.get("serviceName")))
    families = sorted({str(s["taskDefinition"]).rsplit("/", 1)[-1].rsplit(":", 1)[0] for s in described
                       if s.get("taskDefinition")})  # fmt: skip
    definitions: list[dict[str, Any]] = []
    for family in families:
        arns: list[str] = []
        pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE")
        for page in pages:
            arns += page.get("taskDefinitionArns", [])
        for arn in arns:
            td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            if td.get("family") == family:  # familyPrefix matches longer family names too
                definitions.append(_task_definition(td))
    definitions.sort(key=lambda d: (str(d.get("family")), int(d.get("revision") or 0)))
    return {"cluster": cluster, "services": records, "missing_services": sorted(missing),
            "task_definitions": definitions}  # fmt: skip
