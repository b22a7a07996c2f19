"""PostgreSQL health check against real PostgreSQL 18 servers on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import LocalPostgres, free_port
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.postgres import check_postgres

pytestmark = pytest.mark.integration

GUIDE = {"warning_pct": 80, "critical_pct": 90, "timeout_s": 5}


def by_check(results):
    return {r.check: r for r in results}


def test_up_is_ok(pg):
    results = check_postgres(pg.dsn(), **GUIDE)
    assert [r.check for r in results] == ["postgres.availability", "postgres.connections"]
    avail, conns = results
    assert avail.status is Status.OK, avail.summary
    assert avail.metric == "select1_latency_ms" and avail.observed is not None and avail.observed >= 0
    assert avail.summary.startswith(f"PostgreSQL at 127.0.0.1:{pg.port} answered SELECT 1 in")
    assert avail.details["server_version"] >= 180000
    assert conns.status is Status.OK, conns.summary
    assert conns.thresholds == {"warning": 80, "critical": 90}
    # The usable maximum leaves out the slots only superusers may take, and says so.
    assert conns.details["max_connections"] == 100
    assert (
        conns.details["usable_max"]
        == 100 - conns.details["superuser_reserved_connections"] - conns.details["reserved_connections"]
    )
    assert "superuser_reserved_connections" in conns.details["how"]
    assert "usable connections in use" in conns.summary


def test_uri_dsn_works_too(pg):
    assert by_check(check_postgres(pg.uri(), **GUIDE))["postgres.availability"].status is Status.OK


def test_wrong_password_is_critical_and_never_shows_a_password(pg):
    wrong = "Wr0ng-" + secrets.token_hex(6)
    results = check_postgres(pg.dsn(password=wrong), **GUIDE)
    avail = by_check(results)["postgres.availability"]
    assert avail.status is Status.CRITICAL
    assert "rejected the login of user 'postgres'" in avail.summary
    assert "password authentication failed" in avail.summary
    dumped = json.dumps([r.to_dict() for r in results])
    assert wrong not in dumped and pg.password not in dumped
    assert by_check(results)["postgres.connections"].status is Status.SKIPPED


def test_server_down_is_critical_p1():
    port = free_port()  # nothing listens there
    results = check_postgres(f"host=127.0.0.1 port={port} dbname=postgres user=postgres password=x", **GUIDE)
    avail, conns = results
    assert avail.status is Status.CRITICAL and avail.severity == "P1"
    assert avail.summary == f"PostgreSQL at 127.0.0.1:{port} is unreachable: Connection refused"
    assert conns.status is Status.SKIPPED and "could not be reached" in conns.summary


def test_missing_database_is_a_configuration_error(pg):
    (avail, _conns) = check_postgres(pg.dsn("no_such_db"), **GUIDE)
    assert avail.status is Status.ERROR
    assert "no database 'no_such_db'" in avail.summary


def test_bad_arguments_are_refused(pg):
    with pytest.raises(ValueError, match="warning_pct < critical_pct"):
        check_postgres(pg.dsn(), warning_pct=90, critical_pct=80, timeout_s=5)


# --- connections near max, on a small server of its own ------------------------------------------

#: 23 - 3 superuser-reserved = 20 usable: 1 % steps of 5, so each phase lands mid-band.
SMALL_MAX = 23


@pytest.fixture(scope="module")
def small_pg() -> Iterator[LocalPostgres]:
    server = LocalPostgres(
        Path(tempfile.mkdtemp(prefix="sanvi-test-pg-small-")),
        password=secrets.token_hex(12),
        settings={"max_connections": str(SMALL_MAX), "superuser_reserved_connections": "3"},
    )
    server.start()
    yield server
    server.destroy()


def test_connections_near_max_warn_then_go_critical(small_pg):
    # Connections only ever increase, so a just-closed backend still exiting cannot undercount;
    # the checker's own connection (and at most one of its predecessors still exiting) counts too.
    with ExitStack() as held:

        def hold(n: int) -> None:
            for _ in range(n):
                held.enter_context(psycopg.connect(small_pg.dsn(), autocommit=True))

        conns = by_check(check_postgres(small_pg.dsn(), **GUIDE))["postgres.connections"]
        assert conns.status is Status.OK, conns.summary
        assert conns.details["usable_max"] == 20 and conns.details["max_connections"] == SMALL_MAX

        hold(16)  # 16 held + the checker = 17 of 20 = 85 % (90 % if a predecessor lingers)
        conns = by_check(check_postgres(small_pg.dsn(), **GUIDE))["postgres.connections"]
        assert conns.status is Status.WARNING, conns.summary
        assert 85 <= conns.observed <= 90
        assert "above 80 %" in conns.summary

        hold(2)  # 18 held + the checker = 19 of 20 = 95 %
        conns = by_check(check_postgres(small_pg.dsn(), **GUIDE))["postgres.connections"]
        assert conns.status is Status.CRITICAL, conns.summary
        assert conns.observed >= 95
        assert conns.severity == "P2"
        assert conns.summary.startswith("19 of 20 usable connections in use") or conns.summary.startswith(
            "20 of 20"
        )
