"""The generated alert rules, checked and unit-tested by the real ``promtool``.

The promtool test file is generated here from the same shipped config as the rules, so the
expected firing times follow ``thresholds:`` (change ``critical_for`` and the test moves with it):

- every threshold's warning and critical rule, driven by a gauge in the threshold's unit: the
  series crosses the limit (limit + 0.01) at ``t0``; the alert is not firing at
  ``t0 + for - 1m`` and is firing at ``t0 + for``; a series sitting exactly at the limit (not
  above it) never fires;
- the shipped PromQL itself (node_exporter, postgres_exporter, the backend's request counters and
  latency histogram), with steady raw series well above and well below the critical limits: the
  units come out right (percent, milliseconds);
- the SLO burn-rate alerts: a fast burn (2 % errors, 20x the 0.1 % budget) pages, and only once
  the 1h window has burned 14.4x (not 40 minutes into a burn, paging an hour into it); a slow
  burn (0.2 %, 2x) never pages (it opens a ticket).

Without promtool the tests skip with the reason; with ``CI=true`` that is a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.prometheus import INSTALL_HINT, find_binary
from sanvi_ops.core import alert_rules
from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, MaintenanceConfig, load_config
from sanvi_ops.core.prometheus import duration_ms
from tests.fixtures.prometheus import _in_ci

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

BASE = "https://airflow.example.com"
T0 = 10  # minutes: where the crossing series goes above the limit


@pytest.fixture(scope="module")
def promtool() -> str:
    path = find_binary("promtool")
    if path is None:
        reason = f"promtool not installed ({INSTALL_HINT})"
        if _in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def cfg() -> MaintenanceConfig:
    return load_config(DEFAULT_CONFIG_PATH)


def _run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _write_rules(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _rules_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def _minutes(rule: dict[str, Any]) -> int:
    held = rule.get("for")
    return duration_ms(held) // 60_000 if held else 0


def _annotations(rule: dict[str, Any], value: str, labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them for ``labels`` and ``value``."""
    out = {}
    for key, text in rule["annotations"].items():
        text = text.replace('{{ $value | printf "%.2f" }}', value)
        text = text.replace("{{ $value | humanizePercentage }}", value)
        for name in ("instance", "mountpoint"):
            text = text.replace(f"{{{{ $labels.{name} }}}}", labels.get(name, ""))
        assert "{{" not in text, text
        out[key] = text
    return out


def _expected(rule: dict[str, Any], series_labels: dict[str, str], value: str) -> dict[str, Any]:
    labels = {**series_labels, **rule["labels"]}
    return {"exp_labels": labels, "exp_annotations": _annotations(rule, value, series_labels)}


def test_shipped_rule_files_pass_promtool_check(promtool, cfg, tmp_path):
    generated = tmp_path / "generated.yml"
    generated.write_text(alert_rules.render(cfg, BASE))
    proc = _run(promtool, "check", "rules", str(alert_rules.OUTPUT), str(generated), cwd=tmp_path)
    assert "SUCCESS: 16 rules found" in proc.stdout


def _threshold_tests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rules = _rules_by_name(doc)
    groups = []
    for spec in alert_rules.METRICS:
        for level in ("warning", "critical"):
            rule = rules[f"Sanvi{alert_rules._camel(spec.key)}{level.capitalize()}"]
            limit = float(rule["expr"].rsplit(" > ", 1)[1])
            held = _minutes(rule)
            above = limit + 0.01
            cross = {"instance": f"cross-{spec.key}-{level}", "mountpoint": "/data"}
            below = {"instance": f"below-{spec.key}-{level}", "mountpoint": "/data"}
            end = T0 + held + 20

            def series(labels: dict[str, str], values: str, key: str = spec.key) -> dict[str, str]:
                selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
                return {"series": f"sanvi_test_{key}{{{selector}}}", "values": values}

            firing = [_expected(rule, cross, f"{above:.2f}")]
            groups.append(
                {
                    "name": rule["alert"],
                    "interval": "1m",
                    "input_series": [
                        # t = 0 .. T0-1 exactly at the limit (not above it), from T0 on just above.
                        series(cross, f"{limit:g}x{T0 - 1} {above:g}x{end - T0}"),
                        series(below, f"{limit:g}x{end}"),
                    ],
                    "alert_rule_test": [
                        {"eval_time": f"{T0 + held - 1}m", "alertname": rule["alert"], "exp_alerts": []},
                        {"eval_time": f"{T0 + held}m", "alertname": rule["alert"], "exp_alerts": firing},
                        {"eval_time": f"{end}m", "alertname": rule["alert"], "exp_alerts": firing},
                    ],
                }
            )
    return groups


