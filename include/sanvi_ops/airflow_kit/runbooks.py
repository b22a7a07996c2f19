"""The runbook pages ``docs/tasks/<dag_id>.md``, generated from the DAGs themselves.

A DAG's runbook is its file's docstring (``doc_md``, what the **Docs** button shows in the
Airflow UI). This module parses ``dags/`` with the shipped ``include/config/maintenance.yaml``
(a DagBag: no network, no database) and writes one page per DAG, so the runbooks can also be
read without Airflow:

- what the DAG frame took from the calendar: schedule (cron, in words, time zone, Asset
  triggers), team, tags, run timeout;
- where the code and the tests are (``include/sanvi_ops/tasks/<dag_id>/``,
  ``tests/tasks/<dag_id>/``), and the sections of the hand-written ``docs/*.md`` pages that name
  the DAG file (they say how it works in more depth);
- the docstring itself, then the tasks (each task's own docstring) and the trigger form's
  fields (each Param's title, type, default and description);

plus ``docs/tasks/README.md``, the index. The pages are never edited by hand::

    make docs        # rewrites docs/tasks/ (and docs/configuration.md)

and ``tests/airflow_kit/test_runbooks.py`` fails when the committed pages are out of date.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ENV_VAR, load_config

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "dags"
DOCS = REPO / "docs"
OUTPUT_DIR = DOCS / "tasks"
INDEX = "README.md"
#: Folders of ``dags/`` in the order the index lists them (the guide's tables, then the jobs).
FOLDERS = ("daily", "weekly", "monthly", "quarterly", "annual", "backups", "meta")
#: Generated pages among ``docs/*.md``: never a source of "more about it" links.
GENERATED_DOCS = {"configuration.md"}


@contextmanager
def _shipped_config() -> Iterator[None]:
    """Parse with the shipped config, whatever ``$SANVI_OPS_CONFIG`` says: the pages document it."""
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(DEFAULT_CONFIG_PATH)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


def load_dags() -> dict[str, Any]:
    """Every DAG of ``dags/`` by id, parsed as the dag-processor does (no network, no database).

    :raises RuntimeError: a DAG file does not import; the message names the file and the error.
    """
    from airflow.dag_processing.dagbag import DagBag

    with _shipped_config():
        bag = DagBag(dag_folder=str(DAGS), bundle_path=DAGS)
    if bag.import_errors:
        errors = "\n".join(f"{path}: {err}" for path, err in sorted(bag.import_errors.items()))
        raise RuntimeError(f"cannot document the DAGs, some do not import:\n{errors}")
    return dict(sorted(bag.dags.items()))


# -- Markdown helpers ---------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading (without the ``-1`` suffix of a repeated one)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "none"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min")) if n]
    return " ".join(parts) or f"{int(value.total_seconds())} s"


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _rel(path: Path, start: Path = OUTPUT_DIR) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")


# -- One DAG's facts ----------------------------------------------------------------------------


def _schedule(dag: Any, tz: str) -> str:
    """``0 4 * * 3`` (At 04:00, only on Wednesday, UTC); also when an Asset it listens to changes."""
    timetable = dag.timetable
    assets: list[str] = []
    if hasattr(timetable, "timetable"):  # AssetOrTimeSchedule: the calendar's time, or an Asset
        assets = sorted(a.uri for a in getattr(timetable.asset_condition, "objects", ()))
        timetable = timetable.timetable
    cron = getattr(timetable, "summary", "")
    if type(timetable).__name__ == "NullTimetable":  # schedule=None: triggered only (change_review)
        return "none: triggered by another run (or by hand)"
    text = f"`{cron}` ({timetable.description}, {tz})" if cron else str(timetable.description)
    if assets:
        text += "; also when " + ", ".join(f"`{uri}`" for uri in assets) + " is updated"
    return text


def _param_type(schema: Mapping[str, Any]) -> str:
    types = schema.get("type", "any")
    types = [types] if isinstance(types, str) else list(types)
    optional = "null" in types
    types = [t for t in types if t != "null"] or ["any"]
    kind = " or ".join(types)
    if "enum" in schema:
        kind = "one of " + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None)
    elif kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            kind = "some of " + ", ".join(f"`{v}`" for v in items["enum"])
        else:
            kind = f"list of {items.get('type', 'any')}"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None or hi is not None:
        kind += f" {'' if lo is None else lo}–{'' if hi is None else hi}"
    return kind + (" (optional)" if optional else "")


def _params(dag: Any) -> list[str]:
    rows = []
    for name in dag.params:
        param = dag.params.get_param(name)
        schema = dict(param.schema)
        has_default = param.has_value and param.value is not None
        default = f"`{_cell(json.dumps(param.value))}`" if has_default else "empty"
        rows.append(
            f"| `{name}` | {_cell(schema.get('title', name))} | {_cell(_param_type(schema))} "
            f"| {default} | {_cell(param.description or '')} |"
        )
    if not rows:
        return ["None: a manual run does exactly what the scheduled run does."]
    return [
        "Airflow checks every value when the run is created (form, REST API and `--conf` alike);",
        "left at their defaults the fields do what the scheduled run does.",
        "",
        "| field | title | type | default | description |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _tasks(dag: Any) -> list[str]:
    rows = []
    for task in dag.topological_sort():
        notes = []
        if task.pool and task.pool != "default_pool":
            notes.append(f"pool `{task.pool}`")
        rule = str(getattr(task.trigger_rule, "value", task.trigger_rule))
        if rule != "all_success":
            notes.append(f"runs when upstream is `{rule}`")
        rows.append(f"| `{task.task_id}` | {_cell(_first_line(task.doc_md))} | {_cell('; '.join(notes))} |")
    return ["| task | what it does | notes |", "|---|---|---|", *rows]


def _sections_naming(dag_file: str) -> list[tuple[str, str]]:
    """(page, heading) of every section of the hand-written ``docs/*.md`` that names the DAG file."""
    found: list[tuple[str, str]] = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name in GENERATED_DOCS:
            continue
        heading = ""
        body: list[str] = []
        for line in [*page.read_text(encoding="utf-8").splitlines(), "## end"]:
            if re.match(r"^#{1,3} ", line):
                if heading and f"`{dag_file}`" in "\n".join(body):
                    found.append((page.name, heading))
                heading, body = line.lstrip("#").strip(), []
            else:
                body.append(line)
    return found


def render_dag(dag: Any, tz: str) -> str:
    """The page ``docs/tasks/<dag_id>.md`` of one DAG."""
    dag_file = f"dags/{dag.relative_fileloc}"
    doc = (dag.doc_md or "").strip()
    title, _, body = doc.partition("\n")
    if not title.startswith("# "):
        title, body = f"# {dag.dag_id}", doc
    owner = dag.owner
    facts = [
        ("DAG", f"`{dag.dag_id}`: [{dag_file}]({_rel(REPO / dag_file)})"),
        ("From the calendar", _cell(dag.description or "")),
        ("Schedule", _schedule(dag, tz)),
        ("Team (owner)", _cell(owner)),
        ("Tags", ", ".join(f"`{t}`" for t in sorted(dag.tags))),
        ("Run timeout", _duration(dag.dagrun_timeout)),
    ]
    for label, folder in (("Code", "include/sanvi_ops/tasks"), ("Tests", "tests/tasks")):
        path = REPO / folder / dag.dag_id
        if path.is_dir():
            facts.append((label, f"[{folder}/{dag.dag_id}/]({_rel(path)}/)"))
    more = [
        f"[{page}: {_cell(heading)}]({_rel(DOCS / page)}#{github_anchor(heading)})"
        for page, heading in _sections_naming(dag_file)
    ]
    if more:
        facts.append(("More about it", ", ".join(more)))
    lines = [
        f"<!-- Generated by `make docs` (python -m sanvi_ops.airflow_kit.runbooks) from {dag_file}: "
        "edit its docstring, not this file. -->",
        "",
        title,
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in facts),
        "",
        body.strip(),
        "",
        "## Tasks",
        "",
        *_tasks(dag),
        "",
        "## Trigger form",
        "",
        *_params(dag),
        "",
    ]
    return "\n".join(lines)


def render_index(dags: Mapping[str, Any], tz: str) -> str:
    """``docs/tasks/README.md``: every DAG, grouped as ``dags/`` is, with its schedule and team."""
    lines = [
        "<!-- Generated by `make docs` (python -m sanvi_ops.airflow_kit.runbooks): edit the DAG files' "
        "docstrings, not this file. -->",
        "",
        "# Runbooks: one page per DAG",
        "",
        "Each page is the DAG file's docstring (what the **Docs** button shows on the DAG's page in",
        "the Airflow UI: what the DAG does and what to do when it is not green), what the calendar",
        "gives the DAG, its tasks and its trigger form. `make docs` writes them from `dags/` and",
        f"`include/config/maintenance.yaml`; times are in {tz}.",
    ]
    by_folder: dict[str, list[Any]] = {}
    for dag in dags.values():
        by_folder.setdefault(Path(dag.relative_fileloc).parent.name, []).append(dag)
    order = [f for f in FOLDERS if f in by_folder] + sorted(set(by_folder) - set(FOLDERS))
    for folder in order:
        lines += ["", f"## `dags/{folder}/`", "", "| DAG | what | schedule | team |", "|---|---|---|---|"]
        for dag in by_folder[folder]:
            timetable = getattr(dag.timetable, "timetable", dag.timetable)
            lines.append(
                f"| [`{dag.dag_id}`]({dag.dag_id}.md) | {_cell(dag.description or '')} "
                f"| {_cell(getattr(timetable, 'description', 'triggered'))} | {_cell(dag.owner)} |"
            )
    return "\n".join(lines) + "\n"


def render(dags: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every page of ``docs/tasks/`` by file name (``<dag_id>.md`` and the index)."""
    dags = load_dags() if dags is None else dags
    with _shipped_config():
        tz = load_config().timezone
    pages = {f"{dag_id}.md": render_dag(dag, tz) for dag_id, dag in dags.items()}
    pages[INDEX] = render_index(dags, tz)
    return pages


def stale(pages: Mapping[str, str]) -> list[str]:
    """Files of ``docs/tasks/`` that differ from ``pages``, are missing, or should not be there."""
    present = {p.name for p in OUTPUT_DIR.glob("*.md")}
    wrong = [
        name
        for name, text in pages.items()
        if name not in present or (OUTPUT_DIR / name).read_text(encoding="utf-8") != text
    ]
    return sorted([*wrong, *(present - set(pages))])


def main(argv: list[str]) -> int:
    """``python -m sanvi_ops.airflow_kit.runbooks [--check]``: write (or compare) ``docs/tasks/``."""
    pages = render()
    if argv[:1] == ["--check"]:
        out_of_date = stale(pages)
        if out_of_date:
            print(f"docs/tasks/ is out of date ({', '.join(out_of_date)}): run `make docs`", file=sys.stderr)
            return 1
        return 0
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT_DIR.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (OUTPUT_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(pages)} pages to {OUTPUT_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
