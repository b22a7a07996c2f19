"""The trigger-form Params helper (``sanvi_ops.airflow_kit.params``): schemas Airflow validates, and how
check tasks read the selection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sanvi_ops.airflow_kit import params as p

pytestmark = pytest.mark.unit

IDS = ("check_a", "check_b", "check_c")


def _validate(param: Any, value: Any = ...) -> Any:
    """Validate like the trigger form does: Airflow's ParamsDict with the run's conf merged."""
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict({"x": param})
    if value is not ...:
        params["x"] = value
    return params.validate()["x"]


def _refused(param: Any, value: Any) -> str:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict({"x": param})
    with pytest.raises(ParamValidationError) as info:
        params["x"] = value  # ParamsDict validates on assignment
        params.validate()
    message = str(info.value)
    assert message.startswith("Invalid input for param x:"), message  # names the param
    return message


# -- checks_param --------------------------------------------------------------------------------


def test_checks_param_defaults_to_every_check_and_is_a_typed_multi_select():
    param = p.checks_param(IDS)
    assert _validate(param) == list(IDS)
    schema = param.schema
    assert schema["type"] == "array" and schema["items"] == {"type": "string", "enum": list(IDS)}
    assert schema["examples"] == list(IDS)  # what makes the form render a multi-select
    assert schema["title"] == "Checks" and param.description and "skipped" in param.description
    assert schema["minItems"] == 1 and schema["uniqueItems"] is True


def test_checks_param_accepts_a_subset():
    assert _validate(p.checks_param(IDS), ["check_b"]) == ["check_b"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (["check_z"], "'check_z' is not one of"),
        ([], "should be non-empty"),
        ("check_a", "is not of type 'array'"),
        (["check_a", "check_a"], "non-unique"),
        (None, "None is not of type 'array'"),  # the form sends null when everything is cleared
    ],
)
def test_checks_param_refuses_bad_values_naming_what_is_wrong(value, why):
    message = _refused(p.checks_param(IDS), value)
    assert why in message, message


def test_checks_param_needs_distinct_ids():
    with pytest.raises(ValueError, match="at least one"):
        p.checks_param([])
    with pytest.raises(ValueError, match="duplicate"):
        p.checks_param(["a", "a"])


# -- other params ----------------------------------------------------------------------------------


def test_optional_int_param_is_bounded_and_empty_means_config():
    param = p.optional_int_param(title="Hours", description="How far back.", minimum=1, maximum=336)
    assert _validate(param) is None
    assert _validate(param, 48) == 48
    assert "0 is less than the minimum of 1" in _refused(param, 0)
    assert "337 is greater than the maximum of 336" in _refused(param, 337)
    assert "is not of type 'null', 'integer'" in _refused(param, "24")


def test_string_list_param_with_and_without_choices():
    free = p.string_list_param(title="Mount points", description="Patterns.")
    assert _validate(free) is None and _validate(free, ["/var/*"]) == ["/var/*"]
    assert "should be non-empty" in _refused(free, [""]) or "too short" in _refused(free, [""])
    chosen = p.string_list_param(title="Groups", description="Groups.", choices=["/a", "/b"])
    assert chosen.schema["examples"] == ["/a", "/b"]
    assert _validate(chosen, ["/b"]) == ["/b"]
    assert "'/c' is not one of" in _refused(chosen, ["/c"])


@pytest.mark.parametrize(
    "value",
    ["2026-11-24T10:30:00+00:00", "2026-11-24T10:30:00.123456+00:00", "2026-11-24T10:30Z", "2026-11-24"],
)
def test_iso_time_param_accepts_what_fromisoformat_reads(value):
    from datetime import datetime

    param = p.iso_time_param(title="Evaluate at", description="When.")
    assert _validate(param, value) == value
    datetime.fromisoformat(value)  # and the task can read it


@pytest.mark.parametrize("value", ["yesterday", "24/11/2026", "2026-11-24T25"])
def test_iso_time_param_refuses_other_text(value):
    message = _refused(p.iso_time_param(title="Evaluate at", description="When."), value)
    assert "does not match" in message


# -- reading a run's values ------------------------------------------------------------------------


def test_param_value_falls_back_on_missing_or_empty():
    context = {"params": {"hours": 6, "top_tables": None}}
    assert p.param_value(context, "hours", 24) == 6
    assert p.param_value(context, "top_tables", 10) == 10  # empty = the config's
    assert p.param_value(context, "absent", 3) == 3  # an older DAG version without the param
    assert p.param_value({}, "hours", 24) == 24


def test_selected_without_a_checks_param_runs_everything():
    assert p.selected({"params": {}}, "check_a")
    assert p.selected({}, "check_a")
    assert p.selected_checks({"params": {"checks": "check_b"}}) == ["check_b"]
    assert p.selected({"params": {"checks": ["check_a"]}}, "check_a")
    assert not p.selected({"params": {"checks": ["check_a"]}}, "check_b")


def test_not_selected_result_is_skipped_and_says_what_was_chosen():
    result = p.not_selected_result("check_b", ["check_a", "check_c"])
    assert result.check == "check_b.not_selected" and result.status.value == "skipped"
    assert "check_a, check_c" in result.summary
    assert result.details == {"param": "checks", "selected": ["check_a", "check_c"]}


# -- the decorator -----------------------------------------------------------------------------------


def _run_as_task(fn: Any, task_id: str, params: dict[str, Any], **kwargs: Any) -> Any:
    from airflow.sdk.execution_time.context import set_current_context

    context: Any = {"ti": SimpleNamespace(task_id=task_id), "params": params}
    with set_current_context(context):
        return fn(**kwargs)


def test_when_selected_runs_a_selected_check_with_its_arguments():
    calls: list[dict[str, Any]] = []

    @p.when_selected
    def check_a(**context: Any) -> list[dict[str, Any]]:
        """Doc kept."""
        calls.append(context)
        return [{"check": "a.ok"}]

    assert check_a.__name__ == "check_a" and check_a.__doc__ == "Doc kept."
    out = _run_as_task(check_a, "check_a", {"checks": ["check_a"]}, run_id="r1")
    assert out == [{"check": "a.ok"}] and calls == [{"run_id": "r1"}]


def test_when_selected_reports_an_unselected_check_as_skipped_without_running_it():
    @p.when_selected
    def check_b() -> list[dict[str, Any]]:
        raise AssertionError("an unselected check must not run")

    out = _run_as_task(check_b, "check_b", {"checks": ["check_a"]})
    assert [(r["check"], r["status"]) for r in out] == [("check_b.not_selected", "skipped")]


def test_when_selected_keeps_the_signature_airflow_reads():
    import inspect

    @p.when_selected
    def check_c(*, outlet_events: Any = None, **context: Any) -> list[dict[str, Any]]:
        return []

    assert "outlet_events" in inspect.signature(check_c).parameters


# -- the glue's readers of the values ------------------------------------------------------------


def test_capacity_period_and_horizon_follow_the_params_else_the_config():
    from datetime import timedelta

    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.capacity_planning import airflow_tasks as capacity_tasks

    cfg = load_config()
    scheduled: dict[str, Any] = {"params": {"period_days": None, "horizon_days": None}}
    assert capacity_tasks.period(scheduled, cfg) == cfg.tasks.capacity_planning.settings.period
    assert capacity_tasks.horizon_days(scheduled, cfg) == cfg.tasks.capacity_planning.settings.horizon_days
    manual = {"params": {"period_days": 7, "horizon_days": 30}}
    assert capacity_tasks.period(manual, cfg) == timedelta(days=7)
    assert capacity_tasks.horizon_days(manual, cfg) == 30.0


def test_disk_mount_point_patterns():
    from datetime import UTC, datetime

    from sanvi_ops.tasks.disk_space_check import airflow_tasks as disk_tasks
    from sanvi_ops.tasks.disk_space_check.disk import Usage

    def fs(mountpoint: str) -> Usage:
        return Usage(
            target=f"fs:db-1:{mountpoint}",
            check=f"disk.filesystem[db-1:{mountpoint}]",
            component="filesystems",
            label=mountpoint,
            used_bytes=1.0,
            size_bytes=2.0,
            at=datetime(2026, 11, 26, tzinfo=UTC),
            details={"instance": "db-1", "mountpoint": mountpoint},
        )

    patterns = disk_tasks.mount_point_filter({"params": {"mount_points": ["/var/lib/*", "/"]}})
    assert [
        u.label for u in map(fs, ["/", "/boot", "/var/lib/postgresql"]) if disk_tasks._wanted(u, patterns)
    ] == [
        "/",
        "/var/lib/postgresql",
    ]
    assert disk_tasks.mount_point_filter({"params": {"mount_points": None}}) == []
    assert disk_tasks._wanted(fs("/boot"), [])