def test_thresholds_fire_exactly_after_their_for_duration(promtool, cfg, tmp_path):
    gauges = {spec.key: f"sanvi_test_{spec.key}" for spec in alert_rules.METRICS}
    doc = alert_rules.build_rules(cfg, BASE, expressions=gauges)
    rules_file = _write_rules(tmp_path, doc)
    tests = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": _threshold_tests(doc),
    }
    # The guide's durations are what is being tested (CPU critical 5m, warning 15m, ...).
    by_name = _rules_by_name(doc)
    assert by_name["SanviCpuCritical"]["for"] == "5m" and by_name["SanviCpuWarning"]["for"] == "15m"
    assert len(tests["tests"]) == 12
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = _run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert "SUCCESS" in proc.stdout


def test_shipped_promql_yields_the_thresholds_units(promtool, cfg, tmp_path):
    """Real exporter series, steady for 40 minutes: 95 % hot hosts fire, 50 % ones don't."""
    doc = alert_rules.build_rules(cfg, BASE)
    rules = _rules_by_name(doc)
    n = 40
    fs = 'fstype="ext4",mountpoint="/data"'
    series = [
        # CPU: idle seconds growing 3 s/min = 5 % idle = 95 % busy; 30 s/min = 50 %.
        ('node_cpu_seconds_total{instance="hot",cpu="0",mode="idle"}', f"0+3x{n}"),
        ('node_cpu_seconds_total{instance="cool",cpu="0",mode="idle"}', f"0+30x{n}"),
        ('node_memory_MemAvailable_bytes{instance="hot"}', f"5x{n}"),
        ('node_memory_MemTotal_bytes{instance="hot"}', f"100x{n}"),
        ('node_memory_MemAvailable_bytes{instance="cool"}', f"50x{n}"),
        ('node_memory_MemTotal_bytes{instance="cool"}', f"100x{n}"),
        (f'node_filesystem_avail_bytes{{instance="hot",{fs}}}', f"5x{n}"),
        (f'node_filesystem_size_bytes{{instance="hot",{fs}}}', f"100x{n}"),
        (f'node_filesystem_avail_bytes{{instance="cool",{fs}}}', f"50x{n}"),
        (f'node_filesystem_size_bytes{{instance="cool",{fs}}}', f"100x{n}"),
        # 6 % of requests fail; every request takes between 0.5 s and 2 s (p95 = 1.925 s).
        ('http_requests_total{job="sanvi-backend",status="500"}', f"0+6x{n}"),
        ('http_requests_total{job="sanvi-backend",status="200"}', f"0+94x{n}"),
        ('http_request_duration_seconds_bucket{job="sanvi-backend",le="0.5"}', f"0x{n}"),
        ('http_request_duration_seconds_bucket{job="sanvi-backend",le="2"}', f"0+100x{n}"),
        ('http_request_duration_seconds_bucket{job="sanvi-backend",le="+Inf"}', f"0+100x{n}"),
        # 95 of 100 usable slots (103 max_connections - 3 reserved); the cool one 50.
        ('pg_stat_activity_count{instance="db-hot",datname="app",state="active"}', f"95x{n}"),
        ('pg_settings_max_connections{instance="db-hot"}', f"103x{n}"),
        ('pg_settings_superuser_reserved_connections{instance="db-hot"}', f"3x{n}"),
        ('pg_stat_activity_count{instance="db-cool",datname="app",state="active"}', f"50x{n}"),
        ('pg_settings_max_connections{instance="db-cool"}', f"103x{n}"),
        ('pg_settings_superuser_reserved_connections{instance="db-cool"}', f"3x{n}"),
    ]
    hot = {"instance": "hot"}
    expected = {
        "SanviCpuCritical": [(hot, "95.00")],
        "SanviMemoryCritical": [(hot, "95.00")],
        "SanviDiskCritical": [({"instance": "hot", "fstype": "ext4", "mountpoint": "/data"}, "95.00")],
        "SanviErrorRateCritical": [({}, "6.00")],
        "SanviLatencyP95Critical": [({}, "1925.00")],
        "SanviDbConnectionsCritical": [({"instance": "db-hot"}, "95.00")],
    }
    tests = {
        "rule_files": [_write_rules(tmp_path, doc).name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": f"{n - 5}m",
                        "alertname": name,
                        "exp_alerts": [_expected(rules[name], labels, value) for labels, value in alerts],
                    }
                    for name, alerts in expected.items()
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    _run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)


