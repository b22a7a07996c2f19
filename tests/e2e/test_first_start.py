"""The first start, as a newcomer sees it.

``.venv/bin/sanvi-ops run`` (what ``make run`` runs) starts the whole local stack in a temporary
state directory, on free ports (the session's one stack, ``local_stack`` in
tests/fixtures/stack.py, shared with the scale-out tests: started with ``EXECUTOR=celery``, as
``make run EXECUTOR=celery``; the shipped configuration and schedules as they are); the
``first_start`` fixture waits (bounded) until every DAG's first run is done and keeps what it
sees, before any other test drives the stack. The first test holds it to README.md's "What
you'll see on the first start" table: the set of red
DAGs and the set of open incidents must be exactly the documented ones. Then every command the
README's "What `make run` starts" section and the start-up banner print is run as printed (the
demo port substituted) and must succeed. Nothing here is mocked: real PostgreSQL, Redis, moto,
Prometheus when installed, the demo servers and Airflow's scheduler, API server and executor.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devstack.first_start import NEEDS_A_FULL_BACKUP
from tests.fixtures.stack import STACK_BUDGET_S, FirstStart, user_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
#: The demo port the README prints (the default of SANVI_DEMO_PORT).
README_DEMO = "127.0.0.1:8081"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    rest = text[start + len(heading) :]
    end = re.search(r"^#{2,3} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def documented_first_start() -> tuple[set[str], set[tuple[str, str]]]:
    """(red DAGs, open incidents as (dag, check)) from the README's first-start table."""
    section = _section(README.read_text(encoding="utf-8"), "### What you'll see on the first start")
    reds: set[str] = set()
    incidents: set[tuple[str, str]] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        dag = cells[0].strip("`")
        reds.add(dag)
        incidents |= {(dag, check) for check in re.findall(r"`([^`]+)`", cells[2])}
    assert reds, "README: no rows in the first-start table"
    return reds, incidents


def documented_commands() -> list[str]:
    """The shell commands of the README's "What `make run` starts" section (```bash blocks)."""
    section = _section(README.read_text(encoding="utf-8"), "## What `make run` starts")
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def banner_commands(banner: str) -> list[str]:
    return [
        line.strip()
        for line in banner.splitlines()
        if line.strip().startswith((".venv/bin/sanvi-ops", "curl "))
    ]


# The stack's start and the first runs may be in this test's setup (session fixtures, each
# bounded); this bound only catches a hang.
@pytest.mark.timeout(STACK_BUDGET_S)
def test_first_start_is_red_exactly_where_the_readme_says(first_start: FirstStart) -> None:
    runs, open_incidents, bad = first_start.runs, first_start.open_incidents, first_start.bad_results
    red = {d for d, r in runs.items() if r["state"] == "failed" or r["failed_tasks"]}
    documented_red, documented_incidents = documented_first_start()
    why = "\n".join(f"  {d} {c} {s}: {t}" for d, c, s, t in bad)
    assert red == documented_red, f"red DAGs {sorted(red)}; critical/error results:\n{why}"
    assert open_incidents == documented_incidents, f"open incidents {sorted(open_incidents)}"
    # The backup DAGs ran after the first full backup, against it (never "no backup yet").
    full = runs["database_backup_full"]
    assert full["state"] == "success", full
    assert set(NEEDS_A_FULL_BACKUP) <= set(runs)
    no_backup = [
        (d, c, t)
        for d, c, _s, t in bad
        if d in NEEDS_A_FULL_BACKUP and ("no complete" in t or "no restorable" in t)
    ]
    assert no_backup == [], no_backup
    assert "first full backup succeeded" in first_start.stack.output.read_text(errors="replace")


@pytest.mark.timeout(STACK_BUDGET_S + 600)
def test_every_printed_and_documented_command_works(first_start: FirstStart) -> None:
    """Run as printed, from the repository root, with nothing exported (but the test's state dir),
    after the first runs (a command breaks the demo backend for a while)."""
    stack = first_start.stack
    commands = documented_commands() + banner_commands(stack.banner())
    assert any(c.startswith(".venv/bin/sanvi-ops airflow") for c in commands), commands
    assert any(c.startswith(".venv/bin/sanvi-ops trigger") for c in commands), commands
    assert any(c.startswith("curl ") for c in commands), commands
    demo = f"127.0.0.1:{stack.demo_port}"
    timings = []
    for command in dict.fromkeys(commands):
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", command.replace(README_DEMO, demo)],
            cwd=REPO,
            env=user_env(stack.state_dir),
            capture_output=True,
            text=True,
            timeout=180,
        )
        timings.append((round(time.monotonic() - started, 1), command))
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if command.startswith("curl"):
            assert json.loads(done.stdout) == {"ok": True}, done.stdout
    print("\n" + "\n".join(f"  {t:6.1f} s  {c}" for t, c in timings))
    # The banner's last command breaks the demo backend: healed for the tests that share the stack.
    healed = httpx.post(
        f"http://{demo}/_demo/state",
        data={"environment": "production", "component": "backend", "status": "200"},
    )
    assert healed.json() == {"ok": True}, healed.text
