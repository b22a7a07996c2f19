"""The DR-site activation's approval before a real DR site is pointed (no servers).

Which runs ask (a real account's non-dry-run activation with a DR site to point), what the
drill does with the answers, and that the DAG puts the approvals before the drill without letting
a skipped approval skip the drill.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml

from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.dr_testing.airflow_tasks import (
    PROMOTE_TASK_PREFIX,
    promote_approvers,
    promote_decision,
    promote_needs_approval,
)
from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag

REPO = Path(__file__).resolve().parents[3]


def _cfg(tmp_path: Path, **dr_site: object):
    data = shipped_config()
    data["tasks"]["dr_testing"]["settings"]["dr_site"].update(dr_site)
    path = tmp_path / "maintenance.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def _ctx(scope: str = "dr_site_activation", dry_run: bool = False, ti: object = None) -> dict:
    return {
        "params": {"scope": scope, "dry_run": dry_run},
        "logical_date": datetime(2027, 7, 6, 11, tzinfo=UTC),
        "ti": ti,
    }


def test_only_a_real_accounts_activation_that_points_the_site_asks(tmp_path, monkeypatch):
    site = {
        "url": "https://dr.sanvi-machinery.com/api/health",
        "point_url": "https://dr-control.example/point",
    }
    cfg = _cfg(tmp_path, **site)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))  # a real account
    assert promote_needs_approval(_ctx(), cfg) is None
    assert promote_needs_approval(_ctx(scope="full_system"), cfg) == "scope full_system: nothing is promoted"
    assert promote_needs_approval(_ctx(dry_run=True), cfg) == "a dry run: nothing is promoted"
    assert "point_url/url not set" in str(promote_needs_approval(_ctx(), _cfg(tmp_path)))
    # the local stack (moto on loopback): the demo DR site is pointed without asking
    local = {"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:5000"}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(local))
    assert "the local stack" in str(promote_needs_approval(_ctx(), cfg))


class _Ti:
    def __init__(self, answers: dict[str, dict | None]):
        self.answers = answers

    def xcom_pull(self, task_ids: str, default=None):
        return self.answers.get(task_ids.removeprefix(PROMOTE_TASK_PREFIX), default)


def test_every_approver_must_approve_before_promoting(tmp_path):
    cfg = _cfg(tmp_path)
    keys = promote_approvers(cfg)
    assert keys == list(cfg.deployment_windows["production"].approvers) and len(keys) == 2
    yes = {"outcome": "approved", "by": "someone"}
    assert promote_decision(_ctx(ti=_Ti(dict.fromkeys(keys, yes))), cfg)[0] is True
    go, why = promote_decision(_ctx(ti=_Ti({keys[0]: yes, keys[1]: None})), cfg)
    assert go is False and f"{keys[1]} no answer" in why
    go, why = promote_decision(_ctx(ti=_Ti({keys[0]: yes, keys[1]: {"outcome": "rejected"}})), cfg)
    assert go is False and "rejected" in why


def test_the_dag_asks_before_the_drill_and_a_skipped_ask_does_not_skip_it():
    dag = load_dag("dr_testing")
    drill = dag.get_task("drill")
    asks = [t for t in dag.tasks if t.task_id.startswith(PROMOTE_TASK_PREFIX)]
    assert len(asks) == 2
    assert all(t.task_id in drill.upstream_task_ids for t in asks)
    assert drill.trigger_rule == "none_failed"
