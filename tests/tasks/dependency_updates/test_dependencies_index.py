"""Dependency Updates against the local package index and OSV stand-in (tests/fixtures/package_index.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from packaging.version import Version

from sanvi_ops.tasks.dependency_updates.dependencies import (
    PackageIndex,
    Source,
    query_advisories,
    review_requirements,
)

pytestmark = pytest.mark.integration

REQS = (
    "alpha==1.0.0        # patch, minor and a major available\n"
    "Beta.Pkg==0.9.0     # a non-normalised name\n"
    "gamma==4.2.0        # up to date, but vulnerable\n"
    "delta==1.0.0        # a patch; 1.1.0b2 is a pre-release\n"
    "epsilon[extra]==5.1.0 ; python_version >= '3'\n"
    "unknown-thing==1.0\n"
    "requests>=2\n"
)


def _source(tmp_path: Path, text: str = REQS) -> Source:
    f = tmp_path / "requirements.txt"
    f.write_text(text)
    return Source(label="app", component="application", files=(f,), root=tmp_path)


def _by_check(results):
    return {r.check: r for r in results}


@pytest.mark.parametrize("api", ["simple-json", "simple-html", "json"])
def test_review_against_each_index_api(package_index, tmp_path, api):
    package_index.state.html_only = api == "simple-html"
    url = package_index.json_url if api == "json" else package_index.simple_url
    with PackageIndex(url, "json" if api == "json" else "simple", timeout_s=5, concurrency=4) as index:
        results = _by_check(review_requirements(_source(tmp_path), index, advisory_url=package_index.osv_url))

    alpha = results["app.dependency[requirements.txt:alpha]"]
    assert alpha.status == "warning" and alpha.details["state"] == "major"
    assert (
        alpha.details["latest"] == "2.0.0" and alpha.details["ready"] == "1.2.0"
    )  # 3.0.0 yanked, rc skipped
    beta = results["app.dependency[requirements.txt:beta-pkg]"]
    assert (
        beta.details["state"] == "ready"
        and beta.details["kind"] == "patch"
        and beta.details["latest"] == "0.9.3"
    )
    gamma = results["app.dependency[requirements.txt:gamma]"]
    assert gamma.status == "critical" and gamma.severity == "P3"
    assert gamma.details["vulnerabilities"] == ["GHSA-test-0001", "PYSEC-2026-1"]
    assert "GHSA-test-0001" in gamma.summary and "up to date" in gamma.summary
    delta = results["app.dependency[requirements.txt:delta]"]
    assert delta.details["latest"] == "1.0.5" and delta.details["kind"] == "patch"
    eps = results["app.dependency[requirements.txt:epsilon]"]
    assert (
        eps.status == "ok"
        and eps.details["extras"] == ["extra"]
        and "python_version" in eps.details["marker"]
    )
    unknown = results["app.dependency[requirements.txt:unknown-thing]"]
    assert unknown.status == "warning" and "not on index" in unknown.summary

    summary = results["app.requirements[requirements.txt]"]
    assert summary.status == "warning"
    assert summary.observed == 3  # alpha (major), beta-pkg, delta
    assert summary.details["ready"] == [
        "alpha 1.0.0 → 1.2.0",
        "beta-pkg 0.9.0 → 0.9.3",
        "delta 1.0.0 → 1.0.5",
    ]
    assert summary.details["review"] == ["alpha 1.0.0 → 2.0.0"]
    assert summary.details["vulnerable"] == ["gamma==4.2.0 (GHSA-test-0001, PYSEC-2026-1)"]
    assert summary.details["not_pinned"] == ["requests>=2"]
    assert "6 pinned" in summary.summary and "1 not pinned" in summary.summary

    # Names were normalised before they reached the index (it serves only normalised paths).
    paths = [p for m, p, _a in package_index.state.requests if m == "GET"]
    assert any("/beta-pkg/" in p for p in paths) and not any("Beta" in p for p in paths)
    if api == "simple-json":
        assert all(
            "application/vnd.pypi.simple.v1+json" in a
            for m, _p, a in package_index.state.requests
            if m == "GET"
        )
    queries = {(q["package"]["name"], q["version"]) for q in package_index.state.osv_queries}
    assert ("beta-pkg", "0.9.0") in queries and all(
        q["package"]["ecosystem"] == "PyPI" for q in package_index.state.osv_queries
    )


def test_all_up_to_date_is_ok_and_says_no_advisory_source(package_index, tmp_path):
    with PackageIndex(package_index.simple_url) as index:
        results = review_requirements(_source(tmp_path, "gamma==4.2.0\nepsilon==5.1.0\n"), index)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert "no advisory source configured" in results[-1].summary
    assert package_index.state.osv_queries == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_index_down_is_one_error_naming_the_index(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/simple/"
    with PackageIndex(url, timeout_s=2) as index:
        results = review_requirements(_source(tmp_path), index)
    assert len(results) == 1
    (r,) = results
    assert r.check == "app.requirements[requirements.txt]" and r.status == "error"
    assert url in r.summary and "6 of 6 pins" in r.summary


def test_index_error_status_and_timeout_are_errors(package_index, tmp_path):
    package_index.state.fail_status = 503
    with PackageIndex(package_index.simple_url, timeout_s=5) as index:
        (r,) = review_requirements(_source(tmp_path, "alpha==1.0.0\n"), index)
    assert r.status == "error" and "HTTP 503" in r.summary and package_index.simple_url in r.summary

    package_index.state.fail_status = None
    package_index.state.delay_s = 1.0
    with PackageIndex(package_index.simple_url, timeout_s=0.2) as index:
        (r,) = review_requirements(_source(tmp_path, "alpha==1.0.0\n"), index)
    assert r.status == "error" and "Timeout" in r.summary


def test_concurrency_is_bounded(package_index, tmp_path):
    package_index.state.delay_s = 0.1
    names = [f"pkg-{i}" for i in range(12)]
    for n in names:
        package_index.state.packages[n] = [("1.0", False)]
    with PackageIndex(package_index.simple_url, concurrency=3, timeout_s=5) as index:
        found = index.lookup_many(names)
    assert all(found[n].versions == (Version("1.0"),) for n in names)
    assert 1 <= package_index.state.max_in_flight <= 3


def test_advisory_source_down_is_an_error_but_versions_are_still_reported(package_index, tmp_path):
    package_index.state.osv_fail_status = 500
    with PackageIndex(package_index.simple_url) as index:
        results = _by_check(review_requirements(_source(tmp_path), index, advisory_url=package_index.osv_url))
    adv = results["app.advisories"]
    assert adv.status == "error" and package_index.osv_url in adv.summary
    assert results["app.dependency[requirements.txt:gamma]"].status == "ok"
    assert results["app.dependency[requirements.txt:alpha]"].details["latest"] == "2.0.0"


def test_query_advisories_shape(package_index):
    found = query_advisories(
        package_index.osv_url, [("Gamma", "4.2.0"), ("alpha", "1.0.0"), ("gamma", "4.2.0")]
    )
    assert found == {("gamma", "4.2.0"): ["GHSA-test-0001", "PYSEC-2026-1"]}
    assert len(package_index.state.osv_queries) == 2  # duplicates asked once


def test_vulnerable_pin_is_reported_even_when_the_index_is_down(package_index, tmp_path):
    package_index.state.fail_status = 502  # the index fails; the advisory source answers
    with PackageIndex(package_index.simple_url) as index:
        results = _by_check(
            review_requirements(
                _source(tmp_path, "gamma==4.2.0\nalpha==1.0.0\n"), index, advisory_url=package_index.osv_url
            )
        )
    assert set(results) == {"app.dependency[requirements.txt:gamma]", "app.requirements[requirements.txt]"}
    assert results["app.dependency[requirements.txt:gamma]"].status == "critical"
    summary = results["app.requirements[requirements.txt]"]
    assert summary.status == "error" and "2 of 2 pins" in summary.summary
    assert summary.details["vulnerable"] == ["gamma==4.2.0 (GHSA-test-0001, PYSEC-2026-1)"]
