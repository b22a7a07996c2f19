"""The first start, as a newcomer sees it.

``.venv/bin/sanvi-ops run`` (what ``make run`` runs) starts the whole local stack in a temporary
state directory, on free ports; the test waits (bounded) until every DAG's first run is done,
then holds the result to README.md's "What you'll see on the first start" table: the set of red
DAGs and the set of open incidents must be exactly the documented ones. Then every command the
README's "What `make run` starts" section and the start-up banner print is run as printed (the
demo port substituted) and must succeed. Nothing here is mocked: real PostgreSQL, Redis, moto,
Prometheus when installed, the demo servers and Airflow's scheduler, API server and executor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.first_start import NEEDS_A_FULL_BACKUP, AirflowAPI, first_runs

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CLI = REPO / ".venv" / "bin" / "sanvi-ops"
#: Bounds: the stack's start, then the first runs of every DAG (the first full backup included).
START_TIMEOUT_S = 600
FIRST_RUNS_TIMEOUT_S = 900
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    output: Path
    demo_port: int
    started_in: float

    def banner(self) -> str:
        text = self.output.read_text(errors="replace")
        return text[text.index("Sanvi Ops local stack is up") :]

    def info(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            json.loads((self.state_dir / "stack.json").read_text()),
            json.loads((self.state_dir / "secrets.json").read_text()),
        )

    def api(self) -> AirflowAPI:
        addr, sec = self.info()
        return AirflowAPI(f"http://127.0.0.1:{addr['ui_port']}", "admin", sec["ui_password"])

    def store(self) -> psycopg.Connection[Any]:
        addr, sec = self.info()
        return psycopg.connect(
            host="127.0.0.1",
            port=addr["postgres_port"],
            user="postgres",
            password=sec["postgres_password"],
            dbname="sanvi_ops_store",
            autocommit=True,
        )


def _user_env(state_dir: Path) -> dict[str, str]:
    """A newcomer's shell: nothing of ours exported but where the test keeps this stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANVI_", "AIRFLOW", "PYTHONPATH"))}
    env.pop("SLACK_API_TOKEN", None)
    env["SANVI_LOCAL_DIR"] = str(state_dir)
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # `make` writes the CLI (the venv itself exists: -o keeps make from reinstalling it).
    subprocess.run(["make", "-s", "-o", ".venv/.installed", ".venv/bin/sanvi-ops"], cwd=REPO, check=True)
    # mkdtemp under /tmp, not pytest's tmp dir: the unprivileged PostgreSQL server user must keep
    # traversing the path, and another pytest session resets /tmp/pytest-of-<user> to mode 700.
    state_dir = Path(tempfile.mkdtemp(prefix="sanvi-first-start-"))
    output = tmp_path_factory.mktemp("first-start-output") / "first-start.out"
    demo_port = _free_port()
    env = {**_user_env(state_dir), "SANVI_UI_PORT": str(_free_port()), "SANVI_DEMO_PORT": str(demo_port)}
    started = time.monotonic()
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "run"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while "local stack is up" not in output.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"the stack did not come up:\n{output.read_text(errors='replace')[-4000:]}")
            time.sleep(2)
        yield Stack(proc, state_dir, output, demo_port, time.monotonic() - started)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        shutil.rmtree(state_dir, ignore_errors=True)


def _wait_first_runs(stack: Stack) -> dict[str, dict[str, Any]]:
    api = stack.api()
    dag_ids: set[str] = set()
    for _ in range(10):
        try:
            dag_ids = api.dag_ids()
            break
        except OSError:
            time.sleep(5)
    assert dag_ids, "the API server did not list the DAGs"
    deadline = time.monotonic() + FIRST_RUNS_TIMEOUT_S
    runs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        try:
            runs = first_runs(api)
        except OSError:  # the API server is busy under the first start's load: ask again
            time.sleep(5)
            continue
        if set(runs) >= dag_ids and all(r["finished"] for r in runs.values()):
            return runs
        time.sleep(10)
    waiting = sorted(d for d in dag_ids if d not in runs or not runs[d]["finished"])
    pytest.fail(f"first runs not done within {FIRST_RUNS_TIMEOUT_S}s: {waiting}")


# The stack's start is in this test's setup; both bounds above hold it, this one only catches a hang.
@pytest.mark.timeout(START_TIMEOUT_S + FIRST_RUNS_TIMEOUT_S + 300)
def test_first_start_is_red_exactly_where_the_readme_says(stack: Stack) -> None:
    waited = time.monotonic()
    runs = _wait_first_runs(stack)
    print(f"\nstack up in {stack.started_in:.0f} s; first runs done {time.monotonic() - waited:.0f} s later")
    red = {d for d, r in runs.items() if r["state"] == "failed" or r["failed_tasks"]}
    with stack.store() as conn:
        open_incidents = set(
            conn.execute("SELECT dag_id, check_name FROM incidents WHERE resolved_at IS NULL").fetchall()
        )
        bad = conn.execute(
            "SELECT dag_id, check_name, status, summary FROM check_results "
            "WHERE status IN ('critical', 'error') ORDER BY dag_id, check_name"
        ).fetchall()
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
    assert "first full backup succeeded" in stack.output.read_text(errors="replace")


@pytest.mark.timeout(900)
def test_every_printed_and_documented_command_works(stack: Stack) -> None:
    """Run as printed, from the repository root, with nothing exported (but the test's state dir)."""
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
            env=_user_env(stack.state_dir),
            capture_output=True,
            text=True,
            timeout=180,
        )
        timings.append((round(time.monotonic() - started, 1), command))
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if command.startswith("curl"):
            assert json.loads(done.stdout) == {"ok": True}, done.stdout
    print("\n" + "\n".join(f"  {t:6.1f} s  {c}" for t, c in timings))
