"""The database_backups config section and the libpq environment (no servers)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sanvi_ops.core.backups import PgTarget, libpq_env
from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config

pytestmark = pytest.mark.unit

RAW = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def test_shipped_section_and_defaults():
    cfg = parse_config(RAW)
    b = cfg.database_backups
    assert b.mode == "self_managed" and b.full_at.hour == 1 and b.prefix == "postgres/"
    v = cfg.tasks.backup_verification.settings
    assert v.rpo.warning == 75 and v.rpo.critical == 120
    assert b.compression == "zstd" and b.compression_level == 3
    assert b.rds.allow_set_retention is False and b.rds.glacier == "export"
    without = copy.deepcopy(RAW)
    del without["database_backups"]
    assert parse_config(without).database_backups.bucket == "sanvi-machinery-backups"


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"prefix": "/postgres"}, "database_backups.prefix"),
        ({"mode": "pg_dump"}, "database_backups.mode"),
        ({"part_size_mb": 2}, "database_backups.part_size_mb"),
        ({"full_at": "25:00"}, "database_backups.full_at"),
        ({"typo": 1}, "database_backups.typo: extra key not allowed"),
        ({"compression": "gzip"}, "database_backups.compression"),
        ({"compression_level": 40}, "database_backups.compression_level"),
        ({"rds": {"export_prefix": "/exports"}}, "database_backups.rds.export_prefix"),
        ({"rds": {"glacier": "deep_archive"}}, "database_backups.rds.glacier"),
    ],
)
def test_bad_values_name_their_key(patch, problem):
    raw = copy.deepcopy(RAW)
    raw["database_backups"].update(patch)
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert problem in str(err.value)


def test_bad_verification_names_its_key():
    raw = copy.deepcopy(RAW)
    raw["tasks"]["backup_verification"]["settings"]["rpo"] = {"warning": 200, "critical": 120, "unit": "min"}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert "tasks.backup_verification.settings.rpo" in str(err.value)


def test_passfile_escapes_and_is_removed():
    target = PgTarget("127.0.0.1", 5432, "back:up", r"pa:ss\word", "app")
    assert "pa:ss" not in repr(target)
    with libpq_env(target) as env:
        path = Path(env["PGPASSFILE"])
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text() == "127.0.0.1:5432:*:back\\:up:pa\\:ss\\\\word\n"
        assert "PGPASSWORD" not in env and all("pa:ss" not in v for v in env.values())
        assert not any(k.startswith(("AIRFLOW_", "AWS_")) for k in env)  # nothing of the task's secrets
    assert not path.exists() and not path.parent.exists()
