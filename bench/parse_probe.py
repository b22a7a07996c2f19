"""Parse DAG files the way the dag-processor does, with the network blocked and DB queries counted.

Run as a subprocess (``python -m bench.parse_probe [--repeat N] [files...]``) so nothing a
test or benchmark imported earlier can hide an import-time side effect. Prints one JSON object:
per file the parse times, the DAG ids found, import errors, socket connection attempts and
metadata-database queries made while parsing. No Airflow connection is defined in its
environment, so a DAG that reads one at parse time fails here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _block_network(attempts: list[str]) -> None:
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)  # type: ignore[arg-type]
        attempts.append(repr(address))
        raise OSError(f"network blocked while parsing DAGs: connect to {address!r}")

    socket.socket.connect = guarded  # type: ignore[method-assign]
    socket.create_connection = lambda address, *a, **k: guarded(socket.socket(), address)  # type: ignore[assignment,misc]


def _count_queries(queries: list[str]) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        queries.append(statement.split("\n", 1)[0][:120])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        del os.environ[key]
    files = [Path(f) for f in args.files] or sorted((REPO / "dags").rglob("*.py"))

    from airflow.dag_processing.dagbag import DagBag  # import Airflow before the guards

    attempts: list[str] = []
    queries: list[str] = []
    _block_network(attempts)
    _count_queries(queries)
    out: dict[str, object] = {}
    for f in files:
        times: list[float] = []
        dag_ids: list[str] = []
        errors: dict[str, str] = {}
        before_q, before_a = len(queries), len(attempts)
        for _ in range(args.repeat):
            for mod in [m for m in sys.modules if m.startswith("unusual_prefix")]:
                del sys.modules[mod]
            t0 = time.perf_counter()
            bag = DagBag(dag_folder=str(f), bundle_path=REPO / "dags")
            times.append(time.perf_counter() - t0)
            dag_ids = sorted(bag.dags)
            errors = {k: str(v).strip().splitlines()[-1] for k, v in bag.import_errors.items()}
        out[str(f.relative_to(REPO))] = {
            "dag_ids": dag_ids,
            "import_errors": errors,
            "median_s": statistics.median(times),
            "times_s": times,
            "db_queries": len(queries) - before_q,
            "network_attempts": attempts[before_a:],
        }
    print("PARSE_PROBE " + json.dumps(out))


if __name__ == "__main__":
    main()
