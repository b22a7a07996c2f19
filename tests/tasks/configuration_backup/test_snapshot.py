"""Unit: canonical form, digest, diff, the git environment, the config model (no servers)."""

from __future__ import annotations

import copy
import json
import random

import pytest

from sanvi_ops.tasks.configuration_backup import snapshot as snap
from sanvi_ops.tasks.configuration_backup.git_repo import GitCredentials, git_env
from sanvi_ops.tasks.configuration_backup.sources import REDACTED, _task_definition

pytestmark = pytest.mark.unit

SOURCES = {
    "ssm": {
        "paths": ["/sanvi/"],
        "parameters": [
            {"Name": "/sanvi/a", "Type": "String", "Version": 1, "Value": "x"},
            {"Name": "/sanvi/b", "Type": "StringList", "Version": 3, "Value": "p,q"},
            {"Name": "/sanvi/c", "Type": "SecureString", "Version": 2},
        ],
    },
    "secretsmanager": {
        "prefixes": ["sanvi/"],
        "secrets": [
            {"Name": "sanvi/db", "ARN": "arn:1", "Versions": {"v1": ["AWSCURRENT"]}, "Tags": []},
            {
                "Name": "sanvi/api",
                "ARN": "arn:2",
                "Versions": {},
                "Tags": [{"Key": "b", "Value": "1"}, {"Key": "a", "Value": "2"}],
            },
        ],
    },
    "ecs": {
        "cluster": "c",
        "services": [
            {"serviceName": "frontend", "desiredCount": 2},
            {"serviceName": "backend", "desiredCount": 2},
        ],
        "task_definitions": [
            {
                "family": "c-backend",
                "revision": 10,
                "containerDefinitions": [{"name": "b", "command": ["run", "--port", "4000"]}],
            },
            {
                "family": "c-backend",
                "revision": 9,
                "containerDefinitions": [{"name": "b", "command": ["run"]}],
            },
        ],
    },
    "maintenance_yaml": {"name": "maintenance.yaml", "text": "timezone: UTC\n"},
}


def _shuffled(value):
    if isinstance(value, dict):
        items = list(value.items())
        random.shuffle(items)
        return {k: _shuffled(v) for k, v in items}
    if isinstance(value, list):
        out = [_shuffled(v) for v in value]
        if all(isinstance(v, dict) and snap._record_name(v) for v in out):
            random.shuffle(out)  # only lists of named records: their order means nothing
        return out
    return value


def test_digest_is_stable_under_ordering():
    random.seed(7)
    want = snap.digest(SOURCES)
    for _ in range(20):
        assert snap.digest(_shuffled(copy.deepcopy(SOURCES))) == want
    assert want.startswith("sha256:") and len(want) == 7 + 64


def test_digest_changes_with_content_and_with_a_commands_order():
    changed = copy.deepcopy(SOURCES)
    changed["ssm"]["parameters"][0]["Value"] = "y"
    assert snap.digest(changed) != snap.digest(SOURCES)
    reordered = copy.deepcopy(SOURCES)
    reordered["ecs"]["task_definitions"][0]["containerDefinitions"][0]["command"].reverse()
    assert snap.digest(reordered) != snap.digest(SOURCES), "a command's argument order is meaning"


def test_canonical_json_sorts_records_and_keys():
    body = snap.canonical_json(SOURCES).decode()
    assert body.index('"/sanvi/a"') < body.index('"/sanvi/b"') < body.index('"/sanvi/c"')
    assert body.index('"backend"') < body.index('"frontend"')
    tds = json.loads(body)["ecs"]["task_definitions"]
    assert [t["revision"] for t in tds] == [9, 10]
    assert " " not in body.replace("timezone: UTC", "")


def test_make_snapshot_digest_ignores_the_time():
    a = snap.make_snapshot(SOURCES, "2026-12-01T00:00:00+00:00")
    b = snap.make_snapshot(_shuffled(copy.deepcopy(SOURCES)), "2026-12-02T00:00:00+00:00")
    assert a["digest"] == b["digest"] and a["format"] == snap.FORMAT


def test_diff_summary_names_what_changed():
    assert snap.diff_summary(None, SOURCES) == ["first snapshot: ecs, maintenance_yaml, secretsmanager, ssm"]
    new = copy.deepcopy(SOURCES)
    new["ssm"]["parameters"][0]["Value"] = "y"
    new["ssm"]["parameters"].append({"Name": "/sanvi/d", "Type": "String", "Version": 1, "Value": "z"})
    new["ecs"]["services"][0]["desiredCount"] = 3
    new["maintenance_yaml"]["text"] = "timezone: Europe/Berlin\nslack: {}\n"
    lines = snap.diff_summary(SOURCES, new)
    assert "ssm: 1 added (parameters//sanvi/d); 1 changed (parameters//sanvi/a)" in lines
    assert "ecs: 1 changed (services/frontend)" in lines
    assert "maintenance_yaml: +2/-1 lines" in lines
    assert not any(line.startswith("secretsmanager") for line in lines)
    assert snap.diff_summary(SOURCES, copy.deepcopy(SOURCES)) == []


def test_task_definition_environment_values_named_like_secrets_are_redacted():
    td = _task_definition({"family": "f", "revision": 1, "containerDefinitions": [{"name": "app", "environment": [
        {"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "STRIPE_API_KEY", "value": "sk_live"}]}]})  # fmt: skip
    env = {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
    assert env == {"LOG_LEVEL": "info", "DB_PASSWORD": REDACTED, "STRIPE_API_KEY": REDACTED}


def test_git_env_is_minimal_and_keeps_the_token_off_the_command_line(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "leak")
    env = git_env("A", "a@x", "/tmp/h", GitCredentials(username="bot", token="tok123"))
    assert "AWS_SECRET_ACCESS_KEY" not in env and not any(k.startswith("AIRFLOW") for k in env)
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:file"
    headers = [env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))]
    import base64

    assert f"Authorization: Basic {base64.b64encode(b'bot:tok123').decode()}" in headers


def test_config_model_refuses_odd_repositories_and_prefixes():
    from pydantic import ValidationError

    from sanvi_ops.tasks.configuration_backup.config import ConfigurationBackupSettings, GitSettings

    for bad in ("ext::sh -c touch% /tmp/pwned", "-uhttps://x", "ftp://host/repo"):
        with pytest.raises(ValidationError, match="repository URL"):
            GitSettings(repository=bad)
    for good in (
        "https://github.com/o/r.git",
        "git@github.com:o/r.git",
        "/srv/git/r.git",
        "file:///srv/r.git",
    ):
        assert GitSettings(repository=good).repository == good
    with pytest.raises(ValidationError, match="branch"):
        GitSettings(branch="--force")
    with pytest.raises(ValidationError, match="key prefix"):
        ConfigurationBackupSettings(prefix="/configuration")
    with pytest.raises(ValidationError, match="cron"):
        ConfigurationBackupSettings(fallback_cron="hourly")


def test_the_job_is_declared_in_the_calendar():
    from sanvi_ops.core.calendar import non_guide_dags
    from sanvi_ops.core.config import load_config

    job = non_guide_dags(load_config())["configuration_backup"]
    assert job.folder == "backups" and job.cron == "20 * * * *" and job.team == "devops"
