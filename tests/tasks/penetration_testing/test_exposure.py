"""The Penetration Testing's exposure logic without a network: header rules, port grading,
weak-cipher probes, config defaults and target selection."""

from __future__ import annotations

import socket

import pytest
import yaml
from pydantic import ValidationError

from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.penetration_testing import airflow_tasks as exposure_tasks
from sanvi_ops.tasks.penetration_testing import exposure
from sanvi_ops.tasks.penetration_testing.config import PenetrationTestingConfig
from sanvi_ops.tasks.penetration_testing.exposure import (
    CRITICAL_PORTS,
    WEAK_CIPHERS,
    evaluate_headers,
    scan_ports,
)

pytestmark = pytest.mark.unit

GOOD = {
    "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
}


def _checks(results):
    return sorted(r.check.rsplit(".", 1)[-1] for r in results if r.status is not Status.OK)


def test_good_headers_ok_and_header_names_case_insensitive():
    results = evaluate_headers("web", "https://x/", {k.upper(): v for k, v in GOOD.items()})
    assert [r.status for r in results] == [Status.OK]


@pytest.mark.parametrize(
    ("change", "flagged"),
    [
        ({"strict-transport-security": None}, ["hsts"]),
        ({"strict-transport-security": "max-age=31535999"}, ["hsts"]),
        ({"strict-transport-security": "includeSubDomains"}, ["hsts"]),
        ({"strict-transport-security": 'max-age="31536000"'}, []),
        ({"content-security-policy": None}, ["csp"]),
        ({"x-frame-options": "ALLOW-FROM https://evil"}, ["frame_options"]),
        ({"x-frame-options": None}, ["frame_options"]),
        ({"x-frame-options": None, "content-security-policy": "frame-ancestors 'self'"}, []),
        ({"x-frame-options": "deny"}, []),
        ({"x-content-type-options": "sniff"}, ["content_type_options"]),
        ({"x-content-type-options": None}, ["content_type_options"]),
    ],
)
def test_header_rules(change, flagged):
    headers = {**GOOD, **change}
    headers = {k: v for k, v in headers.items() if v is not None}
    results = evaluate_headers("web", "https://x/", headers)
    assert _checks(results) == flagged
    assert all(r.status in (Status.OK, Status.WARNING) for r in results)
    assert all("— Action:" in r.summary for r in results if r.status is Status.WARNING)


def test_hsts_minimum_is_configurable():
    headers = {**GOOD, "strict-transport-security": "max-age=600"}
    assert _checks(evaluate_headers("web", "u", headers, hsts_min_age_s=600)) == []
    assert _checks(evaluate_headers("web", "u", headers, hsts_min_age_s=601)) == ["hsts"]


def test_critical_ports_cover_the_admin_and_database_ports():
    assert {22, 3389, 5432, 6379, 9090, 3306, 27017} <= CRITICAL_PORTS
    assert 80 not in CRITICAL_PORTS and 443 not in CRITICAL_PORTS


def test_scan_grades_without_network(monkeypatch):
    monkeypatch.setattr(exposure, "_is_open", lambda host, port, timeout_s: port in (22, 443, 8000))
    results = scan_ports("host.example", [22, 80, 443, 8000, 5432], timeout_s=0.1)
    assert [(r.details["port"], r.status) for r in results] == [(22, Status.CRITICAL), (8000, Status.WARNING)]
    assert results[0].severity == "P2" and results[1].severity is None


def test_unresolvable_host_is_an_error_not_a_crash(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(exposure.socket, "create_connection", fail)
    [result] = scan_ports("nowhere.invalid", [80, 443])
    assert result.status is Status.ERROR and "does not resolve" in result.summary


def test_weak_cipher_probes_offer_only_their_family():
    for family in WEAK_CIPHERS:
        ctx = exposure._weak_context(family)
        if ctx is None:
            continue  # this OpenSSL cannot offer it: reported as not tested
        names = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
        assert names
        if family.key == "cbc_sha1":
            assert all(n.endswith("-SHA") for n in names), names
        if family.key == "null":
            assert all("NULL" in n for n in names), names


def test_config_defaults_and_validation():
    pt = load_config().tasks.penetration_testing.settings
    assert pt.environments == ["production", "staging"]
    assert pt.expected_open_ports == [80, 443]
    assert pt.hsts_min_age_seconds == 31_536_000
    assert {22, 5432, 6379, 9090} <= set(pt.ports)
    with pytest.raises(ValidationError, match="ports"):
        PenetrationTestingConfig(ports=[0])
    with pytest.raises(ValidationError, match="concurrency"):
        PenetrationTestingConfig(concurrency=0)


def _cfg(**pt) -> MaintenanceConfig:
    data = load_config().model_dump(mode="json")
    data["tasks"]["penetration_testing"]["settings"] = {
        **data["tasks"]["penetration_testing"]["settings"],
        **pt,
    }
    return MaintenanceConfig.model_validate(yaml.safe_load(yaml.safe_dump(data)))


def test_targets_default_to_production_and_staging():
    cfg = _cfg()
    assert exposure_tasks.frontend_urls(cfg) == [
        ("production", "https://app.sanvi-machinery.com"),
        ("staging", "https://staging.sanvi-machinery.com"),
    ]
    assert exposure_tasks.scan_hosts(cfg) == ["app.sanvi-machinery.com", "staging.sanvi-machinery.com"]
    assert exposure_tasks.tls_targets(cfg) == [
        ("production", "app.sanvi-machinery.com", 443),
        ("staging", "staging.sanvi-machinery.com", 443),
    ]


def test_targets_overrides():
    cfg = _cfg(
        urls=["http://127.0.0.1:8080/", "https://a.example/x"],
        hosts=["10.0.0.1", "10.0.0.1"],
        tls_endpoints=["https://b.example:8443/"],
    )
    assert exposure_tasks.frontend_urls(cfg) == [
        ("127.0.0.1", "http://127.0.0.1:8080/"),
        ("a.example", "https://a.example/x"),
    ]
    assert exposure_tasks.scan_hosts(cfg) == ["10.0.0.1"]
    assert exposure_tasks.tls_targets(cfg) == [("b.example", "b.example", 8443)]
    # without tls_endpoints: the https ones among urls
    assert exposure_tasks.tls_targets(_cfg(urls=["http://127.0.0.1:8080/", "https://a.example/x"])) == [
        ("a.example", "a.example", 443)
    ]


def test_unknown_environment_is_reported():
    with pytest.raises(ValueError, match="unknown environment"):
        exposure_tasks.frontend_urls(_cfg(environments=["prod"]))
