"""The Prometheus rule file generated from ``thresholds:`` and ``slos:`` (sanvi_ops.core.alert_rules)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from sanvi_ops.core import alert_rules
from sanvi_ops.core.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    MaintenanceConfig,
    load_config,
    parse_config,
)
from sanvi_ops.core.notify.pipeline import DEFAULT_INCIDENT_SEVERITY

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cfg() -> MaintenanceConfig:
    return load_config(DEFAULT_CONFIG_PATH)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def _rules(cfg: MaintenanceConfig) -> dict[str, dict[str, Any]]:
    doc = alert_rules.build_rules(cfg, "https://airflow.example.com/")
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_committed_rule_file_is_up_to_date(cfg):
    assert alert_rules.OUTPUT.exists(), "deploy/prometheus/sanvi-ops-rules.yml is missing: run `make rules`"
    assert alert_rules.OUTPUT.read_text() == alert_rules.render(cfg, alert_rules.DEFAULT_BASE_URL), (
        "deploy/prometheus/sanvi-ops-rules.yml is out of date with include/config/maintenance.yaml or "
        "sanvi_ops/core/alert_rules.py: run `make rules` and commit the result"
    )


def test_threshold_rules_follow_the_guide(cfg):
    rules = _rules(cfg)
    cpu_q = cfg.tasks.system_health_check.settings.prometheus.cpu
    expected = {
        # alert: (expr, for) — the guide: CPU > 70 % for 15m / > 90 % for 5m, error rate 1 % / 5 % ...
        "SanviCpuWarning": (f"({cpu_q}) > 70", "15m"),
        "SanviCpuCritical": (f"({cpu_q}) > 90", "5m"),
        "SanviMemoryWarning": (f"({cfg.tasks.system_health_check.settings.prometheus.memory}) > 80", "15m"),
        "SanviMemoryCritical": (f"({cfg.tasks.system_health_check.settings.prometheus.memory}) > 90", "5m"),
        "SanviDiskWarning": (None, None),
        "SanviDiskCritical": (None, None),
        "SanviErrorRateWarning": (None, "5m"),
        "SanviErrorRateCritical": (None, "1m"),
        "SanviLatencyP95Warning": (None, None),
        "SanviLatencyP95Critical": (None, None),
        "SanviDbConnectionsWarning": (None, None),
        "SanviDbConnectionsCritical": (None, None),
    }
    for name, (expr, held) in expected.items():
        rule = rules[name]
        if expr is not None:
            assert rule["expr"] == expr
        assert rule.get("for") == held, name
    assert rules["SanviDiskCritical"]["expr"].endswith(") > 90")
    assert "node_filesystem_avail_bytes" in rules["SanviDiskCritical"]["expr"]
    # Performance Analysis's own queries, with $window = 5m, scaled to the threshold's unit.
    err = rules["SanviErrorRateCritical"]["expr"]
    assert (
        err.startswith("(100 * (sum(rate(")
        and "[5m]" in err
        and "$window" not in err
        and err.endswith(" > 5")
    )
    lat = rules["SanviLatencyP95Warning"]["expr"]
    assert lat.startswith("(1000 * (histogram_quantile(0.95") and lat.endswith(" > 500")
    assert rules["SanviDbConnectionsCritical"]["expr"] == f"({alert_rules.DB_CONNECTIONS_QUERY}) > 90"


def test_labels_name_severity_priority_team_and_component(cfg):
    rules = _rules(cfg)
    cpu = rules["SanviCpuCritical"]["labels"]
    assert cpu == {
        "severity": "critical",
        "priority": DEFAULT_INCIDENT_SEVERITY,
        "team": "DevOps",
        "component": "host",
        "dag_id": "system_health_check",
    }
    assert rules["SanviCpuWarning"]["labels"]["severity"] == "warning"
    assert rules["SanviCpuWarning"]["labels"]["priority"] == "P3"
    assert rules["SanviDbConnectionsWarning"]["labels"]["component"] == "postgres"
    assert rules["SanviDiskWarning"]["labels"]["dag_id"] == "disk_space_check"
    for rule in rules.values():
        assert set(rule["labels"]) >= {"severity", "priority", "team", "component", "dag_id"}
        assert rule["labels"]["priority"] in cfg.severities


def test_team_is_the_owning_dags_team(raw):
    data = copy.deepcopy(raw)
    data["tasks"]["system_health_check"]["team"] = "dba"
    rules = _rules(parse_config(data))
    assert rules["SanviCpuCritical"]["labels"]["team"] == "DBA"
    assert rules["SanviErrorRateCritical"]["labels"]["team"] == "DevOps"


def test_annotations_carry_value_and_runbook(cfg):
    rule = _rules(cfg)["SanviCpuCritical"]
    ann = rule["annotations"]
    assert ann["runbook_url"] == "https://airflow.example.com/dags/system_health_check"
    assert "{{ $value" in ann["description"] and "{{ $labels.instance }}" in ann["description"]
    assert ann["summary"] == "CPU above 90% for 5m (critical)"
    assert "thresholds.cpu.critical" in ann["description"]
    lat = _rules(cfg)["SanviLatencyP95Critical"]["annotations"]
    assert lat["summary"] == "p95 latency above 1000 ms (critical)"


def test_burn_rate_alerts_use_the_workbook_windows(cfg):
    rules = _rules(cfg)
    page = rules["SanviAvailabilityBurnRatePage"]
    budget = (100 - cfg.slos.availability_pct) / 100
    assert page["labels"]["severity"] == "page" and page["labels"]["slo"] == "availability"
    for window in ("[1h]", "[5m]", "[6h]", "[30m]"):
        assert window in page["expr"]
    assert "[1d]" not in page["expr"]
    assert f"> {14.4 * budget:.10g}" in page["expr"] and f"> {6 * budget:.10g}" in page["expr"]
    ticket = rules["SanviErrorRateBurnRateTicket"]
    for window in ("[1d]", "[2h]", "[3d]", "[6h]"):
        assert window in ticket["expr"]
    assert f"> {3 * cfg.slos.error_rate_pct / 100:.10g}" in ticket["expr"]
    assert "for" not in page
    assert page["annotations"]["runbook_url"].endswith("/dags/performance_analysis")


def test_render_is_valid_yaml_with_header(cfg):
    text = alert_rules.render(cfg)
    assert text.startswith("# Generated by `make rules`")
    doc = yaml.safe_load(text)
    assert [g["name"] for g in doc["groups"]] == ["sanvi-ops-thresholds", "sanvi-ops-slo-burn-rate"]
    assert len(doc["groups"][0]["rules"]) == 12 and len(doc["groups"][1]["rules"]) == 4


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("thresholds", "cpu", "warning"), "high", "thresholds.cpu.warning"),
        (("thresholds", "memory", "critical"), 50, "thresholds.memory"),  # below warning
        (("thresholds", "disk", "critical"), 150, "thresholds.disk"),
        (("thresholds", "cpu", "critical_for"), "soon", "thresholds.cpu.critical_for"),
    ],
)
def test_bad_threshold_config_names_the_key(raw, path, value, message):
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        alert_rules.build_rules(parse_config(data))
    assert message in str(info.value)


def test_missing_threshold_names_the_key(raw):
    data = copy.deepcopy(raw)
    del data["thresholds"]["db_connections"]
    with pytest.raises(ConfigError, match=r"thresholds\.db_connections"):
        parse_config(data)


def test_unit_mismatch_is_refused_with_key_path(raw):
    data = copy.deepcopy(raw)
    data["thresholds"]["latency_p95"]["unit"] = "s"
    data["thresholds"]["latency_p95"]["warning"] = 0.5
    data["thresholds"]["latency_p95"]["critical"] = 1
    with pytest.raises(alert_rules.AlertRulesError, match=r"^thresholds\.latency_p95\.unit: .*'ms'"):
        alert_rules.build_rules(parse_config(data))


def test_duration_not_a_whole_evaluation_interval_is_refused(raw):
    data = copy.deepcopy(raw)
    data["thresholds"]["cpu"]["critical_for"] = "90s"
    with pytest.raises(alert_rules.AlertRulesError, match=r"^thresholds\.cpu\.critical_for: 1m30s"):
        alert_rules.build_rules(parse_config(data))


def test_slo_without_error_budget_is_refused(raw):
    data = copy.deepcopy(raw)
    data["slos"]["availability_pct"] = 100
    with pytest.raises(alert_rules.AlertRulesError, match=r"^slos\.availability_pct: leaves no error budget"):
        alert_rules.build_rules(parse_config(data))


def test_hostile_query_text_stays_a_yaml_string(raw):
    """A query with YAML/template metacharacters is quoted, not interpreted."""
    data = copy.deepcopy(raw)
    data["tasks"]["system_health_check"]["settings"]["prometheus"]["cpu"] = (
        'x{a="b: c # d"} or vector(0) # "\n- alert: Injected'
    )
    doc = yaml.safe_load(alert_rules.render(parse_config(data)))
    names = [r["alert"] for g in doc["groups"] for r in g["rules"]]
    assert "Injected" not in names and len(names) == 16
    assert doc["groups"][0]["rules"][0]["expr"].startswith('(x{a="b: c # d"}')


def test_base_url_from_env_and_validation(monkeypatch):
    monkeypatch.delenv(alert_rules.BASE_URL_ENV, raising=False)
    assert alert_rules.resolve_base_url(None) == alert_rules.DEFAULT_BASE_URL
    monkeypatch.setenv(alert_rules.BASE_URL_ENV, "https://ops.example.com/airflow")
    assert alert_rules.resolve_base_url(None) == "https://ops.example.com/airflow"
    assert alert_rules.resolve_base_url("http://x:8080") == "http://x:8080"
    with pytest.raises(alert_rules.AlertRulesError, match="must start with http"):
        alert_rules.resolve_base_url("javascript:alert(1)")


def test_cli_writes_file_and_reports_config_errors(tmp_path, raw, capsys, monkeypatch):
    monkeypatch.delenv(alert_rules.BASE_URL_ENV, raising=False)
    out = tmp_path / "rules" / "sanvi.yml"
    assert alert_rules.main(["-o", str(out), "--base-url", "https://a.example"]) == 0
    assert "https://a.example/dags/system_health_check" in out.read_text()
    bad = copy.deepcopy(raw)
    bad["thresholds"]["cpu"]["warning"] = 95
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text(yaml.safe_dump(bad))
    assert alert_rules.main(["--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert "thresholds.cpu" in err and "must be below critical" in err
