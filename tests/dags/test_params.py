"""Every DAG's trigger form: each Param typed (JSON schema), titled and described, its default
valid; a ``checks`` multi-select offers exactly the DAG's check tasks; and a bad value is refused
by Airflow's own validation — on the serialized DAG, the object the API server's trigger
endpoint validates against — with a message naming the param.

Parametrized per DAG, so a failure names the DAG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit

#: JSON-schema types a Param may declare.
JSON_TYPES = {"null", "boolean", "integer", "number", "string", "array", "object"}
#: A value of each JSON type, to find one a param does not accept.
SAMPLES: dict[str, Any] = {
    "object": {"not": "valid"},
    "boolean": True,
    "string": "not-valid",
    "array": ["not-valid"],
    "integer": 123456789,
    "null": None,
}


def _dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags")


_BAG = None


def _bag() -> Any:
    global _BAG
    if _BAG is None:
        _BAG = _dagbag()
    return _BAG


def _dag_ids() -> list[str]:
    return sorted(_bag().dags)


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    return set(declared) if isinstance(declared, list) else {declared} if declared else set()


def test_dag_folder_parses():
    bag = _bag()
    assert bag.import_errors == {} and bag.dags


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_every_param_is_typed_titled_and_described(dag_id: str):
    dag = _bag().dags[dag_id]
    problems = []
    for name, param in dag.params.items():
        schema = param.schema
        types = _types(schema)
        if not types or not types <= JSON_TYPES:
            problems.append(f"{name}: no JSON-schema type (type={schema.get('type')!r})")
        if not str(schema.get("title") or "").strip():
            problems.append(f"{name}: no title")
        if not str(param.description or schema.get("description_md") or "").strip():
            problems.append(f"{name}: no description")
        if "array" in types and "items" not in schema:
            problems.append(f"{name}: an array without an items schema")
    assert not problems, f"{dag_id}: " + "; ".join(problems)


def _triggered_only(dag) -> bool:  # type: ignore[no-untyped-def]
    """A DAG with no schedule (change_review): every run is triggered with its conf."""
    return getattr(dag, "schedule", "") is None or type(dag.timetable).__name__ == "NullTimetable"


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_defaults_validate(dag_id: str):
    dag = _bag().dags[dag_id]
    if _triggered_only(dag):
        pytest.skip(f"{dag_id} has no schedule: every run is triggered with its conf, no run uses defaults")
    dag.params.validate()  # a scheduled run uses these: they must be valid


#: Tasks feeding ``record`` that are not checks a person picks: they always run (the compliance
#: audit's evidence pack records whatever the picked checks found).
ALWAYS_RUN = {"write_evidence_pack"}


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_checks_param_offers_exactly_the_check_tasks(dag_id: str):
    """The ``checks`` multi-select lists the tasks whose results ``record`` gathers, all by default."""
    dag = _bag().dags[dag_id]
    if "checks" not in dag.params:
        pytest.skip(f"{dag_id} has no checks Param")
    schema = dag.params.get_param("checks").schema
    offered = schema["items"]["enum"]
    feeding_record = sorted(set(dag.get_task("record").upstream_task_ids) - ALWAYS_RUN)
    assert sorted(offered) == feeding_record, (
        f"{dag_id}: checks offers {offered}, record reads {feeding_record}"
    )
    assert dag.params.validate()["checks"] == offered
    assert schema["examples"] == offered  # the form renders a multi-select from these


def _bad_values(schema: dict[str, Any]) -> list[Any]:
    """Values the schema must refuse: one of a JSON type it does not declare, and one outside its
    enum / bounds when it has them."""
    types = _types(schema)
    bad = [
        next(v for t, v in SAMPLES.items() if t not in types and not (t == "integer" and "number" in types))
    ]
    if "enum" in schema:
        bad.append("surely-not-an-option")
    if "items" in schema and "enum" in schema["items"]:
        bad.append(["surely-not-an-option"])
    if "minimum" in schema:
        bad.append(schema["minimum"] - 1)
    if "maximum" in schema:
        bad.append(schema["maximum"] + 1)
    return bad


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_trigger_validation_refuses_bad_values_naming_the_param(dag_id: str):
    """What the API server does on a trigger (``SerializedDAG.create_dagrun``): merge the form's
    conf into the serialized DAG's params and validate."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _bag().dags[dag_id]
    if _triggered_only(dag):
        pytest.skip(f"{dag_id} has no schedule: triggered by another task with its conf, not from the form")
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    serialized.params.validate()  # the defaults survive serialization
    if not len(serialized.params):
        pytest.skip(f"{dag_id} declares no Params")
    for name in serialized.params:
        schema = serialized.params.get_param(name).schema
        for value in _bad_values(schema):
            with pytest.raises(ParamValidationError) as info:
                serialized.params.deep_merge({name: value}).validate()
            assert f"Invalid input for param {name}:" in str(info.value), (dag_id, name, value)


def test_a_bad_checks_value_stops_a_run_before_any_task(airflow_db, monkeypatch):
    """End to end through ``dag.test()`` (which creates the run as the scheduler and the API do):
    the run is refused, nothing runs."""
    from airflow.sdk.exceptions import ParamValidationError

    dag = _bag().dags["security_patch_review"]
    with pytest.raises(ParamValidationError, match="Invalid input for param checks: .*'scan_everything'"):
        dag.test(run_conf={"checks": ["scan_everything"]})


def test_tables_is_optional_in_the_form_and_required_only_by_mode_tables() -> None:
    """The trigger form marks a Param required when its type has no ``null``: ``tables`` applies
    only to ``mode: tables``, so it is optional there and the task checks it for that mode."""
    from airflow.serialization.serialized_objects import DagSerialization

    from sanvi_ops.tasks.database_maintenance.airflow_tasks import vacuum_analyze

    dag = _bag().dags["database_maintenance"]
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    schema = serialized.params.get_param("tables").schema
    assert "null" in _types(schema) and serialized.params.get_param("tables").value is None
    for conf in (
        {"mode": "needed"},
        {"mode": "all", "tables": None},
        {"mode": "tables", "tables": ["app.orders"]},
    ):
        serialized.params.deep_merge(conf).validate()
    for tables in (None, [], [" "]):
        (result,) = vacuum_analyze({"mode": "tables", "tables": tables})
        assert result["status"] == "error" and "mode 'tables' needs the tables Param" in result["summary"]
