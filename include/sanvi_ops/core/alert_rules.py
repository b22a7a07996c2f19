"""A Prometheus rule file from the guide's ``thresholds:`` and ``slos:`` (``make rules``).

The DAGs read the thresholds once a day or once a week; Prometheus evaluates a rule every
minute. This module turns the same config into alerting rules so "CPU > 90 % for 5m" is noticed
five minutes after it starts, not at the next scheduled run:

- one ``warning`` and one ``critical`` rule per threshold, with the config's ``warning_for`` /
  ``critical_for`` as the rule's ``for:`` (no ``for:`` where the guide gives no duration: then the
  first evaluation above the limit fires, as the DAG checks grade the current value);
- the PromQL is the DAGs' own: ``tasks.system_health_check.settings.prometheus`` (CPU, memory), ``tasks.disk_space_check.settings``'
  filesystem queries, ``performance_analysis``'s error-rate and p95 queries with ``$window`` =
  :data:`RATE_WINDOW`; only DB connections has no PromQL in the config (the DAGs ask PostgreSQL
  directly), so :data:`DB_CONNECTIONS_QUERY` uses postgres_exporter's metrics;
- labels ``severity`` (warning/critical, or page/ticket for burn rates), ``priority`` (the guide's
  P-level an incident of that alert gets), ``team`` (the owning DAG's team from ``tasks`` /
  ``teams``), ``component`` and ``dag_id``; annotations ``summary``, ``description`` (with the
  value) and ``runbook_url`` (the owning DAG in the Airflow UI);
- multi-window, multi-burn-rate alerts (Google SRE workbook, "Alerting on SLOs") for the
  availability and error-rate SLOs: 1h/5m at 14.4x and 6h/30m at 6x page, 1d/2h at 3x and
  3d/6h at 1x open a ticket.

Pure logic: no Airflow, no network. ``python -m sanvi_ops.core.alert_rules -o FILE`` writes the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from sanvi_ops.core.config import MaintenanceConfig, Threshold, load_config
from sanvi_ops.core.prometheus import promql_duration

#: Where ``make rules`` writes the committed rule file.
REPO = Path(__file__).resolve().parents[3]
OUTPUT = REPO / "deploy" / "prometheus" / "sanvi-ops-rules.yml"

#: The Airflow UI the runbook links point at: ``$AIRFLOW__API__BASE_URL`` (Airflow's own
#: ``[api] base_url``), else this default (what ``make run`` serves).
BASE_URL_ENV = "AIRFLOW__API__BASE_URL"
DEFAULT_BASE_URL = "http://localhost:8080"

#: How often the groups are evaluated; the ``for:`` durations count in these steps.
EVALUATION_INTERVAL = "1m"
#: The range of the error-rate and latency queries for the threshold rules (``$window``).
RATE_WINDOW = "5m"

#: Connections in use as a percentage of what ordinary logins can get (max_connections minus the
#: superuser-reserved slots), per instance, from postgres_exporter. The config names no PromQL for
#: this metric (the DAGs ask PostgreSQL itself), so this is the one expression of our own.
DB_CONNECTIONS_QUERY = (
    "100 * sum by (instance) (pg_stat_activity_count)"
    " / on (instance) (max by (instance) (pg_settings_max_connections)"
    " - max by (instance) (pg_settings_superuser_reserved_connections))"
)

#: The guide's P-level an alert's incident gets: a crossed critical threshold is a significant
#: impact (P2, as :data:`sanvi_ops.core.notify.pipeline.DEFAULT_INCIDENT_SEVERITY`), a warning is
#: "performance degraded" (P3); a fast SLO burn pages (P2), a slow one is a ticket (P3).
PRIORITY = {"critical": "P2", "warning": "P3", "page": "P2", "ticket": "P3"}

#: (long window, short window, burn-rate factor, severity): the SRE workbook's table 5-8.
BURN_WINDOWS: tuple[tuple[str, str, float, str], ...] = (
    ("1h", "5m", 14.4, "page"),
    ("6h", "30m", 6.0, "page"),
    ("1d", "2h", 3.0, "ticket"),
    ("3d", "6h", 1.0, "ticket"),
)


class AlertRulesError(ValueError):
    """The config cannot be turned into rules; the message starts with the key path to fix."""


@dataclass(frozen=True)
class MetricSpec:
    """One threshold's metric: what it is called, its unit, the DAG that owns it, where it lives."""

    key: str  # key of ``thresholds``
    title: str  # "CPU"
    unit: str  # the unit ``thresholds.<key>.unit`` must have
    dag_id: str  # the DAG whose runbook the alert links to and whose team it pages
    component: str
    where: str  # the series it is about, a template over the alert's labels


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("cpu", "CPU", "%", "system_health_check", "host", "on {{ $labels.instance }}"),
    MetricSpec("memory", "Memory", "%", "system_health_check", "host", "on {{ $labels.instance }}"),
    MetricSpec(
        "disk",
        "Disk",
        "%",
        "disk_space_check",
        "storage",
        "on {{ $labels.instance }} {{ $labels.mountpoint }}",
    ),
    MetricSpec("error_rate", "Error rate", "%", "performance_analysis", "backend", "for the backend"),
    MetricSpec("latency_p95", "p95 latency", "ms", "performance_analysis", "backend", "for the backend"),
    MetricSpec(
        "db_connections",
        "DB connections",
        "%",
        "system_health_check",
        "postgres",
        "on {{ $labels.instance }}",
    ),
)

