"""parse_<dag_id>: parse time of each DAG file (median of 5); parse_db_queries: must be 0.

Each of the 5 measurements is a fresh process that has imported Airflow but not our code, as
the dag-processor's parsing child has: the figure includes importing ``sanvi_ops`` and loading
the calendar, which a warm re-parse in one process would hide.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Figure

REPO = Path(__file__).resolve().parents[1]
RUNS = 5


def _probe() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.parse_probe"], cwd=REPO, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PARSE_PROBE ")), None)
    if line is None:
        raise RuntimeError(f"parse probe failed: {proc.stderr[-3000:]}")
    return dict(json.loads(line.removeprefix("PARSE_PROBE ")))


def parse_figures() -> Iterator[Figure]:
    runs = [_probe() for _ in range(RUNS)]
    total_queries = 0
    for path in runs[0]:
        infos = [r[path] for r in runs]
        total_queries += max(i["db_queries"] for i in infos)
        median = statistics.median(i["times_s"][0] for i in infos)
        for dag_id in infos[0]["dag_ids"]:
            yield Figure(
                f"parse_{dag_id}",
                median,
                "s",
                target="<2s",
                meets=lambda v, _r: v < 2.0,
            )
    yield Figure("parse_db_queries", total_queries, "queries", target="==0", meets=lambda v, _r: v == 0)
