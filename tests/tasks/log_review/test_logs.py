"""Log Review logic without servers: signatures, levels, the PostgreSQL log parser, judging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sanvi_ops.core.config import Threshold
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.log_review.logs import (
    ErrorDigest,
    RateLimits,
    judge_source,
    level_of,
    parse_postgres_log,
    signature,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
LIMITS = RateLimits(
    percent=Threshold(warning=1, critical=5, unit="%"),
    per_minute=Threshold(warning=1, critical=10, unit="errors/min"),
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ERROR timeout after 3012 ms for order 8812", "ERROR timeout after 15 ms for order 7"),
        (
            "2026-11-27T08:01:02.123Z ERROR user 5f0c6c1e-8d7a-4c43-9a57-0b9ad1c3f6a1 not found",
            "2026-11-26 23:59:59,001 ERROR user 0b9ad1c3-8d7a-4c43-9a57-5f0c6c1e8d7a not found",
        ),
        ("ERROR connect to 10.0.3.17:5432 refused", "ERROR connect to 192.168.1.2:6379 refused"),
        (
            "FATAL pointer 0x7ffd1234abcd bad, trace deadbeefcafe1234",
            "FATAL pointer 0x1 bad, trace 0123456789abcdef",
        ),
        ("ERROR job req-8f2a failed: key 'abc'", "ERROR job req-1 failed: key 'other value'"),
    ],
)
def test_variable_parts_are_normalised_away(a: str, b: str) -> None:
    assert signature(a) == signature(b)


def test_different_errors_keep_different_signatures() -> None:
    assert signature("ERROR payment declined") != signature("ERROR payment timeout")
    assert "<uuid>" in signature("ERROR 5f0c6c1e-8d7a-4c43-9a57-0b9ad1c3f6a1")
    assert "<ip>" in signature("ERROR from 10.1.2.3")


def test_level_word_must_stand_alone_and_most_severe_wins() -> None:
    assert level_of("2026 ERROR boom") == "ERROR"
    assert level_of("CRITICAL and ERROR") == "CRITICAL"
    assert level_of("FATAL: x ERROR y") == "FATAL"
    assert level_of("INFO no ERRORS today; errorless") is None
    assert level_of("info: error in lower case") is None


def test_postgres_log_lines_grouped_without_prefix() -> None:
    text = "\n".join(
        [
            "2026-11-27 08:00:01.123 UTC [4711] app@sanvi ERROR:  duplicate key value violates unique "
            'constraint "orders_pkey"',
            "2026-11-27 08:00:02.456 UTC [4712] app@sanvi ERROR:  duplicate key value violates unique "
            'constraint "users_pkey"',
            '2026-11-27 08:05:00 UTC [99] app@sanvi FATAL:  password authentication failed for user "bob"',
            "2026-11-27 08:06:00 UTC [99] LOG:  checkpoint complete",
            "2026-11-27 08:07:00 UTC [1] PANIC:  could not write to file",
        ]
    )
    digest = parse_postgres_log(text, T0)
    assert digest.events == 4
    sigs = {s.signature: s for s in digest.ranked()}
    dup = next(s for k, s in sigs.items() if "duplicate key" in k)
    assert dup.count == 2 and dup.first_ts == datetime(2026, 11, 27, 8, 0, 1, tzinfo=UTC)
    assert digest.ranked()[0].level == "PANIC"
    assert digest.count_at_least("FATAL") == 2


def _digest(n_errors: int, n_critical: int = 0) -> ErrorDigest:
    d = ErrorDigest()
    for i in range(n_errors):
        d.add(f"ERROR timeout {i}", T0 - timedelta(minutes=i), "ERROR")
    for i in range(n_critical):
        d.add(f"CRITICAL disk {i}", T0 - timedelta(minutes=i), "CRITICAL")
    return d


def test_rate_in_percent_when_total_known() -> None:
    rate, sigs = judge_source(
        "/g",
        _digest(60),
        window=timedelta(hours=24),
        total=1000,
        truncated=False,
        baseline=False,
        limits=LIMITS,
        top=5,
    )
    assert rate.status is Status.CRITICAL and rate.observed == 6.0 and rate.unit == "%"
    assert rate.severity == "P3" and rate.thresholds == {"warning": 1, "critical": 5}
    assert sigs.status is Status.OK and sigs.details["signature_count"] == 1


def test_rate_per_minute_when_total_unknown_and_truncation_said() -> None:
    rate, _ = judge_source(
        "/g",
        _digest(2880),
        window=timedelta(hours=24),
        total=None,
        truncated=True,
        baseline=False,
        limits=LIMITS,
        top=5,
    )
    assert rate.status is Status.WARNING and rate.unit == "errors/min" and rate.observed == 2.0
    assert "read bound" in rate.summary


def test_new_and_critical_signatures_are_called_out() -> None:
    d = _digest(3, n_critical=1)
    for s in d.signatures.values():
        s.new = s.level == "CRITICAL"
    rate, sigs = judge_source(
        "/g", d, window=timedelta(hours=24), total=0, truncated=False, baseline=False, limits=LIMITS, top=5
    )
    assert sigs.status is Status.WARNING
    assert "1 NEW since last week" in sigs.summary and "1 CRITICAL/FATAL" in sigs.summary
    assert sigs.details["signatures"][0]["new"] is True
    assert "action" in sigs.details


def test_quiet_group_is_ok() -> None:
    rate, sigs = judge_source(
        "/g",
        ErrorDigest(),
        window=timedelta(hours=24),
        total=500,
        truncated=False,
        baseline=False,
        limits=LIMITS,
        top=5,
    )
    assert rate.status is Status.OK and rate.observed == 0 and sigs.status is Status.OK


def test_config_sections_ship_and_default_when_absent() -> None:
    import yaml

    from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config

    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg.tasks.log_review.settings.log_groups and cfg.tasks.log_review.settings.lookback == timedelta(
        hours=24
    )
    assert (
        cfg.tasks.security_patch_review.settings.ecr_repositories
        and 18 in cfg.tasks.security_patch_review.settings.postgres_newest_minor
    )

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["tasks"]["log_review"].pop("settings")
    raw["tasks"]["security_patch_review"].pop("settings")
    older = parse_config(raw)
    assert (
        older.tasks.log_review.settings.log_groups == []
        and older.tasks.security_patch_review.settings.postgres_newest_from_aws
    )

    raw["tasks"]["log_review"]["settings"] = {"lookback": "soon", "max_events_per_group": 0}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    text = str(err.value)
    assert (
        "tasks.log_review.settings.lookback" in text
        and "tasks.log_review.settings.max_events_per_group" in text
    )
