"""vacuum_all / vacuum_needed: the Database Maintenance run against ``vacuumdb --analyze -j 2``.

A throw-away PostgreSQL (autovacuum off, so nothing else cleans up in between) with a database
of 200 tables of 10 000 rows; before every measured run 20 % of them (40 tables) get half their
rows updated, i.e. 5000 dead tuples each (over the autovacuum threshold of 50 + 20 % × 10 000).
All three runs start from that same state:

- baseline: ``vacuumdb --analyze -j 2`` on the database (what a DBA would type);
- ``vacuum_all``: ``plan_and_vacuum`` in mode ``all`` (read stats, plan, VACUUM (ANALYZE,
  SKIP_LOCKED) every table two at a time, read stats again, build the results);
- ``vacuum_needed``: the same in the default mode, which only touches the 40 dirty tables.

Each is run ``ROUNDS`` times, interleaved; the median is reported. Targets (issue 4): ratio ≤ 1.1
for ``all``, ≤ 0.5 for ``needed``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import Figure

TABLES = 200
DIRTY_EVERY = 5  # every 5th table: 20 %
ROWS = 10_000
DEAD = ROWS // 2  # rows updated in each dirty table
ROUNDS = 5
DB = "bench_vacuum"


def _setup(dsn: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(TABLES):
            name = sql.Identifier(f"t_{i:03d}")
            conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, pad text)").format(name))
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT g, repeat('x', 40) FROM generate_series(1, %s) g").format(
                    name
                ),
                (ROWS,),
            )


def _dirty(dsn: str) -> None:
    """Half the rows of 20 % of the tables updated once: DEAD dead tuples each, counted in pg_stat."""
    import psycopg
    from psycopg import sql

    dirty = [f"t_{i:03d}" for i in range(0, TABLES, DIRTY_EVERY)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in dirty:
            conn.execute(
                sql.SQL("UPDATE {} SET pad = pad || 'y' WHERE id % 2 = 0").format(sql.Identifier(name))
            )
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (ready,) = conn.execute(  # type: ignore[misc]
                "SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup >= %s", (DEAD,)
            ).fetchone()
            if ready >= len(dirty):
                return
            time.sleep(0.1)
    raise TimeoutError("dead tuples never showed up in pg_stat_user_tables")


def vacuum_figures() -> Iterator[Figure]:
    from devstack.postgres import SUPERUSER, LocalPostgres, pg_bin
    from sanvi_ops.core.config import DeploymentWindow, load_config
    from sanvi_ops.tasks.database_maintenance.airflow_tasks import plan_and_vacuum

    server = LocalPostgres(
        Path(tempfile.mkdtemp(prefix="sanvi-bench-vacuum-")),
        password=secrets.token_hex(12),
        settings={"autovacuum": "off"},
    )
    server.start()
    try:
        server.create_database(DB)
        dsn = server.dsn(DB)
        _setup(dsn)
        cfg = load_config().with_settings("database_maintenance", window=DeploymentWindow(anytime=True))
        env = {**os.environ, "PGPASSWORD": server.password}  # never on the command line
        vacuumdb = [
            pg_bin("vacuumdb"),
            "--analyze",
            "-j",
            "2",
            "-q",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-U",
            SUPERUSER,
            "-d",
            DB,
        ]

        def baseline() -> None:
            subprocess.run(vacuumdb, env=env, check=True)

        def ours(mode: str) -> Callable[[], None]:
            def run() -> None:
                res = plan_and_vacuum(cfg, dsn, {"mode": mode}, dt.datetime.now(dt.UTC))
                bad = [r.check for r in res if r.status.value not in ("ok",)]
                if bad:
                    raise RuntimeError(f"bench run not clean: {bad[:5]}")

            return run

        baseline()  # steady state: every table vacuumed and analyzed once
        runs: dict[str, Callable[[], None]] = {
            "vacuumdb": baseline,
            "all": ours("all"),
            "needed": ours("needed"),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(ROUNDS):
            for name, fn in runs.items():
                _dirty(dsn)
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times["vacuumdb"])
        yield Figure(
            "vacuum_all",
            statistics.median(times["all"]),
            "s",
            baseline=base,
            target="ratio<=1.1",
            meets=lambda _v, r: r is not None and r <= 1.1,
        )
        yield Figure(
            "vacuum_needed",
            statistics.median(times["needed"]),
            "s",
            baseline=base,
            target="ratio<=0.5",
            meets=lambda _v, r: r is not None and r <= 0.5,
        )
    finally:
        server.destroy()