#: The SLO burn-rate alerts read the request error ratio; Performance Analysis owns it.
SLO_DAG = "performance_analysis"
SLO_COMPONENT = "backend"


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _window(template: str, window: str) -> str:
    return template.replace("$window", window)


def metric_expressions(cfg: MaintenanceConfig) -> dict[str, str]:
    """PromQL per threshold key, in the threshold's unit (percent or milliseconds)."""
    pa, ds = cfg.tasks.performance_analysis.settings, cfg.tasks.disk_space_check.settings
    return {
        "cpu": cfg.tasks.system_health_check.settings.prometheus.cpu.strip(),
        "memory": cfg.tasks.system_health_check.settings.prometheus.memory.strip(),
        "disk": f"100 * (1 - ({ds.filesystem_avail_query.strip()}) / ({ds.filesystem_size_query.strip()}))",
        "error_rate": f"100 * ({_window(pa.error_rate_query.strip(), RATE_WINDOW)})",
        "latency_p95": f"1000 * ({_window(pa.latency_p95_query.strip(), RATE_WINDOW)})",
        "db_connections": DB_CONNECTIONS_QUERY,
    }


def error_ratio_expression(cfg: MaintenanceConfig, window: str) -> str:
    """The request error ratio (0..1) over ``window``: Performance Analysis's own query."""
    return _window(cfg.tasks.performance_analysis.settings.error_rate_query.strip(), window)


def _number(value: float) -> str:
    """A PromQL/annotation literal: ``70.0`` → ``70``, ``0.001`` → ``0.001``."""
    return f"{value:.10g}"


def _team(cfg: MaintenanceConfig, dag_id: str) -> str:
    task = cfg.tasks.get(dag_id)
    if task is None:
        raise AlertRulesError(f"tasks.{dag_id}: missing; the alert rules take the responsible team from it")
    team = cfg.teams.get(task.team)
    if team is None:
        raise AlertRulesError(f"tasks.{dag_id}.team: {task.team!r} is not a key of teams")
    return team.name


def runbook_url(base_url: str, dag_id: str) -> str:
    """The DAG's page in the Airflow UI (``<base>/dags/<dag_id>``), its runbook."""
    return f"{base_url.rstrip('/')}/dags/{dag_id}"


def _check_threshold(spec: MetricSpec, thr: Threshold) -> None:
    path = f"thresholds.{spec.key}"
    if thr.unit != spec.unit:
        raise AlertRulesError(
            f"{path}.unit: the alert rule's PromQL yields {spec.unit!r}, the config says {thr.unit!r}; "
            f"write the limits in {spec.unit}"
        )
    for name in ("warning_for", "critical_for"):
        value: timedelta | None = getattr(thr, name)
        if value is None:
            continue
        try:
            promql_duration(value)
        except ValueError as exc:
            raise AlertRulesError(f"{path}.{name}: {exc}") from None
        if value % timedelta(minutes=1):
            raise AlertRulesError(
                f"{path}.{name}: {promql_duration(value)} is not a whole number of evaluation "
                f"intervals ({EVALUATION_INTERVAL})"
            )


