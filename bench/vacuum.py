"""vacuum_all / vacuum_needed: the Database Maintenance run against ``vacuumdb --analyze -j 2``.

A throw-away PostgreSQL (autovacuum off, so nothing else cleans up in between) with two
databases, each measured on its own:

- **small** (``vacuum_all``, ``vacuum_needed``): 200 tables of 10 000 rows, where the fixed cost
  per run and per table shows. Before every measured run 20 % of them (40 tables) get half their
  rows updated, i.e. 5000 dead tuples each (over the autovacuum threshold of 50 + 20 % × 10 000).
- **mixed** (``vacuum_all_1gb``, ``vacuum_needed_1gb``): over 1 GB (checked) in tables of mixed
  sizes, as an application database looks: 3 large tables of 1.5 M rows, 12 of 250 000, 80 of
  10 000. Before every measured run one large, 3 medium and 16 small tables get a quarter (the
  small ones half) of their rows updated, over their autovacuum thresholds.

In each database every run starts from that same state:

- baseline: ``vacuumdb --analyze -j 2`` on the database (what a DBA would type);
- ``vacuum_all``: ``plan_and_vacuum`` in mode ``all`` (read stats, plan, VACUUM (ANALYZE,
  SKIP_LOCKED) every table two at a time, each table's stats read as it finishes, the results);
- ``vacuum_needed``: the same in the default mode, which only touches the dirty tables.

Each is run ``rounds`` times, interleaved; the median is reported. Targets (issue 13): ratio
≤ 1.0 for ``all`` in both databases, ≤ 0.5 for ``needed`` on the small one (on the mixed one the
dirty tables are most of the work, so ``needed`` is shown for information). The mixed database
takes a few minutes to build and is only ever built here, never in the tests.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure

GIB = 1024**3


@dataclass(frozen=True)
class Group:
    """``count`` tables of ``rows`` rows named ``<prefix>_<n>``; ``dirty`` of them, spread evenly,
    get every ``every``-th row updated before each measured run."""

    prefix: str
    count: int
    rows: int
    dirty: int
    every: int

    def names(self) -> list[str]:
        return [f"{self.prefix}_{i:03d}" for i in range(self.count)]

    def dirty_names(self) -> list[str]:
        return self.names()[:: self.count // self.dirty][: self.dirty]


@dataclass(frozen=True)
class Case:
    suffix: str  # of the figure names: "" or "_1gb"
    db: str
    groups: tuple[Group, ...]
    rounds: int
    pad: int  # characters of text per row
    min_bytes: int = 0


SMALL = Case("", "bench_vacuum", (Group("t", 200, 10_000, 40, 2),), rounds=5, pad=40)
MIXED = Case(
    "_1gb",
    "bench_vacuum_1gb",
    (
        Group("large", 3, 1_500_000, 1, 4),
        Group("medium", 12, 250_000, 3, 4),
        Group("small", 80, 10_000, 16, 2),
    ),
    rounds=3,
    pad=100,
    min_bytes=GIB,
)


def _setup(dsn: str, case: Case) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        for group in case.groups:
            for name in group.names():
                table = sql.Identifier(name)
                conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, pad text)").format(table))
                conn.execute(
                    sql.SQL("INSERT INTO {} SELECT g, repeat('x', %s) FROM generate_series(1, %s) g").format(
                        table
                    ),
                    (case.pad, group.rows),
                )
        if case.min_bytes:
            (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()  # type: ignore[misc]
            if size < case.min_bytes:
                raise RuntimeError(
                    f"{case.db} is {size / GIB:.2f} GiB, meant to be over {case.min_bytes / GIB:.0f}"
                )


def _dirty(dsn: str, case: Case) -> None:
    """Every ``every``-th row of the dirty tables updated once; waits until pg_stat counts them."""
    import psycopg
    from psycopg import sql

    expected: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for group in case.groups:
            for name in group.dirty_names():
                conn.execute(
                    sql.SQL("UPDATE {} SET pad = pad || 'y' WHERE id %% %s = 0").format(sql.Identifier(name)),
                    (group.every,),
                )
                expected[name] = group.rows // group.every
    deadline = time.monotonic() + 60
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                (list(expected),),
            ).fetchall()
            if sum(1 for name, dead in rows if dead >= expected[name]) == len(expected):
                return
            time.sleep(0.1)
    raise TimeoutError("dead tuples never showed up in pg_stat_user_tables")


def _measure(server: Any, case: Case) -> Iterator[Figure]:
    from devstack.postgres import SUPERUSER, pg_bin
    from sanvi_ops.core.config import DeploymentWindow, load_config
    from sanvi_ops.tasks.database_maintenance.airflow_tasks import plan_and_vacuum

    server.create_database(case.db)
    dsn = server.dsn(case.db)
    _setup(dsn, case)
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
        case.db,
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
    for _ in range(case.rounds):
        for name, fn in runs.items():
            _dirty(dsn, case)
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["vacuumdb"])
    yield Figure(
        f"vacuum_all{case.suffix}",
        statistics.median(times["all"]),
        "s",
        baseline=base,
        target="ratio<=1.0",
        meets=lambda _v, r: r is not None and r <= 1.0,
    )
    small = not case.min_bytes
    yield Figure(
        f"vacuum_needed{case.suffix}",
        statistics.median(times["needed"]),
        "s",
        baseline=base,
        target="ratio<=0.5" if small else None,
        meets=(lambda _v, r: r is not None and r <= 0.5) if small else None,
    )


def vacuum_figures() -> Iterator[Figure]:
    from devstack.postgres import LocalPostgres

    server = LocalPostgres(
        Path(tempfile.mkdtemp(prefix="sanvi-bench-vacuum-")),
        password=secrets.token_hex(12),
        settings={"autovacuum": "off"},
    )
    server.start()
    try:
        for case in (SMALL, MIXED):
            yield from _measure(server, case)
    finally:
        server.destroy()
