"""Prometheus → Alertmanager → the plugin's intake → results store → Slack, all real, on 127.0.0.1.

A live gauge crosses the critical CPU threshold; the generated rule (``for:`` scaled from 5 min
to 5 s, evaluation every second: tests/fixtures/alertmanager.py) fires; Alertmanager posts its
webhook with the bearer token to the plugin's route served by uvicorn; the incident is stored
and ``[INCIDENT]`` reaches the Slack sink with the guide's P-level and the on-call mention; the
gauge drops back below; ``[RESOLVED]`` follows in the incident's thread, and the incident is
closed in the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from sanvi_ops.core.alerting.intake import DAG_ID
from sanvi_ops.core.store import ResultStore
from tests.fixtures.alertmanager import (
    AlertPath,
    IntakeServer,
    intake_env,
    require_binaries,
    wait_for_message,
)

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@pytest.fixture
def path(
    make_db: Callable[[str], str], slack_api: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AlertPath, ResultStore]]:
    require_binaries()
    dsn = make_db("am_e2e")
    store = ResultStore(dsn)
    store.migrate()
    for key, value in intake_env(dsn, slack_api).items():
        monkeypatch.setenv(key, value)
    server = IntakeServer()
    chain = AlertPath(server.url)
    try:
        chain.start()
        yield chain, store
    finally:
        chain.stop()
        server.close()


def test_threshold_crossed_fires_incident_then_resolves(
    path: tuple[AlertPath, ResultStore], slack_api
) -> None:
    chain, store = path
    started = time.monotonic()
    chain.wait_scraped(40.0)  # healthy first: Prometheus has the series
    crossed = chain.wait_scraped(97.0)
    try:
        incident = wait_for_message(slack_api, r"^\[INCIDENT\] #\d+ - Severity: P2", timeout=30)
    except TimeoutError:
        pytest.fail(chain.logs())
    fired_after = slack_api.posts()[-1].at - crossed
    text = incident["text"]
    assert "SanviCpuCritical[backend-1]" in text
    assert "CPU on backend-1 is 97.00%: above the critical limit of 90%" in text
    assert "On-call:" in text
    assert incident["channel"] == "#sanvi-incidents"
    # Not before the (scaled) for: duration had passed.
    assert fired_after >= chain.critical_for.total_seconds()

    chain.wait_scraped(40.0)
    resolved = wait_for_message(slack_api, r"^\[RESOLVED\]", timeout=30)
    assert resolved["thread_ts"] == incident["ts"]
    assert "SanviCpuCritical[backend-1]" in resolved["text"]

    assert store.open_incidents(DAG_ID) == []
    incidents = [m for m in slack_api.messages if str(m["text"]).startswith("[INCIDENT]")]
    assert len(incidents) == 1, [m["text"][:60] for m in incidents]  # the warning rule never held 15 s
    assert time.monotonic() - started < 60