def threshold_rules(
    cfg: MaintenanceConfig, base_url: str, expressions: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """A warning and a critical rule per threshold.

    :param expressions: PromQL per threshold key; default :func:`metric_expressions` (tests pass
        plain gauges to drive the thresholds exactly).
    """
    exprs = dict(metric_expressions(cfg) if expressions is None else expressions)
    rules: list[dict[str, Any]] = []
    for spec in METRICS:
        thr: Threshold = getattr(cfg.thresholds, spec.key)
        _check_threshold(spec, thr)
        team = _team(cfg, spec.dag_id)
        unit = thr.unit
        sep = "" if unit == "%" else " "
        for level in ("warning", "critical"):
            limit: float = getattr(thr, level)
            held: timedelta | None = getattr(thr, f"{level}_for")
            held_text = f" for {promql_duration(held)}" if held else ""
            rule: dict[str, Any] = {
                "alert": f"Sanvi{_camel(spec.key)}{level.capitalize()}",
                "expr": f"({exprs[spec.key]}) > {_number(limit)}",
            }
            if held:
                rule["for"] = promql_duration(held)
            rule["labels"] = {
                "severity": level,
                "priority": PRIORITY[level],
                "team": team,
                "component": spec.component,
                "dag_id": spec.dag_id,
            }
            rule["annotations"] = {
                "summary": f"{spec.title} above {_number(limit)}{sep}{unit}{held_text} ({level})",
                "description": (
                    f'{spec.title} {spec.where} is {{{{ $value | printf "%.2f" }}}}{sep}{unit}: above the {level} limit of {_number(limit)}{sep}{unit}{held_text} '
                    f"(thresholds.{spec.key}.{level}). Runbook: the {spec.dag_id} DAG."
                ),
                "runbook_url": runbook_url(base_url, spec.dag_id),
            }
            rules.append(rule)
    return rules


def _budget(cfg: MaintenanceConfig) -> list[tuple[str, str, float, str]]:
    """(name, title, error budget as a ratio, config key) per SLO the burn-rate alerts watch."""
    slos = cfg.slos
    out = [
        ("availability", "Availability", (100.0 - slos.availability_pct) / 100.0, "slos.availability_pct"),
        ("error_rate", "Error rate", slos.error_rate_pct / 100.0, "slos.error_rate_pct"),
    ]
    for _, _, budget, key in out:
        if budget <= 0:
            raise AlertRulesError(
                f"{key}: leaves no error budget (a single failed request breaks it); burn-rate alerts "
                "need an objective below 100 % availability / above 0 % errors"
            )
    return out


def burn_rate_rules(cfg: MaintenanceConfig, base_url: str) -> list[dict[str, Any]]:
    """Multi-window multi-burn-rate alerts: one page and one ticket alert per SLO.

    Each window pair fires only when both its long and its short window burn faster than the
    factor: the long window proves it is significant, the short one that it is still going on
    (the alert resolves minutes after the errors stop).
    """
    team = _team(cfg, SLO_DAG)
    rules: list[dict[str, Any]] = []
    for name, title, budget, key in _budget(cfg):
        objective = (
            f"{_number(cfg.slos.availability_pct)} % availability"
            if name == "availability"
            else f"error rate < {_number(cfg.slos.error_rate_pct)} %"
        )
        for severity in ("page", "ticket"):
            windows = [w for w in BURN_WINDOWS if w[3] == severity]
            clauses = []
            for long, short, factor, _ in windows:
                limit = _number(factor * budget)
                clauses.append(
                    f"(\n  ({error_ratio_expression(cfg, long)}) > {limit}\nand\n"
                    f"  ({error_ratio_expression(cfg, short)}) > {limit}\n)"
                )
            pairs = ", ".join(f"{f:g}x over {lw} and {sw}" for lw, sw, f, _ in windows)
            rules.append(
                {
                    "alert": f"Sanvi{_camel(name)}BurnRate{severity.capitalize()}",
                    "expr": "\nor\n".join(clauses) + "\n",
                    "labels": {
                        "severity": severity,
                        "priority": PRIORITY[severity],
                        "team": team,
                        "component": SLO_COMPONENT,
                        "dag_id": SLO_DAG,
                        "slo": name,
                    },
                    "annotations": {
                        "summary": f"{title} SLO ({objective}) error budget burning ({severity})",
                        "description": (
                            f"The request error ratio is {{{{ $value | humanizePercentage }}}}, burning the "
                            f"error budget of {_number(budget * 100)} % ({key}) at {pairs} or faster."
                        ),
                        "runbook_url": runbook_url(base_url, SLO_DAG),
                    },
                }
            )
    return rules


def build_rules(
    cfg: MaintenanceConfig,
    base_url: str = DEFAULT_BASE_URL,
    expressions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The rule file as a mapping (``groups:``), ready for :func:`render`."""
    return {
        "groups": [
            {
                "name": "sanvi-ops-thresholds",
                "interval": EVALUATION_INTERVAL,
                "rules": threshold_rules(cfg, base_url, expressions),
            },
            {
                "name": "sanvi-ops-slo-burn-rate",
                "interval": EVALUATION_INTERVAL,
                "rules": burn_rate_rules(cfg, base_url),
            },
        ]
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = (
    "# Generated by `make rules` (python -m sanvi_ops.core.alert_rules) from include/config/maintenance.yaml\n"
    "# (thresholds:, slos:). Do not edit: change the config and regenerate. See docs/alerting.md.\n"
)


def render(cfg: MaintenanceConfig, base_url: str = DEFAULT_BASE_URL) -> str:
    """The rule file's text."""
    body = yaml.dump(build_rules(cfg, base_url), Dumper=_Dumper, sort_keys=False, width=1000)
    return HEADER + body


def resolve_base_url(explicit: str | None) -> str:
    """``explicit``, else ``$AIRFLOW__API__BASE_URL``, else :data:`DEFAULT_BASE_URL`."""
    value = explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if not value.startswith(("http://", "https://")):
        raise AlertRulesError(f"Airflow base URL {value!r} must start with http:// or https://")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sanvi_ops.core.alert_rules",
        description="Write the Prometheus alert rules generated from thresholds: and slos:.",
    )
    parser.add_argument("-o", "--output", help="write the rule file here (default: stdout)")
    parser.add_argument(
        "--config", help="maintenance config (default: $SANVI_OPS_CONFIG or the shipped file)"
    )
    parser.add_argument(
        "--base-url", help=f"Airflow UI for runbook links (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})"
    )
    args = parser.parse_args(argv)
    try:
        text = render(load_config(args.config), resolve_base_url(args.base_url))
    except ValueError as exc:  # ConfigError and AlertRulesError name the key path
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