def _burn_series(error_values: str, ok_values: str) -> list[dict[str, str]]:
    return [
        {"series": 'http_requests_total{job="sanvi-backend",status="500"}', "values": error_values},
        {"series": 'http_requests_total{job="sanvi-backend",status="200"}', "values": ok_values},
    ]


def test_burn_rate_fast_burn_pages_slow_burn_does_not(promtool, cfg, tmp_path):
    # The shipped SLOs: 99.9 % availability and < 0.1 % errors, a 0.1 % budget for both.
    assert (100 - cfg.slos.availability_pct) / 100 == pytest.approx(0.001)
    assert cfg.slos.error_rate_pct / 100 == pytest.approx(0.001)
    doc = alert_rules.build_rules(cfg, BASE)
    rules = _rules_by_name(doc)
    page_names = ["SanviAvailabilityBurnRatePage", "SanviErrorRateBurnRatePage"]

    def firing(name: str, value: str) -> list[dict[str, Any]]:
        return [_expected(rules[name], {}, value)]

    fast = {  # 2 % of requests fail (20x the budget) from the start: pages within minutes.
        "interval": "1m",
        "input_series": _burn_series("0+2x120", "0+98x120"),
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": name, "exp_alerts": firing(name, "2%")} for name in page_names
        ],
    }
    # Two healthy hours, then 2 % errors from t = 120m: the 1h window has burned 14.4x (1.44 %)
    # only after ~44 minutes of it (and 6h/30m at 6x after ~52), so there is no page at +40m.
    onset = {
        "interval": "1m",
        "input_series": _burn_series("0x119 2+2x60", "0+98x180"),
        "alert_rule_test": [{"eval_time": "125m", "alertname": name, "exp_alerts": []} for name in page_names]
        + [{"eval_time": "160m", "alertname": name, "exp_alerts": []} for name in page_names]
        # An hour into it both windows of the 1h/5m pair hold only the burn: 2 %, paging.
        + [{"eval_time": "180m", "alertname": name, "exp_alerts": firing(name, "2%")} for name in page_names],
    }
    slow = {  # 0.2 % of requests fail (2x) for 7 hours: never a page, a ticket (3d/6h at 1x).
        "interval": "1m",
        "input_series": _burn_series("0+1x420", "0+499x420"),
        "alert_rule_test": [
            {"eval_time": t, "alertname": name, "exp_alerts": []}
            for t in ("10m", "1h", "6h", "7h")
            for name in page_names
        ]
        + [
            {
                "eval_time": "7h",
                "alertname": "SanviErrorRateBurnRateTicket",
                "exp_alerts": firing("SanviErrorRateBurnRateTicket", "0.2%"),
            }
        ],
    }
    tests = {
        "rule_files": [_write_rules(tmp_path, doc).name],
        "evaluation_interval": "1m",
        "tests": [fast, onset, slow],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    _run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)
